"""MySQL decoder: protocol cases that the shared captures do not cover (synthesized traffic)."""

from __future__ import annotations

import struct
from typing import Any

from benchmarks import dbwire as w
from benchmarks.synth import Conversation, exchange
from protocols.common.sql import dump_csv, sql_method
from protocols.mysql.config import MysqlConfig
from tests.helpers import decode_packets

C, S = 0, 1
CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 3306)


def run(messages: list[tuple[int, bytes]], **opts: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    frames = exchange(CLIENT, SERVER, messages)
    events, dec = decode_packets([(ts, 1, f) for ts, f in frames], {"mysql": {"ports": [3306], **opts}})
    return events, dict(dec.stats)


def login(caps: int = w.BASE_CAPS) -> list[tuple[int, bytes]]:
    return [(S, w.my_greeting(caps)), (C, w.my_handshake_response(caps)), (S, w.my_ok(2))]


def test_defaults() -> None:
    cfg = MysqlConfig()
    assert (cfg.max_rows, cfg.max_row_length, cfg.statement_timeout) == (10, 1024, 3600.0)
    from protocols.mysql import MysqlPlugin

    assert MysqlPlugin.default_ports == (3306, 3307)


def test_method_and_csv_helpers() -> None:
    assert sql_method("  select\r\n*") == ("select\r\n*", "SELECT")
    assert sql_method("\tCOMMIT\n") == ("COMMIT", "COMMIT")
    assert (
        dump_csv(["a", "b"], [["x,y", " lead"], ['q"t', "l1\nl2"]]) == 'a,b\n"x,y"," lead"\n"q""t",l1\\nl2\n'
    )
    assert dump_csv([], []) == ""


def test_deprecate_eof_negotiated() -> None:
    caps = w.BASE_CAPS | w.CLIENT_DEPRECATE_EOF
    rs, _ = w.my_result_set(["a", "b"], [["1", "x"], ["2", None], ["3", "z"]], deprecate_eof=True)
    rs0, _ = w.my_result_set(["a"], [], deprecate_eof=True)
    events, stats = run(
        [
            *login(caps),
            (C, w.my_query("SELECT a, b FROM t")),
            (S, rs),
            (C, w.my_query("SELECT a FROM t WHERE 0")),
            (S, rs0),
            (C, w.my_query("DO 1")),
            (S, w.my_ok(1)),
        ],
        send_response=True,
    )
    assert [e["query"] for e in events] == ["SELECT a, b FROM t", "SELECT a FROM t WHERE 0", "DO 1"]
    assert events[0]["mysql"]["num_rows"] == 3
    assert events[0]["response"] == "a,b\n1,x\n2,NULL\n3,z\n"
    assert events[0]["destination"]["bytes"] == len(rs)
    assert events[1]["mysql"]["num_rows"] == 0
    assert events[1]["mysql"]["num_fields"] == 1
    assert events[1]["destination"]["bytes"] == len(rs0)
    assert stats.get("mysql.parse_errors", 0) == 0


def test_deprecate_eof_without_handshake() -> None:
    rs, _ = w.my_result_set(["a"], [["1"], ["2"]], deprecate_eof=True)
    events, _ = run(
        [(C, w.my_query("SELECT a FROM t")), (S, rs), (C, w.my_query("SELECT 2")), (S, w.my_ok(1))]
    )
    assert [(e["query"], e["mysql"]["num_rows"]) for e in events] == [("SELECT a FROM t", 2), ("SELECT 2", 0)]


def test_multi_result_sets_are_one_transaction() -> None:
    more = 2 | w.SERVER_MORE_RESULTS_EXISTS
    first, seq = w.my_result_set(["x"], [["1"]], status=more)
    second, seq = w.my_result_set(["y", "z"], [["2", "3"], ["4", "5"]], seq=seq, status=more)
    final = w.my_ok(seq, affected=0)
    events, _ = run([(C, w.my_query("CALL p()")), (S, first + second + final)], send_response=True)
    (e,) = events
    assert e["method"] == "CALL"
    assert e["mysql"]["num_rows"] == 3
    assert e["mysql"]["num_fields"] == 1
    assert e["response"] == "x\n1\n"
    assert e["path"] == "db.t"
    assert e["destination"]["bytes"] == len(first + second + final)


def test_second_request_before_response_drops_the_first() -> None:
    events, stats = run([(C, w.my_query("SELECT 1")), (C, w.my_query("SELECT 2")), (S, w.my_ok(1))])
    assert [e["query"] for e in events] == ["SELECT 2"]
    assert stats["mysql.unmatched_requests"] == 1


def test_orphan_response_and_skipped_commands() -> None:
    events, stats = run(
        [
            (S, w.my_ok(1)),
            (C, w.my_command(0x0E)),
            (S, w.my_ok(1)),
            (C, w.my_query("SELECT 1")),
            (S, w.my_ok(1)),
        ]
    )
    assert [e["query"] for e in events] == ["SELECT 1"]
    assert stats["mysql.skipped_commands"] == 1


def test_errors() -> None:
    events, _ = run([(C, w.my_query("SELEC 1")), (S, w.my_err(1, 1064, "42000", "You have an error"))])
    (e,) = events
    assert e["status"] == "Error"
    assert e["mysql"]["error_code"] == 1064
    assert e["mysql"]["error_message"] == "42000: You have an error"


def _long(v: int) -> tuple[int, bytes]:
    return 8, struct.pack("<q", v)


def _str(s: str) -> tuple[int, bytes]:
    return 253, w.lstr(s)


def test_prepared_statement_lifecycle() -> None:
    sql = "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?"
    rs, _ = w.my_result_set(["a"], [["1"]])
    double = (5, struct.pack("<d", 2.5))
    date = (12, bytes((7,)) + struct.pack("<HBBBBB", 2017, 7, 28, 0, 0, 0))
    events, stats = run(
        [
            (C, w.my_prepare(sql)),
            (S, w.my_prepare_ok(7, 1, 3)),
            (C, w.my_execute(7, [_str("A1224638"), double, date])),
            (S, rs),
            (C, w.my_execute(7, [_str("B"), (5, None), date], bound=False)),
            (S, rs),
            (C, w.my_execute(0xFFFFFFFF, [_long(-3), double, date])),
            (S, rs),
            (C, w.my_stmt_close(7)),
            (C, w.my_execute(7, [_long(1), double, date])),
            (S, rs),
        ],
    )
    prep, ex1, ex2, ex3, unknown = events
    assert prep["query"] == "Request Prepare Statement"
    assert prep["method"] == "SELECT"
    assert prep["error"]["message"] == [sql]
    assert prep["mysql"]["num_fields"] == 1
    # Dates as Packetbeat 9.3 prints them (mysql_prepare_statement.pcap of its tests).
    assert ex1["query"] == sql and ex1["params"] == ["A1224638", "2.5", "2017/7/28 0:0:0"]
    assert ex1["mysql"]["num_rows"] == 1
    assert ex2["params"] == ["B", "NULL", "2017/7/28 0:0:0"]  # types remembered from the first execute
    assert ex3["params"] == ["-3", "2.5", "2017/7/28 0:0:0"]
    assert unknown["query"] == "Request Execute Statement"
    assert unknown["error"]["message"] == ["The actual query being used is unknown"]
    assert stats["mysql.unknown_statements"] == 1


def test_statements_survive_idle_expiry() -> None:
    conv = Conversation(CLIENT, SERVER).handshake()
    conv.send(C, w.my_prepare("SELECT ?")).send(S, w.my_prepare_ok(1, 1, 1))
    conv.ts += 30 * 1_000_000_000  # idle longer than transaction_timeout: the handler is expired
    conv.send(C, w.my_execute(1, [_long(5)])).send(S, w.my_result_set(["?"], [["5"]])[0])
    events, dec = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"mysql": {"ports": [3306]}})
    assert dec.stats["tcp.connections_expired"] == 1
    assert [e["query"] for e in events] == ["Request Prepare Statement", "SELECT ?"]
    assert events[1]["params"] == ["5"]


def test_tls_upgrade_is_counted_and_not_decoded() -> None:
    events, stats = run(
        [
            (S, w.my_greeting()),
            (C, w.my_ssl_request()),
            (C, b"\x16\x03\x01\x02\x00" + b"\x01" * 300),
            (S, b"\x16\x03\x03\x00\x7a" + b"\x02" * 200),
        ]
    )
    assert events == []
    assert stats["mysql.tls_connections"] == 1
    assert stats.get("mysql.parse_errors", 0) == 0


def test_compressed_protocol_is_counted_and_not_decoded() -> None:
    caps = w.BASE_CAPS | w.CLIENT_COMPRESS
    compressed = b"\x09\x00\x00\x00\x00\x00\x00" + w.my_query("SELECT 1")
    events, stats = run([*login(caps), (C, compressed), (S, b"\x10\x00\x00\x01\x00\x00\x00" + w.my_ok(1))])
    assert events == []
    assert stats["mysql.compressed_connections"] == 1


def test_local_infile() -> None:
    events, _ = run(
        [
            (C, w.my_query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t")),
            (S, w.my_packet(1, b"\xfbf")),
            (C, w.my_packet(2, b"1\n2\n")),
            (C, w.my_packet(3, b"")),
            (S, w.my_ok(4, affected=2)),
        ]
    )
    (e,) = events
    assert e["method"] == "LOAD"
    assert e["mysql"]["affected_rows"] == 2


def test_gap_in_result_set_publishes_partial_result() -> None:
    rows = [[f"row-{i}" * 40] for i in range(200)]
    rs, _ = w.my_result_set(["a"], rows)
    conv = Conversation(CLIENT, SERVER).handshake()
    conv.send(C, w.my_query("SELECT a FROM big"))
    conv.send(S, rs[:20000])
    conv.seq[S] += 3000  # bytes lost in the capture
    conv.send(S, rs[23000:])
    conv.send(C, w.my_query("SELECT 1")).send(S, w.my_ok(1))
    events, dec = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"mysql": {"ports": [3306]}})
    assert dec.stats["tcp.gaps"] == 1
    assert dec.stats["mysql.gap_drops"] == 1
    first = events[0]
    assert first["error"]["message"] == ["Packet loss while capturing the response"]
    assert 0 < first["mysql"]["num_rows"] < 200
    assert first["status"] == "OK"
    assert [e["query"] for e in events[1:]] == ["SELECT 1"]


def test_oversized_row_is_counted_not_buffered() -> None:
    big = "x" * (5 << 20)
    rs, _ = w.my_result_set(["a"], [["small"], [big], ["after"]])
    events, _ = run([(C, w.my_query("SELECT a FROM blobs")), (S, rs)], send_response=True, max_row_length=10)
    (e,) = events
    assert e["mysql"]["num_rows"] == 3
    assert e["response"] == "a\nsmall\nxxxxxxxxxx\n"  # "after" starts past the first 100 KiB


def test_row_truncation_rule() -> None:
    rs, _ = w.my_result_set(["a", "b", "c"], [["12345", "6789", "zz"]])
    events, _ = run([(C, w.my_query("SELECT a, b, c FROM t")), (S, rs)], send_response=True, max_row_length=7)
    assert events[0]["response"] == "a,b,c\n12345,67\n"


def test_statements_expire_after_statement_timeout() -> None:
    def capture(idle_s: int, **opts: Any) -> list[dict[str, Any]]:
        conv = Conversation(CLIENT, SERVER).handshake()
        conv.send(C, w.my_prepare("SELECT ?")).send(S, w.my_prepare_ok(1, 1, 1))
        conv.ts += idle_s * 1_000_000_000
        conv.send(C, w.my_execute(1, [_long(5)])).send(S, w.my_result_set(["?"], [["5"]])[0])
        events, _ = decode_packets(
            [(ts, 1, f) for ts, f in conv.frames], {"mysql": {"ports": [3306], **opts}}
        )
        return events

    assert capture(120, statement_timeout=60)[1]["query"] == "Request Execute Statement"
    assert capture(120)[1]["query"] == "SELECT ?"  # default: one hour


def test_query_attributes_prefix_is_not_part_of_the_query() -> None:
    caps = w.BASE_CAPS | 0x08000000  # CLIENT_QUERY_ATTRIBUTES (MySQL 8)
    attr = b"\x01\x01" + b"\x00" + b"\x01" + bytes((253, 0)) + w.lstr("trace") + w.lstr("abc")
    events, _ = run(
        [
            *login(caps),
            (C, w.my_packet(0, b"\x03\x00\x01SELECT 1")),
            (S, w.my_ok(1)),
            (C, w.my_packet(0, b"\x03" + attr + b"SELECT 2")),
            (S, w.my_ok(1)),
        ]
    )
    assert [e["query"] for e in events] == ["SELECT 1", "SELECT 2"]


def test_reset_connection_forgets_statements() -> None:
    events, _ = run(
        [
            (C, w.my_prepare("SELECT ?")),
            (S, w.my_prepare_ok(1, 1, 1)),
            (C, w.my_command(0x1F)),
            (S, w.my_ok(1)),
            (C, w.my_execute(1, [_long(1)])),
            (S, w.my_result_set(["?"], [["1"]])[0]),
        ]
    )
    assert [e["query"] for e in events] == ["Request Prepare Statement", "Request Execute Statement"]


def test_response_rendered_from_first_100k_only() -> None:
    rows = [[f"{i:04d}" + "x" * 996] for i in range(300)]
    rs, _ = w.my_result_set(["a"], rows)
    events, _ = run([(C, w.my_query("SELECT a FROM big")), (S, rs)], send_response=True, max_rows=2000)
    (e,) = events
    assert e["mysql"]["num_rows"] == 300
    lines = e["response"].strip().split("\n")
    # Header packets (~60 bytes) plus rows of 1,005 bytes: the 102nd row crosses 100 KiB.
    assert len(lines) == 1 + 102
    assert lines[-1].startswith("0101")


def test_parameters_in_packetbeat_renderings() -> None:
    from protocols.mysql import parser as p
    from protocols.mysql.transactions import packetbeat_params

    types = [(p.T_DATETIME, False), (p.T_DATE, False), (p.T_TIMESTAMP, False), (p.T_NULL, False)]
    types += [(p.T_DATETIME, False), (p.T_TIME, False), (p.T_LONG, False)]
    values = ["2017-07-28 09:05:03.250000", "2017-10-28", "0000-00-00 00:00:00", "NULL", "NULL"]
    values += ["-01:02:03", "-1"]
    assert packetbeat_params(values, types) == [
        "2017/7/28 9:5:3",
        "2017/10/28",
        "0/0/0 0:0:0",
        "TYPE_NULL",
        "NULL",  # a NULL from the null bitmap keeps its name
        "-01:02:03",
        "-1",
    ]
