"""Wire numbers and per-message caps in every decoder (issue 11, points 4 and 7).

Everything goes through the real ``Decoder`` (frames → TCP → handler → event), so an
exception escaping a parser shows up as ``<proto>.handler_errors`` and one escaping the
event builder as ``<proto>.event_errors``: both must stay 0. Each cap drops its message
with a counted reason.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import dbwire as w
from benchmarks.synth import exchange
from protocols.http.parser import MAX_HEADERS, ParserConfig, StreamParser
from protocols.redis.parser import RespParser
from protocols.stats import Counters
from protocols.thrift.parser import MAX_RENDERED, Format, ThriftParser
from tests.helpers import make_decoder

PORTS = {"http": 80, "redis": 6379, "mysql": 3306, "pgsql": 5432, "thrift": 9090}
C, S = 0, 1


def decode(
    proto: str, messages: list[tuple[int, bytes]], **opts: Any
) -> tuple[list[dict[str, Any]], Counters]:
    port = PORTS[proto]
    dec = make_decoder({proto: {"ports": [port], **opts}})
    events: list[dict[str, Any]] = []
    for ts, frame in exchange(("10.0.0.1", 40000), ("10.0.0.2", port), messages):
        events += dec.feed(ts, 1, frame)
    events += dec.flush()
    stats = dec.stats
    assert stats.get(f"{proto}.handler_errors", 0) == 0, stats
    assert stats.get(f"{proto}.event_errors", 0) == 0, stats
    return events, stats


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


# -- point 4: ASCII digits only ----------------------------------------------------------


def test_http_status_with_unicode_digits_is_a_counted_parse_error() -> None:
    # b"\xb2" is "²" in Latin-1 (how start lines are read): isdigit() says yes, int() no.
    codes = [b"\xb204", b"2\xb30", "²04".encode(), "٢٠٠".encode(), "2０0".encode(), b"+20", b" 20"]
    for code in codes:
        resp = b"HTTP/1.1 " + code + b" OK\r\nContent-Length: 0\r\n\r\n"
        events, stats = decode("http", [(C, GET), (S, resp), (C, GET), (S, b"HTTP/1.1 204 No\r\n\r\n")])
        assert stats["http.parse_errors"] == 1, code
        codes = [e["http"].get("response", {}).get("status_code") for e in events]
        assert 204 in codes, code


def test_http_content_length_and_chunk_size_take_ascii_digits_only() -> None:
    p = StreamParser(ParserConfig())
    (m,) = p.feed(b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa3\r\n\r\n", 0)  # Arabic-Indic 3
    assert m.has_content_length and m.content_length == 0
    (m,) = p.feed(b"POST / HTTP/1.1\r\nContent-Length: 3abc\r\n\r\nxyz", 0)  # Packetbeat: 3
    assert m.content_length == 3 and m.size == len(m.raw_headers) + 3
    (m,) = p.feed(b"POST / HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n1", 0)
    assert m.content_length == 1
    for size in (b"\xd9\xa3", b"0x3", b"+3", b"1_0", b"-1"):
        p = StreamParser(ParserConfig())
        resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc\r\n0\r\n\r\n"
        assert p.feed(resp, 0) == [] and p.errors == 1, size
    # Chunk extensions and spaces before them are fine.
    p = StreamParser(ParserConfig())
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ;ext=1\r\nabc\r\n0\r\n\r\n"
    (m,) = p.feed(resp, 0)
    assert m.content_length == 3


def test_http_host_port_takes_ascii_digits_only() -> None:
    for host, port in (("example.com:²", None), ("example.com:\u0668\u0660", None), ("example.com:81", 81)):
        req = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        events, _ = decode("http", [(C, req), (S, b"HTTP/1.1 204 No\r\n\r\n")])
        (e,) = events
        assert e["url"].get("port") == port, host


def test_redis_numbers_are_ascii_decimals() -> None:
    for bad in (b":1_0\r\n", b":\xd9\xa3\r\n", b": 3\r\n", b",1_0\r\n", b",\xd9\xa3\r\n", b"(1 0\r\n"):
        p = RespParser()
        assert p.feed(bad, 0) == [] and p.errors == 1, bad
    for bad in (b"$+3\r\nabc\r\n", b"$\xd9\xa3\r\nabc\r\n", b"* 1\r\n:1\r\n", b"*1_0\r\n"):
        p = RespParser()
        assert p.feed(bad, 0) == [] and p.errors == 1, bad
    p = RespParser()
    good = b":-12\r\n,-1.5e3\r\n,inf\r\n,-inf\r\n,nan\r\n,.5\r\n(" + b"7" * 5000 + b"\r\n"
    msgs = p.feed(good, 0)
    assert p.errors == 0
    # A 5000-digit big number is kept as sent (int() would refuse it: 4300-digit limit).
    assert [m.render() for m in msgs][:-1] == [b"-12", b"-1.5e3", b"inf", b"-inf", b"nan", b".5"]
    assert msgs[-1].render() == b"7" * 5000


def test_redis_unicode_digits_through_the_decoder() -> None:
    msgs = [
        (C, b"*1\r\n$4\r\nINCR\r\n"),
        (S, b":\xd9\xa3\r\n"),
        (C, b"*1\r\n$4\r\nPING\r\n"),
        (S, b"+PONG\r\n"),
    ]
    events, stats = decode("redis", msgs)
    assert stats["redis.parse_errors"] == 1


def test_pgsql_dollar_quote_tags_as_postgres_lexes_them() -> None:
    from protocols.pgsql.parser import split_statements

    # Non-ASCII characters may start a tag (scan.l dolq_start); ASCII digits may not.
    assert split_statements("SELECT $²$;$²$; SELECT 2") == ["SELECT $²$;$²$", "SELECT 2"]
    assert split_statements("SELECT $1; SELECT $2") == ["SELECT $1", "SELECT $2"]
    assert split_statements("SELECT $_a9$;$_a9$") == ["SELECT $_a9$;$_a9$"]


# -- point 7: caps, each counted ---------------------------------------------------------


def test_http_header_block_cap_is_max_message_size() -> None:
    block = b"GET / HTTP/1.1\r\n" + b"X-A: " + b"a" * 3000 + b"\r\n"
    events, stats = decode("http", [(C, block + b"X-B: b\r\n" * 300)], max_message_size=2048)
    assert stats["http.headers_too_large"] == 1 and stats["http.parse_errors"] == 1
    assert events == []


def test_http_header_count_cap() -> None:
    many = b"GET / HTTP/1.1\r\n" + b"a:b\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    events, stats = decode(
        "http", [(C, many), (S, b"HTTP/1.1 204 No\r\n\r\n"), (C, GET), (S, b"HTTP/1.1 204 No\r\n\r\n")]
    )
    assert stats["http.too_many_headers"] == 1
    assert len([e for e in events if "request" in e["http"]]) == 1
    ok = b"GET / HTTP/1.1\r\n" + b"a:b\r\n" * MAX_HEADERS + b"\r\n"
    events, stats = decode("http", [(C, ok), (S, b"HTTP/1.1 204 No\r\n\r\n")])
    assert "http.too_many_headers" not in stats and len(events) == 1


def test_http_start_line_trailer_and_chunk_line_caps() -> None:
    _, stats = decode("http", [(C, b"GET /" + b"a" * 9000)])
    assert stats["http.start_line_too_long"] == 1
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    _, stats = decode("http", [(C, GET), (S, chunked + b"3;" + b"e" * 2000)])
    assert stats["http.chunk_line_too_long"] == 1
    _, stats = decode("http", [(C, GET), (S, chunked + b"0\r\nX-T: " + b"t" * 5000)], max_message_size=4096)
    assert stats["http.trailer_too_large"] == 1


def test_http_folded_and_repeated_headers_are_joined_once() -> None:
    fold = b"GET / HTTP/1.1\r\nX-F: a\r\n b\r\n\tc\r\nX-R: 1\r\nX-R: 2\r\nX-R: 3\r\n\r\n"
    events, _ = decode("http", [(C, fold), (S, b"HTTP/1.1 204 No\r\n\r\n")], send_all_headers=True)
    headers = events[0]["http"]["request"]["headers"]
    assert headers["x-f"] == "a b c" and headers["x-r"] == "1, 2, 3"


def test_http_coding_chain_is_capped() -> None:
    p = StreamParser(ParserConfig())
    req = b"POST / HTTP/1.1\r\nContent-Encoding: " + b"gzip," * 5000 + b"gzip\r\nContent-Length: 0\r\n\r\n"
    (m,) = p.feed(req, 0)
    assert len(m.encodings) == 16 and m.encodings[-1] == "..."


def test_redis_caps_are_counted() -> None:
    get = (C, b"*1\r\n$3\r\nGET\r\n")
    _, stats = decode("redis", [get, (S, b"$600000000\r\nabc")])
    assert stats["redis.bulk_too_large"] == 1
    _, stats = decode("redis", [get, (S, b"*3000000000\r\n")])
    assert stats["redis.count_too_large"] == 1
    _, stats = decode("redis", [(C, b"*1\r\n" * 200)])
    assert stats["redis.nesting_too_deep"] == 1
    _, stats = decode("redis", [(C, b"PING " + b"a" * 70_000)])
    assert stats["redis.inline_too_long"] >= 1
    _, stats = decode("redis", [get, (S, b"+" + b"a" * 5000)], max_message_size=1024)
    assert stats["redis.line_too_long"] == 1


def test_redis_many_tiny_elements_are_bounded() -> None:
    # A million empty strings: only what max_message_size allows is kept (40 B each).
    p = RespParser(max_bytes=40_000)
    (m,) = p.feed(b"*1000000\r\n" + b"$0\r\n\r\n" * 1_000_000, 0)
    assert m.truncated and m.parts is not None and len(m.parts) <= 1000


def test_mysql_caps_are_counted() -> None:
    huge = b"\xff\xff\xff\x00\x03" + b"x" * 100_000  # a 16 MB COM_QUERY, cut short
    _, stats = decode("mysql", [(C, huge)])
    assert stats["mysql.oversized_packets"] == 1
    cols = w.my_packet(1, w.lenenc(5000)) + b"".join(w.my_coldef(2 + i, "d", "t", "c") for i in range(10))
    events, stats = decode("mysql", [(C, w.my_query("SELECT *")), (S, cols)])
    assert stats["mysql.too_many_columns"] == 1
    assert events[0]["error"]["message"] == ["More than 4096 columns"]


def test_pgsql_caps_and_floods() -> None:
    big = b"Q" + struct.pack(">i", 5 << 20) + b"x" * 100_000
    _, stats = decode("pgsql", [(C, big)])
    assert stats["pgsql.oversized_messages"] == 1
    # Errors against queued Binds: the server skips to the next Sync, so they are dropped.
    msgs = [(C, w.pg_bind("", "s") * 10), (S, w.pg_msg(b"E", b"\0") * 3 + w.pg_ready())]
    events, stats = decode("pgsql", msgs)
    assert stats["pgsql.unmatched_responses"] == 3


def test_thrift_caps_are_counted() -> None:
    call = b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x01"
    cases = {
        "collection_too_large": call + b"\x0f\x00\x01\x0b" + struct.pack(">i", 0x7FFFFFFF),
        "string_too_large": call + b"\x0b\x00\x01" + struct.pack(">i", 200 << 20),
        "nesting_too_deep": call + b"\x0c\x00\x01" * 100,
        "frame_too_large": struct.pack(">i", 200 << 20) + call,
    }
    for reason, data in cases.items():
        _, stats = decode("thrift", [(C, data + b"\x00" * 64)])
        assert stats[f"thrift.{reason}"] == 1, (reason, stats)
    fields = call + b"\x08\x00\x01\x00\x00\x00\x01" * 600 + b"\x00"
    _, stats = decode("thrift", [(C, fields)])
    assert stats["thrift.too_many_fields"] == 1


def test_thrift_rendering_budget() -> None:
    level = b"\x0b" + struct.pack(">i", 15) + (struct.pack(">i", 200) + b"s" * 200) * 15
    for _ in range(2):
        level = b"\x0f" + struct.pack(">i", 15) + level * 15
    call = b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x01"
    msg = call + b"\x0f\x00\x01\x0f" + struct.pack(">i", 3) + level * 3 + b"\x00"
    t = ThriftParser(Format())
    (m,) = t.feed(msg, 0)
    assert t.reasons == ["render_truncated"]
    assert sum(len(v) for _, v in m.fields) <= MAX_RENDERED + 100


def test_deep_nesting_never_recurses() -> None:
    # 1,000,000 levels: an explicit stack and a depth cap; RecursionError is impossible.
    p = RespParser(max_depth=10**7)
    (m,) = p.feed(b"*1\r\n" * 1_000_000 + b":1\r\n", 0)
    assert p.errors == 0 and m.size == 4_000_004
    t = ThriftParser(Format(max_depth=10**7))
    call = b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x01"
    (m,) = t.feed(call + b"\x0c\x00\x01" * 200_000 + b"\x00" * 200_001, 0)
    assert t.errors == 0 and m.size == len(call) + 600_000 + 200_001
    # Rendering 200,000 levels would be quadratic: the budget cut it short.
    assert m.fields == [(1, "...")] and t.reasons == ["render_truncated"]


def test_digits_helpers_take_ascii_only() -> None:
    from protocols.common import digits as d

    for text in ("12", b"12", bytearray(b"12"), memoryview(b"12")):
        assert d.ascii_uint(text) == 12 and d.ascii_int(text) == 12 and d.is_ascii_digits(text)
    for bad in ("²", b"\xb2", "\u0663", "1_0", " 1", "+1", "", b"", "1 ", "0x1", "１"):
        assert d.ascii_uint(bad) is None and not d.is_ascii_digits(bad), bad
    assert d.ascii_int("-12") == -12 and d.ascii_int("--1") is None and d.ascii_int("-") is None
    assert d.ascii_uint("9" * 21) is None and d.ascii_uint("9" * 20) == int("9" * 20)
    assert d.ascii_hex("fF") == 255 and d.ascii_hex("\u0663") is None and d.ascii_hex("+f") is None
    assert d.leading_uint("12, 12") == 12 and d.leading_uint("+7x") == 7 and d.leading_uint("x7") is None
    assert d.leading_uint("\u0663") is None and d.leading_uint("9" * 20) is None
    assert d.is_ascii_integer("-" + "1" * 5000) and not d.is_ascii_integer("1\u0663")
    assert all(d.is_ascii_float(x) for x in ("1", "-1.5", "2e10", "1E-3", ".5", "inf", "-inf", "nan"))
    assert not any(d.is_ascii_float(x) for x in ("1_0", " 1", "1.5.2", "\u0663", "e5", ""))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abcd"), st.integers(0, 5)), max_size=200))
def test_thrift_pending_calls_follow_the_reference_rule(ops: list[tuple[bool, str, int]]) -> None:
    """The indexed queue answers like the plain rule: the newest call with the reply's
    method and sequence id, else the newest with its method; older calls with that
    sequence id are left unanswered."""
    from protocols.thrift.parser import ThriftMessage
    from protocols.thrift.transactions import Pending

    pending = Pending()
    model: list[ThriftMessage] = []
    for is_call, method, seqid in ops:
        if is_call:
            m = ThriftMessage(0, 1, method, seqid)
            pending.add(m)
            model.append(m)
            if len(model) > 40:
                assert pending.pop_oldest() is model.pop(0)
            continue
        match = -1
        for i in range(len(model) - 1, -1, -1):
            if model[i].method == method:
                if model[i].seqid == seqid:
                    match = i
                    break
                if match < 0:
                    match = i
        got = pending.take(method, seqid)
        if match < 0:
            assert got is None
            continue
        req = model.pop(match)
        olds = [c for c in model[:match] if c.seqid == req.seqid]
        model = [c for i, c in enumerate(model) if i >= match or c.seqid != req.seqid]
        assert got is not None and got[0] is req and list(got[1]) == olds
        assert len(pending) == len(model)
    assert pending.drain() == model
