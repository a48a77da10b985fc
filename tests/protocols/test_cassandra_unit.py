"""Cassandra decoder unit tests: bodies of every opcode, compression, v5 segments, pairing,
options and the counted losses (frames built by tests/protocols/cassandra_wire.py)."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest

from protocols.cassandra import CassandraPlugin
from protocols.cassandra.config import CassandraConfig
from protocols.cassandra.parser import ConnState, FrameStream, crc24, go_quote
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.stats import Counters
from tests.protocols import cassandra_wire as w


def plugin(**kw: Any) -> CassandraPlugin:
    return CassandraPlugin(CassandraConfig(ports=[9042], **kw), Counters())


def run(pieces: list[tuple[int, bytes]], **kw: Any) -> tuple[list[dict[str, Any]], Counters]:
    plug = plugin(**kw)
    h = plug.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", 9042))
    out: list[dict[str, Any]] = []
    ts = 1_000_000
    for d, data in pieces:
        ts += 1_000
        out += [plug.to_event(t) for t in h.on_data(d, data, ts)]
    out += [plug.to_event(t) for t in h.on_close("fin")]
    return out, plug.stats


def one(req: bytes, resp: bytes, **kw: Any) -> dict[str, Any]:
    events, stats = run([(FROM_CLIENT, req), (FROM_SERVER, resp)], **kw)
    assert len(events) == 1, events
    assert not stats, stats
    return events[0]


def response(evt: dict[str, Any]) -> dict[str, Any]:
    r = dict(evt["cassandra"]["response"])
    r.pop("headers")
    return r


COLS = [("id", w.INT), ("name", w.TEXT)]
NESTED = [
    ("m", w.t(0x21, w.TEXT, w.t(0x20, w.INT))),
    (
        "u",
        w.t(
            0x30,
            w.string("ks"),
            w.string("addr"),
            w.short(2),
            w.string("street"),
            w.TEXT,
            w.string("zip"),
            w.INT,
        ),
    ),
    ("tu", w.t(0x31, w.short(2), w.INT, w.t(0x22, w.TEXT))),
    ("c", w.t(0x0000, w.string("org.apache.cassandra.db.marshal.DurationType"))),
]


def test_query_and_rows() -> None:
    q = w.query("SELECT * FROM ks.tbl", stream=7)
    e = one(q, w.rows(COLS + NESTED, 3, stream=7))
    c = e["cassandra"]
    assert c["request"] == {
        "query": "SELECT * FROM ks.tbl",
        "headers": {"version": "4", "flags": "Default", "stream": 7, "op": "QUERY", "length": len(q) - 9},
    }
    assert response(e) == {
        "result": {
            "type": "rows",
            "rows": {
                "meta": {"flags": "GlobalTableSpec", "col_count": 6, "keyspace": "ks", "table": "tbl"},
                "num_rows": 3,
            },
        }
    }
    assert e["status"] == "OK"
    assert e["source"]["bytes"] == len(q)


def test_rows_paged_and_per_column_specs_and_no_metadata() -> None:
    e = one(w.query("q"), w.rows(COLS, 2, paging=b"\x01\xab"))
    assert response(e)["result"]["rows"] == {
        "meta": {"flags": "FLAG_3", "col_count": 2, "paging_state": "01AB"},
        "num_rows": 2,
    }
    e = one(w.query("q"), w.rows(COLS, 4, glob=False))
    assert response(e)["result"]["rows"] == {"meta": {"flags": "FLAG_0", "col_count": 2}, "num_rows": 4}
    e = one(w.query("q"), w.rows(COLS, 5, no_meta=True, glob=False))
    assert response(e)["result"]["rows"] == {"meta": {"flags": "NoMetaData", "col_count": 2}, "num_rows": 5}


def test_result_kinds() -> None:
    assert response(one(w.query("INSERT"), w.void())) == {"result": {"type": "void"}}
    assert response(one(w.query("USE a"), w.set_keyspace("a"))) == {
        "result": {"type": "set_keyspace", "keyspace": "a"}
    }
    assert response(one(w.query("q"), w.schema_result("CREATED", "TABLE", "ks", "t")))["result"] == {
        "type": "schemaChanged",
        "schema_change": {"change": "CREATED", "target": "TABLE", "keyspace": "ks", "object": "t"},
    }
    sc = response(
        one(w.query("q"), w.schema_result("DROPPED", "FUNCTION", "ks", "f", fn_args=["int", "text"]))
    )
    assert sc["result"]["schema_change"] == {
        "change": "DROPPED",
        "target": "FUNCTION",
        "keyspace": "ks",
        "name": "f",
        "args": ["int", "text"],
    }
    unknown = w.frame(0x08, w.i32(99), response=True)
    assert response(one(w.query("q"), unknown)) == {"result": {}}


@pytest.mark.parametrize("version", [3, 4, 5])
def test_prepared(version: int) -> None:
    pid = bytes(range(16))
    prep = w.frame(0x09, w.long_string("SELECT name FROM tbl WHERE id = ?"), 3, version)
    e_events, stats = run(
        [(FROM_CLIENT, prep), (FROM_SERVER, w.prepared(pid, [("id", w.INT)], COLS, [0], 3, version))]
    )
    assert not stats
    (e,) = e_events
    assert e["cassandra"]["request"] == {
        "headers": {
            "version": str(version),
            "flags": "Default",
            "stream": 3,
            "op": "PREPARE",
            "length": len(prep) - 9,
        }
    }
    p = response(e)["result"]["prepared"]
    assert p["prepared_id"] == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    req_meta = {"flags": "GlobalTableSpec", "col_count": 1, "keyspace": "ks", "table": "tbl"}
    if version >= 4:
        req_meta["pkey_columns"] = [0]
    assert p["req_meta"] == req_meta
    assert p["resp_meta"] == {"flags": "GlobalTableSpec", "col_count": 2, "keyspace": "ks", "table": "tbl"}


def test_errors() -> None:
    cases: list[tuple[int, bytes, str, dict[str, Any] | None]] = [
        (0x2000, b"", "errSyntax", None),
        (0x2200, b"", "errInvalid", None),
        (
            0x1000,
            w.short(4) + w.i32(3) + w.i32(1),
            "errUnavailable",
            {"read_consistency": "QUORUM", "required": 3, "alive": 1},
        ),
        (
            0x1100,
            w.short(1) + w.i32(0) + w.i32(1) + w.string("BATCH"),
            "errWriteTimeout",
            {"read_consistency": "ONE", "received": 0, "blockfor": 1, "write_type": "BATCH"},
        ),
        (
            0x1200,
            w.short(0x0A) + w.i32(1) + w.i32(2) + b"\x01",
            "errReadTimeout",
            {"read_consistency": "LOCAL_ONE", "received": 1, "blockfor": 2, "data_present": True},
        ),
        (0x2400, w.string("ks") + w.string("t"), "errAlreadyExists", {"keyspace": "ks", "table": "t"}),
        (0x2500, w.short_bytes(b"\x00\x01\x02"), "errUnprepared", {"stmt_id": "AAEC"}),
        (
            0x1300,
            w.short(4) + w.i32(1) + w.i32(2) + w.i32(1) + b"\x00",
            "errReadFailure",
            {"read_consistency": "QUORUM", "received": 1, "blockfor": 2, "data_present": False},
        ),
        (
            0x1500,
            w.short(4) + w.i32(1) + w.i32(2) + w.i32(1) + w.string("SIMPLE"),
            "errWriteFailure",
            {
                "read_consistency": "QUORUM",
                "received": 1,
                "blockfor": 2,
                "num_failures": 1,
                "write_type": "SIMPLE",
            },
        ),
        (
            0x1400,
            w.string("ks") + w.string("fn") + w.string_list(["int"]),
            "errFunctionFailure",
            {"keyspace": "ks", "function": "fn", "arg_types": ["int"]},
        ),
        (0x1600, b"", "ErrUnknown", None),
    ]
    for code, extra, name, details in cases:
        e = one(w.query("q"), w.error(code, "boom", extra))
        err: dict[str, Any] = {"code": code, "msg": "boom", "type": name}
        if details:
            err["details"] = details
        assert response(e) == {"error": err}, name
        assert e["status"] == "Error"


def test_v5_failure_reason_maps() -> None:
    reasons = (
        w.i32(2)
        + w.inet(b"\x7f\x00\x00\x01", 0)[:-4]
        + w.short(1)
        + bytes([4])
        + b"\x7f\x00\x00\x02"
        + w.short(0)
    )
    # <reasonmap> entries are <inetaddr> (no port) and a [short] code.
    reasons = (
        w.i32(2)
        + bytes([4])
        + b"\x7f\x00\x00\x01"
        + w.short(1)
        + bytes([4])
        + b"\x7f\x00\x00\x02"
        + w.short(0)
    )
    body = w.short(1) + w.i32(0) + w.i32(1) + reasons + w.string("SIMPLE")
    events, stats = run(
        [
            (FROM_CLIENT, w.query("q", version=5)),
            (FROM_SERVER, w.error(0x1500, "f", body, version=5)),
        ]
    )
    assert not stats
    assert events[0]["cassandra"]["response"]["error"]["details"]["num_failures"] == 2


def test_events_pushed_alone() -> None:
    topo = w.event(w.string("TOPOLOGY_CHANGE") + w.string("NEW_NODE") + w.inet(b"\x0a\x00\x00\x05", 9042))
    v6 = ipaddress.IPv6Address("::ffff:10.0.0.6").packed
    status = w.event(w.string("STATUS_CHANGE") + w.string("DOWN") + w.inet(v6, 9042))
    v6b = ipaddress.IPv6Address("fd00::1").packed
    status6 = w.event(w.string("STATUS_CHANGE") + w.string("UP") + w.inet(v6b, 7000))
    schema = w.event(w.string("SCHEMA_CHANGE") + w.schema_change_body("CREATED", "KEYSPACE", "ks"))
    events, stats = run(
        [
            (FROM_CLIENT, w.query("SELECT 1", stream=1)),
            (FROM_SERVER, topo + status),
            (FROM_SERVER, status6 + schema + w.void(stream=1)),
        ]
    )
    assert not stats
    assert [e["cassandra"].get("no_request") for e in events] == [True, True, True, True, None]
    got = [e["cassandra"]["response"]["event"] for e in events[:4]]
    assert got == [
        {"type": "TOPOLOGY_CHANGE", "change": "NEW_NODE", "host": "10.0.0.5", "port": 9042},
        {"type": "STATUS_CHANGE", "change": "DOWN", "host": "10.0.0.6", "port": 9042},
        {"type": "STATUS_CHANGE", "change": "UP", "host": "fd00::1", "port": 7000},
        {
            "type": "SCHEMA_CHANGE",
            "schema_change": {"change": "CREATED", "target": "KEYSPACE", "keyspace": "ks"},
        },
    ]
    e = events[0]
    assert e["cassandra"]["response"]["headers"]["stream"] == 0xFFFF
    assert "start" not in e["event"] and e["event"]["end"] == e["@timestamp"]
    assert "bytes" not in e["source"]
    assert events[4]["cassandra"]["request"]["query"] == "SELECT 1"


def test_supported_auth_and_empty_bodies() -> None:
    e = one(w.options(), w.supported({"COMPRESSION": ["snappy", "lz4"], "CQL_VERSION": ["3.4.7"]}))
    assert response(e) == {"supported": {"COMPRESSION": ["snappy", "lz4"], "CQL_VERSION": ["3.4.7"]}}
    auth = w.frame(0x03, w.string("org.apache.cassandra.auth.PasswordAuthenticator"), response=True)
    e = one(w.startup({"CQL_VERSION": "3.0.0"}), auth)
    assert response(e) == {"authentication": {"class": "org.apache.cassandra.auth.PasswordAuthenticator"}}
    ok = w.frame(0x10, w.bytes_(b'a\x00"\xff\xe2\x82\xac\n'), response=True)
    e = one(w.frame(0x0F, w.bytes_(b"\x00user\x00pw")), ok)
    assert response(e) == {"authentication": {"data": '"a\\x00\\"\\xff€\\n"'}}
    e = one(w.frame(0x0F, w.bytes_(None)), w.frame(0x0E, w.bytes_(None), response=True))
    assert response(e) == {"authentication": {"data": '""'}}
    e = one(w.startup({"CQL_VERSION": "3.0.0"}), w.ready())
    assert e["cassandra"]["request"]["headers"]["op"] == "STARTUP"
    assert response(e) == {}


def test_go_quote() -> None:
    assert go_quote(b"\x07\x7f\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x80\x8b") == '"\\a\\x7f\\té😀\\u200b"'


def test_flags_tracing_warnings_custom_payload() -> None:
    trace = bytes(range(16))
    e = one(w.query("q", flags=0x02), w.void(flags=0x02, prefix=trace))
    assert response(e) == {"result": {"type": "void"}}
    assert e["cassandra"]["response"]["headers"]["flags"] == "Tracing"
    warn = w.string_list(["Batch is too large"])
    e = one(w.query("q"), w.void(flags=0x08, prefix=warn))
    assert response(e) == {"warnings": ["Batch is too large"], "result": {"type": "void"}}
    payload = w.short(1) + w.string("k") + w.bytes_(b"v")
    e = one(w.query("q"), w.void(flags=0x0E, prefix=trace + warn + payload))
    assert response(e) == {"warnings": ["Batch is too large"], "result": {"type": "void"}}
    assert e["cassandra"]["response"]["headers"]["flags"] == "UnknownFlag_14"
    e = one(w.frame(0x07, payload + w.long_string("SELECT 2") + w.short(1) + b"\x00", flags=0x04), w.void())
    assert e["cassandra"]["request"]["query"] == "SELECT 2"


@pytest.mark.parametrize("algo", ["lz4", "snappy"])
@pytest.mark.parametrize("how", ["startup", "config", "guess"])
def test_compression(algo: str, how: str) -> None:
    pieces: list[tuple[int, bytes]] = []
    kw: dict[str, Any] = {}
    if how == "startup":
        pieces += [
            (FROM_CLIENT, w.startup({"CQL_VERSION": "3.0.0", "COMPRESSION": algo})),
            (FROM_SERVER, w.ready()),
        ]
    elif how == "config":
        kw["compressor"] = algo
    pieces += [
        (FROM_CLIENT, w.compress_frame(w.query("SELECT * FROM ks.tbl WHERE id = 1", stream=5), algo)),
        (FROM_SERVER, w.compress_frame(w.rows(COLS, 9, stream=5), algo)),
    ]
    events, stats = run(pieces, **kw)
    assert not stats
    e = events[-1]
    assert e["cassandra"]["request"]["query"] == "SELECT * FROM ks.tbl WHERE id = 1"
    assert e["cassandra"]["request"]["headers"]["flags"] == "Compress"
    assert response(e)["result"]["rows"]["num_rows"] == 9
    raw = w.compress_frame(w.query("x"), algo)
    assert e["source"]["bytes"] == len(w.compress_frame(w.query("SELECT * FROM ks.tbl WHERE id = 1"), algo))
    assert raw[9:] != w.query("x")[9:]


def test_decompression_bomb_and_garbage_counted() -> None:
    body = struct.pack(">I", 1 << 30) + b"\x00" * 20
    bomb = w.frame(0x08, body, 1, response=True, flags=0x01)
    events, stats = run(
        [(FROM_CLIENT, w.query("q", stream=1)), (FROM_SERVER, bomb)], compressor="lz4", max_frame_size=1 << 20
    )
    assert stats["cassandra.decompression_bombs"] == 1
    assert events[0]["cassandra"]["response"] == {
        "headers": {"version": "4", "flags": "Compress", "stream": 1, "op": "RESULT", "length": 24}
    }
    garbage = w.frame(0x08, b"\xff" * 30, 1, response=True, flags=0x01)
    events, stats = run([(FROM_CLIENT, w.query("q", stream=1)), (FROM_SERVER, garbage)], compressor="snappy")
    assert stats["cassandra.decompression_errors"] == 1
    assert len(events) == 1


def v5_conversation(compress: bool) -> list[tuple[int, bytes]]:
    opts = {"CQL_VERSION": "3.0.0"}
    if compress:
        opts["COMPRESSION"] = "lz4"
    big = w.rows(COLS, 9000, stream=3, version=5)
    assert len(big) > 1 << 17
    return [
        (FROM_CLIENT, w.options(version=5)),
        (FROM_SERVER, w.supported({"PROTOCOL_VERSIONS": ["5/v5"]}, version=5)),
        # STARTUP (legacy framing) and, in the same TCP segment, the first segment.
        (FROM_CLIENT, w.startup(opts, stream=1, version=5) + w.segments(w.query("SELECT 1", 2, 5), compress)),
        (FROM_SERVER, w.ready(stream=1, version=5) + w.segments(w.void(2, 5), compress)),
        (FROM_CLIENT, w.segments(w.query("q3", 3, 5) + w.query("q4", 4, 5), compress)),
        # Two frames in one segment and a frame over several segments.
        (FROM_SERVER, w.segments(w.void(4, 5) + big, compress)),
    ]


@pytest.mark.parametrize("compress", [False, True])
def test_v5_segments(compress: bool) -> None:
    events, stats = run(v5_conversation(compress))
    assert not stats, stats
    ops = [
        (e["cassandra"]["request"]["headers"]["op"], e["cassandra"]["response"]["headers"]["op"])
        for e in events
    ]
    assert ops == [
        ("OPTIONS", "SUPPORTED"),
        ("STARTUP", "READY"),
        ("QUERY", "RESULT"),
        ("QUERY", "RESULT"),
        ("QUERY", "RESULT"),
    ]
    assert {e["cassandra"]["request"]["headers"]["version"] for e in events} == {"5"}
    assert events[2]["cassandra"]["request"]["query"] == "SELECT 1"
    assert events[4]["cassandra"]["request"]["query"] == "q3"
    assert response(events[4])["result"]["rows"]["num_rows"] == 9000
    # Byte by byte gives the same.
    pieces = [(d, data[i : i + 1]) for d, data in v5_conversation(compress) for i in range(len(data))]
    events2, stats2 = run(pieces)
    assert not stats2
    assert [e["cassandra"] for e in events2] == [e["cassandra"] for e in events]


def test_v5_crc_errors_counted_and_recovered() -> None:
    conv = v5_conversation(False)
    seg = bytearray(w.segments(w.query("bad", 3, 5)))
    seg[8] ^= 0xFF  # payload byte: CRC32 mismatch, that segment is lost
    conv[4] = (FROM_CLIENT, bytes(seg))
    events, stats = run([*conv[:5], (FROM_CLIENT, w.segments(w.query("q4", 4, 5))), conv[5]])
    assert stats["cassandra.segment_crc_errors"] == 1
    assert [e["cassandra"]["request"].get("query") for e in events][-1] == "q4"
    head = bytearray(w.segments(w.query("bad", 3, 5)))
    head[0] ^= 0x01  # header: CRC24 mismatch, the place is lost until the next TCP segment
    conv = v5_conversation(False)
    events, stats = run(
        [*conv[:4], (FROM_CLIENT, bytes(head)), (FROM_CLIENT, w.segments(w.query("q4", 4, 5)))]
    )
    assert stats["cassandra.segment_crc_errors"] == 1
    assert events[-1]["cassandra"]["request"]["query"] == "q4"


def test_crc24_known_value() -> None:
    # The driver's own implementation (cassandra.segment) agrees on arbitrary headers.
    seg = pytest.importorskip("cassandra.segment")
    for v, n in ((0x000010, 3), (0x1234_5678_9A, 5), (0, 3)):
        assert crc24(v, n) == seg.compute_crc24(v, n)


def test_pairing_by_stream_id_out_of_order() -> None:
    events, stats = run(
        [
            (FROM_CLIENT, w.query("a", 1) + w.query("b", 2) + w.query("c", 3)),
            (FROM_SERVER, w.rows(COLS, 2, stream=2) + w.void(3) + w.rows(COLS, 1, stream=1)),
        ]
    )
    assert not stats
    got = [
        (e["cassandra"]["request"]["query"], e["cassandra"]["response"]["headers"]["stream"]) for e in events
    ]
    assert got == [("b", 2), ("c", 3), ("a", 1)]


def test_unmatched_and_reused_streams() -> None:
    events, stats = run(
        [
            (FROM_CLIENT, w.query("lost", 1)),
            (FROM_CLIENT, w.query("again", 1)),
            (FROM_SERVER, w.void(1) + w.void(9)),
            (FROM_CLIENT, w.query("never answered", 2)),
        ]
    )
    assert stats["cassandra.unmatched_requests"] == 2
    assert stats["cassandra.unmatched_responses"] == 1
    assert [(e["cassandra"]["request"]["query"], e["status"], e.get("error")) for e in events] == [
        ("lost", "Error", {"message": ["Unmatched request"]}),
        ("again", "OK", None),
        ("never answered", "Error", {"message": ["Unmatched request"]}),
    ]


def test_expiry_on_capture_time() -> None:
    plug = plugin(transaction_timeout=1.0)
    h = plug.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", 9042))
    assert h.on_data(FROM_CLIENT, w.query("old", 1), 1_000_000_000) == []
    out = h.on_data(FROM_CLIENT, w.query("new", 2), 3_000_000_000)
    assert [t.request.stream for t in out] == [1]
    assert plug.stats["cassandra.expired_requests"] == 1


def test_pending_cap() -> None:
    events, stats = run([(FROM_CLIENT, b"".join(w.query("q", i) for i in range(10)))], max_pending_requests=4)
    assert stats["cassandra.pending_evictions"] == 6
    assert len(events) == 10


def test_ignored_ops() -> None:
    pieces = [
        (FROM_CLIENT, w.options(stream=0)),
        (FROM_SERVER, w.supported({"A": ["b"]}, stream=0)),
        (FROM_CLIENT, w.query("q", 1)),
        (FROM_SERVER, w.void(1)),
        (FROM_SERVER, w.event(w.string("SCHEMA_CHANGE") + w.schema_change_body("CREATED", "KEYSPACE", "k"))),
    ]
    events, _ = run(pieces, ignored_ops=["options", " EVENT "])
    assert [e["cassandra"]["request"]["headers"]["op"] for e in events] == ["QUERY"]
    events, _ = run(pieces, ignored_ops=["SUPPORTED"])
    assert len(events) == 2
    with pytest.raises(ValueError):
        CassandraConfig(ignored_ops=["NOPE"])
    with pytest.raises(ValueError):
        CassandraConfig(compressor="deflate")


def test_oversized_frame_keeps_header() -> None:
    big = w.rows(COLS, 5000, stream=1)
    events, stats = run(
        [
            (FROM_CLIENT, w.query("q", 1)),
            (FROM_SERVER, big[:1000]),
            (FROM_SERVER, big[1000:] + w.void(2)),
            (FROM_CLIENT, w.query("r", 2)),
        ],
        max_frame_size=4096,
    )
    assert stats["cassandra.oversized_frames"] == 1
    assert events[0]["cassandra"]["response"] == {
        "headers": {"version": "4", "flags": "Default", "stream": 1, "op": "RESULT", "length": len(big) - 9}
    }
    assert events[0]["destination"]["bytes"] == len(big)
    assert stats["cassandra.unmatched_responses"] == 1  # void(2) came before its request


def test_bad_header_resyncs_at_next_segment() -> None:
    events, stats = run(
        [
            (FROM_CLIENT, b"\x7f" * 20),
            (FROM_CLIENT, b"more garbage"),
            (FROM_CLIENT, w.query("ok", 1)),
            (FROM_SERVER, w.void(1)),
        ]
    )
    assert stats["cassandra.bad_headers"] == 2
    assert [e["cassandra"]["request"]["query"] for e in events] == ["ok"]


def test_gap_resets_direction() -> None:
    plug = plugin()
    h = plug.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", 9042))
    q = w.query("partial", 1)
    h.on_data(FROM_CLIENT, q[:12], 1)
    assert h.on_gap(FROM_CLIENT, 100) is False
    out = h.on_data(FROM_CLIENT, w.query("next", 2), 2)
    out += h.on_data(FROM_SERVER, w.void(2), 3)
    assert [t.request.stream for t in out] == [2]
    assert plug.stats["cassandra.incomplete_messages"] == 1


def test_malformed_body_counted() -> None:
    short_rows = w.frame(0x08, w.i32(2) + w.i32(1) + w.i32(500), 1, response=True)
    events, stats = run([(FROM_CLIENT, w.query("q", 1)), (FROM_SERVER, short_rows)])
    assert stats["cassandra.malformed_bodies"] == 1
    assert "result" not in events[0]["cassandra"]["response"]


def test_frame_stream_times() -> None:
    s = FrameStream(Counters(), ConnState(), 1 << 20)
    q1, q2 = w.query("one", 1), w.query("two", 2)
    assert s.feed(q1[:5], 10) == []
    frames = s.feed(q1[5:] + q2[:3], 20)
    assert [(f.stream, f.ts) for f in frames] == [(1, 10)]
    frames = s.feed(q2[3:], 30)
    assert [(f.stream, f.ts) for f in frames] == [(2, 20)]


@pytest.mark.parametrize("compress", [False, True])
def test_v5_segments_recognised_mid_stream(compress: bool) -> None:
    """A capture that starts after the handshake: the segment headers' CRC24 gives them away."""
    conv = v5_conversation(compress)[4:]
    events, stats = run([(FROM_CLIENT, w.segments(w.query("q2", 2, 5), compress)), *conv])
    # q2's response went by before the capture started.
    assert stats == {"cassandra.v5_segments_detected": 2, "cassandra.unmatched_requests": 1}
    assert [e["cassandra"]["request"]["query"] for e in events] == ["q4", "q3", "q2"]
    assert response(events[1])["result"]["rows"]["num_rows"] == 9000
    assert events[2]["status"] == "Error"
