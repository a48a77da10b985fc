"""Deterministic captures for the ICMP and flow tests (built with scapy).

Each function returns ``(linktype, [(ts_ns, frame), ...])``. The same packets were written
to pcap files and run through Packetbeat 9.3.0 to record ``tests/data/packetbeat/*.ndjson``
(``python -m tests.protocols.record_oracle``); the tests compare wirebeat with those.
"""

from __future__ import annotations

from collections.abc import Callable

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_RA,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, CookedLinux, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw

Capture = tuple[int, list[tuple[int, bytes]]]

A, B, C = "00:00:00:00:00:0a", "00:00:00:00:00:0b", "00:00:00:00:00:0c"
STEP = 10_000_000  # 10 ms between packets


def _stamp(packets: list[Packet], t0: int) -> list[tuple[int, bytes]]:
    return [(t0 + (i + 1) * STEP, bytes(p)) for i, p in enumerate(packets)]


def icmp_misc() -> Capture:
    """ICMPv4/v6 pairs, lone replies, duplicates, errors and other message kinds."""
    x, y = "00:00:00:00:00:01", "00:00:00:00:00:02"

    def fwd() -> Ether:
        return Ether(src=x, dst=y)

    def back() -> Ether:
        return Ether(src=y, dst=x)

    h1, h2 = "10.1.0.1", "10.1.0.2"
    inner = bytes(IP(src=h1, dst=h2) / UDP(sport=4000, dport=5000) / Raw(b"hi"))
    p: list[Packet] = [
        fwd() / IP(src=h1, dst=h2) / ICMP(type=8, id=7, seq=1) / Raw(b"x" * 56),
        back() / IP(src=h2, dst=h1) / ICMP(type=0, id=7, seq=1) / Raw(b"x" * 56),
        back() / IP(src=h2, dst=h1) / ICMP(type=0, id=7, seq=99) / Raw(b"y" * 8),
        fwd() / IP(src=h1, dst=h2) / ICMP(type=8, id=7, seq=2),
        fwd() / IP(src=h1, dst=h2) / ICMP(type=8, id=7, seq=2),
        back() / IP(src=h2, dst=h1) / ICMP(type=0, id=7, seq=2),
        back() / IP(src=h2, dst=h1) / ICMP(type=3, code=3) / Raw(inner),
        back() / IP(src=h2, dst=h1) / ICMP(type=3, code=42) / Raw(inner),
        back() / IP(src=h2, dst=h1) / ICMP(type=42, code=1) / Raw(b"\0" * 4),
        back() / IP(src=h2, dst=h1) / ICMP(type=5, code=1, gw="10.1.0.9") / Raw(inner),
        back() / IP(src=h2, dst=h1) / ICMP(type=11, code=0) / Raw(inner),
        back() / IP(src=h2, dst=h1) / ICMP(type=12, code=2) / Raw(inner),
        back() / IP(src=h2, dst=h1) / ICMP(type=4, code=0) / Raw(inner),
        back() / IP(src=h2, dst=h1) / ICMP(type=9, code=0) / Raw(b"\0" * 8),
        back() / IP(src=h2, dst=h1) / ICMP(type=10, code=0),
    ]
    for rq, rp in ((13, 14), (15, 16), (17, 18)):
        p.append(fwd() / IP(src=h1, dst=h2) / ICMP(type=rq, id=100 + rq, seq=1) / Raw(b"\0" * 12))
        p.append(back() / IP(src=h2, dst=h1) / ICMP(type=rp, id=100 + rq, seq=1) / Raw(b"\0" * 12))
    in6 = bytes(IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2))
    p += [
        back() / IP(src=h2, dst=h1) / ICMP(type=16, id=3, seq=3),
        fwd() / IP(src=h1, dst=h2) / ICMP(type=8, code=3, id=8, seq=1),
        back() / IP(src=h2, dst=h1) / ICMP(type=0, code=5, id=8, seq=1),
        # ICMPv4 shorter than its header: not a message.
        fwd() / IP(src=h1, dst=h2, proto=1) / Raw(b"\x08\x00\xf7\xff"),
        Ether(src=x, dst=x)
        / IP(src="127.0.0.1", dst="127.0.0.1")
        / ICMP(type=8, id=9, seq=1)
        / Raw(b"z" * 16),
        Ether(src=x, dst=x)
        / IP(src="127.0.0.1", dst="127.0.0.1")
        / ICMP(type=0, id=9, seq=1)
        / Raw(b"z" * 16),
        fwd() / IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(id=5, seq=1, data=b"a" * 10),
        back() / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6EchoReply(id=5, seq=1, data=b"a" * 10),
        back() / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6EchoReply(id=5, seq=77, data=b"a" * 2),
        back() / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6DestUnreach(code=4) / Raw(in6),
        back() / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6PacketTooBig(mtu=1280) / Raw(in6),
        back() / IPv6(src="fd00::2", dst="fd00::1") / ICMPv6TimeExceeded(code=1) / Raw(in6),
        back() / IPv6(src="fe80::2", dst="ff02::1") / ICMPv6ND_RA(),
        back() / IPv6(src="fd00::2", dst="fd00::1", nh=58) / Raw(b"\xc8\x07\x00\x00" + b"\0" * 8),
    ]
    return 1, _stamp(p, 1_700_000_000_000_000_000)


def icmp6_short() -> Capture:
    """An ICMPv6 message of 6 bytes (Packetbeat 9.3 panics on it; wirebeat counts it)."""
    p = Ether(src=A, dst=B) / IPv6(src="fd00::1", dst="fd00::2", nh=58) / Raw(b"\x80\x00\x00\x00\x00\x01")
    return 1, _stamp([p], 1_700_000_000_000_000_000)


def flows_eth() -> Capture:
    """Ethernet layer shapes for flow keys: Q-in-Q, 802.1ad, IP-in-IP, 6in4, IPv6-in-IPv6,
    hop-by-hop, IP options, symmetric endpoints, TCP on a protocol port (connection ids),
    a routed connection (other MACs back), fragments, ARP, LLC, GRE, a broken TCP header."""
    icmp_req = ICMP(id=1, seq=1) / Raw(b"a" * 40)
    icmp_rep = ICMP(type=0, id=1, seq=1) / Raw(b"a" * 40)
    p: list[Packet] = [
        Ether(src=A, dst=B)
        / Dot1Q(vlan=101)
        / Dot1Q(vlan=600)
        / IP(src="192.168.1.1", dst="192.168.1.2")
        / icmp_req,
        Ether(src=B, dst=A)
        / Dot1Q(vlan=101)
        / Dot1Q(vlan=600)
        / IP(src="192.168.1.2", dst="192.168.1.1")
        / icmp_rep,
        Ether(src=A, dst=B, type=0x88A8)
        / Dot1Q(vlan=7)
        / Dot1Q(vlan=8)
        / IP(src="192.168.2.1", dst="192.168.2.2")
        / UDP(sport=1111, dport=2222)
        / Raw(b"u" * 10),
        Ether(src=A, dst=B)
        / IP(src="172.16.0.1", dst="172.16.0.2")
        / IP(src="10.9.0.1", dst="10.9.0.2")
        / UDP(sport=5000, dport=53)
        / Raw(b"q" * 20),
        Ether(src=B, dst=A)
        / IP(src="172.16.0.2", dst="172.16.0.1")
        / IP(src="10.9.0.2", dst="10.9.0.1")
        / UDP(sport=53, dport=5000)
        / Raw(b"r" * 30),
        Ether(src=A, dst=B)
        / IP(src="172.16.0.1", dst="172.16.0.2")
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / TCP(sport=40000, dport=80, flags="S", seq=1000),
        Ether(src=B, dst=A)
        / IP(src="172.16.0.2", dst="172.16.0.1")
        / IPv6(src="2001:db8::2", dst="2001:db8::1")
        / TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001),
        Ether(src=A, dst=B)
        / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2")
        / IPv6(src="fd01::1", dst="fd01::2")
        / ICMPv6EchoRequest(id=3, seq=1),
        Ether(src=A, dst=B)
        / Dot1Q(vlan=20)
        / IPv6(src="fd02::1", dst="fd02::2")
        / IPv6ExtHdrHopByHop()
        / UDP(sport=777, dport=888)
        / Raw(b"h" * 5),
        Ether(src=C, dst=C)
        / IP(src="10.5.0.1", dst="10.5.0.2", options=[b"\x94\x04\x00\x00"])
        / TCP(sport=3333, dport=4444, flags="PA")
        / Raw(b"o" * 7),
        Ether(src=C, dst=C) / IP(src="10.5.0.2", dst="10.5.0.1") / TCP(sport=4444, dport=3333, flags="A"),
        Ether(src=C, dst=C) / IP(src="10.5.0.1", dst="10.5.0.2") / TCP(sport=3333, dport=4444, flags="A"),
        Ether(src=C, dst=C) / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=9999, dport=9999) / Raw(b"s"),
        Ether(src=C, dst=C) / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=9999, dport=9999) / Raw(b"ss"),
    ]
    for sport in (41000, 41001):
        p += [
            Ether(src=A, dst=B)
            / IP(src="10.7.0.1", dst="10.7.0.2")
            / TCP(sport=sport, dport=80, flags="S", seq=10),
            Ether(src=B, dst=A)
            / IP(src="10.7.0.2", dst="10.7.0.1")
            / TCP(sport=80, dport=sport, flags="SA", seq=20, ack=11),
            Ether(src=A, dst=B)
            / IP(src="10.7.0.1", dst="10.7.0.2")
            / TCP(sport=sport, dport=80, flags="A", seq=11, ack=21),
            Ether(src=A, dst=B)
            / IP(src="10.7.0.1", dst="10.7.0.2")
            / TCP(sport=sport, dport=8081, flags="A", seq=11, ack=21),
        ]
    p += [
        Ether(src=A, dst=B)
        / IP(src="10.8.0.1", dst="10.8.0.2")
        / TCP(sport=42000, dport=80, flags="S", seq=10),
        Ether(src=C, dst=A)
        / IP(src="10.8.0.2", dst="10.8.0.1")
        / TCP(sport=80, dport=42000, flags="SA", seq=20, ack=11),
    ]
    big = IP(src="10.6.0.1", dst="10.6.0.2", id=4242) / UDP(sport=6000, dport=7000) / Raw(b"F" * 3000)
    p += [Ether(src=A, dst=B) / f for f in fragment(big, fragsize=1200)]
    bigi = IP(src="10.6.0.1", dst="10.6.0.2", id=4343) / ICMP(id=9, seq=9) / Raw(b"I" * 2000)
    p += [Ether(src=A, dst=B) / f for f in fragment(bigi, fragsize=1200)]
    p += [
        Ether(src=A, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.1.1.1", pdst="10.1.1.2"),
        Ether(src=B, dst=A) / ARP(op=2, psrc="10.1.1.2", pdst="10.1.1.1"),
        Ether(src=A, dst="01:80:c2:00:00:00", type=0x26) / Raw(b"\x42\x42\x03" + b"\0" * 35),
        Ether(src=A, dst=B) / IP(src="10.6.0.1", dst="10.6.0.2", proto=47) / Raw(b"\0" * 8),
        Ether(src=A, dst=B) / IP(src="10.6.0.1", dst="10.6.0.2", proto=6) / Raw(b"\0" * 10),
    ]
    return 1, _stamp(p, 1_700_000_100_000_000_000)


def flows_sll() -> Capture:
    """Linux cooked captures: no MACs in the flow key, VLAN inside SLL, ARP (no flow)."""

    def sll(proto: int, pkttype: int = 0) -> CookedLinux:
        return CookedLinux(pkttype=pkttype, lladdrtype=1, lladdrlen=6, src=b"\x00" * 8, proto=proto)

    p: list[Packet] = [
        sll(0x0800) / IP(src="10.3.0.1", dst="10.3.0.2") / TCP(sport=43000, dport=80, flags="S"),
        sll(0x0800, 4) / IP(src="10.3.0.2", dst="10.3.0.1") / TCP(sport=80, dport=43000, flags="SA"),
        sll(0x8100) / Dot1Q(vlan=5) / IP(src="10.3.0.1", dst="10.3.0.2") / UDP(sport=1, dport=2),
        sll(0x0806) / ARP(),
    ]
    return 113, _stamp(p, 1_700_000_200_000_000_000)


def flows_null() -> Capture:
    """BSD loopback (DLT_NULL) captures, IPv4 and IPv6."""
    p: list[Packet] = [
        Loopback(type=2) / IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=50000, dport=8080, flags="S"),
        Loopback(type=2) / IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=8080, dport=50000, flags="SA"),
        Loopback(type=30) / IPv6(src="::1", dst="::1") / UDP(sport=5, dport=6),
    ]
    return 0, _stamp(p, 1_700_000_300_000_000_000)


def flows_differences() -> Capture:
    """Where wirebeat's flows deliberately differ: TCP behind an IPv6 destination-options
    header (keyed by its ports), and a TCP connection on a protocol port reusing the ports
    of a finished one (a flow of its own)."""

    def fwd() -> Ether:
        return Ether(src=A, dst=B)

    def back() -> Ether:
        return Ether(src=B, dst=A)

    c, s = "10.0.0.1", "10.0.0.2"
    p: list[Packet] = [
        fwd()
        / IPv6(src="fd03::1", dst="fd03::2")
        / IPv6ExtHdrDestOpt()
        / TCP(sport=1234, dport=5678, flags="S"),
        back()
        / IPv6(src="fd03::2", dst="fd03::1")
        / IPv6ExtHdrDestOpt()
        / TCP(sport=5678, dport=1234, flags="SA"),
        fwd() / IP(src=c, dst=s) / TCP(sport=4000, dport=80, flags="S", seq=100),
        back() / IP(src=s, dst=c) / TCP(sport=80, dport=4000, flags="SA", seq=500, ack=101),
        fwd() / IP(src=c, dst=s) / TCP(sport=4000, dport=80, flags="FA", seq=101, ack=501),
        back() / IP(src=s, dst=c) / TCP(sport=80, dport=4000, flags="FA", seq=501, ack=102),
        fwd() / IP(src=c, dst=s) / TCP(sport=4000, dport=80, flags="S", seq=9000),
        back() / IP(src=s, dst=c) / TCP(sport=80, dport=4000, flags="SA", seq=7000, ack=9001),
    ]
    return 1, _stamp(p, 1_700_000_500_000_000_000)


CAPTURES: dict[str, Callable[[], Capture]] = {
    "icmp_misc": icmp_misc,
    "flows_eth": flows_eth,
    "flows_sll": flows_sll,
    "flows_null": flows_null,
    "flows_differences": flows_differences,
}
