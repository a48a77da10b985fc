"""Frame bytes in, event dicts out: link → VLAN → IP (+fragments) → TCP | UDP | ICMP.

The decoder is sans-IO: the caller feeds frames with their capture timestamps (integer
nanoseconds), calls ``tick`` when capture time advances without packets, and ``flush``
at the end of input. Capture time is the only clock.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from protocols.flows import FlowConfig, FlowTable
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo, Plugin
from protocols.net import (
    ETH_IPV4,
    ETH_IPV6,
    ETH_VLAN,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
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
    FragmentReassembler,
    ip_to_str,
)
from protocols.registry import Registry
from protocols.stats import Counters
from protocols.tcp import TcpLimits, TcpTracker

log = logging.getLogger("decoder")

NS = 1_000_000_000
#: ``next_tick`` of a decoder whose clock is held (see ``Decoder.hold_clock``).
NEVER = 1 << 62
_TCP_HDR = struct.Struct(">HHIIBB")
#: IPv4 header without options followed by the TCP header, in one unpack:
#: version/IHL, total length, flags/fragment offset, protocol, src, dst, ports, seq, ack, offset, flags.
_IP4_TCP = struct.Struct(">BxHxxHxB2x4s4sHHIIBB")
_UDP_HDR = struct.Struct(">HHH")
_RAW = frozenset({LINKTYPE_RAW, *LINKTYPE_RAW_ALT})
_NULL_V6 = frozenset({24, 28, 30})
#: Connections closed per batch at the end of input (``Decoder.flush_batches``), and
#: idle connections expired at most per ``feed_many``/``tick`` call (the rest are expired
#: from the next packet on): a mass expiry does not build all its events at once.
FLUSH_BATCH = 1024


@attrs.frozen
class DecoderLimits:
    tcp: TcpLimits = TcpLimits()
    max_vlan_tags: int = 2
    max_ip_layers: int = 2
    #: Largest reassembled IP datagram (Packetbeat's cap).
    fragment_max_datagram: int = 100_000
    #: Incomplete datagrams held at once, and the memory they may hold (``packetbeat.ip_fragments``).
    fragment_max_pending: int = 4096
    fragment_max_bytes: int = 32 << 20
    fragment_timeout_ns: int = 30 * NS
    #: How often (capture time) expiry runs while packets flow.
    tick_interval_ns: int = NS


class Decoder:
    """One per capture source."""

    def __init__(
        self,
        plugins: list[Plugin] | Registry,
        limits: DecoderLimits | None = None,
        stats: Counters | None = None,
        flows: FlowConfig | None = None,
    ) -> None:
        self.registry = plugins if isinstance(plugins, Registry) else Registry(plugins)
        self.limits = limits or DecoderLimits()
        self.stats = stats if stats is not None else Counters()
        for p in self.registry.plugins:
            p.stats = self.stats
        self._out: list[dict[str, Any]] = []
        self.tcp = TcpTracker(self.registry.tcp_ports, self.stats, self._out, self.limits.tcp)
        self.udp_ports = self.registry.udp_ports
        #: Packets on ports no protocol claims (TCP and UDP), for the end-of-replay hint.
        self.unclaimed = self.tcp.unclaimed
        self.icmp = self.registry.icmp_plugin
        self.frags = FragmentReassembler(
            self.stats,
            self.limits.fragment_max_datagram,
            self.limits.fragment_max_pending,
            self.limits.fragment_timeout_ns,
            self.limits.fragment_max_bytes,
        )
        self.last_ts = 0
        self._next_tick = 0
        self._held = False
        #: Capture time of the next full tick (``_next_tick``, when packets call ``_tick``,
        #: is earlier while idle connections are left to expire).
        self._tick_due = 0
        #: Connections this call may still expire (``_expire``).
        self._expire_budget = FLUSH_BATCH
        #: Flow table (``packetbeat.flows``); every frame is counted into it before decoding.
        self.flows: FlowTable | None = None
        if flows is not None:
            timeouts = {port: p.timeout_ns for port, p in self.registry.tcp_ports.items()}
            self.flows = FlowTable(flows, self._out, timeouts, self.stats)

    # -- seam: feed / tick / flush -----------------------------------------------------

    def feed(self, ts: int, linktype: int, frame: bytes) -> list[dict[str, Any]]:
        """One frame; returns the events it completed."""
        return self.feed_many(((ts, linktype, frame, len(frame)),))

    def feed_many(self, packets: Iterable[tuple[int, int, bytes, int]]) -> list[dict[str, Any]]:
        """Several frames (``(ts, linktype, frame, wire_len)``, as capture sources yield
        them); returns the events they completed, in order.

        The common case — untagged Ethernet or Linux "cooked", IPv4 without options or
        fragments, TCP — is decoded inline here; everything else takes ``_general``.
        """
        self._expire_budget = FLUSH_BATCH
        self._feed(packets)
        return self.take()

    def _feed(self, packets: Iterable[tuple[int, int, bytes, int]]) -> None:
        tcp_process = self.tcp.process
        unpack = _IP4_TCP.unpack_from
        flows = self.flows
        flows_tcp = flows.tcp if flows is not None else None
        flows_eth = flows is not None and flows.eth
        for ts, linktype, frame, wl in packets:
            n = len(frame)
            if ts >= self._next_tick:
                self._tick(ts)
            try:
                off = 14 if linktype == LINKTYPE_ETHERNET else 16 if linktype == LINKTYPE_LINUX_SLL else 0
                if off and n >= off + 40 and frame[off - 2] == 8 and frame[off - 1] == 0:
                    head = unpack(frame, off)
                    vihl, total, frag, proto, src, dst, sport, dport, seq, ack, doff, flags = head
                    if vihl == 0x45 and proto == 6 and not frag & 0x3FFF:
                        end = off + total
                        p = off + 20
                        if end >= p + 20:
                            missing = 0
                            if end > n:
                                missing = end - n
                                end = n
                            doff = (doff >> 4) << 2
                            if doff >= 20 and p + doff <= end:
                                if flows_tcp is not None:
                                    l2 = frame[:12] if off == 14 and flows_eth else b""
                                    flows_tcp(ts, wl, l2, src, dst, sport, dport, flags, seq)
                                if p + doff < end or flags & 0x07 or missing:
                                    payload = frame[p + doff : end]
                                    tcp_process(ts, src, dst, sport, dport, seq, ack, flags, payload, missing)
                                # else a pure ACK: nothing to reassemble (Packetbeat skips these too)
                                continue
                if flows is not None:
                    flows.update(ts, linktype, frame, wl)
                self._general(ts, linktype, frame)
            except (IndexError, struct.error, ValueError) as exc:
                self.stats.incr("decoder.malformed")
                log.debug("malformed frame: %r", exc)

    def feed_parsed(self, items: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """``feed_many`` for a reader that did its inline path's parsing itself (a C walk
        over a capture file in memory): an item is a packet ``(ts, linktype, frame,
        wire_len)``, or the TCP segment of an IPv4 packet over Ethernet or Linux cooked that
        the inline path would hand to the TCP tracker, ``(ts, src, dst, sport, dport, seq,
        ack, flags, payload, missing)``. Only with flows off (the flow table would want the
        frame); the reader may leave out the pure ACKs before ``next_tick``."""
        if self.flows is not None:
            raise ValueError("feed_parsed needs flows off")
        tcp_process = self.tcp.process
        feed = self._feed
        self._expire_budget = FLUSH_BATCH
        for item in items:
            if len(item) == 4:
                feed((item,))
                continue
            ts = item[0]
            if ts >= self._next_tick:
                self._tick(ts)
            try:
                tcp_process(*item)
            except (IndexError, struct.error, ValueError) as exc:
                self.stats.incr("decoder.malformed")
                log.debug("malformed frame: %r", exc)
        return self.take()

    def _general(self, ts: int, linktype: int, frame: bytes) -> None:
        """Every frame the inline fast path does not take (errors are counted by the caller)."""
        if linktype == LINKTYPE_ETHERNET:
            self._ethernet(ts, frame)
        elif linktype == LINKTYPE_LINUX_SLL:
            if len(frame) < 16:
                self.stats.incr("decoder.truncated")
            else:
                self._ethertype(ts, frame, 16, (frame[14] << 8) | frame[15])
        elif linktype == LINKTYPE_LINUX_SLL2:
            if len(frame) < 20:
                self.stats.incr("decoder.truncated")
            else:
                self._ethertype(ts, frame, 20, (frame[0] << 8) | frame[1])
        elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
            self._null(ts, frame, linktype)
        elif linktype in _RAW:
            if frame:
                self._ip(ts, frame, 0, frame[0] >> 4, 0)
            else:
                self.stats.incr("decoder.truncated")
        elif linktype == LINKTYPE_IPV4:
            self._ip(ts, frame, 0, 4, 0)
        elif linktype == LINKTYPE_IPV6:
            self._ip(ts, frame, 0, 6, 0)
        else:
            self.stats.incr("decoder.unsupported_linktype")

    def tick(self, ts: int) -> list[dict[str, Any]]:
        self._expire_budget = NEVER if self._held else FLUSH_BATCH
        self._tick(ts, full=True)
        return self.take()

    def flush(self, flows_at: int | None = None) -> list[dict[str, Any]]:
        """End of input: publish what can be completed; open requests come out unmatched.

        ``flows_at`` overrides the time of the final flow reports (see ``flows_final_at``)."""
        return [e for batch in self.flush_batches(flows_at=flows_at) for e in batch]

    def flush_batches(
        self, size: int = FLUSH_BATCH, flows_at: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """``flush`` in batches (each from at most ``size`` connections), so that the
        events of a large connection table are not all held at once."""
        self.frags.flush()
        while not self.tcp.flush(size):
            if self._out:
                yield self.take()
        for p in self.registry.plugins:
            self._emit(p, self._safe(p, p.flush))
        if self.flows is not None:
            self.flows.flush(flows_at)
        if self._out:
            yield self.take()

    # -- one clock for several decoders (each sees part of one capture) ---------------------

    @property
    def next_tick(self) -> int:
        """The capture time at or after which the next packet first runs expiry."""
        return self._next_tick

    def hold_clock(self) -> None:
        """Never tick on the packets' own times: the caller calls ``tick`` at the instants
        a decoder fed the whole capture would have ticked (its ``next_tick``)."""
        self._held = True
        self._next_tick = NEVER

    def flows_final_at(self) -> int | None:
        """The time ``flush`` would give the final flow reports (None: no flows)."""
        return self.flows.final_at() if self.flows is not None else None

    def take(self) -> list[dict[str, Any]]:
        """The events completed since the last call (or ``feed_many``'s return). An
        iterable given to ``feed_many`` is consumed one packet at a time, so taking the events
        before it yields the next packet tells which packet completed them."""
        out = self._out
        if not out:
            return []
        events = out[:]
        out.clear()
        return events

    # -- internals ---------------------------------------------------------------------

    def _tick(self, ts: int, full: bool = False) -> None:
        if ts > self.last_ts:
            self.last_ts = ts
        if full or ts >= self._tick_due:
            self._tick_due = ts + self.limits.tick_interval_ns
            more = self._expire(ts, full=True)
            self.frags.expire(ts)
            for p in self.registry.plugins:
                self._emit(p, self._safe(p, p.tick, ts))
            flows = self.flows
            if flows is not None:
                flows.tick(ts)
                # Flow reports fall due at their own instants: tick again before the first
                # packet at or after the next one.
                self._tick_due = min(self._tick_due, flows.next_tick)
        else:
            more = self._expire(ts, full=False)  # idle connections were left to expire
        # A held clock (worker processes) ticks only when told, so each tick does it all.
        self._next_tick = NEVER if self._held else ts if more else self._tick_due

    def _expire(self, ts: int, full: bool) -> bool:
        """Expire TCP connections within this call's budget; True if more may be left."""
        budget = self._expire_budget
        if budget <= 0:
            return True
        n = self.tcp.expire(ts, budget) if full else self.tcp.expire_idle(ts, budget)
        self._expire_budget = budget - n
        return n == budget

    def _safe(self, plugin: Plugin, fn: Any, *args: Any) -> list[Any]:
        try:
            return fn(*args) or []
        except Exception as exc:
            self.stats.incr(f"{plugin.name}.handler_errors")
            log.debug("%s failed: %r", plugin.name, exc)
            if plugin.debug:
                plugin.log.debug("parser failed: %r; message dropped", exc)
            return []

    def _emit(self, plugin: Plugin, txns: list[Any]) -> None:
        for t in txns:
            try:
                self._out.append(plugin.to_event(t))
            except Exception as exc:
                self.stats.incr(f"{plugin.name}.event_errors")
                log.debug("%s: cannot build event: %r", plugin.name, exc)
                continue
            if plugin.debug:
                where = getattr(t, "conn", None)
                plugin.log.debug(
                    "%s transaction completed%s", plugin.name.upper(), f" on {where}" if where else ""
                )

    def _ethernet(self, ts: int, b: bytes) -> None:
        if len(b) < 14:
            self.stats.incr("decoder.truncated")
            return
        et = (b[12] << 8) | b[13]
        self._ethertype(ts, b, 14, et)

    def _ethertype(self, ts: int, b: bytes, off: int, et: int) -> None:
        tags = 0
        while et in ETH_VLAN:
            tags += 1
            if tags > self.limits.max_vlan_tags:
                self.stats.incr("decoder.too_many_vlans")
                return
            et = (b[off + 2] << 8) | b[off + 3]
            off += 4
        if et == ETH_IPV4:
            self._ip(ts, b, off, 4, 0)
        elif et == ETH_IPV6:
            self._ip(ts, b, off, 6, 0)
        else:
            self.stats.incr("decoder.not_ip")

    def _null(self, ts: int, b: bytes, linktype: int) -> None:
        if len(b) < 4:
            self.stats.incr("decoder.truncated")
            return
        if linktype == LINKTYPE_LOOP:
            fam = struct.unpack_from(">I", b)[0]
        else:
            fam = struct.unpack_from("<I", b)[0]
            if fam > 0xFFFF:
                fam = struct.unpack_from(">I", b)[0]
        if fam == 2:
            self._ip(ts, b, 4, 4, 0)
        elif fam in _NULL_V6:
            self._ip(ts, b, 4, 6, 0)
        else:
            self.stats.incr("decoder.not_ip")

    def _ip(self, ts: int, b: bytes, off: int, version: int, depth: int) -> None:
        blen = len(b)
        if version == 4:
            if blen - off < 20 or b[off] >> 4 != 4:
                self.stats.incr("decoder.malformed")
                return
            ihl = (b[off] & 0xF) << 2
            total = (b[off + 2] << 8) | b[off + 3]
            if ihl < 20 or total < ihl:
                self.stats.incr("decoder.malformed")
                return
            end = off + total
            missing = 0
            if end > blen:
                missing = end - blen
                end = blen
            proto = b[off + 9]
            start = off + ihl
            frag = ((b[off + 6] << 8) | b[off + 7]) & 0x3FFF
            if frag:
                if missing:
                    self.stats.incr("decoder.truncated")
                    return
                key = (b[off + 12 : off + 16], b[off + 16 : off + 20], proto, (b[off + 4] << 8) | b[off + 5])
                whole = self.frags.add(ts, key, (frag & 0x1FFF) << 3, bool(frag & 0x2000), b[start:end])
                if whole is None:
                    return
                b, start, end, missing = whole, 0, len(whole), 0
                src, dst = key[0], key[1]
            else:
                src = dst = b""  # sliced lazily below
            if proto == IPPROTO_TCP:
                if not src:
                    src, dst = b[off + 12 : off + 16], b[off + 16 : off + 20]
                self._tcp(ts, b, start, end, src, dst, missing)
                return
            if not src:
                src, dst = b[off + 12 : off + 16], b[off + 16 : off + 20]
        elif version == 6:
            if blen - off < 40 or b[off] >> 4 != 6:
                self.stats.incr("decoder.malformed")
                return
            plen = (b[off + 4] << 8) | b[off + 5]
            proto = b[off + 6]
            src, dst = b[off + 8 : off + 24], b[off + 24 : off + 40]
            start = off + 40
            end = start + plen if plen else blen
            missing = 0
            if end > blen:
                missing = end - blen
                end = blen
            hdrs = self._ipv6_headers(b, start, end, proto, True)
            if hdrs is None:
                return
            proto, start, frag_info = hdrs
            if frag_info is not None:
                if frag_info[0] or frag_info[1]:
                    if missing:
                        self.stats.incr("decoder.truncated")
                        return
                    whole = self.frags.add(
                        ts, (src, dst, proto, frag_info[2]), frag_info[0], frag_info[1] == 1, b[start:end]
                    )
                    if whole is None:
                        return
                    b, start, end = whole, 0, len(whole)
                # Extension headers may follow the Fragment header (RFC 8200 §4.1): they
                # are part of the fragmentable payload.
                hdrs = self._ipv6_headers(b, start, end, proto, False)
                if hdrs is None:
                    return
                proto, start, _ = hdrs
            if proto == IPPROTO_TCP:
                self._tcp(ts, b, start, end, src, dst, missing)
                return
        else:
            self.stats.incr("decoder.not_ip")
            return
        if proto == IPPROTO_UDP:
            self._udp(ts, b, start, end, src, dst)
        elif proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
            if self.icmp is not None:
                txns = self._safe(self.icmp, self.icmp.on_icmp, ts, version, src, dst, b[start:end])
                self._emit(self.icmp, txns)
        elif proto == IPPROTO_IPIP or proto == IPPROTO_IPV6:
            if depth + 1 >= self.limits.max_ip_layers:
                self.stats.incr("decoder.too_many_ip_layers")
                return
            self._ip(ts, b[start:end], 0, 4 if proto == IPPROTO_IPIP else 6, depth + 1)
        else:
            self.stats.incr("decoder.other_transport")

    def _ipv6_headers(
        self, b: bytes, start: int, end: int, proto: int, fragment: bool
    ) -> tuple[int, int, tuple[int, int, int] | None] | None:
        """Skip IPv6 extension headers up to the transport (or, with ``fragment``, up to
        and including a Fragment header). Returns (next header, its offset, (fragment
        offset, more, id) or None), or None for a malformed chain (counted)."""
        while proto in IPV6_EXT_GENERIC or proto == IPV6_AH or (fragment and proto == IPV6_FRAGMENT):
            if end - start < 8:
                self.stats.incr("decoder.malformed")
                return None
            nxt = b[start]
            if proto == IPV6_FRAGMENT:
                fo = (b[start + 2] << 8) | b[start + 3]
                ident = struct.unpack_from(">I", b, start + 4)[0]
                return nxt, start + 8, (fo & 0xFFF8, fo & 1, ident)
            if proto == IPV6_AH:
                start += (b[start + 1] + 2) << 2
            else:
                start += (b[start + 1] + 1) << 3
            proto = nxt
        if start > end:
            self.stats.incr("decoder.malformed")
            return None
        return proto, start, None

    def _tcp(self, ts: int, b: bytes, p: int, end: int, src: bytes, dst: bytes, missing: int) -> None:
        if end - p < 20:
            self.stats.incr("decoder.truncated")
            return
        sport, dport, seq, ack, doff, flags = _TCP_HDR.unpack_from(b, p)
        doff = (doff >> 4) << 2
        if doff < 20 or p + doff > end:
            self.stats.incr("decoder.malformed")
            return
        if p + doff == end and not flags & 0x07 and not missing:
            return  # pure ACK: nothing to reassemble (Packetbeat skips these too)
        self.tcp.process(ts, src, dst, sport, dport, seq, ack, flags, b[p + doff : end], missing)

    def _udp(self, ts: int, b: bytes, p: int, end: int, src: bytes, dst: bytes) -> None:
        if end - p < 8:
            self.stats.incr("decoder.truncated")
            return
        sport, dport, ulen = _UDP_HDR.unpack_from(b, p)
        plugin = self.udp_ports.get(sport) or self.udp_ports.get(dport)
        if plugin is None:
            self.stats.incr("udp.unknown_port_packets")
            self.unclaimed.note("udp", sport, dport, 0, b[p + 8 : min(end, p + 72)])
            return
        if ulen >= 8:
            if p + ulen > end:  # cut by the snaplen (or a lying length): the decoder gets what is there
                self.stats.incr("udp.truncated_datagrams")
            end = min(end, p + ulen)
        payload = b[p + 8 : end]
        ports = plugin.config.ports
        if dport in ports or sport not in ports:
            info = ConnInfo(ip_to_str(src), sport, ip_to_str(dst), dport, "udp")
            direction = FROM_CLIENT
        else:
            info = ConnInfo(ip_to_str(dst), dport, ip_to_str(src), sport, "udp")
            direction = FROM_SERVER
        self._emit(plugin, self._safe(plugin, plugin.on_datagram, info, direction, payload, ts))
