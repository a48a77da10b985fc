"""TCP reassembly: ordering, retransmissions, overlaps, gaps, teardown, expiry, limits."""

from __future__ import annotations

import random

from benchmarks.synth import ACK, FIN, PSH, RST, SYN, Conversation, ip_frame, tcp_segment
from tests.protocols.recorder import RecordingHandler, recorder

C = ("10.0.0.1", 40000)
S = ("10.0.0.2", 7777)
NS = 1_000_000_000


def feed(dec, frames) -> list:
    events = []
    for ts, fr in frames:
        events += dec.feed(ts, 1, fr)
    return events


def conversation(**kw) -> Conversation:
    return Conversation(C, S, mss=100, **kw).handshake()


def only_handler(plugin) -> RecordingHandler:
    assert len(plugin.handlers) == 1
    return plugin.handlers[0]


REQ = bytes(range(256)) * 3  # 768 bytes = 8 segments of 100
RESP = b"response-" * 120


def test_in_order_delivery_and_fin() -> None:
    dec, plugin = recorder()
    conv = conversation().send(0, REQ).send(1, RESP).close()
    events = feed(dec, conv.frames)
    h = only_handler(plugin)
    assert h.stream(0) == REQ and h.stream(1) == RESP
    assert ("fin", 0) in h.log and ("fin", 1) in h.log
    assert h.log[-1] == ("close", "fin")
    assert [e["txn"] for e in events] == [("closed", C[1], "fin")]
    assert h.conn.client_ip == C[0] and h.conn.server_port == S[1]
    assert not dec.tcp.conns


def test_out_of_order_segments_are_buffered_not_gaps() -> None:
    dec, plugin = recorder()
    frames = conversation().send(0, REQ).send(1, RESP).close().frames
    data_idx = [i for i, (_ts, fr) in enumerate(frames) if len(fr) > 70]
    rnd = random.Random(7)
    shuffled = list(frames)
    # Reverse and shuffle the request's segments among themselves.
    req_idx = data_idx[:8]
    moved = [frames[i] for i in req_idx]
    rnd.shuffle(moved)
    for i, fr in zip(req_idx, moved, strict=True):
        shuffled[i] = fr
    feed(dec, shuffled)
    h = only_handler(plugin)
    assert h.stream(0) == REQ and h.stream(1) == RESP
    assert h.gaps(0) == [] and h.gaps(1) == []
    assert dec.stats["tcp.out_of_order"] >= 1
    assert "tcp.gaps" not in dec.stats


def test_duplicates_and_retransmissions_are_dropped() -> None:
    dec, plugin = recorder()
    frames = conversation().send(0, REQ).send(1, RESP).close().frames
    doubled = [f for f in frames for _ in (0, 1)]
    feed(dec, doubled)
    h = only_handler(plugin)
    assert h.stream(0) == REQ and h.stream(1) == RESP
    assert dec.stats["tcp.retransmits"] >= 16


def raw(
    ts: int, src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int, data: bytes = b""
):
    return ts, ip_frame(src[0], dst[0], 6, tcp_segment(src[1], dst[1], seq, ack, flags, data))


def test_overlapping_segments_are_trimmed() -> None:
    dec, plugin = recorder()
    data = bytes(range(200))
    frames = [
        raw(1, C, S, 100, 0, SYN),
        raw(2, S, C, 500, 101, SYN | ACK),
        raw(3, C, S, 101, 501, ACK | PSH, data[:100]),
        raw(4, C, S, 151, 501, ACK | PSH, data[50:150]),  # overlaps the first by 50
        raw(5, C, S, 101, 501, ACK | PSH, data[:200]),  # repacketized retransmission
    ]
    feed(dec, frames)
    h = only_handler(plugin)
    assert h.stream(0) == data
    assert dec.stats["tcp.overlaps"] >= 1


def test_true_gap_reported_with_its_size() -> None:
    dec, plugin = recorder(reorder_window=4)
    conv = conversation().send(0, REQ)
    frames = conv.frames
    data = [i for i, (_ts, fr) in enumerate(frames) if len(fr) > 70]
    lost = frames.pop(data[3])  # the 4th segment (bytes 300..400) never shows up
    assert lost
    conv.frames = frames
    conv.send(1, RESP).close()
    feed(dec, conv.frames)
    h = only_handler(plugin)
    assert h.gaps(0) == [100]
    assert h.stream(0) == REQ[:300] + REQ[400:]
    assert h.stream(1) == RESP
    # The request side (with its gap) is delivered before the response that answers it.
    kinds = [(e[0], e[1]) for e in h.log if e[0] in ("data", "gap")]
    assert kinds.index(("gap", 0)) < kinds.index(("data", 1))
    assert dec.stats["tcp.gap_bytes"] == 100


def test_gap_resolved_by_capture_time_timeout() -> None:
    dec, plugin = recorder(reorder_window=10_000)
    frames = [
        raw(1 * NS, C, S, 100, 0, SYN),
        raw(1 * NS, S, C, 700, 101, SYN | ACK),
        raw(1 * NS, C, S, 101, 701, ACK | PSH, b"a" * 10),
        raw(1 * NS, C, S, 121, 701, ACK | PSH, b"c" * 10),  # bytes 111..121 lost
    ]
    feed(dec, frames)
    h = only_handler(plugin)
    assert h.gaps(0) == []
    dec.tick(3 * NS)  # well past reorder_timeout (0.5 s of capture time)
    assert h.gaps(0) == [10]
    assert h.stream(0) == b"a" * 10 + b"c" * 10


def test_data_before_a_late_syn_ack_waits_for_it() -> None:
    """The server's SYN-ACK is captured after the client's second request, which
    acknowledges the first response: that response is delivered before it (the client's
    data used to go first, as if the server's side had not started), so pairing by order
    stays right."""
    dec, plugin = recorder()
    frames = [
        raw(1, C, S, 100, 0, SYN),
        raw(2, C, S, 101, 701, ACK | PSH, b"Q1"),
        raw(3, C, S, 103, 703, ACK | PSH, b"Q2"),  # sent after R1 arrived
        raw(4, S, C, 700, 101, SYN | ACK),
        raw(5, S, C, 701, 103, ACK | PSH, b"R1"),
        raw(6, S, C, 703, 105, ACK | PSH, b"R2"),
    ]
    feed(dec, frames)
    h = only_handler(plugin)
    assert [(e[0], e[1], e[2]) for e in h.log if e[0] == "data"] == [
        ("data", 0, b"Q1"), ("data", 1, b"R1"), ("data", 0, b"Q2"), ("data", 1, b"R2")
    ]  # fmt: skip


def test_response_before_request_in_capture_order() -> None:
    """A response captured before the request it answers is held until the request arrives."""
    dec, plugin = recorder()
    frames = conversation().send(0, b"Q" * 50).send(1, b"R" * 50).close().frames
    i_req = next(i for i, (_t, fr) in enumerate(frames) if fr.endswith(b"Q" * 50))
    i_resp = next(i for i, (_t, fr) in enumerate(frames) if fr.endswith(b"R" * 50))
    frames[i_req], frames[i_resp] = frames[i_resp], frames[i_req]
    feed(dec, frames)
    h = only_handler(plugin)
    order = [e[1] for e in h.log if e[0] == "data"]
    assert order == [0, 1]
    assert h.gaps(0) == [] and h.gaps(1) == []


def test_request_never_captured_is_a_gap_then_response_delivered() -> None:
    dec, plugin = recorder(reorder_window=3)
    conv = conversation().send(0, b"Q" * 50)
    conv.frames = [f for f in conv.frames if not f[1].endswith(b"Q" * 50)]
    conv.send(1, b"R" * 50)
    for _ in range(5):
        conv.send(1, b"more" * 10)
    feed(dec, conv.frames)
    dec.flush()
    h = only_handler(plugin)
    assert h.gaps(0) == [50]
    assert h.stream(1).startswith(b"R" * 50)


def test_sequence_numbers_wrap_around() -> None:
    dec, plugin = recorder()
    conv = Conversation(C, S, mss=100, isn_c=(1 << 32) - 350, isn_s=(1 << 32) - 10).handshake()
    conv.send(0, REQ).send(1, RESP).close()
    frames = conv.frames
    # Swap two segments across the wrap point for good measure.
    data = [i for i, (_t, fr) in enumerate(frames) if len(fr) > 70]
    frames[data[3]], frames[data[4]] = frames[data[4]], frames[data[3]]
    feed(dec, frames)
    h = only_handler(plugin)
    assert h.stream(0) == REQ and h.stream(1) == RESP
    assert h.gaps(0) == []


def test_reset_closes_connection() -> None:
    dec, plugin = recorder()
    conv = conversation().send(0, REQ).reset(1)
    feed(dec, conv.frames)
    h = only_handler(plugin)
    assert h.log[-1] == ("close", "rst")
    assert not dec.tcp.conns


def test_idle_expiry_runs_on_capture_time() -> None:
    dec, plugin = recorder()
    conv = conversation(ts=100 * NS).send(0, REQ)
    feed(dec, conv.frames)
    h = only_handler(plugin)
    assert dec.tick(105 * NS) == []
    assert h.log[-1][0] != "close"
    events = dec.tick(111 * NS)  # transaction_timeout is 10 s
    assert h.log[-1] == ("close", "expired")
    assert [e["txn"][2] for e in events] == ["expired"]
    assert dec.stats["tcp.connections_expired"] == 1


def test_expiry_also_happens_while_other_traffic_flows() -> None:
    dec, plugin = recorder()
    feed(dec, conversation(ts=100 * NS).send(0, REQ).frames)
    other = Conversation(("10.0.0.9", 41000), S, ts=200 * NS, mss=100).handshake().send(0, b"x")
    feed(dec, other.frames)
    assert plugin.handlers[0].log[-1] == ("close", "expired")


def test_connection_table_is_capped_and_evictions_counted() -> None:
    dec, plugin = recorder(max_connections=100)
    frames = []
    for i in range(1000):
        frames.append(raw(i, (f"10.1.{i // 250}.{i % 250 + 1}", 30000 + i), S, 1000, 0, SYN))
        frames.append(raw(i, (f"10.1.{i // 250}.{i % 250 + 1}", 30000 + i), S, 1001, 0, ACK | PSH, b"x"))
    feed(dec, frames)
    assert len(dec.tcp.conns) <= 100
    assert dec.stats["tcp.connections_evicted"] == 900
    closed = [h for h in plugin.handlers if h.log and h.log[-1] == ("close", "evicted")]
    assert len(closed) == 900


def test_reorder_buffer_is_bounded() -> None:
    dec, plugin = recorder(reorder_buffer=5000, reorder_window=10_000)
    frames = [raw(1, C, S, 100, 0, SYN)]
    # The first 100 bytes are lost; 100 segments of 100 bytes arrive after the hole.
    for k in range(100):
        frames.append(raw(2 + k, C, S, 201 + 100 * k, 0, ACK | PSH, bytes([k]) * 100))
    feed(dec, frames)
    h = only_handler(plugin)
    assert dec.stats["tcp.reorder_overflows"] >= 1
    assert h.gaps(0) == [100]
    assert sum(len(e[2]) for e in h.log if e[0] == "data") == 100 * 100
    st = dec.tcp.conns[next(iter(dec.tcp.conns))].streams[0]
    assert st.buf_bytes <= 5000


def test_mid_stream_pickup_without_syn() -> None:
    dec, plugin = recorder()
    conv = conversation().send(0, REQ).send(1, RESP)
    frames = conv.frames[3:]  # no handshake
    feed(dec, frames)
    dec.flush()
    h = only_handler(plugin)
    assert h.stream(0) == REQ and h.stream(1) == RESP
    assert h.log[-1] == ("close", "flush")


def test_port_reuse_with_new_syn_starts_a_new_connection() -> None:
    dec, plugin = recorder()
    first = conversation(isn_c=1000).send(0, b"one").close()
    second = conversation(isn_c=9_000_000, ts=first.ts + NS).send(0, b"two").close()
    feed(dec, first.frames + second.frames)
    assert [h.stream(0) for h in plugin.handlers] == [b"one", b"two"]


def test_late_duplicates_after_close_do_not_open_a_connection() -> None:
    dec, plugin = recorder()
    conv = conversation().send(0, REQ).send(1, RESP).close()
    frames = conv.frames + conv.frames[:6]  # SYN and early data again, after the FINs
    feed(dec, frames)
    assert len(plugin.handlers) == 1
    assert dec.stats["tcp.late_duplicates"] >= 1
    assert not dec.tcp.conns


def test_snaplen_truncated_segment_is_a_gap_of_the_missing_bytes() -> None:
    dec, plugin = recorder()
    frames = [
        raw(1, C, S, 100, 0, SYN),
        raw(1, S, C, 700, 101, SYN | ACK),
        raw(2, C, S, 101, 701, ACK | PSH, b"A" * 300),
        raw(3, C, S, 401, 701, ACK | PSH, b"B" * 10),
    ]
    ts, fr = frames[2]
    frames[2] = (ts, fr[: len(fr) - 200])  # captured with a small snaplen
    feed(dec, frames)
    h = only_handler(plugin)
    assert h.gaps(0) == [200]
    assert h.stream(0) == b"A" * 100 + b"B" * 10


def test_fin_only_and_rst_only_packets_do_not_create_connections() -> None:
    dec, plugin = recorder()
    feed(dec, [raw(1, C, S, 5, 6, FIN | ACK), raw(2, C, S, 5, 6, RST), raw(3, C, S, 5, 6, ACK)])
    assert not dec.tcp.conns and not plugin.handlers


def test_unknown_ports_are_not_tracked() -> None:
    dec, _plugin = recorder()
    feed(
        dec,
        [raw(1, C, ("10.0.0.2", 1234), 100, 0, SYN), raw(2, C, ("10.0.0.2", 1234), 101, 0, PSH | ACK, b"x")],
    )
    assert not dec.tcp.conns
    assert dec.stats["tcp.unknown_port_packets"] == 2


def test_server_side_seen_first_is_oriented_by_port() -> None:
    dec, plugin = recorder()
    conv = conversation().send(0, REQ).send(1, RESP)
    resp_first = [f for f in conv.frames[3:] if len(f[1]) > 70 and RESP[:20] in f[1]]
    feed(dec, resp_first)
    dec.flush()  # picked up mid-connection: held until its start is settled (or the end)
    h = only_handler(plugin)
    assert h.conn.server_port == S[1] and h.conn.client_port == C[1]
    assert h.stream(1) == RESP
