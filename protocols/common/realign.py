"""Pairing by order after lost bytes.

Request/response protocols pair the n-th response with the n-th request. Bytes lost in a
stream may hold whole messages, and how many is unknown: after lost requests, their
responses still come and would pair with the requests after the loss; after lost
responses, the requests they answered are given up (published unmatched or dropped), but
some of their responses may still follow. Either way the pairs after the loss may be
shifted, and nothing in an order-paired protocol says by how much.

``Realign`` keeps a connection *unsure* from such a loss until the surplus responses that
the lost requests leave over have come (responses that find no request waiting): then
the streams are back in step. How many requests the lost bytes held is bounded by their
size over the smallest request seen on the connection (plus one being read when they
were lost). Pairs made while unsure carry a note (Packetbeat's ``Packet loss while
capturing the request``), so a pair is either right or flagged, never silently wrong.
Requests that were already waiting when request bytes were lost are answered first (the
server answers in order), so they pair safely.

Responses lost are handled by each protocol (the requests they answered come out
unmatched, or are dropped): the request that a response after the loss answers was sent
after the lost bytes were received, so the TCP layer delivers it after the gap.
"""

from __future__ import annotations

REQUEST_LOSS = "Packet loss while capturing the request"
RESPONSE_LOSS = "Packet loss while capturing the response"


class Realign:
    __slots__ = ("note", "owed", "safe", "smallest")

    def __init__(self, smallest: int) -> None:
        #: Note for pairs made while unsure; "" when in step.
        self.note = ""
        #: Pairs still trustworthy while unsure (requests queued before the loss).
        self.safe = 0
        #: Surplus responses still possibly to come.
        self.owed = 0
        #: Size of the smallest request seen (the protocol's smallest possible at first).
        self.smallest = max(1, smallest)

    @property
    def unsure(self) -> bool:
        return bool(self.note)

    def request(self, size: int) -> None:
        """A whole request of ``size`` bytes was read."""
        if 0 < size < self.smallest:
            self.smallest = size

    def lost(self, note: str, safe: int = 0, nbytes: int = 0, partial: bool = False, owed: int = 0) -> None:
        """``nbytes`` of the request stream were lost (0: unknown, at least one request);
        ``partial``: a request was being read then. The ``safe`` requests waiting before
        the loss pair correctly. ``owed``: responses known to be still due besides (of
        requests given up on)."""
        owed += max(1, -(-nbytes // self.smallest) + partial)
        if self.note:
            self.safe = min(self.safe, safe)
            self.owed += owed
        else:
            self.note = note
            self.safe = safe
            self.owed = owed

    def pair(self) -> str:
        """A request and a response are paired: the note they must carry ("" if none)."""
        if not self.note:
            return ""
        if self.safe:
            self.safe -= 1
            return ""
        return self.note

    def surplus(self) -> None:
        """A response came with no request waiting."""
        if self.note:
            self.owed -= 1
            if self.owed <= 0:
                self.note = ""
                self.safe = 0
