"""PostgreSQL decoder: protocol cases that the shared captures do not cover (synthesized traffic)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import dbwire as w
from benchmarks.synth import Conversation, exchange
from protocols.pgsql.config import PgsqlConfig
from protocols.pgsql.parser import split_statements
from tests.helpers import decode_packets

C, S = 0, 1
CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 5432)


def run(messages: list[tuple[int, bytes]], **opts: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    frames = exchange(CLIENT, SERVER, messages)
    events, dec = decode_packets([(ts, 1, f) for ts, f in frames], {"pgsql": {"ports": [5432], **opts}})
    return events, dict(dec.stats)


def test_defaults() -> None:
    cfg = PgsqlConfig()
    assert (cfg.max_rows, cfg.max_row_length) == (10, 1024)
    from protocols.pgsql import PgsqlPlugin

    assert PgsqlPlugin.default_ports == (5432,)


@pytest.mark.parametrize(
    ("query", "statements"),
    [
        ("select 1", ["select 1"]),
        (" select 1; select 2 ;", ["select 1", "select 2"]),
        ("select ';'; select \"a;b\" from t", ["select ';'", 'select "a;b" from t']),
        ("select $$a;b$$; select $x$;$x$", ["select $$a;b$$", "select $x$;$x$"]),
        ("select 1; -- trailing; comment", ["select 1"]),
        ("/* c; */ select 1", ["/* c; */ select 1"]),
        ("select 'it''s;'; select 2", ["select 'it''s;'", "select 2"]),
        ("", []),
        (" ; ", []),
    ],
)
def test_statement_splitting(query: str, statements: list[str]) -> None:
    assert split_statements(query) == statements


def test_several_statements_in_one_query_and_an_error() -> None:
    q = w.pg_query("INSERT INTO t VALUES (1); SELECT a FROM t; INSERT INTO t VALUES (1); SELECT 2")
    resp = (
        w.pg_complete("INSERT 0 1")
        + w.pg_row_description(["a"])
        + w.pg_data_row(["1"])
        + w.pg_complete("SELECT 1")
        + w.pg_error("23505", "duplicate key")
        + w.pg_ready()
    )
    events, stats = run(
        [(C, q), (S, resp), (C, w.pg_query("SELECT 3")), (S, w.pg_complete("SELECT 0") + w.pg_ready())]
    )
    assert [(e["query"], e["status"]) for e in events] == [
        ("INSERT INTO t VALUES (1)", "OK"),
        ("SELECT a FROM t", "OK"),
        ("INSERT INTO t VALUES (1)", "Error"),
        ("SELECT 3", "OK"),
    ]
    assert events[1]["pgsql"] == {"num_rows": 1, "num_fields": 1}
    assert events[2]["pgsql"]["error_code"] == "23505"
    assert all(e["source"]["bytes"] == len(q) for e in events[:3])
    assert stats["pgsql.skipped_statements"] == 1  # "SELECT 2" never ran


def test_extended_query_bytes_like_packetbeat() -> None:
    req = (
        w.pg_parse("SELECT * from test where id = $1")
        + w.pg_bind(params=[b"1"])
        + w.pg_describe()
        + w.pg_execute()
    )
    req += w.pg_sync()
    rows = w.pg_row_description(["id", "name"]) + w.pg_data_row(["1", "x"]) + w.pg_complete("SELECT 1")
    resp = w.pg_msg(b"1") + w.pg_msg(b"2") + rows + w.pg_ready()
    events, _ = run([(C, req), (S, resp)], send_response=True)
    (e,) = events
    assert e["query"] == "SELECT * from test where id = $1"
    assert e["method"] == "SELECT"
    assert e["source"]["bytes"] == len(req)  # Parse .. Sync
    assert e["destination"]["bytes"] == len(rows)  # RowDescription .. CommandComplete
    assert e["response"] == "id,name\n1,x\n"


def test_pipelined_executes_and_error_skips_to_sync() -> None:
    def stmt(sql: str) -> bytes:
        return w.pg_parse(sql) + w.pg_bind() + w.pg_describe() + w.pg_execute()

    req = stmt("INSERT INTO t VALUES (1)") + stmt("SELECT a FROM t") + stmt("INSERT INTO t VALUES (1)")
    req += stmt("SELECT 4") + w.pg_sync() + stmt("SELECT 5") + w.pg_sync()
    ok = w.pg_msg(b"1") + w.pg_msg(b"2")
    resp = ok + w.pg_msg(b"n") + w.pg_complete("INSERT 0 1")
    resp += (
        ok
        + w.pg_row_description(["a"])
        + w.pg_data_row(["1"])
        + w.pg_data_row(["2"])
        + w.pg_complete("SELECT 2")
    )
    resp += ok + w.pg_msg(b"n") + w.pg_error("23505", "dup") + w.pg_ready(b"I")
    resp += (
        ok
        + w.pg_row_description(["?column?"])
        + w.pg_data_row(["5"])
        + w.pg_complete("SELECT 1")
        + w.pg_ready()
    )
    events, stats = run([(C, req), (S, resp)])
    assert [(e["query"], e["status"], e["pgsql"]["num_rows"]) for e in events] == [
        ("INSERT INTO t VALUES (1)", "OK", 0),
        ("SELECT a FROM t", "OK", 2),
        ("INSERT INTO t VALUES (1)", "Error", 0),
        ("SELECT 5", "OK", 1),
    ]
    assert stats["pgsql.skipped_statements"] == 1


def test_parse_error_and_named_statements() -> None:
    events, _ = run(
        [
            (C, w.pg_parse("SELEC 1") + w.pg_bind() + w.pg_execute() + w.pg_sync()),
            (S, w.pg_error("42601", 'syntax error at or near "SELEC"') + w.pg_ready()),
            (C, w.pg_parse("SELECT $1::int", name="s1") + w.pg_describe(b"S", "s1") + w.pg_sync()),
            (
                S,
                w.pg_msg(b"1")
                + w.pg_msg(b"t", b"\0\x01\0\0\0\x17")
                + w.pg_row_description(["int4"])
                + w.pg_ready(),
            ),
            (C, w.pg_bind("", "s1", [b"7"]) + w.pg_execute() + w.pg_sync()),
            (S, w.pg_msg(b"2") + w.pg_data_row(["7"]) + w.pg_complete("SELECT 1") + w.pg_ready()),
            (C, w.pg_bind("", "nope") + w.pg_execute() + w.pg_sync()),
            (S, w.pg_error("26000", "prepared statement does not exist") + w.pg_ready()),
        ]
    )
    assert [(e["query"], e["status"]) for e in events] == [
        ("SELEC 1", "Error"),
        ("SELECT $1::int", "OK"),
        ("", "Error"),
    ]
    assert events[0]["pgsql"]["error_code"] == "42601"
    assert events[1]["pgsql"]["num_rows"] == 1
    assert events[2]["error"]["message"] == ["The actual query being used is unknown"]
    assert events[2]["method"] == "EXECUTE"


def test_portal_suspended_and_empty_query() -> None:
    events, _ = run(
        [
            (C, w.pg_parse("SELECT g FROM t") + w.pg_bind() + w.pg_execute(max_rows=1) + w.pg_sync()),
            (S, w.pg_msg(b"1") + w.pg_msg(b"2") + w.pg_data_row(["1"]) + w.pg_msg(b"s") + w.pg_ready(b"T")),
            (C, w.pg_query("")),
            (S, w.pg_msg(b"I") + w.pg_ready()),
        ]
    )
    (e,) = events
    assert e["query"] == "SELECT g FROM t"
    assert e["pgsql"]["num_rows"] == 1


def test_startup_ssl_refused_notices_and_async_messages() -> None:
    auth_ok = (
        w.pg_msg(b"R", b"\0\0\0\0") + w.pg_msg(b"S", b"a\0b\0") + w.pg_msg(b"K", b"\0" * 8) + w.pg_ready()
    )
    events, stats = run(
        [
            (C, w.pg_ssl_request()),
            (S, b"N"),
            (C, w.pg_startup()),
            (S, auth_ok),
            (C, w.pg_query("DO $$BEGIN RAISE NOTICE 'x'; END$$")),
            (S, w.pg_notice("x") + w.pg_msg(b"A", b"\0\0\0\1c\0p\0") + w.pg_complete("DO") + w.pg_ready()),
        ]
    )
    (e,) = events
    assert e["method"] == "DO"
    assert e["destination"]["bytes"] == len(w.pg_complete("DO"))
    assert stats.get("pgsql.parse_errors", 0) == 0


def test_ssl_accepted_is_counted_and_not_decoded() -> None:
    events, stats = run(
        [
            (C, w.pg_ssl_request()),
            (S, b"S"),
            (C, b"\x16\x03\x01\x02\x00" + b"\1" * 100),
            (S, b"\x16\x03\x03\x00\x7a" + b"\2" * 100),
        ]
    )
    assert events == []
    assert stats["pgsql.encrypted_connections"] == 1
    assert stats.get("pgsql.parse_errors", 0) == 0


def test_copy_in_and_out() -> None:
    events, _ = run(
        [
            (C, w.pg_query("COPY t FROM STDIN")),
            (S, w.pg_msg(b"G", b"\0\0\1\0\0")),
            (C, w.pg_msg(b"d", b"1\n") + w.pg_msg(b"d", b"2\n") + w.pg_msg(b"c")),
            (S, w.pg_complete("COPY 2") + w.pg_ready()),
            (C, w.pg_query("COPY t TO STDOUT")),
            (
                S,
                w.pg_msg(b"H", b"\0\0\1\0\0")
                + w.pg_msg(b"d", b"1\n")
                + w.pg_msg(b"d", b"2\n")
                + w.pg_msg(b"c")
                + w.pg_complete("COPY 2")
                + w.pg_ready(),
            ),
        ]
    )
    assert [(e["query"], e["pgsql"]["num_rows"]) for e in events] == [
        ("COPY t FROM STDIN", 0),
        ("COPY t TO STDOUT", 2),
    ]


def test_response_limits_and_nulls() -> None:
    rows = [[str(i), "v" * 30, None] for i in range(15)]
    resp = (
        w.pg_row_description(["a", "b", "c"])
        + b"".join(w.pg_data_row(r) for r in rows)
        + w.pg_complete("SELECT 15")
    )
    events, _ = run(
        [(C, w.pg_query("SELECT a, b, c FROM t")), (S, resp + w.pg_ready())],
        send_response=True,
        max_rows=3,
        max_row_length=10,
    )
    (e,) = events
    assert e["pgsql"]["num_rows"] == 15
    assert e["response"] == "a,b,c\n0,vvvvvvvvv\n1,vvvvvvvvv\n2,vvvvvvvvv\n"


def test_gap_in_rows_publishes_partial_result() -> None:
    rows = b"".join(w.pg_data_row([f"row-{i}" * 50]) for i in range(100))
    resp = w.pg_row_description(["a"]) + rows + w.pg_complete("SELECT 100") + w.pg_ready()
    conv = Conversation(CLIENT, SERVER).handshake()
    conv.send(C, w.pg_query("SELECT a FROM big"))
    conv.send(S, resp[:10000])
    conv.seq[S] += 2000
    conv.send(S, resp[12000:])
    conv.send(C, w.pg_query("SELECT 1")).send(S, w.pg_complete("SELECT 0") + w.pg_ready())
    events, dec = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"pgsql": {"ports": [5432]}})
    assert dec.stats["pgsql.gap_drops"] == 1
    first = events[0]
    assert first["error"]["message"] == ["Packet loss while capturing the response"]
    assert 0 < first["pgsql"]["num_rows"] < 100
    assert [e["query"] for e in events[1:]] == ["SELECT 1"]


def test_close_publishes_answered_part_and_counts_unanswered() -> None:
    events, stats = run(
        [
            (C, w.pg_query("SELECT a FROM t; SELECT b FROM t")),
            (
                S,
                w.pg_row_description(["a"])
                + w.pg_data_row(["1"])
                + w.pg_complete("SELECT 1")
                + w.pg_row_description(["b"])
                + w.pg_data_row(["2"]),
            ),
        ]
    )
    assert [(e["query"], e.get("error")) for e in events] == [
        ("SELECT a FROM t", None),
        ("SELECT b FROM t", {"message": ["Response incomplete at end of stream"]}),
    ]
    events, stats = run([(C, w.pg_query("SELECT pg_sleep(100)"))])
    assert events == []
    assert stats["pgsql.unmatched_requests"] == 1


def test_set_statements_of_the_extended_protocol_are_not_published() -> None:
    # Packetbeat ignores a Parse whose query starts with "SET " (drivers' session set-up).
    events, stats = run(
        [
            (C, w.pg_parse("SET extra_float_digits = 3") + w.pg_bind() + w.pg_execute() + w.pg_sync()),
            (S, w.pg_msg(b"1") + w.pg_msg(b"2") + w.pg_complete("SET") + w.pg_ready()),
            (C, w.pg_query("SET search_path = x")),
            (S, w.pg_complete("SET") + w.pg_ready()),
        ]
    )
    assert [e["query"] for e in events] == ["SET search_path = x"]
    assert stats["pgsql.ignored_set_statements"] == 1
