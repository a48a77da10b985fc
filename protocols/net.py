"""Link and network layer constants and the bounded IP fragment reassembler."""

from __future__ import annotations

import bisect
import socket
from typing import Final

from protocols.stats import Counters

# Link types (pcap LINKTYPE_* values) the decoder understands.
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: DLT_RAW as some platforms number it.
LINKTYPE_RAW_ALT = (12, 14)

SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
        *LINKTYPE_RAW_ALT,
    }
)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})

IPPROTO_ICMP: Final = 1
IPPROTO_IPIP: Final = 4
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMPV6 = 58

# IPv6 extension headers: hop-by-hop, routing, destination options, mobility, HIP, shim6.
IPV6_EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140})
IPV6_FRAGMENT = 44
IPV6_AH = 51
IPV6_NONE = 59

TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_ACK: Final = 0x10


def ip_to_str(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


#: Memory a held fragment costs beyond its bytes (bytes object, dict slot, hole bounds),
#: and a pending datagram beyond its fragments (measured with tracemalloc: ~180 and ~530).
FRAGMENT_OVERHEAD = 192
DATAGRAM_OVERHEAD = 640


class _Datagram:
    """One datagram being reassembled. ``starts``/``ends`` are the holes (RFC 815): sorted,
    disjoint byte ranges not received yet; ``pieces`` hold only bytes that filled a hole,
    so overlapping or repeated fragments cost nothing and the pieces never overlap."""

    __slots__ = ("cost", "ends", "first_ts", "frags", "pieces", "starts", "total")

    def __init__(self, ts: int, max_size: int) -> None:
        self.first_ts = ts
        self.pieces: dict[int, bytes] = {}
        self.starts = [0]
        self.ends = [max_size]
        self.total = -1
        self.frags = 0  # fragments that brought something
        self.cost = DATAGRAM_OVERHEAD


class FragmentReassembler:
    """Reassemble IPv4/IPv6 fragments, bounded in datagram size, datagram count, bytes
    held and age; every datagram given up on is counted by reason.

    Packetbeat caps a reassembled datagram at 100,000 bytes; so do we. Overlapping
    fragments are resolved first-come (the earlier copy of a byte wins). The memory held
    (fragment bytes plus a fixed overhead per fragment and per datagram) stays within
    ``max_bytes``: past it, or past ``max_pending`` datagrams, the oldest datagrams are
    evicted. The work per fragment is logarithmic in the holes of its datagram.
    """

    def __init__(
        self,
        stats: Counters,
        max_datagram: int = 100_000,
        max_pending: int = 4096,
        timeout_ns: int = 30 * 1_000_000_000,
        max_bytes: int = 32 << 20,
    ) -> None:
        self.stats = stats
        self.max_datagram = max_datagram
        self.max_pending = max_pending
        self.timeout_ns = timeout_ns
        self.max_bytes = max_bytes
        #: Pending datagrams, oldest first.
        self.pending: dict[tuple[bytes, bytes, int, int], _Datagram] = {}
        #: Memory accounted to the pending datagrams (see FRAGMENT_OVERHEAD).
        self.held = 0

    def add(
        self, ts: int, key: tuple[bytes, bytes, int, int], offset: int, more: bool, data: bytes
    ) -> bytes | None:
        """Add one fragment; returns the whole payload once complete."""
        end = offset + len(data)
        dg = self.pending.get(key)
        if end > self.max_datagram:
            if dg is not None:
                self._drop(key, dg)
            self.stats.incr("ip.fragments_oversize")
            return None
        if dg is None:
            if len(self.pending) >= self.max_pending:
                self._evict_oldest()
            dg = self.pending[key] = _Datagram(ts, self.max_datagram)
            self.held += dg.cost
        if not more:
            if dg.total < 0:
                dg.total = end
                self._trim_holes(dg, end)
            elif end != dg.total:
                self.stats.incr("ip.fragments_inconsistent")
        if dg.total >= 0 and end > dg.total:
            self.stats.incr("ip.fragments_inconsistent")  # bytes past the announced end: ignored
            data = data[: max(0, dg.total - offset)]
            end = offset + len(data)
        added = self._fill(dg, offset, end, data)
        if not added:
            if data:
                self.stats.incr("ip.fragments_duplicate")
        else:
            self.held += added
            dg.cost += added
            if self.held > self.max_bytes:
                self._evict_for_bytes(key)
                if key not in self.pending:
                    return None
        if dg.starts or dg.total < 0:
            return None
        del self.pending[key]
        self.held -= dg.cost
        self.stats.incr("ip.reassembled")
        whole = b"".join(dg.pieces[k] for k in sorted(dg.pieces))
        if len(whole) > dg.total:  # fragments past an end announced later
            self.stats.incr("ip.fragments_inconsistent")
            whole = whole[: dg.total]
        return whole

    def _fill(self, dg: _Datagram, a: int, b: int, data: bytes) -> int:
        """Store the bytes of [a, b) that fill holes; returns their cost (0: nothing new)."""
        if a >= b:
            return 0
        starts, ends = dg.starts, dg.ends
        i = bisect.bisect_right(ends, a)  # the first hole that ends after a
        cost = 0
        while i < len(starts) and starts[i] < b:
            hs, he = starts[i], ends[i]
            s = hs if hs > a else a
            e = he if he < b else b
            dg.pieces[s] = data[s - a : e - a]
            cost += e - s + FRAGMENT_OVERHEAD
            if hs < s and e < he:  # inside the hole: split it
                ends[i] = s
                starts.insert(i + 1, e)
                ends.insert(i + 1, he)
                break
            if hs < s:
                ends[i] = s
                i += 1
            elif e < he:
                starts[i] = e
                break
            else:
                del starts[i]
                del ends[i]
        if cost:
            dg.frags += 1
        return cost

    @staticmethod
    def _trim_holes(dg: _Datagram, total: int) -> None:
        starts, ends = dg.starts, dg.ends
        while starts and starts[-1] >= total:
            starts.pop()
            ends.pop()
        if ends and ends[-1] > total:
            ends[-1] = total

    def _drop(self, key: tuple[bytes, bytes, int, int], dg: _Datagram) -> None:
        del self.pending[key]
        self.held -= dg.cost
        self.stats.incr("ip.fragments_lost", dg.frags)

    def _evict_oldest(self) -> None:
        key = next(iter(self.pending))
        self._drop(key, self.pending[key])
        self.stats.incr("ip.fragments_evicted")

    def _evict_for_bytes(self, current: tuple[bytes, bytes, int, int]) -> None:
        """Over the byte budget: evict the oldest datagrams (the one being filled last)."""
        pending = self.pending
        while self.held > self.max_bytes and pending:
            key = next(iter(pending))
            if key == current and len(pending) > 1:
                pending[key] = pending.pop(key)  # move it behind the others
                continue
            self._drop(key, pending[key])
            self.stats.incr("ip.fragments_evicted_bytes")

    def expire(self, ts: int) -> None:
        """Drop datagrams older than the timeout (capture time). Datagrams are kept
        oldest first, so the scan stops at the first young one."""
        pending = self.pending
        if not pending:
            return
        limit = ts - self.timeout_ns
        dead = []
        for k, dg in pending.items():
            if dg.first_ts >= limit:
                break
            dead.append(k)
        for k in dead:
            self._drop(k, pending[k])
        if dead:
            self.stats.incr("ip.fragments_expired", len(dead))

    def flush(self) -> None:
        """End of input: the datagrams still incomplete are discarded, and counted."""
        if self.pending:
            self.stats.incr("ip.fragments_incomplete_at_end", len(self.pending))
            for k in list(self.pending):
                self._drop(k, self.pending[k])
