"""Request/reply pairing (Packetbeat ``protos/icmp/icmp.go``).

A request of a paired kind (echo, timestamp, information, address mask; ICMPv6 echo)
waits for the reply with the same identifier and sequence number coming back between the
same two hosts. Every other message that is not a reply (errors, router and neighbor
discovery, redirects ...) is a transaction of its own. A second request with the same key
publishes the first as unanswered; a reply nobody asked for is published on its own; a
request that waits longer than ``transaction_timeout`` (capture time) is published as
unanswered, and so is every request still open at the end of the input.
"""

from __future__ import annotations

from typing import Protocol

from protocols.icmp.parser import ERROR_TYPES, PAIR_TYPES, RESPONSE_TYPES, IcmpMessage
from protocols.stats import Counters


class _HasStats(Protocol):
    stats: Counters


DUPLICATE_REQUEST = (
    "Another request with the same Id and Seq was received so this request was closed "
    "without receiving a response."
)
ORPHANED_REQUEST = "Request was received without an associated response."
ORPHANED_RESPONSE = "Response was received without an associated request."

PendingKey = tuple[int, bytes, bytes, int, int]


class IcmpTransaction:
    __slots__ = ("dst", "notes", "request", "response", "src", "ts", "version")

    def __init__(self, version: int, src: bytes, dst: bytes, ts: int, request: IcmpMessage | None) -> None:
        self.version = version
        #: Addresses of the request's direction (for a lone reply: of the request it answers).
        self.src = src
        self.dst = dst
        self.ts = ts
        self.request = request
        self.response: IcmpMessage | None = None
        self.notes: list[str] = []

    @property
    def error(self) -> bool:
        v = self.version
        req, resp = self.request, self.response
        return (
            req is None
            or req.type in ERROR_TYPES[v]
            or (resp is not None and resp.type in ERROR_TYPES[v])
            or (resp is None and req.type in PAIR_TYPES[v])
        )


class IcmpTracker:
    def __init__(self, timeout_ns: int, max_pending: int, owner: _HasStats) -> None:
        self.timeout_ns = timeout_ns
        self.max_pending = max_pending
        #: The plugin: its ``stats`` is the decoder's counter set (assigned after construction).
        self.owner = owner
        #: Requests waiting for their reply, oldest first.
        self.pending: dict[PendingKey, IcmpTransaction] = {}

    def on_message(self, version: int, src: bytes, dst: bytes, msg: IcmpMessage) -> list[IcmpTransaction]:
        out: list[IcmpTransaction] = []
        pending = self.pending
        if msg.type not in RESPONSE_TYPES[version]:
            key = (version, src, dst, msg.ident, msg.seq)
            old = pending.pop(key, None)
            if old is not None:
                old.notes.append(DUPLICATE_REQUEST)
                self.owner.stats.incr("icmp.duplicate_requests")
                out.append(old)
            txn = IcmpTransaction(version, src, dst, msg.ts, msg)
            if msg.type not in PAIR_TYPES[version]:
                out.append(txn)
                return out
            if len(pending) >= self.max_pending:
                oldest = pending.pop(next(iter(pending)))
                oldest.notes.append(ORPHANED_REQUEST)
                self.owner.stats.incr("icmp.pending_evicted")
                out.append(oldest)
            pending[key] = txn
            return out
        txn_or_none = pending.pop((version, dst, src, msg.ident, msg.seq), None)
        if txn_or_none is None:
            txn = IcmpTransaction(version, dst, src, msg.ts, None)
            txn.notes.append(ORPHANED_RESPONSE)
            self.owner.stats.incr("icmp.unmatched_responses")
        else:
            txn = txn_or_none
        txn.response = msg
        out.append(txn)
        return out

    def expire(self, ts: int) -> list[IcmpTransaction]:
        """Requests unanswered for longer than the timeout."""
        pending = self.pending
        if not pending:
            return []
        limit = ts - self.timeout_ns
        dead = [k for k, t in pending.items() if t.ts < limit]
        return self._close(dead)

    def flush(self) -> list[IcmpTransaction]:
        return self._close(list(self.pending))

    def _close(self, keys: list[PendingKey]) -> list[IcmpTransaction]:
        out = []
        for k in keys:
            txn = self.pending.pop(k)
            txn.notes.append(ORPHANED_REQUEST)
            out.append(txn)
        if out:
            self.owner.stats.incr("icmp.unmatched_requests", len(out))
        return out
