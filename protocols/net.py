"""Link and network layer constants and the bounded IP fragment reassembler."""

from __future__ import annotations

import socket

from protocols.stats import Counters

# Link types (pcap LINKTYPE_* values) the decoder understands.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
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

IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ICMPV6 = 58

# IPv6 extension headers: hop-by-hop, routing, destination options, mobility, HIP, shim6.
IPV6_EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140})
IPV6_FRAGMENT = 44
IPV6_AH = 51
IPV6_NONE = 59

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


def ip_to_str(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


class _Datagram:
    __slots__ = ("first_ts", "frags", "nbytes", "total")

    def __init__(self, ts: int) -> None:
        self.first_ts = ts
        self.frags: dict[int, bytes] = {}
        self.nbytes = 0
        self.total = -1


class FragmentReassembler:
    """Reassemble IPv4/IPv6 fragments, bounded in datagram size, count and age.

    Packetbeat caps a reassembled datagram at 100,000 bytes; so do we. Overlapping
    fragments are resolved first-come (the earlier copy of a byte wins).
    """

    def __init__(
        self,
        stats: Counters,
        max_datagram: int = 100_000,
        max_pending: int = 4096,
        timeout_ns: int = 30 * 1_000_000_000,
    ) -> None:
        self.stats = stats
        self.max_datagram = max_datagram
        self.max_pending = max_pending
        self.timeout_ns = timeout_ns
        self.pending: dict[tuple[bytes, bytes, int, int], _Datagram] = {}

    def add(
        self, ts: int, key: tuple[bytes, bytes, int, int], offset: int, more: bool, data: bytes
    ) -> bytes | None:
        """Add one fragment; returns the whole payload once complete."""
        dg = self.pending.get(key)
        if dg is None:
            if len(self.pending) >= self.max_pending:
                self.pending.pop(next(iter(self.pending)))
                self.stats.incr("ip.fragments_evicted")
            dg = self.pending[key] = _Datagram(ts)
        end = offset + len(data)
        if end > self.max_datagram:
            del self.pending[key]
            self.stats.incr("ip.fragments_oversize")
            return None
        if offset not in dg.frags or len(dg.frags[offset]) < len(data):
            dg.nbytes += len(data) - len(dg.frags.get(offset, b""))
            dg.frags[offset] = data
        if not more:
            dg.total = end
        if dg.total < 0 or dg.nbytes < dg.total:
            return None
        out = bytearray()
        for off in sorted(dg.frags):
            frag = dg.frags[off]
            if off > len(out):
                return None  # still a hole (overlaps inflated nbytes)
            out += frag[len(out) - off :]
        if len(out) < dg.total:
            return None
        del self.pending[key]
        self.stats.incr("ip.reassembled")
        return bytes(out[: dg.total])

    def expire(self, ts: int) -> None:
        if not self.pending:
            return
        limit = ts - self.timeout_ns
        dead = [k for k, dg in self.pending.items() if dg.first_ts < limit]
        for k in dead:
            del self.pending[k]
        if dead:
            self.stats.incr("ip.fragments_expired", len(dead))
