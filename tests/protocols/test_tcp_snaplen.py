"""Segments cut by the capture's snaplen (caplen < wire length), issue 11 point 2.

The bytes the capture left out are a counted gap of exactly their size; bytes that another
segment brings are delivered instead; other connections never notice. Before: a cut
segment held for reordering left a placeholder that a later segment at the same sequence
number tripped over (``len(None)`` out of ``TcpTracker._enqueue``).
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synth import ACK, FIN, PSH, SYN, ip_frame, tcp_segment
from capture import CaptureFile
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config
from tests.helpers import shared_pcap
from tests.protocols.recorder import RecordingHandler, recorder
from tests.protocols.test_decoder_properties import EXAMPLES

C = ("10.0.0.1", 40000)
C2 = ("10.0.0.3", 40001)
S = ("10.0.0.2", 7777)


def raw(
    ts: int, src: tuple[str, int], dst: tuple[str, int], seq: int, flags: int, data: bytes = b""
) -> bytes:
    return ip_frame(src[0], dst[0], 6, tcp_segment(src[1], dst[1], seq, 0, flags, data))


def cut(frame: bytes, keep: int) -> bytes:
    """The frame as a capture with a small snaplen records it: ``keep`` payload bytes."""
    return frame[: 14 + 20 + 20 + keep]


def handler_of(plugin: Any, client: tuple[str, int]) -> RecordingHandler:
    [h] = [h for h in plugin.handlers if h.conn.client_port == client[1]]
    return h


def test_a_segment_at_the_place_of_cut_off_bytes_fills_them() -> None:
    dec, plugin = recorder()
    dec.feed(1, 1, raw(1, C, S, 100, SYN))
    dec.feed(2, 1, cut(raw(2, C, S, 201, ACK | PSH, b"B" * 100), 50))  # held: bytes 101..200 missing
    dec.feed(3, 1, raw(3, C, S, 251, ACK | PSH, b"b" * 50))  # the 50 bytes the capture cut off
    dec.feed(4, 1, raw(4, C, S, 101, ACK | PSH, b"A" * 100))
    dec.flush()  # the segments acknowledge a server side not seen yet: held for a late SYN-ACK
    h = handler_of(plugin, C)
    assert h.stream(0) == b"A" * 100 + b"B" * 50 + b"b" * 50
    assert h.gaps(0) == []
    assert dec.stats["tcp.snaplen_truncated"] == 1


def test_cut_segments_out_of_order_and_mid_stream_beside_a_clean_connection() -> None:
    dec, plugin = recorder()
    body = bytes(range(256)) * 4
    frames: list[bytes] = []
    # Connection 1 picked up mid-stream (no SYN), segments reversed, every other one cut.
    segs = [(1000 + i, body[i : i + 128]) for i in range(0, len(body), 128)]
    lost = 0
    for k, (seq, data) in enumerate(reversed(segs)):
        fr = raw(0, C, S, seq, ACK | PSH, data)
        if k % 2:
            fr = cut(fr, 28)
            lost += 100
        frames.append(fr)
    # Connection 2: clean, interleaved.
    clean = [raw(0, C2, S, 5000, SYN)] + [
        raw(0, C2, S, 5001 + i, ACK | PSH, body[i : i + 100]) for i in range(0, 1000, 100)
    ]
    mixed = [f for pair in zip(frames, clean, strict=False) for f in pair] + clean[len(frames) :]
    for i, fr in enumerate(mixed):
        dec.feed(i, 1, fr)
    dec.flush()
    h1, h2 = handler_of(plugin, C), handler_of(plugin, C2)
    assert h2.stream(0) == body[:1000] and h2.gaps(0) == []
    assert len(h1.stream(0)) + sum(h1.gaps(0)) == len(body)
    assert sum(h1.gaps(0)) == lost
    assert dec.stats["tcp.gap_bytes"] == lost
    assert not [k for k in dec.stats if k.endswith("errors") or k == "decoder.malformed"]


def test_a_cut_response_segment_of_a_real_capture_touches_only_its_connection() -> None:
    """http_minitwit: one response segment of one connection captured with 60 payload bytes."""
    pkts = list(CaptureFile(str(shared_pcap("http_minitwit"))))

    def run(packets: list[tuple[int, int, bytes, int]]) -> tuple[list[dict[str, Any]], Any]:
        dec = Decoder(build_plugins({"http": default_config("http", ports=[5000])}))
        events = dec.feed_many(packets) + dec.flush()
        return events, dec.stats

    clean, _ = run(pkts)
    # The largest frame: a response body segment.
    victim = max(range(len(pkts)), key=lambda i: len(pkts[i][2]))
    ts, lt, frame, wl = pkts[victim]
    hdr = 16 + 20 + ((frame[16 + 20 + 12] >> 4) << 2)  # Linux SLL + IPv4 + TCP
    damaged = list(pkts)
    damaged[victim] = (ts, lt, frame[: hdr + 60], wl)
    events, stats = run(damaged)
    assert stats["tcp.snaplen_truncated"] == 1
    assert stats["tcp.gap_bytes"] == len(frame) - hdr - 60

    def port(e: dict[str, Any]) -> int:
        return int(e["source"]["port"])

    hit = {port(e) for e in clean} - {port(e) for e in events if e in clean}
    assert len(hit) == 1  # only the damaged connection's events differ
    assert [e for e in clean if port(e) not in hit] == [e for e in events if port(e) not in hit]
    assert not [k for k in stats if k.endswith("errors")]


FUZZ = settings(max_examples=max(50, EXAMPLES), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    seed=st.integers(0, 2**32 - 1), syn=st.booleans(), fin=st.booleans(), window=st.sampled_from([0, 2, 64])
)
def test_every_byte_is_delivered_or_a_gap_whatever_is_cut_reordered_or_repeated(
    seed: int, syn: bool, fin: bool, window: int
) -> None:
    """Random segmentation, random snaplen cuts, duplicates and reordering of one
    stream: no exception, and delivered bytes plus gap bytes are the stream's length."""
    rnd = random.Random(seed)
    body = rnd.randbytes(rnd.randint(1, 3000))
    isn = rnd.randrange(2**32)
    frames = [raw(0, C, S, isn, SYN)] if syn else []
    pos = 0
    while pos < len(body):
        n = rnd.randint(1, 400)
        fr = raw(0, C, S, (isn + 1 + pos) & 0xFFFFFFFF, ACK | PSH, body[pos : pos + n])
        keep = n
        if rnd.random() < 0.3:
            keep = rnd.randint(0, min(n, 400) - 1)
            fr = cut(fr, keep)
        frames.append(fr)
        r = rnd.random()
        if r < 0.1:
            frames.append(fr)  # a duplicate
        elif r < 0.3:
            # A retransmission, repacketized: it may start where the capture cut the first copy.
            a = pos + (keep if keep < n and rnd.random() < 0.7 else rnd.randrange(n))
            b = min(len(body), a + rnd.randint(1, 500))
            frames.append(raw(0, C, S, (isn + 1 + a) & 0xFFFFFFFF, ACK, body[a:b]))
        pos += n
    if fin:
        frames.append(raw(0, C, S, (isn + 1 + len(body)) & 0xFFFFFFFF, ACK | FIN))
    head = frames[:1] if syn else []
    rest = frames[len(head) :]
    for _ in range(rnd.randint(0, len(rest))):
        i, j = rnd.randrange(len(rest)), rnd.randrange(len(rest))
        rest[i], rest[j] = rest[j], rest[i]
    dec, plugin = recorder(reorder_window=window)
    for i, fr in enumerate(head + rest):
        dec.feed(i, 1, fr)
    dec.flush()
    assert not [k for k in dec.stats if k.endswith("errors") or k == "decoder.malformed"], dec.stats
    total = sum(len(h.stream(0)) + sum(h.gaps(0)) for h in plugin.handlers)
    if not syn:
        assert total <= len(body)  # the start is a guess: earlier bytes may be taken for old ones
        return
    assert total == len(body), (total, len(body), dict(dec.stats))
    [h] = plugin.handlers
    p = 0
    for entry in h.log:
        if entry[0] == "data":
            assert entry[2] == body[p : p + len(entry[2])]
            p += len(entry[2])
        elif entry[0] == "gap":
            p += entry[2]
