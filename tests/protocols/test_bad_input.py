"""Bad input end to end: garbage frames, random TCP streams, a 1 GB body, a SYN flood.

Nothing may raise; memory stays bounded; every drop is counted.
"""

from __future__ import annotations

import random
import struct
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synth import ACK, PSH, SYN, Conversation, ip_frame, tcp_segment
from tests.helpers import make_decoder

C = ("10.0.0.1", 40000)
S = ("10.0.0.2", 80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=30), st.sampled_from([0, 1, 101, 113, 276, 228, 229, 999]))
def test_garbage_frames_never_raise(frames: list[bytes], linktype: int) -> None:
    dec = make_decoder({"http": {"ports": [80]}})
    for i, fr in enumerate(frames):
        assert isinstance(dec.feed(i, linktype, fr), list)
    assert isinstance(dec.flush(), list)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 1), st.binary(min_size=1, max_size=300)), min_size=1, max_size=40),
    st.integers(0, 2**32 - 1),
)
def test_random_bytes_in_http_streams(messages: list[tuple[int, bytes]], seed: int) -> None:
    """Random payloads, randomly mixed with valid HTTP, at random sequence offsets."""
    rnd = random.Random(seed)
    dec = make_decoder({"http": {"ports": [80]}})
    conv = Conversation(C, S, isn_c=rnd.randrange(2**32), isn_s=rnd.randrange(2**32)).handshake()
    for side, data in messages:
        if rnd.random() < 0.3:
            data = (
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                if side == 0
                else b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
            )
        conv.send(side, data)
    frames = conv.frames
    if rnd.random() < 0.5:
        rnd.shuffle(frames)
    if rnd.random() < 0.3:
        del frames[rnd.randrange(len(frames))]
    events = []
    for ts, fr in frames:
        events += dec.feed(ts, 1, fr)
    events += dec.flush()
    for e in events:
        assert e["type"] == "http" and e["status"] in ("OK", "Error")
    assert not dec.tcp.conns


def test_one_gigabyte_body_costs_constant_memory() -> None:
    """A 1 GB download is counted byte for byte without being stored."""
    dec = make_decoder(
        {
            "http": {
                "ports": [80],
                "include_body_for": ["application/octet-stream"],
                "max_message_size": 1 << 20,
            }
        }
    )
    total = 1 << 30
    seg = 65000
    c_seq, s_seq = 1000, 5000
    ts = 1_700_000_000_000_000_000

    def frame(src, dst, seq, ack, flags, data=b""):
        return ip_frame(src[0], dst[0], 6, tcp_segment(src[1], dst[1], seq, ack, flags, data))

    events = []
    req = b"GET /big.iso HTTP/1.1\r\nHost: mirror\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % total
    events += dec.feed(ts, 1, frame(C, S, c_seq, 0, SYN))
    events += dec.feed(ts, 1, frame(S, C, s_seq, c_seq + 1, SYN | ACK))
    c_seq += 1
    s_seq += 1
    events += dec.feed(ts, 1, frame(C, S, c_seq, s_seq, ACK | PSH, req))
    c_seq += len(req)
    events += dec.feed(ts, 1, frame(S, C, s_seq, c_seq, ACK | PSH, head))
    s_seq += len(head)
    chunk = b"\xee" * seg
    tracemalloc.start()
    sent = 0
    while sent < total:
        n = min(seg, total - sent)
        ts += 10_000
        events += dec.feed(ts, 1, frame(S, C, s_seq, c_seq, ACK | PSH, chunk[:n]))
        s_seq = (s_seq + n) & 0xFFFFFFFF
        sent += n
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(events) == 1
    e = events[0]
    assert e["http"]["response"]["body"]["bytes"] <= 1 << 20  # the stored part is capped
    assert e["http"]["response"]["bytes"] == len(head) + total
    assert peak < 16 * 1024 * 1024


def test_syn_flood_of_200k_connections_is_bounded_and_counted() -> None:
    dec = make_decoder({"http": {"ports": [80]}})
    limit = dec.tcp.limits.max_connections
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(200_000):
        src = socket_ip(i)
        seg = struct.pack("!HHIIBBHHH", 1024 + i % 60000, 80, i, 0, 5 << 4, SYN, 1024, 0, 0)
        dec.feed(i * 1000, 1, ip_frame(src, "10.200.0.1", 6, seg))
    cur = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(dec.tcp.conns) <= limit
    assert dec.stats["tcp.connections"] == 200_000
    assert (
        dec.stats["tcp.connections_evicted"] + dec.stats.get("tcp.connections_expired", 0) >= 200_000 - limit
    )
    assert cur < 200 * 1024 * 1024
    # A real transaction still gets through during the flood.
    conv = Conversation(C, S, ts=300 * 10**9).handshake()
    conv.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").send(1, b"HTTP/1.1 204 No Content\r\n\r\n")
    events = []
    for ts, fr in conv.frames:
        events += dec.feed(ts, 1, fr)
    assert [e["http"]["response"]["status_code"] for e in events] == [204]


def socket_ip(i: int) -> str:
    return f"172.{16 + (i >> 16) % 16}.{(i >> 8) & 255}.{i & 255}"
