"""Link and network layers: link types, VLANs, IPv4 fragments, IPv6 extension headers, tunnels."""

from __future__ import annotations

import socket
import struct

import pytest

from benchmarks.synth import ACK, PSH, SYN, ip_frame, tcp_segment, udp_datagram
from tests.protocols.recorder import recorder

C = ("10.0.0.1", 40000)
S = ("10.0.0.2", 7777)
C6 = ("2001:db8::1", 40000)
S6 = ("2001:db8::2", 7777)


def eth_payload(frame: bytes) -> bytes:
    return frame[14:]


def tcp_frames(c: tuple[str, int], s: tuple[str, int], data: bytes) -> list[bytes]:
    return [
        ip_frame(c[0], s[0], 6, tcp_segment(c[1], s[1], 100, 0, SYN)),
        ip_frame(c[0], s[0], 6, tcp_segment(c[1], s[1], 101, 0, ACK | PSH, data)),
    ]


def run(linktype: int, frames: list[bytes]):
    dec, plugin = recorder()
    for i, fr in enumerate(frames):
        dec.feed(i, linktype, fr)
    # The data acknowledges a SYN-ACK these captures lack: it waits a few packets for it
    # (protocols/tcp.py, SYNACK_WAIT), and comes out at the end of the input.
    dec.flush()
    return dec, plugin


def delivered(plugin) -> bytes:
    assert len(plugin.handlers) == 1
    return plugin.handlers[0].stream(0)


def test_ethernet_ipv4_and_ipv6() -> None:
    for c, s in ((C, S), (C6, S6)):
        dec, plugin = run(1, tcp_frames(c, s, b"hello"))
        assert delivered(plugin) == b"hello"
        assert plugin.handlers[0].conn.client_ip == c[0]


@pytest.mark.parametrize("tags", [1, 2])
def test_vlan_tags(tags: int) -> None:
    frames = []
    for fr in tcp_frames(C, S, b"vlan"):
        tag = b""
        for i in range(tags):
            tag += (b"\x88\xa8" if i == 0 and tags == 2 else b"\x81\x00") + struct.pack(">H", 100 + i)
        frames.append(fr[:12] + tag + fr[12:])
    dec, plugin = run(1, frames)
    assert delivered(plugin) == b"vlan"


def test_three_vlan_tags_are_refused_and_counted() -> None:
    frames = [fr[:12] + b"\x81\x00\x00\x01" * 3 + fr[12:] for fr in tcp_frames(C, S, b"x")]
    dec, plugin = run(1, frames)
    assert not plugin.handlers
    assert dec.stats["decoder.too_many_vlans"] == 2


def test_linux_sll_and_sll2() -> None:
    sll = [
        b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 6 + b"\x00\x00" + b"\x08\x00" + eth_payload(f)
        for f in tcp_frames(C, S, b"sll")
    ]
    sll2 = [
        b"\x08\x00\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01\x00\x06" + b"\x02" * 8 + eth_payload(f)
        for f in tcp_frames(C, S, b"sll2")
    ]
    assert delivered(run(113, sll)[1]) == b"sll"
    assert delivered(run(276, sll2)[1]) == b"sll2"


def test_null_loopback_both_byte_orders_and_raw_ip() -> None:
    v4 = [eth_payload(f) for f in tcp_frames(C, S, b"null")]
    v6 = [eth_payload(f) for f in tcp_frames(C6, S6, b"null6")]
    assert delivered(run(0, [struct.pack("<I", 2) + p for p in v4])[1]) == b"null"
    assert delivered(run(0, [struct.pack(">I", 2) + p for p in v4])[1]) == b"null"
    assert delivered(run(0, [struct.pack("<I", 30) + p for p in v6])[1]) == b"null6"
    assert delivered(run(108, [struct.pack(">I", 2) + p for p in v4])[1]) == b"null"
    assert delivered(run(101, v4)[1]) == b"null"
    assert delivered(run(101, v6)[1]) == b"null6"
    assert delivered(run(228, v4)[1]) == b"null"
    assert delivered(run(229, v6)[1]) == b"null6"


def fragment_v4(frame: bytes, size: int) -> list[bytes]:
    """Split an Ethernet/IPv4 frame into IP fragments carrying ``size`` bytes each."""
    eth, ip = frame[:14], frame[14:]
    ihl = (ip[0] & 15) * 4
    hdr, payload = ip[:ihl], ip[ihl:]
    out = []
    for off in range(0, len(payload), size):
        part = payload[off : off + size]
        more = off + size < len(payload)
        flags = (0x2000 if more else 0) | (off // 8)
        h = bytearray(hdr)
        struct.pack_into(">H", h, 2, ihl + len(part))
        struct.pack_into(">H", h, 4, 4242)
        struct.pack_into(">H", h, 6, flags)
        out.append(eth + bytes(h) + part)
    return out


def test_ipv4_fragments_reassembled_in_any_order() -> None:
    syn, data = tcp_frames(C, S, bytes(range(256)) * 4)
    frags = fragment_v4(data, 256)
    assert len(frags) > 3
    dec, plugin = run(1, [syn, *reversed(frags)])
    assert delivered(plugin) == bytes(range(256)) * 4
    assert dec.stats["ip.reassembled"] == 1


def test_fragment_limits_are_counted() -> None:
    dec, plugin = recorder()
    dec.frags.max_datagram = 2000
    syn, data = tcp_frames(C, S, b"z" * 3000)
    for i, fr in enumerate([syn, *fragment_v4(data, 800)]):
        dec.feed(i, 1, fr)
    assert dec.stats["ip.fragments_oversize"] >= 1
    # Never-completed datagrams expire by capture time.
    dec2, _ = recorder()
    first = fragment_v4(tcp_frames(C, S, b"y" * 2000)[1], 800)[0]
    dec2.feed(0, 1, first)
    assert dec2.frags.pending
    dec2.tick(60 * 1_000_000_000)
    assert not dec2.frags.pending and dec2.stats["ip.fragments_expired"] == 1


def ipv6_with_ext(src: str, dst: str, l4: bytes, proto: int, ext: bytes, first_nh: int) -> bytes:
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    hdr = struct.pack("!IHBB", 6 << 28, len(ext) + len(l4), first_nh, 64) + s + d
    return b"\x02" * 12 + b"\x86\xdd" + hdr + ext + l4


def test_ipv6_extension_headers_and_fragments() -> None:
    seg_syn = tcp_segment(C6[1], S6[1], 100, 0, SYN)
    seg = tcp_segment(C6[1], S6[1], 101, 0, ACK | PSH, b"ext-headers")
    hop = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"  # hop-by-hop → destination options
    dst_opts = bytes([6, 0]) + b"\x01\x04\x00\x00\x00\x00"  # destination options → TCP
    frames = [
        ipv6_with_ext(C6[0], S6[0], seg_syn, 6, hop + dst_opts, 0),
        ipv6_with_ext(C6[0], S6[0], seg, 6, hop + dst_opts, 0),
    ]
    assert delivered(run(1, frames)[1]) == b"ext-headers"
    big = tcp_segment(C6[1], S6[1], 101, 0, ACK | PSH, b"F" * 3000)
    frags = []
    for off in range(0, len(big), 1200):
        more = 1 if off + 1200 < len(big) else 0
        fh = struct.pack("!BBHI", 6, 0, off | more, 77)
        frags.append(ipv6_with_ext(C6[0], S6[0], big[off : off + 1200], 6, fh, 44))
    dec, plugin = run(1, [ipv6_with_ext(C6[0], S6[0], seg_syn, 6, b"", 6), *frags])
    assert delivered(plugin) == b"F" * 3000


def test_ip_in_ip_tunnels() -> None:
    inner = [eth_payload(f) for f in tcp_frames(C, S, b"tunnel")]
    outer = [ip_frame("192.0.2.1", "192.0.2.2", 4, p) for p in inner]
    assert delivered(run(1, outer)[1]) == b"tunnel"
    inner6 = [eth_payload(f) for f in tcp_frames(C6, S6, b"6in4")]
    assert delivered(run(1, [ip_frame("192.0.2.1", "192.0.2.2", 41, p) for p in inner6])[1]) == b"6in4"
    # A third IP layer is refused (Packetbeat decodes at most two).
    triple = [ip_frame("198.51.100.1", "198.51.100.2", 4, eth_payload(f)) for f in outer]
    dec, plugin = run(1, triple)
    assert not plugin.handlers and dec.stats["decoder.too_many_ip_layers"] == 2


def test_udp_is_dispatched_by_port_and_oriented() -> None:
    dec, plugin = recorder()
    dec.feed(1, 1, ip_frame(C[0], S[0], 17, udp_datagram(C[1], S[1], b"query")))
    dec.feed(2, 1, ip_frame(S[0], C[0], 17, udp_datagram(S[1], C[1], b"answer")))
    dec.feed(3, 1, ip_frame(C[0], S[0], 17, udp_datagram(C[1], 9, b"other")))
    got = [(conn.client_ip, conn.server_port, d, data) for conn, d, data in plugin.datagrams]
    assert got == [(C[0], S[1], 0, b"query"), (C[0], S[1], 1, b"answer")]
    assert dec.stats["udp.unknown_port_packets"] == 1


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00" * 10,
        b"\x02" * 12 + b"\x08\x00" + b"\x45",
        b"\x02" * 12 + b"\x08\x00" + b"\x4f" + b"\x00" * 30,
        b"\x02" * 12 + b"\x08\x00" + b"\x45\x00\x00\x14" + b"\x00" * 5 + b"\x06" + b"\x00" * 10,
        b"\x02" * 12 + b"\x86\xdd" + b"\x60" + b"\x00" * 20,
        b"\x02" * 12 + b"\x86\xdd" + b"\x60\x00\x00\x00\x00\x08\x00\x40" + b"\x00" * 32 + b"\x2c" * 8,
        b"\x02" * 12 + b"\x08\x06" + b"\x00" * 28,  # ARP
    ],
)
def test_malformed_frames_are_counted_never_raise(frame: bytes) -> None:
    dec, plugin = recorder()
    assert dec.feed(1, 1, frame) == []
    assert sum(v for k, v in dec.stats.items() if k.startswith("decoder.")) == 1
    assert not plugin.handlers
