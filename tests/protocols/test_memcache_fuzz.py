"""Fuzzing the memcache decoder: random bytes, truncations, valid messages cut at every
offset, mutations and lying length fields, fed whole, byte by byte and in random chunks,
over TCP and UDP. Only counted errors may come out: no exception escapes, buffers and
queues stay bounded, nothing is rescanned."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.memcache import MemcachePlugin
from protocols.memcache.config import MemcacheConfig
from protocols.memcache.parser import StreamParser
from protocols.stats import Counters

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONN = ConnInfo("10.0.0.1", 40000, "10.0.0.2", 11211)
UCONN = ConnInfo("10.0.0.1", 40001, "10.0.0.2", 11211, "udp")
MAX = 4096


def binmsg(
    op: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", opaque: int = 0, request: bool = True
) -> bytes:
    body = extras + key + value
    return (
        struct.pack(
            ">BBHBBHIIQ", 0x80 if request else 0x81, op, len(key), len(extras), 0, 0, len(body), opaque, 0
        )
        + body
    )


REQUESTS = [
    b"set k 1 2 5\r\nhello\r\ncas k 0 0 1 99 noreply\r\nx\r\nget a b c\r\ngets a\r\n",
    b"incr n 5\r\ndecr n 1 noreply\r\ntouch k 10\r\ndelete k\r\nflush_all 0\r\nstats items\r\n",
    b"slabs reassign 1 2\r\nlru_crawler crawl all\r\nverbosity 1\r\nversion\r\nquit\r\n",
    binmsg(0x01, b"k", b"\0\0\0\1\0\0\0\2", b"value", 1)
    + binmsg(0x0D, b"a", opaque=2)
    + binmsg(0x15, b"n", b"\0" * 20, opaque=3)
    + binmsg(0x10, opaque=4)
    + binmsg(0x0A, opaque=5),
]
REPLIES = [
    b"STORED\r\nVALUE a 0 2 7\r\nxy\r\nVALUE c 1 0\r\n\r\nEND\r\nEND\r\n",
    b"5\r\nTOUCHED\r\nDELETED\r\nOK\r\nSTAT pid 1\r\nSTAT uptime 2\r\nEND\r\n",
    b"OK\r\nOK\r\nOK\r\nVERSION 1.6.18\r\nCLIENT_ERROR bad\r\nSERVER_ERROR x\r\nERROR\r\n",
    binmsg(0x01, opaque=1, request=False)
    + binmsg(0x0D, b"a", b"\0\0\0\0", b"v", 2, request=False)
    + binmsg(0x10, b"pid", value=b"9", opaque=4, request=False)
    + binmsg(0x10, opaque=4, request=False)
    + binmsg(0x0A, opaque=5, request=False),
]


def plugin(**opts: Any) -> MemcachePlugin:
    opts.setdefault("max_message_size", MAX)
    opts.setdefault("max_pending_requests", 50)
    opts.setdefault("max_udp_transactions", 50)
    return MemcachePlugin(MemcacheConfig(ports=[11211], **opts), Counters())


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return [c for c in out if c]


def feed(p: MemcachePlugin, steps: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    h = p.new_handler(CONN)
    txns: list[Any] = []
    for i, (d, data) in enumerate(steps):
        txns += h.on_data(d, data, i)
        for parser in h.parsers:
            if parser is not None:
                assert len(parser.buf) - parser.pos <= MAX + len(data)
        assert len(h.requests) <= 50
    txns += h.on_close("fin")
    return [p.to_event(t) for t in txns]


@FUZZ
@given(st.binary(max_size=600), st.binary(max_size=600), st.lists(st.integers(0, 700), max_size=8))
def test_random_bytes(a: bytes, b: bytes, cuts: list[int]) -> None:
    for parse_unknown in (False, True):
        p = plugin(parseunknown=parse_unknown, maxvalues=-1)
        steps = [(FROM_CLIENT, c) for c in chunks(a, cuts)] + [(FROM_SERVER, c) for c in chunks(b, cuts)]
        for evt in feed(p, steps):
            assert evt["type"] == "memcache"


@FUZZ
@given(st.sampled_from(range(len(REQUESTS))), st.lists(st.integers(0, 400), max_size=6))
def test_valid_conversations_in_chunks(i: int, cuts: list[int]) -> None:
    req, rep = REQUESTS[i], REPLIES[i]
    whole = feed(plugin(), [(FROM_CLIENT, req), (FROM_SERVER, rep)])
    split = feed(
        plugin(),
        [(FROM_CLIENT, c) for c in chunks(req, cuts)] + [(FROM_SERVER, c) for c in chunks(rep, cuts)],
    )
    strip = [{k: v for k, v in e.items() if k not in ("@timestamp", "event")} for e in whole]
    assert strip == [{k: v for k, v in e.items() if k not in ("@timestamp", "event")} for e in split]


def test_every_cut_and_byte_by_byte() -> None:
    for req, rep in zip(REQUESTS, REPLIES, strict=True):
        for cut in range(len(req) + 1):
            feed(plugin(), [(FROM_CLIENT, req[:cut]), (FROM_SERVER, rep[: cut % (len(rep) + 1)])])
        ref = feed(plugin(), [(FROM_CLIENT, req), (FROM_SERVER, rep)])
        one = feed(plugin(), [(FROM_CLIENT, req[j : j + 1]) for j in range(len(req))] + [(FROM_SERVER, rep)])
        assert [e["memcache"] for e in one] == [e["memcache"] for e in ref]


@FUZZ
@given(
    st.sampled_from(range(len(REQUESTS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_mutations(i: int, flips: list[tuple[int, int]]) -> None:
    req, rep = bytearray(REQUESTS[i]), bytearray(REPLIES[i])
    for pos, val in flips:
        target = req if pos % 2 else rep
        target[pos % len(target)] = val
    p = plugin(maxvalues=2, maxbytespervalue=3)
    feed(p, [(FROM_CLIENT, bytes(req)), (FROM_SERVER, bytes(rep))])


@FUZZ
@given(
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.sampled_from([0x00, 0x05, 0x0B, 0x10, 0x30]),
)
def test_lying_binary_lengths(total: int, extlen: int, keylen: int, op: int) -> None:
    for magic in (0x80, 0x81):
        hdr = struct.pack(">BBHBBHIIQ", magic, op, keylen, extlen, 0, 0, total, 0, 0)
        p = plugin()
        h = p.new_handler(CONN)
        for _ in range(20):
            h.on_data(FROM_CLIENT if magic == 0x80 else FROM_SERVER, hdr + b"\0" * 200, 0)
            for parser in h.parsers:
                if parser is not None:
                    assert len(parser.buf) - parser.pos <= MAX + 300 and len(parser.buf) <= 65536 + MAX + 300
        h.on_close("fin")


def test_lying_text_length_is_not_allocated() -> None:
    p = plugin()
    h = p.new_handler(CONN)
    h.on_data(FROM_CLIENT, b"set k 0 0 4294967295\r\n", 0)
    parser = h.parsers[FROM_CLIENT]
    assert parser is not None and parser.remaining == 4294967295
    for _ in range(100):
        h.on_data(FROM_CLIENT, b"x" * 1000, 1)
        assert len(parser.buf) == 0
    h.on_close("fin")
    assert p.stats["memcache.incomplete_messages"] == 1


def test_long_line_is_scanned_once() -> None:
    p = StreamParser(False, False, 10, 1 << 20)
    p.feed(b"get ", 0)
    for _ in range(1000):
        msgs, err = p.feed(b"k" * 100, 0)
        assert not msgs and err is None
        assert p.scan == len(p.buf) - 1  # the next search starts at the end: linear time
    msgs, err = p.feed(b"\r\n", 0)
    assert err is None and len(msgs) == 1 and len(msgs[0].keys or []) == 1


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=20), st.data())
def test_random_udp_datagrams(payloads: list[bytes], data: st.DataObject) -> None:
    p = plugin()
    for i, payload in enumerate(payloads):
        d = data.draw(st.sampled_from([FROM_CLIENT, FROM_SERVER]))
        hdr = data.draw(
            st.one_of(
                st.just(b""),
                st.binary(min_size=8, max_size=8),
                st.builds(
                    lambda r, s, t: struct.pack(">HHHH", r, s, t, 0),
                    st.integers(0, 3),
                    st.integers(0, 3),
                    st.integers(0, 3),
                ),
            )
        )
        for t in p.on_datagram(UCONN, d, hdr + payload, i):
            p.to_event(t)
        assert len(p.udp.exchanges) <= 50
        assert p.udp.held == sum(a.nbytes for ex in p.udp.exchanges.values() for a in ex.assembly if a)
    for t in p.tick(10**12):
        p.to_event(t)
    assert not p.udp.exchanges and p.udp.held == 0


@FUZZ
@given(st.sampled_from(range(len(REQUESTS))), st.lists(st.integers(0, 2000), max_size=5), st.integers(1, 4))
def test_udp_messages_cut_into_datagrams(i: int, cuts: list[int], rid: int) -> None:
    p = plugin()
    out: list[Any] = []
    for d, msg in ((FROM_CLIENT, REQUESTS[i]), (FROM_SERVER, REPLIES[i])):
        parts = chunks(msg, cuts)
        for seq, part in enumerate(parts):
            out += p.on_datagram(UCONN, d, struct.pack(">HHHH", rid, seq, len(parts), 0) + part, seq)
    out += p.flush()
    for t in out:
        p.to_event(t)
