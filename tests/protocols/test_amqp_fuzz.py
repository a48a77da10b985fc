"""Fuzzing the AMQP decoder: random bytes, a conversation of every method cut at every
offset and fed whole, byte by byte and in random chunks, mutated frames, lying frame sizes,
body sizes, string and table lengths, random method arguments and content headers. Only
counted errors may come out: no exception escapes the handler, buffers stay bounded and the
time stays linear."""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import amqpwire as w
from protocols.amqp import AmqpConfig, AmqpPlugin
from protocols.amqp.methods import METHODS
from protocols.amqp.parser import MAX_CONTENTS, FrameParser
from protocols.amqp.wire import Malformed, table
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.stats import Counters

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_FRAME = 64 * 1024

HEADERS = {
    "s": "v",
    "n": -1,
    "t": True,
    "d": ("D", (2, 5)),
    "x": b"\x00",
    "a": [1, {"k": None}],
    "T": ("T", 1),
}

#: A conversation: (direction, bytes) in wire order, every method and message kind.
SAMPLES: list[tuple[int, bytes]] = [
    (FROM_CLIENT, w.PROTOCOL_HEADER),
    (FROM_SERVER, w.connection_start({"product": "RabbitMQ", "capabilities": {"x": True}})),
    (FROM_CLIENT, w.connection_start_ok({"product": "pika"})),
    (FROM_SERVER, w.connection_tune()),
    (FROM_CLIENT, w.connection_tune_ok() + w.connection_open("/")),
    (FROM_SERVER, w.connection_open_ok()),
    (FROM_CLIENT, w.channel_open(1)),
    (FROM_SERVER, w.channel_open_ok(1)),
    (FROM_CLIENT, w.exchange_declare(1, "ex", "topic", durable=True, arguments={"alternate-exchange": "ae"})),
    (FROM_SERVER, w.ok(1, 40, 11)),
    (FROM_CLIENT, w.queue_declare(1, "q", arguments={"x-max-length": 10, "x-list": [1, "a"]})),
    (FROM_SERVER, w.queue_declare_ok(1, "q", 3, 1)),
    (FROM_CLIENT, w.queue_bind(1, "q", "ex", "a.#", arguments={"x": ("f", 1.5)})),
    (FROM_SERVER, w.ok(1, 50, 21)),
    (FROM_CLIENT, w.basic_qos(1, 0, 5)),
    (FROM_SERVER, w.ok(1, 60, 11)),
    (
        FROM_CLIENT,
        w.basic_publish(
            1, "ex", "a.b", b"x" * 9000, frame_max=4096, content_type="text/plain", headers=HEADERS
        ),
    ),
    (FROM_CLIENT, w.basic_publish(1, "", "q", b"", message_id="empty", timestamp=1709283907, priority=3)),
    (FROM_CLIENT, w.basic_consume(1, "q", "t1")),
    (FROM_SERVER, w.basic_consume_ok(1, "t1")),
    (
        FROM_SERVER,
        w.basic_deliver(1, "t1", 1, "ex", "a.b", b"{}", content_type="application/json", user_id="u"),
    ),
    (FROM_CLIENT, w.basic_ack(1, 1) + w.basic_nack(1, 2) + w.basic_reject(1, 3)),
    (FROM_CLIENT, w.basic_get(1, "q")),
    (FROM_SERVER, w.basic_get_ok(1, 4, "ex", "a.b", 0, b"\x00\xff" * 700)),
    (FROM_CLIENT, w.basic_get(1, "q")),
    (FROM_SERVER, w.basic_get_empty(1)),
    (FROM_SERVER, w.basic_return(1, 312, "NO_ROUTE", "ex", "none", b"r")),
    (FROM_CLIENT, w.tx(1, "select")),
    (FROM_SERVER, w.tx(1, "select", True)),
    (FROM_CLIENT, w.confirm_select(1)),
    (FROM_SERVER, w.confirm_select_ok(1)),
    (FROM_CLIENT, w.heartbeat()),
    (FROM_CLIENT, w.queue_declare(1, "missing", passive=True)),
    (FROM_SERVER, w.close(1, 404, "NOT_FOUND", 50, 10)),
    (FROM_CLIENT, w.close_ok(1)),
    (FROM_SERVER, w.close(0, 320, "CONNECTION_FORCED")),
]


def plugin(**kw: Any) -> AmqpPlugin:
    cfg = AmqpConfig(
        ports=[5672],
        send_request=True,
        send_response=True,
        hide_connection_information=False,
        max_frame_size=MAX_FRAME,
        **kw,
    )
    return AmqpPlugin(cfg, Counters())


def feed(plug: AmqpPlugin, pieces: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """Feed (direction, bytes) pieces to one handler; events out; state checked bounded."""
    h = plug.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", 5672))
    events: list[dict[str, Any]] = []
    ts = 1_000
    for direction, data in pieces:
        ts += 1_000
        for txn in h.on_data(direction, data, ts):
            events.append(plug.to_event(txn))
        for p in h.parsers:
            assert len(p.buf) <= MAX_FRAME + 8
            assert len(p.contents) <= MAX_CONTENTS
            for c in p.contents.values():
                assert sum(map(len, c.kept)) <= max(0, plug.config.max_body_length)
        assert len(h.pending) <= plug.config.max_pending_requests
    for txn in h.on_close("fin"):
        events.append(plug.to_event(txn))
    return events


def view(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            e["method"],
            e["status"],
            e.get("request"),
            e.get("response"),
            str(e["amqp"]),
            e["source"].get("bytes"),
        )
        for e in events
    ]


def pieces_of(messages: list[tuple[int, bytes]], cuts: list[int]) -> list[tuple[int, bytes]]:
    out = []
    for k, (d, m) in enumerate(messages):
        points = sorted({c % (len(m) + 1) for c in cuts[k % max(len(cuts), 1) :]} | {0, len(m)})
        out += [(d, m[a:b]) for a, b in itertools.pairwise(points) if b > a]
    return out


REFERENCE = view(feed(plugin(), SAMPLES))


def test_reference_conversation_decodes() -> None:
    methods = [v[0] for v in REFERENCE]
    assert methods == [
        "connection.start",
        "connection.tune",
        "connection.open",
        "channel.open",
        "exchange.declare",
        "queue.declare",
        "queue.bind",
        "basic.qos",
        "basic.publish",
        "basic.publish",
        "basic.consume",
        "basic.deliver",
        "basic.ack",
        "basic.nack",
        "basic.reject",
        "basic.get",
        "basic.get-empty",
        "basic.return",
        "tx.select",
        "confirm.select",
        "channel.close",
        "connection.close",
    ]


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
def test_same_transactions_whole_bytewise_and_chunked(cuts: list[int]) -> None:
    assert view(feed(plugin(), pieces_of(SAMPLES, cuts))) == REFERENCE


def test_byte_by_byte() -> None:
    pieces = [(d, m[i : i + 1]) for d, m in SAMPLES for i in range(len(m))]
    assert view(feed(plugin(), pieces)) == REFERENCE


def test_every_truncation_is_counted_not_raised() -> None:
    for d, m in SAMPLES:
        whole = view(feed(plugin(), [(d, m)]))
        bounds = {0}
        while m[max(bounds) :] and m[max(bounds) :][:4] != b"AMQP":
            bounds.add(max(bounds) + 8 + struct.unpack_from(">I", m, max(bounds) + 3)[0])
        for cut in set(range(1, len(m))) - bounds:
            plug = plugin()
            got = view(feed(plug, [(d, m[:cut])]))
            # The frames before the cut (ack + nack + reject in one write) and nothing else;
            # the frame cut short is counted.
            assert got == whole[: len(got)]
            assert plug.stats["amqp.incomplete_content"] >= 1, (m[:12], cut)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.binary(max_size=300)), max_size=20))
def test_random_bytes(pieces: list[tuple[int, bytes]]) -> None:
    feed(plugin(), pieces)


@FUZZ
@given(st.sampled_from(sorted(METHODS)), st.binary(max_size=120), st.integers(min_value=0, max_value=3))
def test_random_arguments_for_every_method(ids: tuple[int, int], args: bytes, channel: int) -> None:
    frame = w.method(channel, ids[0], ids[1], args)
    feed(plugin(), [(FROM_CLIENT, frame), (FROM_SERVER, frame), *SAMPLES[-4:]])


@FUZZ
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2**64 - 1))
def test_random_content_headers(props: bytes, size: int) -> None:
    header = w.frame(2, 1, struct.pack(">HHQ", 60, 0, size) + props)
    publish = w.method(1, 60, 40, b"\x00\x00\x00\x01q\x00")
    feed(plugin(), [(FROM_CLIENT, publish + header + w.frame(3, 1, b"abc")), *SAMPLES[-4:]])


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(SAMPLES) - 1),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=20_000), st.integers(min_value=0, max_value=255)),
        max_size=8,
    ),
    st.lists(st.integers(min_value=0, max_value=20_000), max_size=5),
)
def test_mutated_messages(k: int, flips: list[tuple[int, int]], cuts: list[int]) -> None:
    d, m = SAMPLES[k]
    b = bytearray(m)
    for pos, val in flips:
        b[pos % len(b)] = val
    feed(plugin(), pieces_of([(d, bytes(b)), *SAMPLES], cuts))


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(SAMPLES) - 1),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=0, max_value=400),
    st.sampled_from([1, 4]),
)
def test_lying_lengths(k: int, value: int, where: int, width: int) -> None:
    """Any number written over a frame size, a body size, a string or table length."""
    d, m = SAMPLES[k]
    b = bytearray(m)
    pos = min(where, len(b) - width)
    if width == 4:
        struct.pack_into(">I", b, pos, value)
    else:
        b[pos] = value & 0xFF
    feed(plugin(), [(d, bytes(b)), *SAMPLES])


@FUZZ
@given(st.binary(max_size=300))
def test_tables_raise_only_malformed(data: bytes) -> None:
    try:
        table(struct.pack(">I", len(data)) + data, 0)
    except Malformed:
        pass


def test_lying_sizes_allocate_nothing() -> None:
    stats = Counters()
    p = FrameParser(FROM_CLIENT, stats, max_frame_size=MAX_FRAME)
    # A method frame that claims 4 GB: refused at once, nothing kept.
    assert p.feed(struct.pack(">BHI", 1, 1, 2**32 - 1) + b"\0" * 1000, 0) == []
    assert stats["amqp.oversized_frames"] == 1 and not p.buf
    # A message that claims 2**64 bytes of body, then body frames: only max_body_length kept.
    p.feed(
        w.method(1, 60, 40, b"\x00\x00\x00\x01q\x00")
        + w.frame(2, 1, struct.pack(">HHQH", 60, 0, 2**64 - 1, 0)),
        0,
    )
    frame = w.frame(3, 1, b"z" * 100_000)
    for _ in range(100):
        p.feed(frame, 0)
    (c,) = p.contents.values()
    assert sum(map(len, c.kept)) == 1000 and c.got == 10_000_000


def test_large_frames_in_small_segments_are_linear() -> None:
    big_table = {f"k{i}": "v" * 100 for i in range(40_000)}  # a 4 MB arguments table
    frame = w.queue_declare(1, "q", arguments=big_table) + w.basic_publish(
        1, "", "q", b"b" * 4_000_000, frame_max=1 << 22
    )
    p = FrameParser(FROM_CLIENT, Counters(), max_frame_size=8 << 20)
    t0 = time.perf_counter()
    out = []
    for i in range(0, len(frame), 500):
        out += p.feed(frame[i : i + 500], i)
    assert [m.name for m in out] == ["queue.declare", "basic.publish"]
    # 16,000 segments: a quadratic buffer would copy ~32 GB here.
    assert time.perf_counter() - t0 < 60
