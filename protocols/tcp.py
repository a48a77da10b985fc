"""TCP connection tracking and per-direction reassembly.

Unlike Packetbeat (elastic/beats#544), segments that arrive out of order are *buffered*
until the missing bytes arrive; only bytes that are truly lost are reported to the
handler as a gap. A segment is also held back while it acknowledges bytes of the other
direction that have not been delivered yet, so a request is always handed to the
decoder before the response that answers it, even if the capture reordered them.

Holding is bounded: a blocked direction is forced through (reporting what is missing as
a gap) after ``reorder_window`` further packets of the connection, after
``reorder_timeout`` of capture time, or when it buffers more than ``reorder_buffer``
bytes; and at close, expiry and end of input.

A stream picked up mid-connection (its SYN not seen) has no known start: its first
segments are held the same way, and a segment with a lower sequence number that shows up
meanwhile becomes the start (the packets that opened the capture came out of order).

Acknowledgment numbers order the two directions where a start is missing too. A SYN-ACK
gives the other side's start even when its SYN was never captured; data that acknowledges
a side not seen yet keeps its raw ack until that side starts (and, early in a connection
whose SYN was seen, waits a few packets for a SYN-ACK captured late). A client segment
waits for a held server segment that was sent before it arrived (acknowledges less): that
segment cannot be its answer, so a capture starting with a response publishes it unmatched
instead of pairing it with the next request. When a stream picked up mid-way settles at a
start above what the other side acknowledged, the unseen bytes are a gap before its first
delivery. Protocols learn through ``ConnectionHandler.resync`` which directions resume at
an unknown point.

Without a SYN, the server is the end whose port is configured (the well-known one, else
the lower one, when both are); with one, the SYN's destination: its port picks the protocol.

A RST closes the connection once the bytes it vouches for are in: its sequence number
ends its sender's stream and its acknowledgment number says how much of the other
stream was received. Segments captured after the RST (reordered, or in flight) up to
there are still decoded; the same bounds apply to the wait.

Sequence numbers are kept *unwrapped* (Python ints that keep growing past 2**32): a
32-bit number from the wire is mapped to the absolute value nearest the stream's
current position (RFC 1982 serial arithmetic, a window of ±2**31).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import struct
from collections import OrderedDict
from operator import itemgetter
from typing import Any, Final

import attrs

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnectionHandler, ConnInfo, LazyConnInfo, Plugin
from protocols.net import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from protocols.stats import Counters
from protocols.unclaimed import PortTally

log = logging.getLogger("tcp")

M32: Final = 0xFFFFFFFF
#: Packets a connection waits for a SYN-ACK captured after the client's first data.
SYNACK_WAIT: Final = 8
HALF: Final = 0x80000000
NS: Final = 1_000_000_000
_seq: Final = itemgetter(0)  # a held segment's sequence number
#: The flags that make a bare SYN (a connection's first packet, no data yet).
_SYN_ACK_FIN_RST: Final = TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST
#: Idle connections expired to make room for a new one before the oldest is evicted.
EXPIRE_AT_CAP: Final = 16
#: Distinct addresses whose ``bytes`` objects are shared by the connection keys.
_MAX_ADDRS: Final = 4096
#: Held segments of a stream with none: a shared empty tuple (the first segment held
#: makes the stream its own list; a write to this one fails loudly).
_NO_SEGMENTS: Final[Any] = ()
_conn_ids: Final = itertools.count(1)
_TENTATIVE: Final = 1
_FIN_DONE: Final = 2
_NOT_BLOCKED: Final = (0, 0)
#: A TIME-WAIT entry's four sequence ends (-1: unknown), packed: 65 bytes where a tuple of
#: four ints took about 150 (the table holds up to ``TcpLimits.time_wait`` entries).
_ENDS: Final = struct.Struct("<4q")


@attrs.frozen
class TcpLimits:
    max_connections: int = 100_000
    reorder_window: int = 64
    reorder_timeout_ns: int = NS // 2
    reorder_buffer: int = 1 << 20
    #: Bytes held out of order across all connections; past it a stream that would hold
    #: more is forced through (its missing bytes reported as gaps).
    reorder_buffer_total: int = 128 << 20
    #: Closed connections remembered (TIME-WAIT) so late duplicates are not taken as new ones.
    time_wait: int = 65_536
    time_wait_ns: int = 60 * NS


class Stream:
    """One direction of a connection."""

    # Ten slots (112 bytes with the GC header, two per connection): the rarely used pairs
    # share a slot (``bits``: tentative and fin_done, behind properties).
    __slots__ = (
        "ack_floor",
        "bits",
        "blocked_at",
        "buf",
        "buf_bytes",
        "fin_seq",
        "first",
        "front_gap",
        "isn",
        "next_seq",
    )

    def __init__(self) -> None:
        self.next_seq: int | None = None  # absolute: everything before it was delivered
        # Held segments, sorted: [abs_seq, data, ts, dep] where dep is the absolute sequence
        # of the other direction this segment acknowledges (-1: no ACK; ``-2 - ack``: the
        # raw ack, while the other direction's start is unknown). None held: a shared empty
        # tuple until the first segment is held.
        self.buf: Any = _NO_SEGMENTS  # list[list[Any]] once a segment is held
        self.buf_bytes = 0
        #: (packet count, capture time) when the stream last began waiting for a hole.
        self.blocked_at = _NOT_BLOCKED
        self.fin_seq: int | None = None
        self.bits = 0  # _TENTATIVE | _FIN_DONE
        self.isn: int | None = None  # sequence number of the SYN, when seen
        self.first: int | None = None  # first sequence number seen (the SYN's, or mid-stream)
        #: While the start is unknown or unsettled: the lowest acknowledgment (raw) the other
        #: side sent for this direction. Bytes from there to the settled start were never
        #: seen, and they may hold the answer to what the other side sent.
        self.ack_floor: int | None = None
        #: Unseen bytes before the settled start, reported as a gap before the first delivery.
        self.front_gap = 0

    @property
    def tentative(self) -> bool:
        """Picked up mid-stream: ``next_seq`` is only the lowest sequence seen so far, and
        nothing is delivered until the start is settled (SYN, or held long enough)."""
        return bool(self.bits & _TENTATIVE)

    @tentative.setter
    def tentative(self, value: bool) -> None:
        self.bits = self.bits | _TENTATIVE if value else self.bits & ~_TENTATIVE

    @property
    def fin_done(self) -> bool:
        """The stream's FIN was delivered."""
        return bool(self.bits & _FIN_DONE)

    @fin_done.setter
    def fin_done(self, value: bool) -> None:
        self.bits = self.bits | _FIN_DONE if value else self.bits & ~_FIN_DONE

    def absolute(self, seq: int) -> int:
        nxt = self.next_seq
        assert nxt is not None
        d = (seq - nxt) & M32
        return nxt + d - (1 << 32) if d >= HALF else nxt + d


class Connection:
    __slots__ = (
        "flipped",
        "handler",
        "info",
        "key",
        "last_ts",
        "pkts",
        "plugin",
        "resync",
        "rst",
        "streams",
    )

    def __init__(self, key: tuple[Any, ...], plugin: Plugin, flipped: bool, ts: int) -> None:
        self.key = key
        self.plugin = plugin
        self.flipped = flipped
        self.last_ts = ts
        self.pkts = 0
        self.streams = (Stream(), Stream())
        self.handler: ConnectionHandler | None = None
        self.info: ConnInfo | None = None
        #: Directions (bit 1 << direction) whose next bytes may start mid-message: picked
        #: up without a SYN, or after a gap made the handler drop its state (then bit
        #: 4 << direction marks the direction that lost bytes).
        self.resync = 0
        #: A RST was seen: (ends of stream 0, 1 it vouches for (absolute, or None), packet count, ts).
        self.rst: tuple[int | None, int | None, int, int] | None = None

    def conn_info(self) -> ConnInfo:
        if self.info is None:  # numbered when first described (its handler is made)
            self.info = LazyConnInfo(self.key, self.flipped, next(_conn_ids))
        return self.info

    def get_handler(self) -> ConnectionHandler:
        if self.handler is None:
            h = self.handler = self.plugin.new_handler(self.conn_info())
            if self.resync:
                for d in (FROM_CLIENT, FROM_SERVER):
                    if self.resync & (1 << d):
                        h.resync(d, bool(self.resync & (4 << d)))
                self.resync = 0
            return h
        return self.handler


class TcpTracker:
    """The connection table. ``process`` appends finished events to ``out``."""

    def __init__(
        self,
        ports: dict[int, Plugin],
        stats: Counters,
        out: list[dict[str, Any]],
        limits: TcpLimits | None = None,
    ) -> None:
        self.ports = ports
        self.stats = stats
        self.out = out
        self.limits = limits or TcpLimits()
        self.conns: OrderedDict[tuple[Any, ...], Connection] = OrderedDict()
        #: Connections of which only the client's SYN was seen, in the order of their SYNs:
        #: key -> capture time << 32 | the SYN's sequence number. The first other packet
        #: of the connection makes it a ``Connection`` as if the SYN had just been processed
        #: (``_unhold``); a SYN flood costs a key and an int per connection.
        self.half_open: dict[tuple[Any, ...], int] = {}
        #: Address bytes shared by the keys (``_key``).
        self._addrs: dict[bytes, bytes] = {}
        #: Bytes held in the reorder buffers of all connections.
        self.held_bytes = 0
        self.blocked: set[Connection] = set()
        #: Closed 4-tuples (TIME-WAIT) -> (close time, ``_ENDS``: first seq, end seq of each endpoint).
        self.time_wait: OrderedDict[tuple[Any, ...], tuple[int, bytes]] = OrderedDict()
        self.unclaimed = PortTally()
        timeouts = [p.timeout_ns for p in ports.values()] or [10 * NS]
        self.min_timeout = min(timeouts)
        #: ``-d tcp``: connection lifecycles and gaps (read once: no cost when off).
        self.debug = log.isEnabledFor(logging.DEBUG)

    # -- packet entry point -----------------------------------------------------------

    def process(
        self,
        ts: int,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes,
        missing: int = 0,
    ) -> None:
        conns = self.conns
        key = (src, sport, dst, dport)
        conn = conns.get(key)
        fwd = True
        if conn is None:
            conn = conns.get((dst, dport, src, sport))
            fwd = False
            # A 4-tuple is never both a connection and a held SYN: look among held SYNs
            # only when neither orientation is a connection.
            if conn is None and self.half_open:
                if self._unhold(ts, key, flags, seq, payload, missing):
                    return
                conn = conns.get(key)
                fwd = conn is not None
                if conn is None:
                    conn = conns.get((dst, dport, src, sport))
            if conn is None:
                conn = self._new_conn(ts, key, flags, payload, seq, not (payload or missing))
                if conn is None:
                    return
                fwd = True
            elif flags & TCP_SYN and not flags & TCP_ACK and self._is_new_syn(conn, fwd, seq):
                conn = self._replace(conn, ts, key, flags, payload, seq, not (payload or missing))
                if conn is None:
                    return
                fwd = True
        elif flags & TCP_SYN and not flags & TCP_ACK and self._is_new_syn(conn, True, seq):
            conn = self._replace(conn, ts, key, flags, payload, seq, not (payload or missing))
            if conn is None:
                return
        direction = FROM_CLIENT if fwd != conn.flipped else FROM_SERVER
        if ts > conn.last_ts:
            conn.last_ts = ts
        conns.move_to_end(conn.key)
        conn.pkts += 1
        st = conn.streams[direction]
        other = conn.streams[1 - direction]

        if flags & TCP_SYN:
            st.ack_floor = None
            if flags & TCP_ACK and other.isn is None:
                # A SYN-ACK acknowledges the other side's SYN (even one never captured):
                # that stream starts exactly at ``ack``.
                other.isn = other.first = (ack - 1) & M32
                other.ack_floor = None
                if other.next_seq is None:
                    other.next_seq = ack
                elif other.tentative:
                    other.tentative = False
                    conn.resync &= ~(1 << (1 - direction))
                    other.next_seq = other.absolute(ack)
                    self._drain(conn, 1 - direction)
                    if conn.key not in conns:
                        return
            if st.next_seq is None:
                st.next_seq = seq + 1
                st.isn = st.first = seq
            elif st.isn is None:
                st.isn = st.first = seq  # captured after data of this side (reordered)
                if st.tentative:
                    st.tentative = False
                    conn.resync &= ~(1 << direction)
                    st.next_seq = st.absolute((seq + 1) & M32)
                    self._drain(conn, direction)
            seq = (seq + 1) & M32
        n = len(payload)
        if st.next_seq is None:
            st.next_seq = st.first = seq  # picked up mid-stream
            st.tentative = bool(n)
            if n:
                conn.resync |= 1 << direction
            else:
                st.ack_floor = None
        if n or missing:
            nxt = st.next_seq
            d = (seq - nxt) & M32
            abs_seq = nxt + d - (1 << 32) if d >= HALF else nxt + d  # Stream.absolute, inlined
            dep = -1
            onext = other.next_seq
            if flags & TCP_ACK:
                if onext is None:
                    dep = -2 - ack  # resolved once the other direction's start is known
                else:
                    d = (ack - onext) & M32
                    dep = onext + d - (1 << 32) if d >= HALF else onext + d
                if onext is None or other.bits & _TENTATIVE:
                    fl = other.ack_floor
                    if fl is None or (ack - fl) & M32 >= HALF:
                        other.ack_floor = ack
            if (
                abs_seq == st.next_seq
                and (
                    dep == -1
                    or (dep >= 0 and onext is not None and dep <= onext)
                    or (dep < -1 and not _awaits_synack(st, conn, self.limits))
                )
                and not st.buf
                and not missing
                and not st.bits & _TENTATIVE  # (st.tentative, without a property call per packet)
                and not (dep >= 0 and other.bits & _TENTATIVE)
                and not (direction == FROM_CLIENT and other.buf)
            ):
                st.next_seq = abs_seq + n
                self._deliver(conn, direction, payload, ts)
                if other.buf and conn.key in conns:
                    self._drain(conn, 1 - direction)  # it may have waited for these bytes
            else:
                self._enqueue(conn, direction, abs_seq, payload, ts, dep, missing)
        if flags & TCP_FIN:
            st.fin_seq = st.absolute((seq + n + missing) & M32)
            if not st.buf and not st.bits & _FIN_DONE:
                if st.fin_seq == st.next_seq:
                    self._fin(conn, direction, ts)
                elif st.fin_seq > st.next_seq:
                    # Bytes before the FIN are missing (or still to come): wait like for a hole.
                    st.blocked_at = (conn.pkts, ts)
                    self.blocked.add(conn)
        if flags & TCP_RST and conn.rst is None:
            ends: list[int | None] = [None, None]
            if st.next_seq is not None:
                ends[direction] = st.absolute((seq + n) & M32)
            if flags & TCP_ACK and other.next_seq is not None:
                ends[1 - direction] = other.absolute(ack)
            conn.rst = (ends[0], ends[1], conn.pkts, ts)
            self.blocked.add(conn)
        if self.blocked and conn in self.blocked:
            self._check_blocked(conn, ts)
            if conn.key not in conns:
                return
        if st.bits & other.bits & _FIN_DONE and conn.key in conns:
            self._close(conn, "fin")

    # -- connections -------------------------------------------------------------------

    def _new_conn(
        self,
        ts: int,
        key: tuple[Any, ...],
        flags: int,
        payload: bytes,
        seq: int = -1,
        hold: bool = False,
        held: bool = False,
    ) -> Connection | None:
        """The connection a packet opens (None if it opens none). A bare SYN (``hold``:
        nothing else in the segment) is held in ``half_open`` and opens none yet; ``held``:
        opening the connection of such a SYN (already checked and counted)."""
        if not payload and not flags & TCP_SYN:
            return None
        if flags & TCP_RST:
            return None
        _src, sport, _dst, dport = key
        ports = self.ports
        if flags & TCP_SYN:
            # The SYN goes to the server and the SYN-ACK comes from it: its port decides
            # the protocol, whatever the client's ephemeral port happens to be.
            flipped = bool(flags & TCP_ACK)
            plugin = ports.get(sport if flipped else dport)
        else:
            flipped = _source_is_server(sport, dport, ports)
            plugin = ports.get(sport if flipped else dport)
        if plugin is None:
            self.stats.incr("tcp.unknown_port_packets")
            self.unclaimed.note("tcp", sport, dport, flags, payload)
            return None
        if not held and self.time_wait and self._late_duplicate(ts, key, seq, flags):
            self.stats.incr("tcp.late_duplicates")
            return None
        if not held:
            self._make_room(ts)
            self.stats.incr("tcp.connections")
        key = self._key(key)
        if hold and flags & _SYN_ACK_FIN_RST == TCP_SYN and not flipped and seq >= 0:
            self.half_open[key] = (ts << 32) | seq
            return None
        conn = Connection(key, plugin, flipped, ts)
        self.conns[key] = conn
        if self.debug:
            log.debug("new %s connection %s", plugin.name, conn.conn_info())
        return conn

    def _key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """``key`` as stored: its address ``bytes`` shared with the other keys holding them."""
        addrs = self._addrs
        src, sport, dst, dport = key
        a = addrs.get(src)
        if a is None:
            if len(addrs) >= _MAX_ADDRS:
                addrs.clear()
            a = addrs[src] = src
        b = addrs.get(dst)
        if b is None:
            if len(addrs) >= _MAX_ADDRS:
                addrs.clear()
            b = addrs[dst] = dst
        return (a, sport, b, dport)

    def _make_room(self, ts: int) -> None:
        """At ``max_connections``: expire what has timed out, then evict the oldest
        half-open connection (nothing of it was decoded), else the oldest connection."""
        conns, half_open = self.conns, self.half_open
        limit = self.limits.max_connections
        if len(conns) + len(half_open) < limit:
            return
        self.expire(ts, EXPIRE_AT_CAP)
        while len(conns) + len(half_open) >= limit:
            self.stats.incr("tcp.connections_evicted")
            if half_open:
                del half_open[next(iter(half_open))]
                self.stats.incr("tcp.half_open_evicted")
                continue
            _, victim = conns.popitem(last=False)
            conns[victim.key] = victim  # _close removes it again
            self._close(victim, "evicted")

    def _unhold(
        self, ts: int, key: tuple[Any, ...], flags: int, seq: int, payload: bytes, missing: int
    ) -> bool:
        """A packet of a 4-tuple with no ``Connection``: if a SYN of it is held, open the
        connection from that SYN. Returns True for a retransmission of the held SYN."""
        half_open = self.half_open
        src, sport, dst, dport = key
        fwd = True
        held = half_open.pop(key, None)
        if held is None:
            fwd = False
            key = (dst, dport, src, sport)
            held = half_open.pop(key, None)
            if held is None:
                return False
        if fwd and flags & _SYN_ACK_FIN_RST == TCP_SYN and not (payload or missing) and held & M32 == seq:
            self.half_open[self._key(key)] = (ts << 32) | seq  # the same SYN again: refresh it
            return True
        syn_ts, isn = held >> 32, held & M32
        conn = self._new_conn(syn_ts, key, TCP_SYN, b"", isn, held=True)
        if conn is not None:  # the state processing the SYN would have left
            st = conn.streams[FROM_SERVER if conn.flipped else FROM_CLIENT]
            st.next_seq = isn + 1
            st.isn = st.first = isn
            conn.pkts = 1
        return False

    def _is_new_syn(self, conn: Connection, fwd: bool, seq: int) -> bool:
        """A bare SYN on a known 4-tuple: a retransmission, or a new connection reusing it?"""
        direction = FROM_CLIENT if fwd != conn.flipped else FROM_SERVER
        st = conn.streams[direction]
        if st.isn is not None:
            return seq != st.isn
        if direction == FROM_SERVER:
            return True  # a bare SYN from the side taken for the server: roles were guessed wrong
        if st.first is None:
            return False  # the client's SYN, captured after the server's SYN-ACK
        # The client was picked up mid-stream (its SYN was captured late): the SYN sits
        # just before the first byte seen. Far from it, it opens a new connection.
        before = (st.first - ((seq + 1) & M32)) & M32
        return before > self.limits.reorder_buffer

    def _replace(
        self,
        conn: Connection,
        ts: int,
        key: tuple[Any, ...],
        flags: int,
        payload: bytes,
        seq: int = -1,
        hold: bool = False,
    ) -> Connection | None:
        self._close(conn, "fin")
        self.stats.incr("tcp.connections_reused")
        self.time_wait.pop(conn.key, None)
        return self._new_conn(ts, key, flags, payload, seq, hold)

    def _close(self, conn: Connection, reason: str) -> None:
        if conn.key not in self.conns:
            return
        if self.debug:
            log.debug("connection %s ends (%s)", conn.conn_info(), reason)
        if reason == "expired" and conn.plugin.debug:
            conn.plugin.log.debug("expired connection %s", conn.conn_info())
        for d in (FROM_CLIENT, FROM_SERVER):
            if conn.streams[d].buf or _fin_ahead(conn.streams[d]):
                self._force(conn, d, drain_all=True)
        del self.conns[conn.key]
        self.blocked.discard(conn)
        for st in conn.streams:
            if st.buf_bytes:  # left held only if the handler's delivery closed it meanwhile
                self.held_bytes -= st.buf_bytes
                st.buf_bytes = 0
        if reason in ("fin", "rst"):
            self._remember_closed(conn)
        if conn.handler is not None:
            self._call(conn, conn.handler.on_close, reason)

    def _remember_closed(self, conn: Connection) -> None:
        """TIME-WAIT entry: (close time, first and end sequence numbers sent by the key's
        first endpoint and the same for its second endpoint, packed by ``_ENDS``; -1 where
        unknown)."""
        ends = [-1, -1, -1, -1]
        for side in (0, 1):
            st = conn.streams[side ^ conn.flipped]
            if st.next_seq is not None and st.first is not None:
                ends[2 * side] = st.first & M32
                ends[2 * side + 1] = st.next_seq & M32
        tw = self.time_wait
        tw[conn.key] = (conn.last_ts, _ENDS.pack(*ends))
        tw.move_to_end(conn.key)
        while len(tw) > self.limits.time_wait:
            tw.popitem(last=False)

    def _late_duplicate(self, ts: int, key: tuple[Any, ...], seq: int, flags: int) -> bool:
        tw = self.time_wait
        side = 0  # the packet's sender is the entry's first endpoint
        entry = tw.get(key)
        if entry is None:
            src, sport, dst, dport = key
            entry = tw.get((dst, dport, src, sport))
            if entry is None:
                return False
            side = 1
        if ts - entry[0] > self.limits.time_wait_ns:
            return False
        ends = _ENDS.unpack(entry[1])
        first, end = ends[2 * side], ends[2 * side + 1]
        if first < 0:
            return False
        # In [first, end] by serial arithmetic: a segment (or SYN) of the closed connection.
        return ((seq - first) & M32) <= ((end - first) & M32)

    # -- delivery ----------------------------------------------------------------------

    def _deliver(self, conn: Connection, direction: int, data: bytes, ts: int) -> None:
        h = conn.handler or conn.get_handler()
        try:
            txns = h.on_data(direction, data, ts)
        except Exception as exc:
            self._handler_failed(conn, exc)
            return
        if txns:
            self._emit(conn, txns)

    def _call(self, conn: Connection, fn: Any, *args: Any) -> Any:
        try:
            txns = fn(*args)
        except Exception as exc:
            self._handler_failed(conn, exc)
            return None
        if txns:
            self._emit(conn, txns)
        return txns

    def _handler_failed(self, conn: Connection, exc: Exception) -> None:
        plugin = conn.plugin
        self.stats.incr(f"{plugin.name}.handler_errors")
        log.debug("%s handler failed on %s: %r; dropping its state", plugin.name, conn.info, exc)
        if plugin.debug:
            plugin.log.debug(
                "parser failed on %s: %r; dropping the connection's state", conn.conn_info(), exc
            )
        conn.handler = None

    def _emit(self, conn: Connection, txns: list[Any]) -> None:
        plugin = conn.plugin
        for t in txns:
            try:
                self.out.append(plugin.to_event(t))
            except Exception as exc:
                self.stats.incr(f"{plugin.name}.event_errors")
                log.debug("%s: cannot build event: %r", plugin.name, exc)
                continue
            if plugin.debug:
                plugin.log.debug("%s transaction completed on %s", plugin.name.upper(), conn.conn_info())

    def _gap(self, conn: Connection, direction: int, nbytes: int) -> None:
        self.stats.incr("tcp.gaps")
        self.stats.incr("tcp.gap_bytes", nbytes)
        if self.debug or conn.plugin.debug:
            side = "client" if direction == FROM_CLIENT else "server"
            text = "gap of %d bytes in the %s's stream of %s"
            if self.debug:
                log.debug(text, nbytes, side, conn.conn_info())
            if conn.plugin.debug:
                conn.plugin.log.debug(text, nbytes, side, conn.conn_info())
        h = conn.handler or conn.get_handler()
        try:
            drop = h.on_gap(direction, nbytes)
        except Exception as exc:
            self._handler_failed(conn, exc)
            return
        if drop:
            self.stats.incr(f"{conn.plugin.name}.gap_drops")
            self._call(conn, h.on_close, "gap")
            conn.handler = None
            conn.resync = 3 | (4 << direction)  # both sides may be mid-message when decoding resumes

    def _fin(self, conn: Connection, direction: int, ts: int) -> None:
        st = conn.streams[direction]
        st.fin_done = True
        assert st.next_seq is not None
        st.next_seq += 1  # the FIN occupies one sequence number
        if conn.plugin.debug:
            conn.plugin.log.debug(
                "Received FIN from the %s on %s",
                "client" if direction == FROM_CLIENT else "server",
                conn.conn_info(),
            )
        if conn.handler is not None:
            self._call(conn, conn.handler.on_fin, direction, ts)

    def _enqueue(
        self, conn: Connection, direction: int, abs_seq: int, payload: bytes, ts: int, dep: int, missing: int
    ) -> None:
        st = conn.streams[direction]
        assert st.next_seq is not None
        n = len(payload)
        if st.tentative and st.next_seq - self.limits.reorder_buffer <= abs_seq < st.next_seq:
            st.next_seq = abs_seq  # an earlier segment of a stream picked up mid-way: start here
            st.first = abs_seq & M32
        elif abs_seq + n + missing <= st.next_seq:
            self.stats.incr("tcp.retransmits")
            return
        if not st.buf:
            st.blocked_at = (conn.pkts, ts)
            self.blocked.add(conn)
            st.buf = []
        seg = [abs_seq, payload, ts, dep]
        i = bisect.bisect_left(st.buf, abs_seq, key=_seq)
        # A snaplen placeholder ([seq, None, ts, missing]) at the same place stays after
        # the data: bytes that did arrive come first, and only what they leave is a gap.
        if i < len(st.buf) and st.buf[i][0] == abs_seq and st.buf[i][1] is not None:
            old = st.buf[i]
            if len(old[1]) >= n:
                self.stats.incr("tcp.retransmits")
                if not missing:
                    return
            else:
                st.buf_bytes += n - len(old[1])
                self.held_bytes += n - len(old[1])
                st.buf[i] = seg
        else:
            st.buf.insert(i, seg)
            st.buf_bytes += n
            self.held_bytes += n
            if abs_seq > st.next_seq:
                self.stats.incr("tcp.out_of_order")
        if missing:
            # Bytes the capture cut off (snaplen): a known loss right after this segment,
            # unless other segments bring them. Kept sorted, after data at the same place.
            self.stats.incr("tcp.snaplen_truncated")
            end = abs_seq + n
            st.buf.insert(bisect.bisect_right(st.buf, end, key=_seq), [end, None, ts, missing])
        self._drain(conn, direction)
        if st.buf and st.buf_bytes > self.limits.reorder_buffer:
            self.stats.incr("tcp.reorder_overflows")
            self._force(conn, direction)
        elif st.buf and self.held_bytes > self.limits.reorder_buffer_total:
            # All connections together hold too much: this stream holds nothing more.
            self.stats.incr("tcp.reorder_budget_forced")
            self._force(conn, direction, drain_all=True)

    def _drain(self, conn: Connection, direction: int) -> None:
        """Deliver what is in order and unblocked, in both directions, until stuck."""
        progress = True
        while progress:
            progress = False
            for d in (direction, 1 - direction):
                if self._drain_one(conn, d):
                    progress = True
        a, b = conn.streams
        if not (a.buf or b.buf or conn.rst is not None or _fin_ahead(a) or _fin_ahead(b)):
            self.blocked.discard(conn)

    def _drain_one(self, conn: Connection, direction: int) -> bool:
        st = conn.streams[direction]
        if st.tentative:
            return False
        other = conn.streams[1 - direction]
        moved = False
        buf = st.buf
        while buf:
            seg = buf[0]
            abs_seq, data, ts, dep = seg
            nxt = st.next_seq
            assert nxt is not None
            if abs_seq > nxt:
                break
            if data is None:  # snaplen-truncated bytes: report as lost
                buf.pop(0)
                end = abs_seq + dep
                if end > nxt:
                    st.next_seq = end
                    self._gap(conn, direction, end - nxt)
                moved = True
                continue
            if dep < -1:
                if other.next_seq is None and _awaits_synack(st, conn, self.limits):
                    break
                dep = seg[3] = _resolve(dep, other)
            if dep >= 0 and other.next_seq is not None and (dep > other.next_seq or other.tentative):
                break  # (a start still unsettled may move down to bytes this acknowledges)
            if direction == FROM_CLIENT and other.buf and _sent_before(other, st, abs_seq):
                break  # the server's held segment did not answer this: it goes first
            if st.front_gap:
                gap, st.front_gap = st.front_gap, 0
                self._gap(conn, direction, gap)
                if conn.key not in self.conns:
                    return False
            buf.pop(0)
            st.buf_bytes -= len(data)
            self.held_bytes -= len(data)
            moved = True
            if abs_seq < nxt:
                cut = nxt - abs_seq
                if cut >= len(data):
                    self.stats.incr("tcp.retransmits")
                    continue
                self.stats.incr("tcp.overlaps")
                data = data[cut:]
            st.next_seq = nxt + len(data)
            self._deliver(conn, direction, data, ts)
            if conn.key not in self.conns:
                return False
        if buf and moved:
            st.blocked_at = (conn.pkts, buf[0][2])
        if st.fin_seq is not None and not st.fin_done and not buf and st.next_seq == st.fin_seq:
            self._fin(conn, direction, conn.last_ts)
            moved = True
        return moved

    def _force(self, conn: Connection, direction: int, drain_all: bool = False) -> None:
        """Give up waiting: report what is missing as gaps and deliver what is held.

        Each round makes progress (a gap advances a stream, or a dependency is dropped),
        so the loop ends.
        """
        st = conn.streams[direction]
        other = conn.streams[1 - direction]
        before = _progress(st, other)
        stuck = False
        while st.buf:
            head = st.buf[0]
            abs_seq, data, _ts, dep = head
            assert st.next_seq is not None
            if data is not None and dep < -1:
                dep = head[3] = _resolve(dep, other)
            waits = data is not None and dep >= 0 and other.next_seq is not None and dep > other.next_seq
            # The client's next bytes wait for a server segment sent before they arrived.
            answered = (
                direction == FROM_CLIENT
                and not waits
                and abs_seq <= st.next_seq
                and bool(other.buf)
                and _sent_before(other, st, abs_seq)
            )
            # Both sides may miss bytes. A side's held head acknowledges what it had
            # received when it was sent: if the other side's head needs only bytes of our
            # hole, our loss came first (a lost request body before its lost response).
            ohead = other.buf[0] if other.buf else None
            ours_first = (
                abs_seq > st.next_seq
                and ohead is not None
                and ohead[1] is not None
                and st.next_seq < ohead[3] <= abs_seq
            )
            if st.tentative:
                self._settle(st)  # no earlier segment came: the stream starts here
            elif (answered or (data is not None and dep >= 0)) and other.tentative:
                self._settle(other)
            elif not ours_first and waits and (other.tentative or ohead is None or ohead[0] > other.next_seq):
                # This segment acknowledges bytes of the other side that are missing (or
                # held at a start still unsettled): they were sent before it; settle them.
                assert other.next_seq is not None
                if other.tentative:
                    self._settle(other)
                else:
                    end = min(ohead[0], dep) if ohead is not None else dep
                    ogap = end - other.next_seq
                    other.next_seq = end
                    self._gap(conn, 1 - direction, ogap)
            elif abs_seq > st.next_seq:
                # When the other side's next segment acknowledges part of the hole, only
                # that part was sent before it: report it, deliver that segment, then the
                # rest (a request between two lost responses stays between them).
                end = ohead[3] if ours_first and ohead is not None else abs_seq
                gap = end - st.next_seq
                st.next_seq = end
                self._gap(conn, direction, gap)
            elif waits:
                head[3] = -1  # both directions wait on each other: stop waiting
                self.stats.incr("tcp.reorder_deadlocks")
            self._drain(conn, direction)
            if conn.key not in self.conns or not drain_all:
                break
            now = _progress(st, other)
            if now == before:
                # No rule above moved anything (it should not happen): stop both heads
                # waiting on each other, and if that does not help either, give up.
                if stuck:
                    self.stats.incr("tcp.reorder_deadlocks")
                    break
                stuck = True
                head[3] = -1
                if other.buf:
                    other.buf[0][3] = -1
            else:
                stuck = False
            before = now
        if st.buf:
            st.blocked_at = (conn.pkts, st.buf[0][2])
        elif conn.key in self.conns and _fin_ahead(st):
            # Nothing more came before the FIN: the bytes up to it were lost.
            assert st.next_seq is not None and st.fin_seq is not None
            gap = st.fin_seq - st.next_seq
            st.next_seq = st.fin_seq
            self._gap(conn, direction, gap)
            self._drain(conn, direction)

    @staticmethod
    def _settle(st: Stream) -> None:
        """A stream picked up mid-way starts at its lowest sequence seen. If the other side
        acknowledged less than that, the bytes in between were never seen: they are
        reported as a gap before the first delivery (they may answer what the other side
        sent, so pairing must not go on across them)."""
        st.tentative = False
        floor = st.ack_floor
        if floor is not None:
            st.ack_floor = None
            start = st.absolute(floor)
            assert st.next_seq is not None
            if start < st.next_seq:
                st.front_gap = st.next_seq - start

    def _check_blocked(self, conn: Connection, ts: int) -> None:
        lim = self.limits
        for d in (FROM_CLIENT, FROM_SERVER):
            st = conn.streams[d]
            if (st.buf or _fin_ahead(st)) and (
                conn.pkts - st.blocked_at[0] > lim.reorder_window
                or ts - st.blocked_at[1] > lim.reorder_timeout_ns
            ):
                self.stats.incr("tcp.reorder_timeouts")
                self._force(conn, d)
                if conn.key not in self.conns:
                    return
        if conn.rst is not None:
            *ends, pkt, rst_ts = conn.rst
            done = all(
                end is None or (nxt := conn.streams[d].next_seq) is None or nxt >= end
                for d, end in enumerate(ends)
            )
            if done or conn.pkts - pkt > lim.reorder_window or ts - rst_ts > lim.reorder_timeout_ns:
                self._close(conn, "rst")

    # -- time and teardown -------------------------------------------------------------

    def expire(self, ts: int, limit: int = 0) -> int:
        """Expire idle connections by capture time (at most ``limit`` of them when given,
        so that the events they complete come out in bounded batches); resolve stale
        reorder buffers. Returns how many connections were expired."""
        for conn in list(self.blocked):
            if conn.key in self.conns:
                self._check_blocked(conn, ts)
            else:
                self.blocked.discard(conn)
        return self.expire_idle(ts, limit)

    def expire_idle(self, ts: int, limit: int = 0) -> int:
        """``expire`` without the reorder buffers."""
        dead = []
        for conn in self.conns.values():
            idle = ts - conn.last_ts
            if idle > conn.plugin.timeout_ns:
                dead.append(conn)
                if len(dead) == limit:
                    break
            elif idle <= self.min_timeout:
                break
        for conn in dead:
            self.stats.incr("tcp.connections_expired")
            self._close(conn, "expired")
        if self.half_open:
            self._expire_half_open(ts)
        return len(dead)

    def _expire_half_open(self, ts: int) -> None:
        half_open = self.half_open
        ports = self.ports
        expired = []
        for key, held in half_open.items():
            idle = ts - (held >> 32)
            if idle <= self.min_timeout:
                break
            plugin = ports.get(key[3])  # a held SYN goes to the server
            if plugin is None or idle > plugin.timeout_ns:
                expired.append(key)
        for key in expired:
            del half_open[key]
        if expired:
            self.stats.incr("tcp.connections_expired", len(expired))

    def flush(self, limit: int = 0) -> bool:
        """Close the connections left, oldest first (at most ``limit`` of them when given,
        so that the events they complete can be taken in bounded batches).
        Returns True once none is left."""
        self.half_open.clear()  # nothing of them to decode
        conns = self.conns
        n = 0
        while conns:
            if limit and n >= limit:
                return False
            self._close(next(iter(conns.values())), "flush")
            n += 1
        return True


def _awaits_synack(st: Stream, conn: Connection, limits: TcpLimits) -> bool:
    """This side's SYN was seen but nothing of the other side yet, in the first packets of
    the connection: its SYN-ACK was captured late (reordered) or lost. Segments that
    acknowledge bytes of the other side wait for it, so that they come after those bytes
    (a one-sided capture is held for a few packets only)."""
    return st.isn is not None and conn.pkts <= min(SYNACK_WAIT, limits.reorder_window)


def _source_is_server(sport: int, dport: int, ports: dict[int, Plugin]) -> bool:
    """Without a SYN: is the sender of the first packet seen the server? The server is
    the end whose port is configured; when both are (a client whose ephemeral port is
    another protocol's), the well-known (< 1024) one, else the lower one."""
    s, d = sport in ports, dport in ports
    if s != d:
        return s
    if (sport < 1024) != (dport < 1024):
        return sport < 1024
    return sport < dport


def _progress(st: Stream, other: Stream) -> tuple[Any, ...]:
    """What a round of ``_force`` may change (to tell a round that changed nothing)."""
    return (st.next_seq, other.next_seq, len(st.buf), len(other.buf), st.tentative, other.tentative)


def _resolve(dep: int, other: Stream) -> int:
    """A raw acknowledgment (``-2 - ack``) held while the other direction was unknown."""
    if other.next_seq is None:
        return -1  # still unknown: nothing to wait for
    return other.absolute(-2 - dep)


def _sent_before(server: Stream, client: Stream, cseq: int) -> bool:
    """The server's next held segment is in order and acknowledges less than ``cseq``:
    it was sent before the client's bytes from ``cseq`` arrived, so it cannot answer them
    (nor anything the client sent later) and must be delivered before them."""
    head = server.buf[0]
    nxt = server.next_seq
    if head[1] is None or nxt is None or head[0] > nxt:
        return False
    dep = head[3]
    if dep < -1:
        dep = head[3] = _resolve(dep, client)
    return 0 <= dep <= cseq


def _fin_ahead(st: Stream) -> bool:
    """The stream's FIN is known but bytes before it have not been delivered."""
    return (
        st.fin_seq is not None
        and not st.fin_done
        and st.next_seq is not None
        and st.fin_seq > st.next_seq
        and not st.buf
    )
