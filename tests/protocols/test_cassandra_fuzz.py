"""Fuzzing the Cassandra decoder: random bytes, valid v4 (plain, LZ4, Snappy) and v5 (plain and
LZ4 segments) conversations cut at every offset and fed whole, byte by byte and in random
chunks, mutated bytes, lying length fields (frame, string, collection and segment lengths,
declared decompressed sizes). Only counted errors may come out: no exception escapes the
handler, buffers and queues stay bounded, and time stays linear in the input."""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.cassandra import CassandraPlugin
from protocols.cassandra.config import CassandraConfig
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.stats import Counters
from tests.protocols import cassandra_wire as w

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = 64 * 1024
COLS = [("id", w.INT), ("m", w.t(0x21, w.TEXT, w.t(0x20, w.INT)))]


def _v4(algo: str = "") -> list[tuple[int, bytes]]:
    def c(f: bytes) -> bytes:
        return w.compress_frame(f, algo) if algo else f

    opts = {"CQL_VERSION": "3.0.0", **({"COMPRESSION": algo} if algo else {})}
    return [
        (FROM_CLIENT, w.options()),
        (FROM_SERVER, w.supported({"COMPRESSION": ["lz4", "snappy"]})),
        (FROM_CLIENT, w.startup(opts, 1)),
        (FROM_SERVER, w.ready(1)),
        (FROM_CLIENT, c(w.query("SELECT * FROM ks.tbl", 2)) + c(w.query("USE ks", 3))),
        (FROM_SERVER, c(w.set_keyspace("ks", 3)) + c(w.rows(COLS, 3, stream=2, paging=b"\x01"))),
        (FROM_CLIENT, c(w.frame(0x09, w.long_string("SELECT ?"), 4))),
        (FROM_SERVER, c(w.prepared(bytes(16), [("id", w.INT)], COLS, [0], 4))),
        (FROM_CLIENT, c(w.query("DROP x", 5, flags=0x02))),
        (FROM_SERVER, c(w.error(0x2400, "exists", w.string("ks") + w.string("x"), 5))),
        (
            FROM_SERVER,
            c(w.event(w.string("STATUS_CHANGE") + w.string("UP") + w.inet(b"\x01\x02\x03\x04", 9042))),
        ),
    ]


def _v5(compress: bool) -> list[tuple[int, bytes]]:
    opts = {"CQL_VERSION": "3.0.0", **({"COMPRESSION": "lz4"} if compress else {})}
    return [
        (FROM_CLIENT, w.startup(opts, 1, 5)),
        (FROM_SERVER, w.ready(1, 5)),
        (FROM_CLIENT, w.segments(w.query("SELECT 1", 2, 5) + w.query("SELECT 2", 3, 5), compress)),
        (FROM_SERVER, w.segments(w.rows(COLS, 2000, stream=3, version=5) + w.void(2, 5), compress)),
        (
            FROM_SERVER,
            w.segments(
                w.event(w.string("SCHEMA_CHANGE") + w.schema_change_body("DROPPED", "KEYSPACE", "k"), 5),
                compress,
            ),
        ),
    ]


CONVERSATIONS = [_v4(), _v4("lz4"), _v4("snappy"), _v5(False), _v5(True)]


def plugin(**kw: Any) -> CassandraPlugin:
    return CassandraPlugin(CassandraConfig(ports=[9042], max_frame_size=MAX, **kw), Counters())


def feed(plug: CassandraPlugin, pieces: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    h = plug.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", 9042))
    events: list[dict[str, Any]] = []
    ts = 1_000
    for direction, data in pieces:
        ts += 1_000
        for txn in h.on_data(direction, data, ts):
            events.append(plug.to_event(txn))
        for s in h.streams:  # never more than one frame (or segment) of bytes is held
            assert len(s.buf) <= MAX + (1 << 17) + 20
            assert len(s.fbuf) <= MAX + (1 << 17) + 20
        assert len(h.pending) <= plug.config.max_pending_requests
    for txn in h.on_close("fin"):
        events.append(plug.to_event(txn))
    return events


def view(events: list[dict[str, Any]]) -> list[Any]:
    return [(e["status"], e["cassandra"]) for e in events]


def pieces_of(messages: list[tuple[int, bytes]], cuts: list[int]) -> list[tuple[int, bytes]]:
    out = []
    for k, (d, m) in enumerate(messages):
        points = sorted({c % (len(m) + 1) for c in cuts[k % max(len(cuts), 1) :]} | {0, len(m)})
        out += [(d, m[a:b]) for a, b in itertools.pairwise(points) if b > a]
    return out


REFERENCES = [view(feed(plugin(), conv)) for conv in CONVERSATIONS]


def test_references_decode_without_losses() -> None:
    for conv in CONVERSATIONS:
        plug = plugin()
        feed(plug, conv)
        assert not plug.stats, plug.stats
    assert [len(r) for r in REFERENCES] == [7, 7, 7, 4, 4]


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(CONVERSATIONS) - 1), st.lists(st.integers(0, 100_000), max_size=12)
)
def test_same_transactions_whole_and_chunked(k: int, cuts: list[int]) -> None:
    assert view(feed(plugin(), pieces_of(CONVERSATIONS[k], cuts))) == REFERENCES[k]


def test_byte_by_byte() -> None:
    for conv, ref in zip(CONVERSATIONS, REFERENCES, strict=True):
        pieces = [(d, m[i : i + 1]) for d, m in conv for i in range(len(m))]
        assert view(feed(plugin(), pieces)) == ref


def test_every_truncation_is_counted_not_raised() -> None:
    for conv in CONVERSATIONS:
        for d, m in conv:
            step = max(1, len(m) // 300)
            for cut in range(1, len(m), step):
                plug = plugin()
                events = feed(plug, [(d, m[:cut])])
                assert all(e["status"] == "Error" for e in events)
                losses = ("incomplete_messages", "bad_headers", "unmatched_requests", "unmatched_responses")
                assert sum(plug.stats.get(f"cassandra.{k}", 0) for k in losses) >= 1, (cut, plug.stats)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.binary(max_size=300)), max_size=20))
def test_random_bytes(pieces: list[tuple[int, bytes]]) -> None:
    feed(plugin(), pieces)


@FUZZ
@given(
    st.binary(max_size=200),
    st.sampled_from(sorted(range(0x11))),
    st.integers(min_value=0, max_value=0x1F),
    st.sampled_from([3, 4, 5]),
    st.sampled_from(["", "lz4", "snappy"]),
)
def test_random_bodies_for_every_opcode(body: bytes, op: int, flags: int, version: int, comp: str) -> None:
    plug = plugin(compressor=comp)
    feed(
        plug,
        [
            (FROM_CLIENT, w.frame(op, body, 1, version, flags=flags)),
            (FROM_SERVER, w.frame(op, body, 1, version, response=True, flags=flags)),
        ],
    )


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(CONVERSATIONS) - 1),
    st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.lists(st.integers(0, 100_000), max_size=5),
)
def test_mutated_conversations(k: int, flips: list[tuple[int, int]], cuts: list[int]) -> None:
    conv = list(CONVERSATIONS[k])
    i = flips[0][0] % len(conv)
    d, m = conv[i]
    b = bytearray(m)
    for pos, val in flips:
        b[pos % len(b)] = val
    conv[i] = (d, bytes(b))
    feed(plugin(), pieces_of(conv, cuts))


INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(CONVERSATIONS) - 1), st.integers(0, 10_000), INT32, st.booleans()
)
def test_lying_length_fields(k: int, where: int, value: int, short: bool) -> None:
    """Any int32 or uint16 written anywhere: frame lengths, [string]/[bytes] lengths, column
    counts, collection sizes, segment headers, declared decompressed sizes."""
    conv = list(CONVERSATIONS[k])
    i = where % len(conv)
    d, m = conv[i]
    b = bytearray(m)
    if short:
        struct.pack_into(">H", b, where % (len(b) - 1), value & 0xFFFF)
    else:
        struct.pack_into(">i", b, where % (len(b) - 3), value)
    conv[i] = (d, bytes(b))
    feed(plugin(), conv)


@FUZZ
@given(INT32, st.sampled_from(["lz4", "snappy"]), st.binary(max_size=200))
def test_compressed_bodies_that_lie(size: int, algo: str, data: bytes) -> None:
    body = struct.pack(">i", size) + data if algo == "lz4" else data
    plug = plugin(compressor=algo)
    events = feed(
        plug, [(FROM_CLIENT, w.query("q", 1)), (FROM_SERVER, w.frame(0x08, body, 1, response=True, flags=1))]
    )
    assert len(events) == 1
    if "result" not in events[0]["cassandra"]["response"]:
        assert (
            plug.stats.get("cassandra.decompression_errors", 0)
            + plug.stats.get("cassandra.decompression_bombs", 0)
            + plug.stats.get("cassandra.malformed_bodies", 0)
            == 1
        )


def test_huge_declared_frame_is_not_buffered() -> None:
    plug = plugin()
    head = struct.pack(">BBHBI", 0x84, 0, 1, 0x08, 200_000_000)
    events = feed(
        plug, [(FROM_CLIENT, w.query("q", 1)), (FROM_SERVER, head)] + [(FROM_SERVER, b"\0" * 60_000)] * 50
    )
    assert plug.stats["cassandra.oversized_frames"] == 1
    assert len(events) == 1


def test_linear_time() -> None:
    """A large frame in small pieces costs about as much per byte as a small one."""
    big = w.rows(COLS, 3000, stream=1)  # ~50 KB

    def once(n: int) -> float:
        pieces = [(FROM_CLIENT, w.query("q", 1))]
        for _ in range(n):
            pieces += [(FROM_SERVER, big[i : i + 100]) for i in range(0, len(big), 100)]
            pieces.append((FROM_CLIENT, w.query("q", 1)))
        t0 = time.process_time()
        feed(plugin(), pieces)
        return time.process_time() - t0

    def cost(n: int) -> float:
        # CPU time, best of three: other processes of a parallel test run neither add to
        # it nor, mostly, make one sample an outlier.
        return min(once(n) for _ in range(3))

    once(1)
    small, large = cost(2), cost(8)
    assert large < small * 4 * 3
