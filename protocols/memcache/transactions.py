"""Pairing memcache requests with replies: TCP streams and UDP exchanges.

As Packetbeat (``plugin_tcp.go``, ``plugin_udp.go``, ``memcache.go``):

* TCP: requests wait in a FIFO. A reply made of several messages (``VALUE``... ``END``,
  ``STAT``... ``END``, binary Stat replies up to the one without a key) is merged into one
  before pairing. A text reply pairs with the oldest request. A binary reply pairs with
  the oldest request of the same opaque and opcode; the requests skipped on the way are
  published alone (a quiet one is ``OK``; any other gets the note "Missing response for
  non-quiet request"). A reply with no request is published alone with "Invalid
  transaction. Request missing". ``quit`` and binary QuitQ never wait.
* UDP: the frame header's request id ties a request to its reply; datagrams of a message
  are put back together by sequence number. An exchange is published when both sides are
  there, or ``udptransactiontimeout`` after its last datagram (quiet and ``noreply``
  requests are published that way, ``OK``).
* Requests left when a connection ends (or its stream is dropped) are published alone with
  "Unfinished transaction" unless quiet or ``noreply``.

Where Packetbeat is wrong, wirebeat differs (docs/differences.md, memcache):

* A text ``noreply`` request is a transaction of its own at once; Packetbeat queues it and
  pairs it with the reply of the *next* request, shifting every later pair by one.
* A binary reply that carries its key (GetK/GetKQ) pairs only with a request for that key:
  clients that leave the opaque at 0 in a GetKQ batch (python-binary-memcached) are paired
  right, where Packetbeat gives a hit the request of the first miss.
* A UDP reply may come as several messages, each its own datagram sequence (memcached
  sends every ``VALUE`` of a multi-get apart); they are merged like TCP replies, where
  Packetbeat keeps the first and loses the rest. memcached's empty frames (no reply to a
  quiet binary command) are skipped; they crash Packetbeat.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK
from protocols.common.realign import REQUEST_LOSS, RESPONSE_LOSS, Realign
from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.memcache.codes import (
    CLIENT_ERRORS,
    END,
    KEYED_REPLIES,
    MAGIC_REQUEST,
    MAGIC_RESPONSE,
    OP_QUITQ,
    OP_STAT,
    SERVER_ERRORS,
    STAT,
    TEXT_REQUESTS,
    TEXT_RESPONSES,
    VALUE,
)
from protocols.memcache.parser import Message, StreamParser

if TYPE_CHECKING:
    from protocols.memcache import MemcachePlugin

CLIENT_ERROR = "Client Error"
SERVER_ERROR = "Server Error"

NOTE_NO_REQUEST = "Invalid transaction. Request missing"
NOTE_NON_QUIET = "Missing response for non-quiet request"
NOTE_UNFINISHED = "Unfinished transaction"
#: The shortest text request (``gat\r\n`` is not one; ``stats\r\n`` is).
MIN_REQUEST = 7
#: Bytes searched for a line that starts a message after a resync.
MAX_HUNT = 64 * 1024

#: Keys or stats one merged reply keeps; past it the rest are counted, not kept.
MAX_MERGED_ITEMS = 10_000
#: Bytes of unfinished UDP messages held over all exchanges; past it the oldest exchanges
#: are published as they are.
MAX_UDP_HELD = 64 << 20

_UDP_HEADER = struct.Struct(">HHHH")


class MixedProtocols(Exception):
    """Text and binary messages in one exchange (Packetbeat drops them)."""


class MemcacheTransaction:
    __slots__ = ("conn", "request", "response", "status", "transport")

    def __init__(self, conn: ConnInfo, request: Message | None, response: Message | None) -> None:
        self.conn = conn
        self.request = request
        self.response = response
        self.transport = conn.transport
        self.status = transaction_status(request, response)

    def endpoints(self) -> tuple[str, int, str, int]:
        """(source ip, port, destination ip, port): the requester is the source."""
        req = self.request
        if req is not None:
            return self.conn.endpoints(req.direction)
        resp = self.response
        assert resp is not None
        return self.conn.endpoints(1 - resp.direction)


def transaction_status(req: Message | None, resp: Message | None) -> str:
    """Packetbeat's ``computeTransactionStatus``."""
    if req is None:
        return CLIENT_ERROR
    if resp is None:
        if req.quiet or req.noreply or req.cmd.code == "quit":
            return OK
        return SERVER_ERROR
    if req.is_binary:
        if resp.status == 0:
            return OK
        return SERVER_ERROR if resp.status > 0x80 else ERROR
    if resp.cmd.typ != "Fail":
        return OK
    code = resp.cmd.code
    if code in CLIENT_ERRORS:
        return CLIENT_ERROR
    if code in SERVER_ERRORS:
        return SERVER_ERROR
    return ERROR


def awaits_reply(msg: Message) -> bool:
    if msg.is_binary:
        return msg.opcode != OP_QUITQ
    return msg.cmd.code != "quit"


def reply_complete(msg: Message) -> bool:
    """Packetbeat's ``checkResponseComplete``: more messages follow a VALUE, a STAT, or a
    binary Stat reply that still names a statistic."""
    if msg.is_binary:
        return msg.opcode != OP_STAT or not msg.keys
    cmd = msg.cmd
    return cmd is not VALUE and cmd is not STAT


def merge_reply(prev: Message | None, msg: Message, maxvalues: int, plugin: MemcachePlugin) -> bool:
    """Fold ``msg`` into the unfinished reply ``prev`` (Packetbeat's ``tryMergeResponses``)."""
    msg.complete = reply_complete(msg)
    if prev is None:
        return False
    if prev.is_binary != msg.is_binary:
        raise MixedProtocols
    if not msg.is_binary:
        if prev.cmd is VALUE:
            if msg.cmd is not VALUE and msg.cmd is not END:
                return False
            prev.nbytes += msg.nbytes
            prev.count_values += msg.count_values
            if msg.keys:
                _extend(prev, "keys", msg.keys, plugin)
            if msg.cmd is VALUE and msg.values:
                have = len(prev.values) if prev.values else 0
                take = len(msg.values) if maxvalues < 0 else min(max(maxvalues - have, 0), len(msg.values))
                if take:
                    if prev.kept + msg.kept > plugin.config.max_message_size:
                        plugin.stats.incr("memcache.truncated_replies")
                    else:
                        _extend(prev, "values", msg.values[:take], plugin)
                        prev.kept += msg.kept
        elif prev.cmd is STAT:
            if msg.cmd.typ != "Stats" and msg.cmd is not END:
                return False
            if msg.stats:
                _extend(prev, "stats", msg.stats, plugin)
        else:
            return False
    else:
        if prev.opcode != OP_STAT or msg.opcode != OP_STAT or prev.opaque != msg.opaque:
            return False
        if msg.stats:
            _extend(prev, "stats", msg.stats, plugin)
    prev.size += msg.size
    if msg.notes:
        for n in msg.notes:
            prev.add_note(n)
    prev.complete = prev.complete or msg.complete
    return True


def _extend(prev: Message, attr: str, items: list[Any], plugin: MemcachePlugin) -> None:
    have: list[Any] | None = getattr(prev, attr)
    if have is None:
        have = []
        setattr(prev, attr, have)
    room = MAX_MERGED_ITEMS - len(have)
    if room < len(items):
        plugin.stats.incr("memcache.truncated_replies")
        items = items[: max(room, 0)]
    have.extend(items)


def _same_exchange(req: Message, resp: Message) -> bool:
    if req.opaque != resp.opaque or req.opcode != resp.opcode:
        return False
    if resp.opcode in KEYED_REPLIES and resp.keys and req.keys:
        return resp.keys[0] == req.keys[0]
    return True


class MemcacheHandler(ConnectionHandler):
    """One TCP connection."""

    __slots__ = ("hunt", "parsers", "realign", "requests", "responses")

    plugin: MemcachePlugin

    def __init__(self, plugin: MemcachePlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.parsers: list[StreamParser | None] = [None, None]
        self.requests: deque[Message] = deque()
        self.responses: deque[Message] = deque()
        self.realign = Realign(MIN_REQUEST)
        #: Per direction: resuming at an unknown point, look for a message start first
        #: (bytes carried over while looking, or None when not looking).
        self.hunt: list[bytes | None] = [None, None]

    def resync(self, direction: int, after_loss: bool) -> None:
        self.hunt[direction] = b""
        if after_loss and direction == FROM_CLIENT:
            self.realign.lost(REQUEST_LOSS)

    def _hunt(self, direction: int, data: bytes) -> bytes:
        """``data`` from the first line that starts a message of ``direction``: a known
        command (or reply) word, or a binary magic byte; b"" while none is in sight."""
        held = self.hunt[direction]
        buf = held + data if held else data
        words = TEXT_REQUESTS if direction == FROM_CLIENT else TEXT_RESPONSES
        magic = MAGIC_REQUEST if direction == FROM_CLIENT else MAGIC_RESPONSE
        pos = 0
        while True:
            if pos < len(buf) and buf[pos] == magic:
                self.hunt[direction] = None
                return buf[pos:]
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                # Keep the start of an unfinished line (bounded: a value may be long).
                self.hunt[direction] = buf[pos:][-MAX_HUNT:]
                return b""
            word = buf[pos:eol].split(b" ", 1)[0]
            if word in words:
                self.hunt[direction] = None
                return buf[pos:]
            pos = eol + 2

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        if self.hunt[direction] is not None:
            data = self._hunt(direction, data)
            if not data:
                return []
        parser = self.parsers[direction]
        if parser is None:
            parser = self.parsers[direction] = self.plugin.new_parser()
        msgs, err = parser.feed(data, ts)
        out: list[Any] = []
        for m in msgs:
            m.direction = direction
            if m.is_request:
                self._request(m, out)
            else:
                self._response(m, out)
        if err is not None:
            # As Packetbeat: publish what is pending, forget both directions, start again
            # at the next line that starts a message. The responses of the requests given
            # up on may still come: pairs are unsure until they have.
            stats = self.plugin.stats
            stats.incr(f"memcache.{err}")
            stats.incr("memcache.stream_drops")
            given_up = len(self.requests)
            self._push_all(out)
            self.parsers = [None, None]
            self.hunt = [b"", b""]
            if direction == FROM_CLIENT:
                self.realign.lost(REQUEST_LOSS, 0, 0, False, given_up)
            elif given_up:
                self.realign.lost(RESPONSE_LOSS, 0, 0, False, given_up - 1)
        return out

    def on_gap(self, direction: int, nbytes: int) -> bool:
        parser = self.parsers[direction]
        if parser is not None and parser.on_gap(nbytes):
            self.plugin.stats.incr("memcache.gaps_in_values")
            return False
        if direction == FROM_CLIENT:
            # Lost requests: those waiting are answered first; the responses of the lost
            # ones are surplus, pairs are unsure until they have come.
            partial = parser is not None and parser.mid_message
            self.realign.lost(REQUEST_LOSS, len(self.requests), nbytes, partial)
            self.parsers[direction] = None
            self.hunt[direction] = b""
            return False
        return True

    def on_close(self, reason: str) -> list[Any]:
        for p in self.parsers:
            if p is not None and p.mid_message:
                self.plugin.stats.incr("memcache.incomplete_messages")
        self.parsers = [None, None]
        out: list[Any] = []
        self._push_all(out)
        return out

    # -- pairing ---------------------------------------------------------------------------

    def _request(self, msg: Message, out: list[Any]) -> None:
        if (msg.noreply and not msg.is_binary) or not awaits_reply(msg):
            out.append(MemcacheTransaction(self.conn, msg, None))
            return
        if not msg.is_binary:
            self.realign.request(msg.size)
        requests = self.requests
        requests.append(msg)
        if len(requests) > self.plugin.config.max_pending_requests:
            self.plugin.stats.incr("memcache.pending_evictions")
            self._alone(requests.popleft(), out)

    def _response(self, msg: Message, out: list[Any]) -> None:
        prev = self.responses[-1] if self.responses else None
        if prev is not None and prev.complete:
            prev = None
        try:
            merged = merge_reply(prev, msg, self.plugin.config.maxvalues, self.plugin)
        except MixedProtocols:
            self.plugin.stats.incr("memcache.mixed_protocols")
            return
        if merged:
            assert prev is not None
            msg = prev
        else:
            self.responses.append(msg)
        if msg.complete:
            self._correlate(out)

    def _correlate(self, out: list[Any]) -> None:
        requests = self.requests
        responses = self.responses
        stats = self.plugin.stats
        while responses:
            resp = responses.popleft()
            req: Message | None = None
            while requests:
                req = requests.popleft()
                if req.is_binary != resp.is_binary:
                    stats.incr("memcache.mixed_protocols")
                    return
                if not req.is_binary or _same_exchange(req, resp):
                    break
                if not req.quiet:
                    req.add_note(NOTE_NON_QUIET)
                    stats.incr("memcache.unmatched_requests")
                out.append(MemcacheTransaction(self.conn, req, None))
                req = None
            if req is None:
                resp.add_note(NOTE_NO_REQUEST)
                stats.incr("memcache.unmatched_responses")
                self.realign.surplus()
            elif not resp.is_binary:
                note = self.realign.pair()
                if note:
                    req.add_note(note)
            out.append(MemcacheTransaction(self.conn, req, resp))

    def _alone(self, req: Message, out: list[Any]) -> None:
        if not req.quiet and not req.noreply:
            req.add_note(NOTE_UNFINISHED)
            self.plugin.stats.incr("memcache.unfinished_transactions")
        out.append(MemcacheTransaction(self.conn, req, None))

    def _push_all(self, out: list[Any]) -> None:
        self._correlate(out)
        self.responses.clear()
        requests = self.requests
        while requests:
            self._alone(requests.popleft(), out)


# -- UDP ------------------------------------------------------------------------------------------


class _Assembly:
    """The datagrams of one message (one sequence of the frame header)."""

    __slots__ = ("nbytes", "parts", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.parts: dict[int, bytes] = {}
        self.nbytes = 0


class UdpExchange:
    __slots__ = ("assembly", "conn", "last_ts", "request", "response")

    def __init__(self, conn: ConnInfo, ts: int) -> None:
        self.conn = conn
        self.last_ts = ts
        self.request: Message | None = None
        self.response: Message | None = None
        self.assembly: list[_Assembly | None] = [None, None]


class UdpTable:
    """The UDP exchanges of one plugin, oldest first, keyed by endpoints and request id."""

    def __init__(self, plugin: MemcachePlugin) -> None:
        self.plugin = plugin
        self.exchanges: OrderedDict[tuple[str, int, str, int, int], UdpExchange] = OrderedDict()
        #: Bytes held in unfinished datagram assemblies.
        self.held = 0

    def _forget(self, ex: UdpExchange) -> None:
        for asm in ex.assembly:
            if asm is not None:
                self.held -= asm.nbytes
        ex.assembly = [None, None]

    def datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        stats = self.plugin.stats
        if len(data) < 8:
            stats.incr("memcache.udp_short_datagrams")
            return []
        rid, seq, total, _reserved = _UDP_HEADER.unpack_from(data)
        if total == 0:
            # memcached's frame with no message: a quiet binary command got no reply.
            stats.incr("memcache.udp_empty_frames")
            return []
        if seq >= total:
            stats.incr("memcache.udp_bad_sequences")
            return []
        out: list[Any] = []
        key = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port, rid)
        exchanges = self.exchanges
        ex = exchanges.get(key)
        if ex is None:
            ex = exchanges[key] = UdpExchange(conn, ts)
            if len(exchanges) > self.plugin.config.max_udp_transactions:
                stats.incr("memcache.udp_evictions")
                _old_key, old = exchanges.popitem(last=False)
                self._forget(old)
                self._publish(old, out)
        else:
            exchanges.move_to_end(key)
            ex.last_ts = ts
        # A side whose message is whole takes more datagrams only to go on with an
        # unfinished reply (memcached sends each VALUE of a multi-get as its own sequence).
        for m in (ex.request, ex.response):
            if m is not None and m.direction == direction and m.complete:
                stats.incr("memcache.udp_extra_datagrams")
                return out
        asm = ex.assembly[direction]
        if asm is None or asm.total != total:
            if asm is not None:
                stats.incr("memcache.udp_datagram_mismatches")
                self.held -= asm.nbytes
            asm = ex.assembly[direction] = _Assembly(total)
        payload = data[8:]
        if seq in asm.parts:
            stats.incr("memcache.udp_duplicate_datagrams")
            return out
        asm.parts[seq] = payload
        asm.nbytes += len(payload)
        self.held += len(payload)
        if asm.nbytes > self.plugin.config.max_message_size:
            stats.incr("memcache.oversized_messages")
            self._forget(ex)
            del exchanges[key]
            return out
        if len(asm.parts) < total:
            while self.held > MAX_UDP_HELD and exchanges:
                stats.incr("memcache.udp_evictions")
                _old_key, old = exchanges.popitem(last=False)
                self._forget(old)
                self._publish(old, out)
            return out
        ex.assembly[direction] = None
        self.held -= asm.nbytes
        whole = payload if total == 1 else b"".join(asm.parts[i] for i in range(total))
        if self._message(ex, direction, whole, ts):
            self._forget(ex)
            del exchanges[key]
            self._publish(ex, out)
        return out

    def _message(self, ex: UdpExchange, direction: int, payload: bytes, ts: int) -> bool:
        """Parse a reassembled payload into ``ex``; True when the exchange is done."""
        plugin = self.plugin
        stats = plugin.stats
        parser = plugin.new_parser()
        msgs, err = parser.feed(payload, ts)
        if err is None and parser.mid_message:
            err = "udp_incomplete_messages"
        if err is not None or not msgs:
            # Packetbeat drops the whole exchange on a message it cannot read.
            stats.incr(f"memcache.{err or 'udp_incomplete_messages'}")
            ex.request = ex.response = None
            return True
        for m in msgs:
            m.direction = direction
        first = msgs[0]
        if first.is_request:
            if len(msgs) > 1:
                stats.incr("memcache.udp_extra_messages")
            if ex.request is not None:
                stats.incr("memcache.udp_duplicate_requests")
                return False
            ex.request = first
            if not awaits_reply(first):
                return True
        else:
            for m in msgs:
                if m.is_request:
                    stats.incr("memcache.udp_extra_messages")
                    continue
                prev = ex.response
                try:
                    merged = merge_reply(
                        prev if prev is not None and not prev.complete else None,
                        m,
                        plugin.config.maxvalues,
                        plugin,
                    )
                except MixedProtocols:
                    stats.incr("memcache.mixed_protocols")
                    ex.request = ex.response = None
                    return True
                if not merged:
                    if prev is not None:
                        stats.incr("memcache.udp_extra_messages")
                        continue
                    ex.response = m
        resp = ex.response
        return ex.request is not None and resp is not None and resp.complete

    def _publish(self, ex: UdpExchange, out: list[Any]) -> None:
        if ex.request is None and ex.response is None:
            return
        out.append(MemcacheTransaction(ex.conn, ex.request, ex.response))

    def expire(self, ts: int, timeout_ns: int) -> list[Any]:
        out: list[Any] = []
        exchanges = self.exchanges
        limit = ts - timeout_ns
        while exchanges:
            key, ex = next(iter(exchanges.items()))
            if ex.last_ts > limit:
                break
            del exchanges[key]
            self._forget(ex)
            self._publish(ex, out)
        return out

    def flush(self) -> list[Any]:
        out: list[Any] = []
        for ex in self.exchanges.values():
            self._publish(ex, out)
        self.exchanges.clear()
        self.held = 0
        return out
