"""Fuzzing the Redis and Thrift decoders: random bytes, truncations, valid messages cut at
every offset, fed whole, byte by byte and in random chunks (h11's test-helper habit).
Only counted parse errors may come out: no exception escapes, buffers stay bounded."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.redis import RedisPlugin
from protocols.redis.config import RedisConfig
from protocols.redis.parser import RespParser
from protocols.stats import Counters
from protocols.thrift import ThriftPlugin
from protocols.thrift.config import ThriftConfig
from protocols.thrift.parser import Format, ThriftParser

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REDIS_SAMPLES = [
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
    b"*2\r\n*2\r\n:1\r\n$-1\r\n-ERR x\r\n",
    b"%2\r\n+a\r\n#t\r\n~1\r\n,3.5\r\n|1\r\n+k\r\n+v\r\n=8\r\ntxt:abcd\r\n",
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n_\r\n(123\r\n!3\r\nERR\r\n",
    b"PING\r\n*0\r\n*-1\r\n$0\r\n\r\n",
]
# A strict-binary call, a compact call, a framed binary reply, and replies carrying a
# list of 18 structs (past the collection limit, so partly skipped) in both protocols.
THRIFT_SAMPLES = [
    bytes.fromhex(
        "82410004726f77730900fc121600180272300016021802723100160418027232001606180272330016081802723400160a1802723500160c1802723600160e18027237001610180272380016121802723900161418037231300016161803723131001618180372313200161a180372313300161c180372313400161e1803723135001620180372313600162218037231370000"
    ),
    bytes.fromhex(
        "8001000200000004726f7773000000000f00000c000000120a000100000000000000000b0002000000027230000a000100000000000000010b0002000000027231000a000100000000000000020b0002000000027232000a000100000000000000030b0002000000027233000a000100000000000000040b0002000000027234000a000100000000000000050b0002000000027235000a000100000000000000060b0002000000027236000a000100000000000000070b0002000000027237000a000100000000000000080b0002000000027238000a000100000000000000090b0002000000027239000a0001000000000000000a0b000200000003723130000a0001000000000000000b0b000200000003723131000a0001000000000000000c0b000200000003723132000a0001000000000000000d0b000200000003723133000a0001000000000000000e0b000200000003723134000a0001000000000000000f0b000200000003723135000a000100000000000000100b000200000003723136000a000100000000000000110b0002000000037231370000"
    ),
    bytes.fromhex(
        "80010001000000036164640000000008000100000001080002000000010f00030b000000020000000161000000016200"
    ),
    bytes.fromhex("8221070963616c63756c61746515021c150215041508180268690000"),
    bytes.fromhex("00000027800100020000000b6563686f5f62696e617279000000000b000000000008ab0c1d281a00000000"),
    bytes.fromhex(
        "0000003a800100020000000963616c63756c617465000000000c0001080001000000040b0002000000124361"
        "6e6e6f742064697669646520627920300000"
    ),
]


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return [c for c in out if c]


def feed_three_ways(make: Any, data: bytes, cuts: list[int]) -> list[list[Any]]:
    results = []
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))], chunks(data, cuts)):
        p = make()
        out: list[Any] = []
        for i, piece in enumerate(pieces):
            out += p.feed(piece, i)
            assert len(p.rest) <= len(data)
        results.append(out)
    return results


def redis_view(msgs: list[Any]) -> list[tuple[Any, ...]]:
    return [(m.kind, m.render(), m.size, m.is_error) for m in msgs]


def thrift_view(msgs: list[Any]) -> list[tuple[Any, ...]]:
    return [(m.mtype, m.method, m.seqid, m.fields, m.size) for m in msgs]


@FUZZ
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_redis_parser_random_bytes(data: bytes, cuts: list[int]) -> None:
    for inline in (False, True):
        for out in feed_three_ways(
            lambda inline=inline: RespParser(inline=inline, max_bytes=1000), data, cuts
        ):
            assert all(m.size > 0 for m in out)


@FUZZ
@given(
    sample=st.sampled_from(REDIS_SAMPLES),
    cut=st.integers(0, 200),
    cuts=st.lists(st.integers(0, 200), max_size=8),
)
def test_redis_parser_cut_and_chunked(sample: bytes, cut: int, cuts: list[int]) -> None:
    whole, single, chunked = (
        redis_view(o) for o in feed_three_ways(lambda: RespParser(inline=True), sample, cuts)
    )
    assert whole == single == chunked
    assert sum(m[2] for m in whole) == len(sample)
    # Cut anywhere: no error, and what completes is a prefix of the whole parse.
    p = RespParser(inline=True)
    part = redis_view(p.feed(sample[: cut % (len(sample) + 1)], 0))
    assert p.errors == 0
    assert part == whole[: len(part)]


@FUZZ
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_thrift_parser_random_bytes(data: bytes, cuts: list[int]) -> None:
    for framed in (False, True):
        feed_three_ways(lambda framed=framed: ThriftParser(Format(), framed), data, cuts)


@FUZZ
@given(
    sample=st.sampled_from(THRIFT_SAMPLES),
    cut=st.integers(0, 200),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    flip=st.tuples(st.integers(0, 200), st.integers(0, 255)),
)
def test_thrift_parser_cut_chunked_and_corrupted(
    sample: bytes, cut: int, cuts: list[int], flip: tuple[int, int]
) -> None:
    whole, single, chunked = (
        thrift_view(o) for o in feed_three_ways(lambda: ThriftParser(Format()), sample, cuts)
    )
    assert whole == single == chunked and len(whole) == 1
    p = ThriftParser(Format())
    n = cut % (len(sample) + 1)
    part = thrift_view(p.feed(sample[:n], 0))
    assert p.errors == 0
    assert part == (whole if n == len(sample) else [])
    # One corrupted byte: at most a counted error.
    bad = bytearray(sample)
    bad[flip[0] % len(bad)] = flip[1]
    feed_three_ways(lambda: ThriftParser(Format()), bytes(bad) + sample, cuts)


def _handler_run(plugin: Any, msgs: list[tuple[int, bytes]]) -> None:
    h = plugin.new_handler(ConnInfo("10.0.0.1", 1, "10.0.0.2", 2))
    for i, (d, data) in enumerate(msgs):
        txns = h.on_data(d, data, i)
        for t in txns:
            evt = plugin.to_event(t)
            assert evt["type"] in ("redis", "thrift")
        if i % 7 == 3 and h.on_gap(d, 5):
            h.on_close("gap")
            h = plugin.new_handler(ConnInfo("10.0.0.1", 1, "10.0.0.2", 2))
    for t in h.on_close("flush"):
        plugin.to_event(t)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.binary(max_size=80)), max_size=20))
def test_redis_thrift_handlers_never_raise_on_random_traffic(msgs: list[tuple[int, bytes]]) -> None:
    _handler_run(RedisPlugin(RedisConfig(ports=[6379]), Counters()), msgs)
    _handler_run(ThriftPlugin(ThriftConfig(ports=[9090]), Counters()), msgs)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([FROM_CLIENT, FROM_SERVER]),
            st.sampled_from(REDIS_SAMPLES + THRIFT_SAMPLES),
            st.integers(0, 200),
        ),
        max_size=20,
    )
)
def test_redis_thrift_handlers_never_raise_on_cut_messages(msgs: list[tuple[int, bytes, int]]) -> None:
    cut = [(d, data[: n % (len(data) + 1)]) for d, data, n in msgs]
    _handler_run(RedisPlugin(RedisConfig(ports=[6379]), Counters()), cut)
    _handler_run(ThriftPlugin(ThriftConfig(ports=[9090]), Counters()), cut)


def test_redis_thrift_deep_nesting_is_bounded_without_recursion() -> None:
    p = RespParser()
    assert p.feed(b"*1\r\n" * 100_000, 0) == [] and p.errors == 1
    t = ThriftParser(Format())
    deep = b"\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x00" + b"\x0c\x00\x01" * 100_000
    assert t.feed(deep, 0) == [] and t.errors == 1
    # A huge declared count allocates nothing.
    p = RespParser()
    assert p.feed(b"*2000000000\r\n:1\r\n", 0) == [] and p.errors == 0 and len(p.stack[0][2]) == 1
    t = ThriftParser(Format())
    head = b"\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x00\x0f\x00\x01\x08"
    big = head + struct.pack(">i", 20_000_000)  # 80 MB of i32: allowed, nothing allocated
    assert t.feed(big + b"\x00" * 400, 0) == [] and t.errors == 0 and len(t.stack[-1].items) == 15
    # 2**31-1 i32 claim 8 GB: beyond Thrift's 100 MiB message limit, refused at once.
    t = ThriftParser(Format())
    assert t.feed(head + struct.pack(">i", 2**31 - 1), 0) == [] and t.errors == 1
    assert t.reasons == ["collection_too_large"]
