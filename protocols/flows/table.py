"""The flow table: every packet counted into its flow, periodic and final reports.

A flow is what Packetbeat keys it by (``packetbeat/flows``, ``decoder/decoder.go``): the
MAC addresses, up to two VLAN tags, up to two IP layers, the TCP or UDP ports, and for TCP
on a port a protocol claims the connection's number, so each such TCP connection is a
flow of its own. ICMP is keyed by the IP layers only (Packetbeat looks the flow up before
the ICMP identifier is added to the key, so all ICMP between two hosts is one flow), as is
any other IP protocol and a transport header that does not decode. A frame that is not IP
is keyed by its MACs (ARP and the like on Ethernet).

Each packet is looked up by its *directional* key, a tuple ``(l2, src, dst, proto, sport,
dport)``: ``l2`` is the 12 MAC bytes as they sit in the frame (destination first), or
``b""`` without Ethernet, or a tuple ``(macs, vlan ids, outer IP pairs)`` when there are
VLAN tags or a second IP layer; ``src``/``dst`` are the innermost IP addresses (``b""``
without IP); ``proto`` is 6 or 17 for a flow keyed by ports, else 0. A new flow enters its
key and the reverse key in the table, mapped to its two sides, so a packet costs one dict
lookup. The side of the packet that created the flow is the flow's ``source``.

Time is capture time. The report clock starts at the first multiple of ``align_ns`` after
the first packet (Packetbeat aligns to 10 s of the wall clock) and ticks every
gcd(timeout, period) from there; ``tick(ts)`` runs every tick instant up to ``ts`` before
the packet at ``ts`` is counted, so a replay gives the same reports every time.
"""

from __future__ import annotations

import struct
from math import gcd
from typing import Any

from protocols.flows.config import NS, FlowConfig
from protocols.flows.report import flow_event
from protocols.net import (
    ETH_IPV4,
    ETH_IPV6,
    ETH_VLAN,
    IPV6_AH,
    IPV6_EXT_GENERIC,
    IPV6_FRAGMENT,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_ALT,
)
from protocols.stats import Counters

Key = tuple[Any, bytes, bytes, int, int, int]

_RAW = frozenset({LINKTYPE_RAW, *LINKTYPE_RAW_ALT})
_NULL_V6 = frozenset({24, 28, 30})
_TCP_PORTS_FLAGS = struct.Struct(">HHIxxxxBB")
_PORTS = struct.Struct(">HH")
#: Remembered first fragments (their ports), so later fragments count into the same flow.
_MAX_FRAGMENTS = 4096
_NO_IP = b""
_NEVER = 1 << 62


class Side:
    """One direction of a flow: what its sender sent, and when it last did."""

    __slots__ = ("active", "bytes", "conn", "icmp", "last", "packets", "renew")

    def __init__(self, ts: int, conn: Conn | None) -> None:
        self.packets = 0
        self.bytes = 0
        self.last = ts
        #: The TCP connection the flow belongs to (both sides share it), if tracked.
        self.conn = conn
        #: Idle time after which a packet of this side must check its connection (never
        #: for a flow without one).
        self.renew = conn.timeout if conn is not None else _NEVER
        #: Last ICMP (version, type << 8 | code) this side sent.
        self.icmp: tuple[int, int] | None = None
        #: Counters were reset by a delta report: report the zeros.
        self.active = False


class Conn:
    """A TCP connection on a protocol's port (Packetbeat's stream, by IP 4-tuple)."""

    __slots__ = ("closed", "flows", "id", "isn", "last", "timeout")

    def __init__(self, conn_id: int, ts: int, timeout: int) -> None:
        self.id = conn_id
        self.last = ts
        #: Flows counting this connection's packets (more than one when the two directions
        #: come with different MACs); the connection is forgotten with the last of them.
        self.flows: list[Flow] = []
        #: Idle time after which the addresses start a new connection; -1 once replaced
        #: (so the flows still holding it look it up again).
        self.timeout = timeout
        self.closed = False  # a FIN or RST was seen: a bare SYN opens a new connection
        self.isn = -1  # sequence number of the client's SYN, when seen

    def retire(self) -> None:
        self.timeout = -1

    def idle_since(self) -> int:
        """Its last packet: the fast path keeps only its flows' times."""
        last = self.last
        for f in self.flows:
            t = f.last
            if t > last:
                last = t
        return last


class Flow:
    __slots__ = ("a", "b", "conn_id", "key", "report", "rkey", "start")

    def __init__(self, key: Key, rkey: Key, ts: int, conn: Conn | None) -> None:
        self.key = key
        self.rkey = rkey
        self.start = ts
        self.a = Side(ts, conn)
        self.b: Side | None = Side(ts, conn) if rkey != key else None
        self.conn_id = conn.id if conn is not None else None
        #: What every report of this flow shares (built at the first report).
        self.report: Any = None

    @property
    def last(self) -> int:
        """Capture time of the flow's last packet."""
        b = self.b
        last = self.a.last
        return b.last if b is not None and b.last > last else last

    # -- the creating packet's view of its layers (source first) ---------------------------

    def macs(self) -> tuple[bytes, bytes] | None:
        l2 = self.key[0]
        eth = l2[0] if type(l2) is tuple else l2
        return (eth[6:12], eth[0:6]) if eth else None

    def vlans(self) -> tuple[int, ...]:
        l2 = self.key[0]
        return l2[1] if type(l2) is tuple else ()

    def ip_layers(self) -> list[tuple[bytes, bytes]]:
        """(src, dst) of each IP layer, outermost first."""
        l2, src, dst = self.key[0], self.key[1], self.key[2]
        layers = list(l2[2]) if type(l2) is tuple else []
        if src:
            layers.append((src, dst))
        return layers


def reverse_key(key: Key) -> Key:
    l2, src, dst, proto, sport, dport = key
    if type(l2) is tuple:
        eth, vlans, outer = l2
        l2 = (eth[6:] + eth[:6] if eth else eth, vlans, tuple((d, s) for s, d in outer))
    elif l2:
        l2 = l2[6:] + l2[:6]
    return (l2, dst, src, proto, dport, sport)


class FlowTable:
    """Counts packets into flows and reports them (events appended to the ``out`` lists)."""

    def __init__(
        self,
        config: FlowConfig,
        out: list[dict[str, Any]],
        tcp_timeouts: dict[int, int] | None = None,
        stats: Counters | None = None,
    ) -> None:
        self.config = config
        #: Where reports go (the decoder's event list).
        self.out = out
        self.stats = stats if stats is not None else Counters()
        #: Ports of the TCP protocols → their connection timeout (ns).
        self.tcp_timeouts = tcp_timeouts or {}
        #: Directional key → the side of the current flow for it.
        self.table: dict[Any, Side] = {}
        self._lookup = self.table.get
        #: Every flow not yet ended, in creation order (reports follow it).
        self.flows: dict[Flow, None] = {}
        self.conns: dict[tuple[bytes, int, bytes, int], Conn] = {}
        self.fragments: dict[tuple[bytes, bytes, int, int], tuple[int, int, int]] = {}
        self._next_conn_id = 1
        #: Include the MAC addresses in the key (``allow_mismatched_eth`` leaves them out).
        self.eth = not config.allow_mismatched_eth
        timeout, period = config.timeout_ns, config.period_ns
        self.tick_ns = max(gcd(timeout, period), NS) if period > 0 else timeout
        self.ticks_timeout = max(1, timeout // self.tick_ns)
        self.ticks_period = max(1, period // self.tick_ns) if period > 0 else 0
        self.started = False
        self.ticks = 0
        #: Capture time of the next tick instant (the decoder calls ``tick`` by then).
        self.next_tick = 0
        self.now = 0

    # -- packets ---------------------------------------------------------------------------

    def tcp(
        self,
        ts: int,
        wl: int,
        l2: bytes,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        flags: int,
        seq: int,
    ) -> None:
        """The decoder's fast path: an untagged IPv4 TCP packet, already unpacked."""
        key = (l2, src, dst, 6, sport, dport)
        side = self._lookup(key)
        # After a long silence the addresses may carry a new connection: look it up.
        if side is None or ts - side.last > side.renew:
            self._count(ts, wl, key, flags, None, seq)
            return
        if flags & 0x07:
            c = side.conn
            if c is not None:
                if flags & 0x12 == 0x02 and c.closed:  # a SYN after FIN or RST: a new connection?
                    self._count(ts, wl, key, flags, None, seq)
                    return
                if flags & 0x05:
                    c.closed = True
        side.packets += 1
        side.bytes += wl
        if ts > side.last:  # capture times can step back (reordered or merged captures)
            side.last = ts

    def update(self, ts: int, linktype: int, frame: bytes, wl: int) -> None:
        """Any frame: parse the layers the key needs and count it."""
        b = frame
        # Common case first: untagged Ethernet, IPv4 without options or fragments, UDP or
        # ICMP with its whole header inside the IP packet.
        if (
            linktype == LINKTYPE_ETHERNET
            and len(b) >= 42
            and b[12] == 8
            and b[13] == 0
            and b[14] == 0x45
            and not (b[20] & 0x3F or b[21])
            and ((b[16] << 8) | b[17]) >= 28
        ):
            proto = b[23]
            if proto == 17:
                key = (
                    b[:12] if self.eth else b"",
                    b[26:30],
                    b[30:34],
                    17,
                    (b[34] << 8) | b[35],
                    (b[36] << 8) | b[37],
                )
                self._count(ts, wl, key, 0, None)
                return
            if proto == 1:
                key = (b[:12] if self.eth else b"", b[26:30], b[30:34], 0, 0, 0)
                self._count(ts, wl, key, 0, (4, (b[34] << 8) | b[35]))
                return
        try:
            parsed = self._parse(linktype, frame)
        except (IndexError, struct.error):
            self.stats.incr("flows.malformed")
            return
        if parsed is not None:
            self._count(ts, wl, *parsed)

    def _count(
        self, ts: int, wl: int, key: Key, flags: int, icmp: tuple[int, int] | None, seq: int = 0
    ) -> None:
        side = self.table.get(key)
        conn = None
        if key[3] == 6 and self.tcp_timeouts:
            timeout = self.tcp_timeouts.get(key[4])
            if timeout is None:
                timeout = self.tcp_timeouts.get(key[5])
            if timeout is not None:
                conn = self._conn(ts, key, flags, timeout, seq)
                if side is not None and side.conn is not conn:
                    side = None  # a new connection on the same addresses: a new flow
        if side is None:
            side = self._new_flow(ts, key, conn)
        side.packets += 1
        side.bytes += wl
        if ts > side.last:
            side.last = ts
        if icmp is not None:
            side.icmp = icmp

    def _conn(self, ts: int, key: Key, flags: int, timeout: int, seq: int) -> Conn:
        ck = (key[1], key[4], key[2], key[5])
        conns = self.conns
        c = conns.get(ck)
        if c is not None and c.flows:
            c.last = c.idle_since()
        syn = flags & 0x12 == 0x02
        if c is None or ts - c.last > c.timeout or (syn and c.closed and seq != c.isn):
            if c is not None:
                c.retire()
            c = Conn(self._next_conn_id, ts, timeout)
            self._next_conn_id += 1
            conns[ck] = c
            conns[(key[2], key[5], key[1], key[4])] = c
            if len(conns) > 2 * self.config.max_flows:
                for _ in range(2):
                    conns.pop(next(iter(conns))).retire()
        else:
            c.last = ts
        if syn and c.isn < 0:
            c.isn = seq  # a retransmitted SYN (a duplicate in the capture) is no new connection
        if flags & 0x05:
            c.closed = True
        return c

    def _new_flow(self, ts: int, key: Key, conn: Conn | None) -> Side:
        if len(self.flows) >= self.config.max_flows:
            victim = next(iter(self.flows))
            self._forget(victim)
            self.stats.incr("flows.evicted")
            self.out.append(flow_event(victim, ts, True, self.config.delta))
        f = Flow(key, reverse_key(key), ts, conn)
        if conn is not None:
            conn.flows.append(f)
        self.flows[f] = None
        self.table[key] = f.a
        if f.b is not None:
            self.table[f.rkey] = f.b
        self.stats.incr("flows.created")
        return f.a

    def _forget(self, f: Flow) -> None:
        del self.flows[f]
        c = f.a.conn
        if c is not None:
            if f in c.flows:
                c.flows.remove(f)
            if not c.flows:
                key = f.key
                for ck in ((key[1], key[4], key[2], key[5]), (key[2], key[5], key[1], key[4])):
                    if self.conns.get(ck) is c:
                        del self.conns[ck]
        table = self.table
        if table.get(f.key) is f.a:
            del table[f.key]
        if f.b is not None and table.get(f.rkey) is f.b:
            del table[f.rkey]

    # -- layers ----------------------------------------------------------------------------

    def _parse(self, lt: int, b: bytes) -> tuple[Key, int, tuple[int, int] | None, int] | None:
        """The directional key of a frame, its TCP flags, its ICMP type/code (if any) and its
        TCP sequence number."""
        n = len(b)
        eth = b""
        et = 0
        version = 0
        off = 0
        if lt == LINKTYPE_ETHERNET:
            if n < 14:
                return None
            if self.eth:
                eth = b[:12]
            et = (b[12] << 8) | b[13]
            off = 14
        elif lt == LINKTYPE_LINUX_SLL:
            if n < 16:
                return None
            et = (b[14] << 8) | b[15]
            off = 16
        elif lt == LINKTYPE_LINUX_SLL2:
            if n < 20:
                return None
            et = (b[0] << 8) | b[1]
            off = 20
        elif lt == LINKTYPE_NULL or lt == LINKTYPE_LOOP:
            if n < 4:
                return None
            fam = int.from_bytes(b[:4], "big" if lt == LINKTYPE_LOOP else "little")
            if lt == LINKTYPE_NULL and fam > 0xFFFF:
                fam = int.from_bytes(b[:4], "big")
            version = 4 if fam == 2 else 6 if fam in _NULL_V6 else 0
            off = 4
        elif lt in _RAW:
            version = b[0] >> 4 if n else 0
        elif lt == LINKTYPE_IPV4:
            version = 4
        elif lt == LINKTYPE_IPV6:
            version = 6
        else:
            return None
        vlans: list[int] = []
        while et in ETH_VLAN and len(vlans) < 2 and n >= off + 4:
            vlans.append(((b[off] << 8) | b[off + 1]) & 0x0FFF)
            et = (b[off + 2] << 8) | b[off + 3]
            off += 4
        if et == ETH_IPV4:
            version = 4
        elif et == ETH_IPV6:
            version = 6
        elif et:
            version = 0
        ips: list[tuple[bytes, bytes]] = []
        proto = sport = dport = flags = seq = 0
        icmp = None
        end = n
        while version and len(ips) < 2:
            if version == 4:
                if end - off < 20 or b[off] >> 4 != 4:
                    break
                ihl = (b[off] & 0x0F) << 2
                total = (b[off + 2] << 8) | b[off + 3]
                if ihl < 20 or total < ihl:
                    break
                src, dst = b[off + 12 : off + 16], b[off + 16 : off + 20]
                ips.append((src, dst))
                end = min(end, off + total)
                p = b[off + 9]
                start = off + ihl
                frag = ((b[off + 6] << 8) | b[off + 7]) & 0x3FFF
                if frag:
                    ident = (b[off + 4] << 8) | b[off + 5]
                    proto, sport, dport, icmp = self._fragment(
                        (src, dst, p, ident), (frag & 0x1FFF) << 3, bool(frag & 0x2000), p, b, start, end
                    )
                    break
            else:
                if end - off < 40 or b[off] >> 4 != 6:
                    break
                src, dst = b[off + 8 : off + 24], b[off + 24 : off + 40]
                ips.append((src, dst))
                plen = (b[off + 4] << 8) | b[off + 5]
                p = b[off + 6]
                start = off + 40
                if plen:
                    end = min(end, start + plen)
                frag_at = -1
                while p in IPV6_EXT_GENERIC or p == IPV6_FRAGMENT or p == IPV6_AH:
                    if end - start < 8:
                        break
                    if p == IPV6_FRAGMENT:
                        frag_at = start
                        hlen = 8
                    elif p == IPV6_AH:
                        hlen = (b[start + 1] + 2) << 2
                    else:
                        hlen = (b[start + 1] + 1) << 3
                    p = b[start]
                    start += hlen
                if start > end:
                    break
                if frag_at >= 0:
                    fo = (b[frag_at + 2] << 8) | b[frag_at + 3]
                    if fo & 0xFFF9:
                        ident = int.from_bytes(b[frag_at + 4 : frag_at + 8], "big")
                        proto, sport, dport, icmp = self._fragment(
                            (src, dst, p, ident), fo & 0xFFF8, bool(fo & 1), p, b, start, end
                        )
                        break
            if p == 6:
                if end - start >= 20:
                    sport, dport, seq, doff, flags = _TCP_PORTS_FLAGS.unpack_from(b, start)
                    doff = (doff >> 4) << 2
                    if doff >= 20 and start + doff <= end:
                        proto = 6
                    else:
                        sport = dport = flags = seq = 0
            elif p == 17:
                if end - start >= 8:
                    sport, dport = _PORTS.unpack_from(b, start)
                    proto = 17
            elif p == 1 or p == 58:
                if end - start >= (8 if p == 1 else 4):
                    icmp = (4 if p == 1 else 6, (b[start] << 8) | b[start + 1])
            elif p == 4 or p == 41:
                version = 4 if p == 4 else 6
                off = start
                continue
            break
        if not ips and not eth and not vlans:
            return None
        src, dst = ips.pop() if ips else (_NO_IP, _NO_IP)
        l2: Any = eth
        if vlans or ips:
            l2 = (eth, tuple(vlans), tuple(ips))
        return (l2, src, dst, proto, sport, dport), flags, icmp, seq

    def _fragment(
        self,
        fkey: tuple[bytes, bytes, int, int],
        offset: int,
        more: bool,
        p: int,
        b: bytes,
        start: int,
        end: int,
    ) -> tuple[int, int, int, tuple[int, int] | None]:
        """(proto, sport, dport, icmp) for a fragment: the first one carries the transport
        header; later ones belong to the flow of the first (if it was seen), else to the
        IP-level flow. (Packetbeat counts only the fragment that completes a datagram.)"""
        frags = self.fragments
        if offset == 0:
            ports: tuple[int, int, int] = (0, 0, 0)
            icmp = None
            if p == 6 and end - start >= 20:
                sport, dport = _PORTS.unpack_from(b, start)
                ports = (6, sport, dport)
            elif p == 17 and end - start >= 8:
                sport, dport = _PORTS.unpack_from(b, start)
                ports = (17, sport, dport)
            elif (p == 1 or p == 58) and end - start >= 8:
                icmp = (4 if p == 1 else 6, (b[start] << 8) | b[start + 1])
            if more:
                if len(frags) >= _MAX_FRAGMENTS:
                    frags.pop(next(iter(frags)))
                    self.stats.incr("flows.fragments_evicted")
                frags[fkey] = ports
            return (*ports, icmp)
        known = frags.get(fkey) if more else frags.pop(fkey, None)
        if known is None:
            self.stats.incr("flows.fragments_without_first")
            return (0, 0, 0, None)
        return (*known, None)

    # -- time ------------------------------------------------------------------------------

    def tick(self, ts: int) -> None:
        """Run every tick instant up to ``ts`` (reports, timeouts)."""
        if ts > self.now:
            self.now = ts
        if not self.started:
            self.started = True
            sec = ts // NS
            align = self.config.align_ns // NS or 1
            origin = ((sec + align - 1) // align) * align * NS
            self.next_tick = origin + self.tick_ns
            return
        step = self.tick_ns
        while self.next_tick <= ts:
            if not self.flows:
                skip = (ts - self.next_tick) // step + 1
                self.ticks += skip
                self.next_tick += skip * step
                break
            self.ticks += 1
            at = self.next_tick
            self.next_tick += step
            timeouts = self.ticks % self.ticks_timeout == 0
            reports = bool(self.ticks_period) and self.ticks % self.ticks_period == 0
            self._run(at, timeouts, reports)

    def _run(self, at: int, timeouts: bool, reports: bool) -> None:
        out = self.out
        delta = self.config.delta
        limit = at - self.config.timeout_ns
        for f in list(self.flows):
            if timeouts and f.last < limit:
                self._forget(f)
                self.stats.incr("flows.timed_out")
                out.append(flow_event(f, at, True, delta))
            elif reports:
                out.append(flow_event(f, at, False, delta))

    def flush(self) -> None:
        """End of input or shutdown: every flow is reported ``final``."""
        out = self.out
        for f in self.flows:
            c = f.a.conn
            if c is not None:
                c.flows.clear()  # no reference cycle left behind (flow → side → connection → flow)
        if not self.flows:
            return
        at = max(self.now, max(f.last for f in self.flows))
        delta = self.config.delta
        for f in self.flows:
            out.append(flow_event(f, at, True, delta))
        self.flows.clear()
        self.table.clear()
        self.conns.clear()
        self.fragments.clear()
