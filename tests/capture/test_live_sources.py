"""Capture sources in-process: BPF programs, the cooked ``any`` ring, PACKET_OUTGOING
on a veth pair into a network namespace, and idle expiry on the wall clock."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from capture import bpf
from shipper.agent.monitor import nest
from tests.helpers import free_port, need_tool
from tests.live_helpers import (
    need_capture,
    veth_namespace,
)

pytestmark = pytest.mark.integration


def test_invalid_filter_names_the_expression() -> None:
    with pytest.raises(bpf.FilterError, match=r"invalid BPF filter 'port 99999999'"):
        bpf.compile_filter("port 99999999")


def test_uncook_moves_offsets_past_the_sll_header() -> None:
    prog = bpf.compile_filter("udp port 53", bpf.LINKTYPE_LINUX_SLL)
    fixed = bpf.uncook(prog)
    assert fixed is not None and len(fixed) == len(prog)
    for (code, _jt, _jf, k), (_c2, _j1, _j2, k2) in zip(prog, fixed, strict=True):
        if code & 0x07 in (bpf.BPF_LD, bpf.BPF_LDX) and code & 0xE0 in (
            bpf.BPF_ABS,
            bpf.BPF_IND,
            bpf.BPF_MSH,
        ):
            if k == 14:  # the SLL protocol field becomes the ancillary load
                assert k2 == bpf.SKF_AD_OFF + bpf.SKF_AD_PROTOCOL
            else:
                assert k2 == k - 16
        else:
            assert k2 == k
    # A filter on the SLL address bytes cannot run in the kernel.
    assert bpf.uncook(bpf.compile_filter("ether[6] = 1", bpf.LINKTYPE_LINUX_SLL)) is None


def test_skip_outgoing_prefix_keeps_the_program_intact() -> None:
    prog = bpf.compile_filter("tcp port 80")
    both = bpf.skip_outgoing(prog)
    assert both[3:] == prog and both[2] == (bpf.BPF_RET | bpf.BPF_K, 0, 0, 0)
    one = bpf.skip_outgoing(prog, only_ifindex=7)
    assert one[5:] == prog and one[3][3] == 7
    # jf of the first test jumps over the rest of the prefix.
    assert one[1][2] == 3 and one[3][2] == 1
    assert bpf.skip_outgoing([])[-1] == (bpf.BPF_RET | bpf.BPF_K, 0, 0, 0xFFFFFFFF)


def test_nest_builds_the_stats_tree() -> None:
    assert nest({"a.b": 1, "a.c.d": 2, "e": 3}) == {"a": {"b": 1, "c": {"d": 2}}, "e": 3}
    assert nest({"a": 1, "a.b": 2}) == {"a": {"value": 1, "b": 2}}


def _read_for(
    src: Any, want: int, extra: float = 0.3, limit: float = 10.0
) -> list[tuple[int, int, bytes, int]]:
    """Read until ``want`` packets came (or ``limit`` s passed), then ``extra`` s more so
    that unexpected packets would show up too. No timing is asserted."""
    out: list[tuple[int, int, bytes, int]] = []
    end = time.monotonic() + limit
    while len(out) < want and time.monotonic() < end:
        out += src.read_batch(0.1)
    end = time.monotonic() + extra
    while time.monotonic() < end:
        out += src.read_batch(0.05)
    return out


def test_any_device_gives_cooked_frames_once_each() -> None:
    need_capture()
    from capture.afpacket import AfPacketSource
    from protocols.decoder import Decoder

    port = free_port()
    src = AfPacketSource("any", bpf_filter=f"udp port {port}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(5):
                s.sendto(b"ping %d" % i, ("127.0.0.1", port))
            s.sendto(b"other", ("127.0.0.1", port + 1 if port < 65535 else port - 1))
        pkts = _read_for(src, 5)
        stats = src.stats()
    finally:
        src.close()
    # Each datagram once (lo's outgoing copy dropped in the kernel), nothing else.
    assert [p[2][-6:] for p in pkts] == [b"ping %d" % i for i in range(5)]
    for ts, lt, frame, wire in pkts:
        assert lt == 113 and wire == len(frame)
        pkttype, hatype, _halen = struct.unpack(">HHH", frame[:6])
        assert frame[14:16] == b"\x08\x00" and hatype == 772 and pkttype == 0  # PACKET_HOST
        assert abs(ts - time.time_ns()) < 60 * 10**9
    assert stats["kernel.received"] == 5 and stats["kernel.dropped"] == 0
    dec = Decoder([])
    for ts, lt, frame, _ in pkts:
        dec.feed(ts, lt, frame)
    assert dec.stats.get("udp.unknown_port_packets") == 5  # parsed through SLL → IPv4 → UDP


# -- PACKET_OUTGOING on a veth pair --------------------------------------------------------------


_SEND = (
    "import socket,sys; s=socket.socket(2,2); "
    "[s.sendto(b'in%d'%i,(sys.argv[1],int(sys.argv[2]))) for i in range(3)]"
)


@pytest.mark.parametrize("kind", ["af_packet", "pcap"])
def test_ignore_outgoing_uses_the_packet_type(kind: str) -> None:
    need_capture(kind)
    ip = need_tool("ip")
    port = 39999
    with veth_namespace() as (ns, host_if, host_ip, peer_ip):
        seen = {}
        for ignore in (False, True):
            if kind == "af_packet":
                from capture.afpacket import AfPacketSource

                src: Any = AfPacketSource(host_if, bpf_filter=f"udp port {port}", ignore_outgoing=ignore)
            else:
                from capture.libpcap import PcapSource

                src = PcapSource(host_if, bpf_filter=f"udp port {port}", direction_in=ignore)
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for i in range(2):
                        s.sendto(b"out%d" % i, (peer_ip, port))  # leaves through host_if
                subprocess.run(
                    [ip, "netns", "exec", ns, sys.executable, "-c", _SEND, host_ip, str(port)], check=True
                )
                pkts = _read_for(src, 3 if ignore else 5)
            finally:
                src.close()
            seen[ignore] = sorted(p[2][42:] for p in pkts)  # Ethernet + IPv4 + UDP headers
    assert seen[False] == [b"in0", b"in1", b"in2", b"out0", b"out1"]
    assert seen[True] == [b"in0", b"in1", b"in2"]


# -- ring: kernel drops and fanout ------------------------------------------------------------


def test_kernel_drops_are_counted_when_the_ring_is_full() -> None:
    """Nobody reads a 2 MiB ring while 40,000 datagrams arrive: the kernel drops and
    PACKET_STATISTICS says how many; every datagram is either read or counted as dropped."""
    need_capture()
    from capture.afpacket import AfPacketSource

    port = free_port()
    src = AfPacketSource("lo", bpf_filter=f"udp port {port}", buffer_size_mb=1)
    sent = 40_000
    try:
        assert src.block_nr == 2
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
        ):
            sink.bind(("127.0.0.1", port))
            for _ in range(sent):
                s.sendto(b"x" * 18, ("127.0.0.1", port))
        read = len(_read_for(src, sent, extra=0.5, limit=3.0))
        stats = src.stats()
    finally:
        src.close()
    assert stats["kernel.dropped"] > 0
    assert stats["kernel.received"] == sent
    assert read + stats["kernel.dropped"] == sent
    assert stats["packets"] == read


def test_fanout_group_spreads_flows_over_sockets() -> None:
    need_capture()
    from capture.afpacket import AfPacketSource

    port = free_port()
    group = os.getpid() & 0xFFFF
    a = AfPacketSource("lo", bpf_filter=f"udp port {port}", fanout_group=group)
    b = AfPacketSource("lo", bpf_filter=f"udp port {port}", fanout_group=group)
    try:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(32)]
        for i, s in enumerate(socks):
            s.sendto(b"flow%02d" % i, ("127.0.0.1", port))
            s.close()
        got_a = [p[2][42:] for p in _read_for(a, 32, extra=0.3, limit=1.0)]
        got_b = [p[2][42:] for p in _read_for(b, 32 - len(got_a), extra=0.2)]
    finally:
        a.close()
        b.close()
    # Each flow (source port) goes to exactly one member; both get some of the 32.
    assert sorted(got_a + got_b) == [b"flow%02d" % i for i in range(32)]
    assert got_a and got_b


_INJECT = r"""
import socket, struct, sys
ifname, dst_mac, port = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
for i in range(3):
    payload = b"vlan%d" % i
    udp = struct.pack(">HHHH", 40000, port, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([10, 203, 0, 2]), bytes([10, 203, 0, 1]))
    tag = struct.pack(">HH", 0x8100, 7)
    s.send(dst_mac + bytes.fromhex("020000000002") + tag + b"\x08\x00" + ip + udp)
"""


@pytest.mark.parametrize("kind", ["af_packet", "pcap"])
def test_vlan_tag_stripped_by_the_kernel_is_put_back(kind: str) -> None:
    """802.1Q frames arriving on a veth: the kernel moves the tag into the ring header
    before the taps see the frame; the frame handed over carries it again, and the
    generated ``F or (vlan and (F))`` lets it through."""
    need_capture(kind)
    ip = need_tool("ip")
    from protocols.decoder import Decoder

    port = 39998
    with veth_namespace() as (ns, host_if, _host_ip, _peer_ip):
        peer_if = "wbp" + host_if[3:]
        mac = Path(f"/sys/class/net/{host_if}/address").read_text().strip()
        filt = f"udp port {port} or (vlan and (udp port {port}))"
        if kind == "af_packet":
            from capture.afpacket import AfPacketSource

            src: Any = AfPacketSource(host_if, bpf_filter=filt)
        else:
            from capture.libpcap import PcapSource

            src = PcapSource(host_if, bpf_filter=filt)
        try:
            subprocess.run(
                [ip, "netns", "exec", ns, sys.executable, "-c", _INJECT, peer_if, mac, str(port)],
                check=True,
            )
            pkts = _read_for(src, 3)
        finally:
            src.close()
    assert len(pkts) == 3
    for i, (_ts, lt, frame, wire) in enumerate(pkts):
        assert lt == 1 and frame[12:14] == b"\x81\x00"
        assert int.from_bytes(frame[14:16], "big") & 0xFFF == 7 and frame[16:18] == b"\x08\x00"
        assert frame[46:] == b"vlan%d" % i and wire == len(frame)
    dec = Decoder([])
    for ts, lt, frame, _ in pkts:
        dec.feed(ts, lt, frame)
    assert dec.stats.get("udp.unknown_port_packets") == 3


@pytest.mark.parametrize("kind", ["af_packet", "pcap"])
def test_snaplen_truncates_and_wire_length_is_kept(kind: str) -> None:
    need_capture(kind)
    port = free_port()
    if kind == "af_packet":
        from capture.afpacket import AfPacketSource

        src: Any = AfPacketSource("lo", bpf_filter=f"udp port {port}", snaplen=100)
    else:
        from capture.libpcap import PcapSource

        src = PcapSource("lo", bpf_filter=f"udp port {port}", snaplen=100)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"z" * 1000, ("127.0.0.1", port))
        pkts = _read_for(src, 1)
    finally:
        src.close()
    assert [(len(f), wl) for _ts, _lt, f, wl in pkts] == [(100, 14 + 20 + 8 + 1000)]
