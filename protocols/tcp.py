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

Sequence numbers are kept *unwrapped* (Python ints that keep growing past 2**32): a
32-bit number from the wire is mapped to the absolute value nearest the stream's
current position (RFC 1982 serial arithmetic, a window of ±2**31).
"""

from __future__ import annotations

import bisect
import logging
from collections import OrderedDict
from typing import Any

import attrs

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnectionHandler, ConnInfo, Plugin
from protocols.net import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, ip_to_str
from protocols.stats import Counters

log = logging.getLogger("tcp")

M32 = 0xFFFFFFFF
HALF = 0x80000000
NS = 1_000_000_000


@attrs.frozen
class TcpLimits:
    max_connections: int = 100_000
    reorder_window: int = 64
    reorder_timeout_ns: int = NS // 2
    reorder_buffer: int = 1 << 20
    #: Closed connections remembered (TIME-WAIT) so late duplicates are not taken as new ones.
    time_wait: int = 65_536
    time_wait_ns: int = 60 * NS


class Stream:
    """One direction of a connection."""

    __slots__ = (
        "blocked_pkt",
        "blocked_ts",
        "buf",
        "buf_bytes",
        "fin_done",
        "fin_seq",
        "first",
        "isn",
        "next_seq",
    )

    def __init__(self) -> None:
        self.next_seq: int | None = None  # absolute: everything before it was delivered
        # Held segments, sorted: [abs_seq, data, ts, dep] where dep is the absolute sequence
        # of the other direction this segment acknowledges (or -1).
        self.buf: list[list[Any]] = []
        self.buf_bytes = 0
        self.blocked_pkt = 0
        self.blocked_ts = 0
        self.fin_seq: int | None = None
        self.fin_done = False
        self.isn: int | None = None  # sequence number of the SYN, when seen
        self.first: int | None = None  # first sequence number seen (the SYN's, or mid-stream)

    def absolute(self, seq: int) -> int:
        nxt = self.next_seq
        assert nxt is not None
        d = (seq - nxt) & M32
        return nxt + d - (1 << 32) if d >= HALF else nxt + d


class Connection:
    __slots__ = (
        "flipped",
        "handler",
        "id",
        "info",
        "key",
        "last_ts",
        "pkts",
        "plugin",
        "streams",
    )

    def __init__(self, key: tuple[Any, ...], plugin: Plugin, flipped: bool, conn_id: int, ts: int) -> None:
        self.key = key
        self.plugin = plugin
        self.flipped = flipped
        self.id = conn_id
        self.last_ts = ts
        self.pkts = 0
        self.streams = (Stream(), Stream())
        self.handler: ConnectionHandler | None = None
        self.info: ConnInfo | None = None

    def conn_info(self) -> ConnInfo:
        if self.info is None:
            src, sport, dst, dport = self.key
            if self.flipped:
                src, sport, dst, dport = dst, dport, src, sport
            self.info = ConnInfo(ip_to_str(src), sport, ip_to_str(dst), dport, "tcp", self.id)
        return self.info

    def get_handler(self) -> ConnectionHandler:
        if self.handler is None:
            self.handler = self.plugin.new_handler(self.conn_info())
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
        self.blocked: set[Connection] = set()
        # (src, sport) of each side -> (first seq, end seq), per closed 4-tuple.
        self.time_wait: OrderedDict[tuple[Any, ...], tuple[int, dict[tuple[bytes, int], tuple[int, int]]]] = (
            OrderedDict()
        )
        self._next_id = 1
        timeouts = [p.timeout_ns for p in ports.values()] or [10 * NS]
        self.min_timeout = min(timeouts)

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
            if conn is None:
                conn = self._new_conn(ts, key, flags, payload, seq)
                if conn is None:
                    return
                fwd = True
            elif flags & TCP_SYN and not flags & TCP_ACK and self._is_new_syn(conn, False, seq):
                conn = self._replace(conn, ts, key, flags, payload)
                if conn is None:
                    return
                fwd = True
        elif flags & TCP_SYN and not flags & TCP_ACK and self._is_new_syn(conn, True, seq):
            conn = self._replace(conn, ts, key, flags, payload)
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
            if st.next_seq is None:
                st.next_seq = seq + 1
                st.isn = st.first = seq
            seq = (seq + 1) & M32
        if st.next_seq is None:
            st.next_seq = st.first = seq  # picked up mid-stream
        n = len(payload)
        if n or missing:
            abs_seq = st.absolute(seq)
            dep = -1
            onext = other.next_seq
            if flags & TCP_ACK and onext is not None:
                d = (ack - onext) & M32
                if d and d < HALF:
                    dep = onext + d
            if abs_seq == st.next_seq and dep < 0 and not st.buf and not missing:
                st.next_seq = abs_seq + n
                self._deliver(conn, direction, payload, ts)
                if other.buf and conn.key in conns:
                    self._drain(conn, 1 - direction)  # it may have waited for these bytes
            else:
                self._enqueue(conn, direction, abs_seq, payload, ts, dep, missing)
        if flags & TCP_FIN:
            st.fin_seq = st.absolute((seq + n + missing) & M32)
            if not st.buf and st.fin_seq == st.next_seq and not st.fin_done:
                self._fin(conn, direction, ts)
        if flags & TCP_RST:
            self._close(conn, "rst")
            return
        if conn in self.blocked:
            self._check_blocked(conn, ts)
        if conn.streams[0].fin_done and conn.streams[1].fin_done and conn.key in conns:
            self._close(conn, "fin")

    # -- connections -------------------------------------------------------------------

    def _new_conn(
        self, ts: int, key: tuple[Any, ...], flags: int, payload: bytes, seq: int = -1
    ) -> Connection | None:
        if not payload and not flags & TCP_SYN:
            return None
        if flags & TCP_RST:
            return None
        _src, sport, _dst, dport = key
        plugin = self.ports.get(sport) or self.ports.get(dport)
        if plugin is None:
            self.stats.incr("tcp.unknown_port_packets")
            return None
        if self.time_wait and self._late_duplicate(ts, key, seq, flags):
            self.stats.incr("tcp.late_duplicates")
            return None
        if flags & TCP_SYN:
            flipped = bool(flags & TCP_ACK)
        else:
            pports = plugin.config.ports
            flipped = sport in pports and dport not in pports
        if len(self.conns) >= self.limits.max_connections:
            self.expire(ts)
            while len(self.conns) >= self.limits.max_connections:
                _, victim = self.conns.popitem(last=False)
                self.conns[victim.key] = victim  # _close removes it again
                self._close(victim, "evicted")
                self.stats.incr("tcp.connections_evicted")
        conn = Connection(key, plugin, flipped, self._next_id, ts)
        self._next_id += 1
        self.conns[key] = conn
        self.stats.incr("tcp.connections")
        return conn

    @staticmethod
    def _is_new_syn(conn: Connection, fwd: bool, seq: int) -> bool:
        """A bare SYN on a known 4-tuple: a retransmission, or a new connection reusing it?"""
        st = conn.streams[FROM_CLIENT if fwd != conn.flipped else FROM_SERVER]
        if st.isn is not None:
            return seq != st.isn
        # Never saw this side's SYN: a SYN from the presumed server means roles reversed.
        return not fwd or st.next_seq is None

    def _replace(
        self, conn: Connection, ts: int, key: tuple[Any, ...], flags: int, payload: bytes
    ) -> Connection | None:
        self._close(conn, "fin")
        self.stats.incr("tcp.connections_reused")
        self.time_wait.pop(conn.key, None)
        return self._new_conn(ts, key, flags, payload)

    def _close(self, conn: Connection, reason: str) -> None:
        if conn.key not in self.conns:
            return
        for d in (FROM_CLIENT, FROM_SERVER):
            if conn.streams[d].buf:
                self._force(conn, d, drain_all=True)
        del self.conns[conn.key]
        self.blocked.discard(conn)
        if reason in ("fin", "rst"):
            self._remember_closed(conn)
        if conn.handler is not None:
            self._call(conn, conn.handler.on_close, reason)

    def _remember_closed(self, conn: Connection) -> None:
        src, sport, dst, dport = conn.key
        sides = {}
        for d, ep in ((FROM_CLIENT, (src, sport)), (FROM_SERVER, (dst, dport))):
            if conn.flipped:
                d = 1 - d
            st = conn.streams[d]
            if st.next_seq is not None and st.first is not None:
                sides[ep] = (st.first & M32, st.next_seq & M32)
        tw = self.time_wait
        tw[conn.key] = (conn.last_ts, sides)
        tw.move_to_end(conn.key)
        while len(tw) > self.limits.time_wait:
            tw.popitem(last=False)

    def _late_duplicate(self, ts: int, key: tuple[Any, ...], seq: int, flags: int) -> bool:
        tw = self.time_wait
        src, sport, dst, dport = key
        entry = tw.get(key) or tw.get((dst, dport, src, sport))
        if entry is None:
            return False
        closed_ts, sides = entry
        if ts - closed_ts > self.limits.time_wait_ns:
            return False
        side = sides.get((src, sport))
        if side is None:
            return False
        first, end = side
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
        name = conn.plugin.name
        self.stats.incr(f"{name}.handler_errors")
        log.debug("%s handler failed on %s: %r; dropping its state", name, conn.info, exc)
        conn.handler = None

    def _emit(self, conn: Connection, txns: list[Any]) -> None:
        plugin = conn.plugin
        for t in txns:
            try:
                self.out.append(plugin.to_event(t))
            except Exception as exc:
                self.stats.incr(f"{plugin.name}.event_errors")
                log.debug("%s: cannot build event: %r", plugin.name, exc)

    def _gap(self, conn: Connection, direction: int, nbytes: int) -> None:
        self.stats.incr("tcp.gaps")
        self.stats.incr("tcp.gap_bytes", nbytes)
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

    def _fin(self, conn: Connection, direction: int, ts: int) -> None:
        st = conn.streams[direction]
        st.fin_done = True
        assert st.next_seq is not None
        st.next_seq += 1  # the FIN occupies one sequence number
        if conn.handler is not None:
            self._call(conn, conn.handler.on_fin, direction, ts)

    def _enqueue(
        self, conn: Connection, direction: int, abs_seq: int, payload: bytes, ts: int, dep: int, missing: int
    ) -> None:
        st = conn.streams[direction]
        assert st.next_seq is not None
        n = len(payload)
        if abs_seq + n + missing <= st.next_seq:
            self.stats.incr("tcp.retransmits")
            return
        if not st.buf:
            st.blocked_pkt = conn.pkts
            st.blocked_ts = ts
            self.blocked.add(conn)
        seg = [abs_seq, payload, ts, dep]
        i = bisect.bisect_left(st.buf, abs_seq, key=lambda s: s[0])
        if i < len(st.buf) and st.buf[i][0] == abs_seq:
            old = st.buf[i]
            if len(old[1]) >= n:
                self.stats.incr("tcp.retransmits")
                return
            st.buf_bytes -= len(old[1])
            st.buf[i] = seg
        else:
            st.buf.insert(i, seg)
            if abs_seq > st.next_seq:
                self.stats.incr("tcp.out_of_order")
        st.buf_bytes += n
        if missing:
            # Bytes the capture cut off (snaplen): a known loss right after this segment.
            st.buf.insert(i + 1, [abs_seq + n, None, ts, missing])
        self._drain(conn, direction)
        if st.buf and st.buf_bytes > self.limits.reorder_buffer:
            self.stats.incr("tcp.reorder_overflows")
            self._force(conn, direction)

    def _drain(self, conn: Connection, direction: int) -> None:
        """Deliver what is in order and unblocked, in both directions, until stuck."""
        progress = True
        while progress:
            progress = False
            for d in (direction, 1 - direction):
                if self._drain_one(conn, d):
                    progress = True
        if not conn.streams[0].buf and not conn.streams[1].buf:
            self.blocked.discard(conn)

    def _drain_one(self, conn: Connection, direction: int) -> bool:
        st = conn.streams[direction]
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
            if dep >= 0 and other.next_seq is not None and dep > other.next_seq:
                break
            buf.pop(0)
            st.buf_bytes -= len(data)
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
            st.blocked_pkt = conn.pkts
            st.blocked_ts = buf[0][2]
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
        while st.buf:
            head = st.buf[0]
            abs_seq, data, _ts, dep = head
            assert st.next_seq is not None
            if abs_seq > st.next_seq:
                gap = abs_seq - st.next_seq
                st.next_seq = abs_seq
                self._gap(conn, direction, gap)
            elif data is not None and dep >= 0 and other.next_seq is not None and dep > other.next_seq:
                if other.buf and other.buf[0][0] > other.next_seq:
                    # The other direction has a hole: that is what this segment waits for.
                    ogap = min(other.buf[0][0], dep) - other.next_seq
                    other.next_seq += ogap
                    self._gap(conn, 1 - direction, ogap)
                elif other.buf:
                    head[3] = -1  # both directions wait on each other: stop waiting
                    self.stats.incr("tcp.reorder_deadlocks")
                else:
                    # The bytes of the other side this segment acknowledges never showed up.
                    ogap = dep - other.next_seq
                    other.next_seq = dep
                    self._gap(conn, 1 - direction, ogap)
            self._drain(conn, direction)
            if conn.key not in self.conns or not drain_all:
                break
        if st.buf:
            st.blocked_pkt = conn.pkts
            st.blocked_ts = st.buf[0][2]

    def _check_blocked(self, conn: Connection, ts: int) -> None:
        lim = self.limits
        for d in (FROM_CLIENT, FROM_SERVER):
            st = conn.streams[d]
            if st.buf and (
                conn.pkts - st.blocked_pkt > lim.reorder_window or ts - st.blocked_ts > lim.reorder_timeout_ns
            ):
                self.stats.incr("tcp.reorder_timeouts")
                self._force(conn, d)
                if conn.key not in self.conns:
                    return

    # -- time and teardown -------------------------------------------------------------

    def expire(self, ts: int) -> None:
        """Expire idle connections by capture time; resolve stale reorder buffers."""
        for conn in list(self.blocked):
            if conn.key in self.conns:
                self._check_blocked(conn, ts)
            else:
                self.blocked.discard(conn)
        dead = []
        for conn in self.conns.values():
            idle = ts - conn.last_ts
            if idle > conn.plugin.timeout_ns:
                dead.append(conn)
            elif idle <= self.min_timeout:
                break
        for conn in dead:
            self.stats.incr("tcp.connections_expired")
            self._close(conn, "expired")

    def flush(self) -> None:
        for conn in list(self.conns.values()):
            self._close(conn, "flush")
