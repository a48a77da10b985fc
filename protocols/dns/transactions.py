"""Pairing DNS queries with responses, over UDP and TCP, by capture time.

As Packetbeat (``protos/dns/dns.go``) does it:

* A query waits under (transport, client, server, id); the response whose reversed
  endpoints and id match completes it. A second query with the same key publishes the
  first one unanswered ("Another query with the same DNS ID ..."): retransmissions by
  stub resolvers reuse the id. A response nobody waits for is published on its own
  ("Response: received without an associated Query"), as is every further response to
  an already answered query.
* A query left waiting ``transaction_timeout`` (capture time) is published with "No
  response to this query was received"; so is everything still waiting at end of input
  (Packetbeat never publishes those in file mode, see docs/differences.md).
* UDP notes: a response over 512 bytes without EDNS, an EDNS query answered without
  EDNS and the reverse.
* TCP (RFC 1035 §4.2.2, RFC 7766): messages are length-prefixed, several may share a
  segment or span many. Packetbeat decodes one message per segment and leaves the rest
  waiting for the next segment; here every complete message is decoded. A message that
  cannot be decoded on the server side is reported on the query the connection was last
  waiting for ("Response: ..."), then that direction resynchronises at the next segment.

Going beyond Packetbeat: a zone transfer (AXFR/IXFR over TCP, RFC 5936 §2.2, RFC 1995
§4) is one transaction whatever the number of response messages; it ends with the
message whose last record repeats the opening SOA.

Bounded: at most ``max_pending`` queries wait (the oldest is published unanswered past
it); a TCP direction buffers at most one message (≤ 65,537 bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.dns.parser import T_A, T_AAAA, T_AXFR, T_IXFR, DnsError, Message, parse
from protocols.handler import FROM_SERVER, ConnectionHandler, ConnInfo

if TYPE_CHECKING:
    from protocols.dns import DnsPlugin

MAX_UDP_PLAIN = 512  # RFC 1035 §4.2.1; larger needs EDNS (RFC 6891 §6.2.5)

DUPLICATE_QUERY = (
    "Another query with the same DNS ID from this client was received so this query "
    "was closed without receiving a response"
)
NO_RESPONSE = "No response to this query was received"
ORPHANED_RESPONSE = "Response: received without an associated Query"
UDP_TOO_LARGE = f"Non-EDNS packet has size greater than {MAX_UDP_PLAIN}"
EDNS_NOT_SUPPORTED = "Responder does not support EDNS"
EDNS_UNEXPECTED = "Unexpected EDNS answer"
NOT_DNS = "Message's data could not be decoded as DNS"
ZERO_LENGTH = "Message's length was set to zero"
INCOMPLETE = "Message's data is incomplete"
TRANSFER_INCOMPLETE = "Zone transfer incomplete"

Key = tuple[str, str, int, str, int, int]


class DnsMessage:
    """One decoded message as seen on the wire: endpoints as sent, capture time, size
    (for TCP including the 2-byte length prefix, as Packetbeat counts it)."""

    __slots__ = ("dst", "msg", "size", "src", "ts")

    def __init__(self, msg: Message, ts: int, size: int, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self.msg = msg
        self.ts = ts
        self.size = size
        self.src = src
        self.dst = dst


class Transfer:
    """The later messages of a zone transfer: their records (up to a cap), sizes, times."""

    __slots__ = ("answers", "count", "done", "end_ts", "ips", "messages", "serial", "size")

    def __init__(self, first: Message) -> None:
        self.answers: list[tuple[str, int, int, int, dict[str, Any] | None]] = []
        self.ips: list[str] = []
        self.count = len(first.answers)
        self.messages = 1
        self.size = 0
        self.end_ts = 0
        serials = first.soa_serials
        self.serial = serials[0][1] if serials and serials[0][0] == 0 else None
        self.done = False


class DnsTransaction:
    __slots__ = ("deadline", "notes", "request", "response", "transfer", "transport")

    def __init__(self, transport: str, request: DnsMessage | None, response: DnsMessage | None) -> None:
        self.transport = transport
        self.request = request
        self.response = response
        self.notes: list[str] = []
        self.transfer: Transfer | None = None
        #: Capture time after which a waiting transaction expires.
        self.deadline = 0


def _key(transport: str, src: tuple[str, int], dst: tuple[str, int], ident: int) -> Key:
    return (transport, src[0], src[1], dst[0], dst[1], ident)


def _is_transfer(msg: Message) -> bool:
    return bool(msg.questions) and msg.questions[0][1] in (T_AXFR, T_IXFR)


class Pairing:
    """Queries waiting for their response, all flows of one plugin, in capture-time order."""

    def __init__(self, plugin: DnsPlugin) -> None:
        self.plugin = plugin
        self.timeout = plugin.timeout_ns
        self.max_pending = plugin.config.max_pending
        self.max_records = plugin.config.max_transfer_records
        self.pending: dict[Key, DnsTransaction] = {}

    # -- queries -------------------------------------------------------------------------

    def request(self, transport: str, m: DnsMessage, out: list[DnsTransaction]) -> None:
        self.expire(m.ts, out)
        key = _key(transport, m.src, m.dst, m.msg.id)
        old = self.pending.pop(key, None)
        if old is not None:
            old.notes.append(DUPLICATE_QUERY)
            self.plugin.stats.incr("dns.duplicate_queries")
            self._finish(old, out)
        t = DnsTransaction(transport, m, None)
        if transport == "udp" and m.msg.opt is None and m.size > MAX_UDP_PLAIN:
            # Packetbeat tests the opposite (an EDNS query over 512 bytes) under the same
            # words; see docs/differences.md.
            t.notes.append(UDP_TOO_LARGE)
        self._wait(key, t, m.ts, out)

    def _wait(self, key: Key, t: DnsTransaction, ts: int, out: list[DnsTransaction]) -> None:
        t.deadline = ts + self.timeout
        self.pending[key] = t
        if self.max_pending and len(self.pending) > self.max_pending:
            oldest = next(iter(self.pending))
            victim = self.pending.pop(oldest)
            self.plugin.stats.incr("dns.evicted_queries")
            self._unanswered(victim, out)

    # -- responses -----------------------------------------------------------------------

    def response(self, transport: str, m: DnsMessage, out: list[DnsTransaction]) -> DnsTransaction | None:
        """Pair ``m``; returns the transaction when it is a zone transfer still running."""
        self.expire(m.ts, out)
        key = _key(transport, m.dst, m.src, m.msg.id)
        t = self.pending.pop(key, None)
        if t is None:
            t = DnsTransaction(transport, None, m)
            t.notes.append(ORPHANED_RESPONSE)
            self.plugin.stats.incr("dns.unmatched_responses")
            if transport == "udp":
                self._udp_notes(t, m)
            self._finish(t, out)
            return None
        if t.transfer is not None:  # a later message of a running zone transfer
            self._more(t, m)
            if not t.transfer.done:
                self._wait(key, t, m.ts, out)
                return t
        else:
            t.response = m
            if transport == "udp":
                self._udp_notes(t, m)
            elif t.request is not None and _is_transfer(t.request.msg) and self._transfer_open(t, m):
                self._wait(key, t, m.ts, out)
                return t
        self._finish(t, out)
        return None

    def _udp_notes(self, t: DnsTransaction, m: DnsMessage) -> None:
        resp_edns = m.msg.opt is not None
        if not resp_edns and m.size > MAX_UDP_PLAIN:
            t.notes.append("Response: " + UDP_TOO_LARGE)
        if t.request is not None:
            req_edns = t.request.msg.opt is not None
            if req_edns and not resp_edns:
                t.notes.append(EDNS_NOT_SUPPORTED)
            elif resp_edns and not req_edns:
                t.notes.append(EDNS_UNEXPECTED)

    def _transfer_open(self, t: DnsTransaction, m: DnsMessage) -> bool:
        """Does the first response of a zone transfer leave it unfinished?"""
        msg = m.msg
        tr = Transfer(msg)
        if msg.rcode or tr.serial is None:
            return False  # refused, or not the start of a transfer: one message is all
        if len(msg.answers) == 1 and t.request is not None and t.request.msg.questions[0][1] == T_IXFR:
            return False  # IXFR: the client is up to date (RFC 1995 §4)
        if _closes(msg, tr.serial, 1):
            return False
        t.transfer = tr
        return True

    def _more(self, t: DnsTransaction, m: DnsMessage) -> None:
        tr = t.transfer
        assert tr is not None
        msg = m.msg
        tr.messages += 1
        tr.size += m.size
        tr.end_ts = m.ts
        room = max(self.max_records - len(tr.answers), 0)
        kept = msg.answers[:room]
        tr.answers.extend(kept)
        if msg.ips:
            tr.ips.extend(r[4]["data"] for r in kept if r[4] is not None and r[1] in (T_A, T_AAAA))
        if len(msg.answers) > room:
            self.plugin.stats.incr("dns.transfer_records_dropped", len(msg.answers) - room)
        tr.count += len(msg.answers)
        if msg.rcode or not msg.answers or _closes(msg, tr.serial, 0):
            tr.done = True

    # -- expiry --------------------------------------------------------------------------

    def expire(self, ts: int, out: list[DnsTransaction]) -> None:
        pending = self.pending
        while pending:
            key = next(iter(pending))
            t = pending[key]
            if t.deadline >= ts:
                break
            del pending[key]
            self._unanswered(t, out)

    def flush(self, out: list[DnsTransaction]) -> None:
        waiting = list(self.pending.values())
        self.pending.clear()
        for t in waiting:
            self._unanswered(t, out)

    def _unanswered(self, t: DnsTransaction, out: list[DnsTransaction]) -> None:
        if t.transfer is not None:
            t.notes.append(TRANSFER_INCOMPLETE)
            self.plugin.stats.incr("dns.incomplete_transfers")
        elif t.response is None:
            t.notes.append(NO_RESPONSE)
            self.plugin.stats.incr("dns.unmatched_requests")
        self._finish(t, out)

    def end_transfer(self, key: Key, out: list[DnsTransaction]) -> None:
        """The connection of a zone transfer ended: publish what came."""
        t = self.pending.get(key)
        if t is not None and t.transfer is not None:
            del self.pending[key]
            self._unanswered(t, out)

    def fail(self, key: Key, note: str, out: list[DnsTransaction]) -> None:
        """The response to the query under ``key`` could not be decoded."""
        t = self.pending.pop(key, None)
        if t is None:
            return
        t.notes.append("Response: " + note)
        if t.transfer is not None:
            self._unanswered(t, out)
        else:
            self._finish(t, out)

    @staticmethod
    def _finish(t: DnsTransaction, out: list[DnsTransaction]) -> None:
        out.append(t)


def _closes(msg: Message, serial: int | None, skip: int) -> bool:
    """The message ends a transfer: its last record is the opening SOA again."""
    serials = msg.soa_serials
    if serial is None or not serials or len(msg.answers) <= skip:
        return False
    idx, last = serials[-1]
    return idx == len(msg.answers) - 1 and idx >= skip and last == serial


# -- TCP -----------------------------------------------------------------------------------


class _Stream:
    __slots__ = ("buf", "resync", "ts")

    def __init__(self) -> None:
        #: Bytes of the message not yet complete (at most one message and its prefix).
        self.buf = bytearray()
        #: Capture time of the segment that brought the first byte of ``buf``.
        self.ts = 0
        self.resync = False


class DnsTcpHandler(ConnectionHandler):
    """One TCP connection: cuts both directions into length-prefixed messages."""

    __slots__ = ("held", "last_query", "streams", "transfers")

    plugin: DnsPlugin

    def __init__(self, plugin: DnsPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.streams = (_Stream(), _Stream())
        #: Key of the query this connection last sent and has not seen answered
        #: (Packetbeat's ``prevRequest``): where an undecodable response is reported.
        self.last_query: Key | None = None
        self.transfers: set[Key] = set()
        #: Transactions finished by a gap, handed over by ``on_close`` right after.
        self.held: list[Any] = []

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        st = self.streams[direction]
        out: list[Any] = []
        if st.resync:
            # After a broken message Packetbeat starts over with the next segment.
            st.resync = False
            st.buf.clear()
        if st.buf:
            st.buf += data
            buf: bytes | bytearray = st.buf
        else:
            buf = data
            st.ts = ts
        pos = 0
        n = len(buf)
        stats = self.plugin.stats
        while n - pos >= 2:
            ln = (buf[pos] << 8) | buf[pos + 1]
            if ln == 0:
                stats.incr("dns.zero_length_messages")
                self._broken(direction, ZERO_LENGTH, out)
                return out
            if n - pos - 2 < ln:
                break
            raw = bytes(buf[pos + 2 : pos + 2 + ln])
            pos += 2 + ln
            try:
                msg = parse(raw)
            except DnsError as exc:
                stats.incr("dns.malformed_messages")
                stats.incr("dns.malformed." + exc.reason)
                self._broken(direction, NOT_DNS, out)
                return out
            self._message(direction, msg, st.ts, ln + 2, out)
            st.ts = ts
        if buf is st.buf:
            if pos:
                del st.buf[:pos]
        elif pos < n:
            st.buf = bytearray(buf[pos:])
        return out

    def _message(self, direction: int, msg: Message, ts: int, size: int, out: list[Any]) -> None:
        src_ip, sport, dst_ip, dport = self.conn.endpoints(direction)
        m = DnsMessage(msg, ts, size, (src_ip, sport), (dst_ip, dport))
        pairing = self.plugin.pairing
        if msg.is_response:
            key = _key("tcp", m.dst, m.src, msg.id)
            if pairing.response("tcp", m, out) is not None:
                self.transfers.add(key)
                self.last_query = key
            else:
                self.transfers.discard(key)
                self.last_query = None
        else:
            pairing.request("tcp", m, out)
            self.last_query = _key("tcp", m.src, m.dst, msg.id)

    def _broken(self, direction: int, note: str, out: list[Any]) -> None:
        st = self.streams[direction]
        st.buf.clear()
        st.resync = True
        if direction == FROM_SERVER and self.last_query is not None:
            self.plugin.pairing.fail(self.last_query, note, out)
            self.transfers.discard(self.last_query)
            self.last_query = None

    def on_gap(self, direction: int, nbytes: int) -> bool:
        if not self.streams[direction].buf:
            return False  # between messages: carry on, as Packetbeat does
        self.plugin.stats.incr("dns.incomplete_messages")
        self._broken(direction, INCOMPLETE, self.held)
        return True

    def on_fin(self, direction: int, ts: int) -> list[Any]:
        out: list[Any] = []
        if self.streams[direction].buf:
            self.plugin.stats.incr("dns.incomplete_messages")
            self._broken(direction, INCOMPLETE, out)
        return out

    def on_close(self, reason: str) -> list[Any]:
        out = self.held
        self.held = []
        for key in sorted(self.transfers):
            self.plugin.pairing.end_transfer(key, out)
        self.transfers.clear()
        return out
