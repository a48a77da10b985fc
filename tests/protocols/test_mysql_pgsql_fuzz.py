"""Fuzzing the MySQL and PostgreSQL handlers (h11-style): random bytes, valid conversations
cut at every offset, mutated, and fed whole / byte by byte / in random chunks. Only counted
parse errors are allowed: no exception escapes, buffers stay bounded, and the chunking
never changes the transactions."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import dbwire as w
from protocols.handler import ConnInfo
from protocols.registry import default_config, plugin_class
from protocols.stats import Counters

C, S = 0, 1
PORTS = {"mysql": 3306, "pgsql": 5432}
SMALL_MAX = 4096
SMALL_PREFIX = 512


class Harness:
    """Drives one protocol's handlers the way the TCP layer does (fresh handler after a gap)."""

    def __init__(self, proto: str, **opts: Any) -> None:
        port = PORTS[proto]
        self.stats = Counters()
        self.plugin = plugin_class(proto)(default_config(proto, ports=[port], **opts), self.stats)
        self.conn = ConnInfo("10.0.0.1", 40000, "10.0.0.2", port)
        self.handler = self._new()
        self.txns: list[Any] = []
        self.ts = 1_000_000

    def _new(self) -> Any:
        h: Any = self.plugin.new_handler(self.conn)
        for s in h.streams:  # small limits so the oversize paths are exercised too
            setattr(s, "max_packet" if hasattr(s, "max_packet") else "max_message", SMALL_MAX)
            s.prefix = SMALL_PREFIX
        return h

    def data(self, direction: int, data: bytes) -> None:
        self.ts += 1000
        self.txns += self.handler.on_data(direction, data, self.ts)
        for s in self.handler.streams:
            assert len(s.buf) <= SMALL_MAX + 8 + len(data)
        ops = getattr(self.handler, "ops", ())
        assert len(ops) <= 4096

    def gap(self, direction: int, n: int) -> None:
        if self.handler.on_gap(direction, n):
            self.txns += self.handler.on_close("gap")
            self.handler = self._new()

    def close(self) -> list[dict[str, Any]]:
        self.txns += self.handler.on_close("flush")
        return [self.plugin.to_event(t) for t in self.txns]


def summary(events: list[dict[str, Any]], proto: str) -> list[tuple[Any, ...]]:
    return [
        (
            e["query"],
            e["method"],
            e["status"],
            e[proto],
            e.get("params"),
            e.get("response"),
            e["source"].get("bytes"),
            e["destination"].get("bytes"),
            tuple(e.get("error", {}).get("message", [])),
        )
        for e in events
    ]


def mysql_conversation() -> list[tuple[int, bytes]]:
    rs, _ = w.my_result_set(["a", "b"], [["1", "x"], ["2", None], ["3", "y" * 600]])
    rs_deprecated, _ = w.my_result_set(["c"], [["9"]], deprecate_eof=True)
    big, _ = w.my_result_set(["blob"], [["z" * 6000], ["small"]])
    return [
        (S, w.my_greeting()),
        (C, w.my_handshake_response()),
        (S, w.my_packet(2, b"\xfemysql_native_password\0" + b"s" * 20)),
        (C, w.my_packet(3, b"t" * 20)),
        (S, w.my_ok(4)),
        (C, w.my_query("SELECT a, b FROM t")),
        (S, rs),
        (C, w.my_query("INSERT INTO t VALUES (1)")),
        (S, w.my_ok(1, affected=1, insert_id=42)),
        (C, w.my_query("SELEC")),
        (S, w.my_err(1, 1064, "42000", "syntax")),
        (C, w.my_prepare("SELECT ? + ?")),
        (S, w.my_prepare_ok(3, 1, 2)),
        (C, w.my_execute(3, [(8, struct.pack("<q", 5)), (253, w.lstr("x"))])),
        (S, rs),
        (C, w.my_stmt_close(3)),
        (C, w.my_query("SELECT c")),
        (S, rs_deprecated),
        (C, w.my_query("SELECT blob")),
        (S, big),
        (C, w.my_command(0x01)),
    ]


def pgsql_conversation() -> list[tuple[int, bytes]]:
    rows = w.pg_row_description(["a", "b"]) + w.pg_data_row(["1", None]) + w.pg_data_row(["2", "y" * 700])
    return [
        (C, w.pg_ssl_request()),
        (S, b"N"),
        (C, w.pg_startup()),
        (S, w.pg_msg(b"R", b"\0\0\0\0") + w.pg_msg(b"S", b"k\0v\0") + w.pg_ready()),
        (C, w.pg_query("SELECT a, b FROM t; INSERT INTO t VALUES (1)")),
        (S, rows + w.pg_complete("SELECT 2") + w.pg_complete("INSERT 0 1") + w.pg_ready()),
        (
            C,
            w.pg_parse("SELECT $1", "s")
            + w.pg_bind("", "s", [b"1"])
            + w.pg_describe()
            + w.pg_execute()
            + w.pg_sync(),
        ),
        (S, w.pg_msg(b"1") + w.pg_msg(b"2") + rows + w.pg_complete("SELECT 2") + w.pg_ready()),
        (C, w.pg_query("SELEC 1")),
        (S, w.pg_notice("n") + w.pg_error("42601", "syntax") + w.pg_ready()),
        (C, w.pg_query("SELECT big")),
        (
            S,
            w.pg_row_description(["big"])
            + w.pg_data_row(["q" * 9000])
            + w.pg_complete("SELECT 1")
            + w.pg_ready(),
        ),
        (C, w.pg_msg(b"X")),
    ]


CONVERSATIONS = {"mysql": mysql_conversation, "pgsql": pgsql_conversation}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed(
    proto: str, messages: list[tuple[int, bytes]], cuts: list[int] | None = None
) -> list[dict[str, Any]]:
    h = Harness(proto, send_response=True)
    for d, data in messages:
        if cuts is None:
            h.data(d, data)
            continue
        pos = 0
        for n in cuts:
            if pos >= len(data):
                break
            h.data(d, data[pos : pos + max(1, n)])
            pos += max(1, n)
        if pos < len(data):
            h.data(d, data[pos:])
    return h.close()


def test_valid_conversations_decode_fully() -> None:
    my = summary(feed("mysql", mysql_conversation()), "mysql")
    assert [q for q, *_ in my] == [
        "SELECT a, b FROM t",
        "INSERT INTO t VALUES (1)",
        "SELEC",
        "Request Prepare Statement",
        "SELECT ? + ?",
        "SELECT c",
        "SELECT blob",
    ]
    pg = summary(feed("pgsql", pgsql_conversation()), "pgsql")
    assert [q for q, *_ in pg] == [
        "SELECT a, b FROM t",
        "INSERT INTO t VALUES (1)",
        "SELECT $1",
        "SELEC 1",
        "SELECT big",
    ]


def test_byte_by_byte_equals_whole() -> None:
    for proto, conv in CONVERSATIONS.items():
        whole = summary(feed(proto, conv()), proto)
        assert summary(feed(proto, conv(), cuts=[1] * 100_000), proto) == whole


@FUZZ
@given(st.sampled_from(sorted(CONVERSATIONS)), st.lists(st.integers(1, 700), min_size=1, max_size=400))
def test_random_chunking_equals_whole(proto: str, cuts: list[int]) -> None:
    conv = CONVERSATIONS[proto]()
    assert summary(feed(proto, conv, cuts), proto) == summary(feed(proto, conv), proto)


def test_valid_conversation_cut_at_every_offset() -> None:
    for proto, make in CONVERSATIONS.items():
        conv = make()
        whole = summary(feed(proto, conv), proto)
        total = sum(len(d) for _, d in conv)
        for cut in range(0, total, 7):
            msgs: list[tuple[int, bytes]] = []
            left = cut
            for d, data in conv:
                if left <= 0:
                    break
                msgs.append((d, data[:left]))
                left -= len(data)
            got = summary(feed(proto, msgs), proto)
            # What was answered so far, in order; a cut result set comes out with a note.
            assert [g[0] for g in got] == [x[0] for x in whole[: len(got)]]
            assert all(g == x for g, x in zip(got[:-1], whole, strict=False))


@FUZZ
@given(
    st.sampled_from(sorted(CONVERSATIONS)),
    st.lists(st.tuples(st.sampled_from([C, S]), st.binary(min_size=0, max_size=300)), max_size=30),
)
def test_random_bytes(proto: str, chunks: list[tuple[int, bytes]]) -> None:
    h = Harness(proto, send_response=True, send_request=True)
    for d, data in chunks:
        h.data(d, data)
    h.close()


@FUZZ
@given(st.sampled_from(sorted(CONVERSATIONS)), st.data())
def test_mutated_conversations_and_gaps(proto: str, data: st.DataObject) -> None:
    conv = CONVERSATIONS[proto]()
    h = Harness(proto, send_response=True)
    for d, msg in conv:
        b = bytearray(msg)
        for _ in range(data.draw(st.integers(0, 3))):
            if b:
                b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
        if data.draw(st.integers(0, 9)) == 0:
            h.gap(d, data.draw(st.integers(1, 5000)))
            b = b[data.draw(st.integers(0, len(b))) :]
        h.data(d, bytes(b))
    h.close()


def test_random_prefix_on_a_fresh_handler_resyncs() -> None:
    # A handler created mid-stream (after a gap) first sees the tail of a message.
    for proto, make in CONVERSATIONS.items():
        conv = make()
        h = Harness(proto)
        h.data(S, b"\x00\x01garbage-tail-of-a-row" * 3)
        h.data(C, b"\x7f\x00\x00tail of something")
        for d, msg in conv[4:]:
            h.data(d, msg)
        events = h.close()
        assert events, proto
