"""Fuzzing the MongoDB decoder: random bytes, valid conversations cut at every offset and fed
whole, byte by byte and in random chunks, lying length fields (messageLength huge or below 16,
document lengths, section sizes, numberReturned), unknown OP_MSG section kinds, mutated
bytes and compressed payloads that lie about their size. Only counted errors may come out:
no exception escapes the handler, buffers and queues stay bounded."""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any

import bson
from bson.son import SON
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.mongodb import MongodbPlugin
from protocols.mongodb.config import MongodbConfig
from protocols.mongodb.parser import MessageStream
from protocols.stats import Counters
from tests.protocols.mongo_wire import (
    compress,
    message,
    op_delete,
    op_get_more,
    op_insert,
    op_kill_cursors,
    op_msg,
    op_query,
    op_reply,
    op_update,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = 64 * 1024

#: A conversation: (direction, message) in wire order, every opcode and compressor.
SAMPLES: list[tuple[int, bytes]] = [
    (FROM_CLIENT, op_query(1, "db.$cmd", SON([("isMaster", 1.0)]), limit=-1)),
    (FROM_SERVER, op_reply(2, 1, [{"ismaster": True, "ok": 1.0}])),
    (FROM_CLIENT, op_query(3, "db.c", {"a": {"$gt": 1}}, skip=1, limit=5, fields={"a": 1})),
    (FROM_SERVER, op_reply(4, 3, [{"a": 2}, {"a": 3}], cursor=77)),
    (FROM_CLIENT, op_get_more(5, "db.c", 10, 77)),
    (FROM_SERVER, op_reply(6, 5, [{"$err": "cursor gone"}])),
    (FROM_CLIENT, op_insert(7, "db.c", [{"x": 1}])),
    (FROM_CLIENT, op_update(8, "db.c", {"x": 1}, {"$set": {"y": 2}})),
    (FROM_CLIENT, op_delete(9, "db.c", {"x": 1})),
    (FROM_CLIENT, op_kill_cursors(10, [77])),
    (FROM_CLIENT, op_msg(11, 0, SON([("find", "c"), ("filter", {}), ("$db", "db")]))),
    (FROM_SERVER, op_msg(12, 11, {"cursor": {"firstBatch": [{"_id": 1}], "id": 0}, "ok": 1.0})),
    (
        FROM_CLIENT,
        op_msg(13, 0, SON([("insert", "c"), ("$db", "db")]), {"documents": [{"_id": 1}, {"_id": 2}]}),
    ),
    (FROM_SERVER, op_msg(14, 13, {"n": 1, "ok": 1.0, "writeErrors": [{"index": 1, "code": 11000}]})),
    (FROM_CLIENT, compress(op_msg(15, 0, SON([("ping", 1), ("$db", "admin")])), 1)),
    (FROM_SERVER, compress(op_msg(16, 15, {"ok": 1.0}), 2)),
    (FROM_CLIENT, compress(op_msg(17, 0, SON([("count", "c"), ("$db", "db")]), checksum=True), 3)),
    (FROM_SERVER, compress(op_msg(18, 17, {"ok": 0.0, "errmsg": "nope"}), 0)),
    (FROM_CLIENT, op_msg(19, 0, SON([("insert", "c"), ("$db", "db")]), flags=2)),
]


def plugin(**kw: Any) -> MongodbPlugin:
    return MongodbPlugin(
        MongodbConfig(ports=[27017], send_request=True, send_response=True, **kw), Counters()
    )


def feed(plug: MongodbPlugin, pieces: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """Feed (direction, bytes) pieces to one handler; events out; state checked bounded."""
    h = plug.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", 27017))
    events: list[dict[str, Any]] = []
    ts = 1_000
    for direction, data in pieces:
        ts += 1_000
        for txn in h.on_data(direction, data, ts):
            events.append(plug.to_event(txn))
        assert all(len(s.buf) <= MAX for s in h.streams)  # skipped bytes are not held
        assert len(h.requests) <= plug.config.max_pending_requests
        assert len(h.replies) <= 1000
    for txn in h.on_close("fin"):
        events.append(plug.to_event(txn))
    return events


def view(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["method"], e["resource"], e["query"], e["status"], e.get("response"), str(e["mongodb"]))
        for e in events
    ]


def pieces_of(messages: list[tuple[int, bytes]], cuts: list[int]) -> list[tuple[int, bytes]]:
    out = []
    for k, (d, m) in enumerate(messages):
        points = sorted({c % (len(m) + 1) for c in cuts[k % max(len(cuts), 1) :]} | {0, len(m)})
        out += [(d, m[a:b]) for a, b in itertools.pairwise(points) if b > a]
    return out


REFERENCE = view(feed(plugin(max_message_size=MAX), SAMPLES))


def test_reference_conversation_decodes() -> None:
    assert len(REFERENCE) == 12
    assert [v[0] for v in REFERENCE][-3:] == ["ping", "count", "insert"]


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_same_transactions_whole_bytewise_and_chunked(cuts: list[int]) -> None:
    assert view(feed(plugin(max_message_size=MAX), pieces_of(SAMPLES, cuts))) == REFERENCE


def test_byte_by_byte() -> None:
    pieces = [(d, m[i : i + 1]) for d, m in SAMPLES for i in range(len(m))]
    assert view(feed(plugin(max_message_size=MAX), pieces)) == REFERENCE


def test_every_truncation_is_counted_not_raised() -> None:
    for d, m in SAMPLES:
        for cut in range(1, len(m)):
            plug = plugin(max_message_size=MAX)
            assert feed(plug, [(d, m[:cut])]) == []
            assert plug.stats["mongodb.incomplete_messages"] == 1


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.binary(max_size=300)), max_size=20))
def test_random_bytes(pieces: list[tuple[int, bytes]]) -> None:
    feed(plugin(max_message_size=MAX), pieces)


@FUZZ
@given(
    st.binary(min_size=4, max_size=200),
    st.sampled_from([1, 1000, 2001, 2002, 2004, 2005, 2006, 2007, 2012, 2013]),
)
def test_random_bodies_for_every_opcode(body: bytes, opcode: int) -> None:
    feed(
        plugin(max_message_size=MAX),
        [(FROM_CLIENT, message(1, 0, opcode, body)), (FROM_SERVER, message(2, 1, opcode, body))],
    )


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(SAMPLES) - 1),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=255)),
        max_size=8,
    ),
    st.lists(st.integers(min_value=0, max_value=5000), max_size=5),
)
def test_mutated_messages(k: int, flips: list[tuple[int, int]], cuts: list[int]) -> None:
    d, m = SAMPLES[k]
    b = bytearray(m)
    for pos, val in flips:
        b[pos % len(b)] = val
    feed(plugin(max_message_size=MAX), pieces_of([(d, bytes(b)), *SAMPLES], cuts))


INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@FUZZ
@given(st.integers(min_value=0, max_value=len(SAMPLES) - 1), INT32, st.integers(min_value=0, max_value=400))
def test_lying_length_fields(k: int, value: int, where: int) -> None:
    """Any int32 written over the message length, a document length, a section size,
    numberReturned or the declared decompressed size."""
    d, m = SAMPLES[k]
    b = bytearray(m)
    pos = 0 if where == 0 else min(where, len(b) - 4)
    struct.pack_into("<i", b, pos, value)
    plug = plugin(max_message_size=MAX)
    feed(plug, [(d, bytes(b)), *SAMPLES])


@FUZZ
@given(st.integers(min_value=3, max_value=255), st.binary(max_size=64))
def test_unknown_section_kinds(kind: int, payload: bytes) -> None:
    body = struct.pack("<I", 0) + bytes([kind]) + payload
    plug = plugin(max_message_size=MAX)
    events = feed(plug, [(FROM_CLIENT, message(1, 0, 2013, body)), (FROM_SERVER, op_msg(2, 1, {"ok": 1.0}))])
    assert events == []
    assert plug.stats["mongodb.malformed_messages"] == 1


@FUZZ
@given(INT32, st.sampled_from([0, 1, 2, 3]), st.binary(max_size=200))
def test_compressed_payloads_that_lie(size: int, compressor: int, data: bytes) -> None:
    msg = message(1, 0, 2012, struct.pack("<iiB", 2013, size, compressor) + data)
    plug = plugin(max_message_size=MAX)
    feed(plug, [(FROM_CLIENT, msg)])


def test_bombs_of_every_compressor_are_bounded() -> None:
    body = struct.pack("<I", 0) + b"\0" + bson.encode({"ping": 1, "pad": "\0" * 5_000_000})
    real = message(1, 0, 2013, body)
    for comp in (1, 2, 3):
        packed = bytearray(compress(real, comp))
        assert len(packed) < 300_000
        struct.pack_into("<i", packed, 20, 1000)  # declare 1000 bytes
        plug = plugin(max_message_size=len(packed) + 10)
        assert feed(plug, [(FROM_CLIENT, bytes(packed))]) == []
        assert plug.stats["mongodb.decompression_bombs"] == 1


def test_lying_message_length_allocates_nothing() -> None:
    s = MessageStream(Counters(), MAX)
    header = struct.pack("<iiii", 2**31 - 1, 1, 0, 2013)
    s.feed(header, 0)
    for _ in range(1000):
        s.feed(b"\0" * 1000, 0)
    assert len(s.buf) == 0 and s.skip == 2**31 - 1 - 16 - 1_000_000


def test_large_message_in_small_segments_is_linear() -> None:
    msg = op_msg(1, 0, {"insert": "c", "$db": "d", "pad": "z" * 4_000_000})
    s = MessageStream(Counters(), 8 << 20)
    t0 = time.perf_counter()
    out = []
    for i in range(0, len(msg), 500):
        out += s.feed(msg[i : i + 500], i)
    assert len(out) == 1
    # 8,000 segments: a quadratic buffer would copy ~16 GB here; this loop copies each byte once.
    assert time.perf_counter() - t0 < 60
