"""Hypothesis properties for the link, IP (with fragments), TCP and UDP layers of the
``Decoder`` (protocols/decoder.py, protocols/net.py, protocols/tcp.py), over every link type
it reads (Ethernet with VLAN tags, Linux SLL and SLL2, BSD null and loopback, raw IP):

* random bytes as frames: no exception escapes, state stays bounded, work is linear;
* a valid TCP or UDP frame cut at every offset (a snaplen): the payload comes out whole,
  as a prefix plus a counted gap, or the frame is counted as truncated/malformed;
* mutated valid frames: no exception escapes, state stays bounded;
* several connections over mixed link types, IPv4 and IPv6, fragmented, reordered and
  duplicated: every stream and datagram comes out exactly, with no gap.
"""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synth import ACK, PSH, SYN, tcp_segment, udp_datagram
from protocols import decoder as decoder_module
from protocols.decoder import Decoder
from protocols.stats import Counters
from tests.protocols.recorder import recorder
from tests.protocols.test_decoder_properties import EXAMPLES
from tests.protocols.workmeter import metered

FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LINKTYPES = [1, 113, 276, 0, 108, 101, 12, 14, 228, 229]
PORT = 7777


# -- building frames ------------------------------------------------------------------------


def ipv4(src: str, dst: str, proto: int, l4: bytes, ident: int = 0, frag: int = 0) -> bytes:
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        ident,
        frag,
        64,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return hdr + l4


def ipv6(src: str, dst: str, proto: int, l4: bytes, ext: bytes = b"", first: int | None = None) -> bytes:
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    nh = proto if first is None else first
    return struct.pack("!IHBB", 6 << 28, len(ext) + len(l4), nh, 64) + s + d + ext + l4


def link(lt: int, ip: bytes, vlans: int = 0) -> bytes:
    v6 = ip[0] >> 4 == 6
    et = b"\x86\xdd" if v6 else b"\x08\x00"
    if lt == 1:
        tags = b"".join(b"\x81\x00" + struct.pack("!H", 10 + i) for i in range(vlans))
        return b"\x02" * 6 + b"\x04" * 6 + tags + et + ip
    if lt == 113:
        return b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 6 + b"\x00\x00" + et + ip
    if lt == 276:
        return et + b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01\x00\x06" + b"\x02" * 8 + ip
    if lt == 0:
        return struct.pack("<I", 30 if v6 else 2) + ip
    if lt == 108:
        return struct.pack(">I", 30 if v6 else 2) + ip
    return ip  # raw IP (101, 12, 14), IPv4 (228) or IPv6 (229)


def version_for(lt: int, rnd: random.Random) -> int:
    return 4 if lt == 228 else 6 if lt == 229 else rnd.choice([4, 6])


ADDR = {4: ("10.0.0.1", "10.0.0.2"), 6: ("2001:db8::1", "2001:db8::2")}


def ip_packet(version: int, proto: int, l4: bytes, client: int = 0, ext: bool = False) -> bytes:
    src, dst = ADDR[version]
    if version == 4:
        src = f"10.0.{client // 250}.{1 + client % 250}"
        return ipv4(src, dst, proto, l4)
    src = f"2001:db8::{client + 1:x}:1"
    if ext:  # hop-by-hop then destination options, then the transport
        opts = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00" + bytes([proto, 0]) + b"\x01\x04\x00\x00\x00\x00"
        return ipv6(src, dst, proto, l4, opts, first=0)
    return ipv6(src, dst, proto, l4)


def fragment(packet: bytes, size: int, ident: int) -> list[bytes]:
    """IPv4 or IPv6 fragments of an unfragmented IP packet, ``size`` (a multiple of 8) each."""
    if packet[0] >> 4 == 4:
        hdr, body = bytearray(packet[:20]), packet[20:]
        out = []
        for off in range(0, len(body), size):
            part = body[off : off + size]
            more = off + size < len(body)
            struct.pack_into("!HHH", hdr, 2, 20 + len(part), ident, (0x2000 if more else 0) | off // 8)
            out.append(bytes(hdr) + part)
        return out
    base, nh, body = packet[:40], packet[6], packet[40:]
    out = []
    for off in range(0, len(body), size):
        part = body[off : off + size]
        more = 1 if off + size < len(body) else 0
        fh = struct.pack("!BBHI", nh, 0, off | more, ident)
        h = bytearray(base)
        struct.pack_into("!HB", h, 4, len(fh) + len(part), 44)
        out.append(bytes(h) + fh + part)
    return out


def run(frames: list[tuple[int, bytes]], **tcp: Any) -> tuple[Decoder, Any]:
    dec, plugin = recorder(**tcp)
    for i, (lt, fr) in enumerate(frames):
        dec.feed(i * 1000, lt, fr)
    dec.flush()
    return dec, plugin


def escaped(stats: Counters) -> list[str]:
    """Counters that mean an exception was caught somewhere it should not have happened."""
    return [k for k in stats if k.endswith(("handler_errors", "event_errors"))]


def bounded(dec: Decoder) -> None:
    assert len(dec.tcp.conns) <= dec.tcp.limits.max_connections
    assert dec.frags.held <= dec.frags.max_bytes
    assert len(dec.frags.pending) <= dec.frags.max_pending


def decoder_counted(stats: Counters) -> int:
    return sum(v for k, v in stats.items() if k.startswith("decoder."))


# -- properties -----------------------------------------------------------------------------


@FUZZ
@given(
    frames=st.lists(st.tuples(st.sampled_from([*LINKTYPES, 147, 9999]), st.binary(max_size=200)), max_size=30)
)
def test_random_frames_never_raise_and_work_is_linear(frames: list[tuple[int, bytes]]) -> None:
    dec, _plugin = recorder()
    with metered([decoder_module]) as meter:
        for i, (lt, fr) in enumerate(frames):
            dec.feed(i, lt, fr)
        dec.flush()
    bounded(dec)
    assert not escaped(dec.stats)
    total = sum(len(fr) for _, fr in frames)
    assert meter.lines <= 300 * (len(frames) + 1) + 4 * total, (meter.lines, len(frames), total)


@FUZZ
@given(
    lt=st.sampled_from(LINKTYPES),
    seed=st.integers(0, 2**32 - 1),
    udp=st.booleans(),
    payload=st.binary(min_size=1, max_size=120),
)
def test_a_frame_cut_at_every_offset_is_a_prefix_and_a_counted_gap_or_a_counted_drop(
    lt: int, seed: int, udp: bool, payload: bytes
) -> None:
    rnd = random.Random(seed)
    version = version_for(lt, rnd)
    ext = version == 6 and rnd.random() < 0.5
    vlans = rnd.randint(0, 2) if lt == 1 else 0
    if udp:
        data = link(lt, ip_packet(version, 17, udp_datagram(40000, PORT, payload), ext=ext), vlans)
        syn = None
    else:
        syn = link(lt, ip_packet(version, 6, tcp_segment(40000, PORT, 100, 0, SYN), ext=ext), vlans)
        data = link(
            lt, ip_packet(version, 6, tcp_segment(40000, PORT, 101, 0, ACK | PSH, payload), ext=ext), vlans
        )
    for cut in range(len(data) + 1):
        frames = ([(lt, syn)] if syn else []) + [(lt, data[:cut])]
        dec, plugin = run(frames)
        assert not escaped(dec.stats)
        if udp:
            got = [d for _c, _dir, d in plugin.datagrams]
            if got:
                assert payload.startswith(got[0])
                if len(got[0]) < len(payload):
                    assert dec.stats["udp.truncated_datagrams"] == 1, (cut, dict(dec.stats))
            else:
                assert decoder_counted(dec.stats) >= 1, (cut, dict(dec.stats))
            continue
        assert len(plugin.handlers) <= 1  # made at the first byte or gap
        got = b"".join(h.stream(0) for h in plugin.handlers)
        gaps = sum(sum(h.gaps(0)) for h in plugin.handlers)
        assert payload.startswith(got)
        if len(got) + gaps != len(payload):
            assert decoder_counted(dec.stats) >= 1, (cut, dict(dec.stats))
        elif cut < len(data):
            assert dec.stats["tcp.snaplen_truncated"] == 1 and gaps == len(payload) - len(got)


def mutate(b: bytes, rnd: random.Random) -> bytes:
    out = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        i = rnd.randrange(len(out) + 1)
        r = rnd.random()
        if r < 0.6 and out:
            out[min(i, len(out) - 1)] = rnd.randrange(256)
        elif r < 0.8:
            out[i:i] = rnd.randbytes(rnd.randint(1, 8))
        else:
            del out[i : i + rnd.randint(1, 8)]
    return bytes(out)


@FUZZ
@given(lt=st.sampled_from(LINKTYPES), seed=st.integers(0, 2**32 - 1))
def test_mutated_frames_never_raise(lt: int, seed: int) -> None:
    rnd = random.Random(seed)
    frames = []
    for k in range(rnd.randint(1, 12)):
        version = version_for(lt, rnd)
        proto = rnd.choice([6, 17, 1, 4, 41, 47])
        if proto == 6:
            l4 = tcp_segment(
                40000 + k % 3, PORT, 100 + 50 * k, 0, rnd.choice([SYN, ACK | PSH, ACK | 1, 4]), b"x" * 50
            )
        elif proto == 17:
            l4 = udp_datagram(40000, PORT, rnd.randbytes(30))
        elif proto in (4, 41):
            inner = ip_packet(4 if proto == 4 else 6, 6, tcp_segment(1, PORT, 5, 0, ACK | PSH, b"in"))
            l4 = inner
        else:
            l4 = rnd.randbytes(20)
        pkt = ip_packet(version, proto, l4, ext=rnd.random() < 0.3)
        pieces = fragment(pkt, 8 * rnd.randint(1, 4), k) if rnd.random() < 0.3 else [pkt]
        for p in pieces:
            fr = link(lt, p, rnd.randint(0, 3) if lt == 1 else 0)
            frames.append((lt, mutate(fr, rnd) if rnd.random() < 0.6 else fr))
    dec, _plugin = run(frames, reorder_window=rnd.choice([0, 4, 64]))
    bounded(dec)
    assert not escaped(dec.stats)


@settings(max_examples=max(30, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), conns=st.integers(1, 4))
def test_connections_over_mixed_links_fragments_and_reordering_come_out_exact(seed: int, conns: int) -> None:
    rnd = random.Random(seed)
    syns: list[tuple[int, bytes]] = []
    rest: list[tuple[int, bytes]] = []
    streams: dict[int, bytes] = {}
    datagrams: list[bytes] = []
    ident = 1
    for c in range(conns):
        lt = rnd.choice(LINKTYPES)
        version = version_for(lt, rnd)
        ext = version == 6 and rnd.random() < 0.3
        body = rnd.randbytes(rnd.randint(1, 4000))
        streams[40000 + c] = body
        isn = rnd.randrange(2**32)

        def frame(
            l4: bytes, lt: int = lt, version: int = version, ext: bool = ext, c: int = c
        ) -> list[bytes]:
            nonlocal ident
            pkt = ip_packet(version, 6, l4, client=c, ext=ext)
            ident += 1
            if len(pkt) > 200 and rnd.random() < 0.3:
                return [link(lt, p) for p in fragment(pkt, 8 * rnd.randint(4, 60), ident)]
            return [link(lt, pkt)]

        syns += [(lt, f) for f in frame(tcp_segment(40000 + c, PORT, isn, 0, SYN))]
        pos = 0
        while pos < len(body):
            n = rnd.randint(1, 1400)
            seg = tcp_segment(
                40000 + c, PORT, (isn + 1 + pos) & 0xFFFFFFFF, 0, ACK | PSH, body[pos : pos + n]
            )
            rest += [(lt, f) for f in frame(seg)]
            pos += n
        d = rnd.randbytes(rnd.randint(1, 3000))
        datagrams.append(d)
        pkt = ip_packet(version, 17, udp_datagram(50000 + c, PORT, d), client=c, ext=ext)
        ident += 1
        pieces = fragment(pkt, 8 * rnd.randint(8, 100), ident) if len(pkt) > 300 else [pkt]
        rest += [(lt, link(lt, p)) for p in pieces]
    rest += [rnd.choice(rest) for _ in range(rnd.randint(0, 5))]  # duplicates
    for _ in range(len(rest) // 3):  # local reordering
        i = rnd.randrange(len(rest))
        j = min(len(rest) - 1, i + rnd.randint(1, 8))
        rest[i], rest[j] = rest[j], rest[i]
    dec, plugin = run(syns + rest, reorder_window=1000)
    assert not escaped(dec.stats)
    for h in plugin.handlers:
        assert h.gaps(0) == [], (dict(dec.stats), h.conn)
        assert h.stream(0) == streams[h.conn.client_port]
    assert {h.conn.client_port for h in plugin.handlers} == set(streams)
    got = [d for _c, _dir, d in plugin.datagrams]
    assert set(got) == set(datagrams)  # duplicates of a whole datagram come out twice
    bounded(dec)


def test_ipv6_destination_options_after_the_fragment_header() -> None:
    """RFC 8200 §4.1: extension headers may follow the Fragment header, inside the
    fragmentable part. Before: parsed in the first fragment only, so reassembly broke."""
    data = bytes(range(256)) * 8
    seg = tcp_segment(40000, PORT, 101, 0, ACK | PSH, data)
    dst_opts = bytes([6, 0]) + b"\x01\x04\x00\x00\x00\x00"
    pkt = ipv6("2001:db8::1", "2001:db8::2", 60, dst_opts + seg)
    frames = [(1, link(1, ipv6("2001:db8::1", "2001:db8::2", 6, tcp_segment(40000, PORT, 100, 0, SYN))))]
    frames += [(1, link(1, p)) for p in reversed(fragment(pkt, 512, 9))]
    dec, plugin = run(frames)
    [h] = plugin.handlers
    assert h.stream(0) == data and dec.stats["ip.reassembled"] == 1
