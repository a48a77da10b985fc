"""Packetbeat's MySQL captures: the values Packetbeat's system tests expect, and the rest of
each event worked out from the capture (tshark -d tcp.port==3306,mysql)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import decode_file, shared_pcap


def mysql_events(name: str, **opts: Any) -> list[dict[str, Any]]:
    events = decode_file(shared_pcap(name), {"mysql": {"ports": [3306], **opts}})
    assert all(e["type"] == "mysql" for e in events)
    return events


def test_connection_phase_then_commands() -> None:
    # Starts with the server greeting, login with an auth switch, then COM_QUERY/COM_INIT_DB/COM_QUIT.
    events = mysql_events("mysql_connection", send_response=True, send_request=True)
    rows = [
        (
            e["method"],
            e["query"],
            e["source"]["bytes"],
            e["destination"]["bytes"],
            e.get("path"),
            e["mysql"]["num_rows"],
            e["mysql"]["num_fields"],
            e["mysql"]["affected_rows"],
            e["status"],
        )
        for e in events
    ]
    assert rows == [
        ("SELECT", "select @@version_comment limit 1", 37, 72, ".", 1, 1, 0, "OK"),
        ("CREATE", "CREATE DATABASE test", 25, 11, None, 0, 0, 1, "OK"),
        ("SELECT", "SELECT DATABASE()", 22, 57, ".", 1, 1, 0, "OK"),
        ("SHOW", "SHOW TABLES", 16, 76, ".TABLES", 0, 1, 0, "OK"),
        ("DROP", "DROP DATABASE test", 23, 16, None, 0, 0, 0, "OK"),
    ]
    assert events[0]["response"] == "@@version_comment\nHomebrew\n"
    assert events[0]["request"] == "select @@version_comment limit 1"
    assert events[2]["response"] == "DATABASE()\nNULL\n"
    assert events[3]["response"] == "Tables_in_test\n"
    assert events[1]["response"] == ""
    first = events[0]
    assert first["source"] == {"ip": "127.0.0.1", "port": 63379, "bytes": 37}
    assert first["destination"] == {"ip": "127.0.0.1", "port": 3306, "bytes": 72}
    assert first["event"]["start"] == first["@timestamp"] == 1535671550919507000
    assert first["event"]["end"] == 1535671550919653000
    assert first["network"] == {"transport": "tcp", "protocol": "mysql"}
    assert all("error" not in e for e in events)


def test_error_database_not_selected() -> None:
    (e,) = mysql_events("mysql_err_database_not_selected")
    assert e["method"] == "SELECT"
    assert e["query"] == "select * from test"
    assert e["status"] == "Error"
    assert e["mysql"] == {
        "affected_rows": 0,
        "insert_id": 0,
        "num_rows": 0,
        "num_fields": 0,
        "error_code": 1046,
        "error_message": "3D000: No database selected",
    }
    assert e["source"]["bytes"] == 23
    assert e["destination"]["bytes"] == 33
    assert "path" not in e


@pytest.mark.parametrize(
    ("opts", "lines", "width"),
    [
        ({}, 11, 261),
        ({"max_row_length": 79}, 11, 81),
        ({"max_row_length": 79, "max_rows": 5}, 6, 81),
        ({"max_rows": 2000}, 16, 261),
    ],
)
def test_long_result_limits(opts: dict[str, Any], lines: int, width: int) -> None:
    (e,) = mysql_events("mysql_long_result", send_response=True, **opts)
    assert e["mysql"]["num_rows"] == 15
    assert e["mysql"]["num_fields"] == 3
    assert e["path"] == "test.test"
    out = e["response"].strip().split("\n")
    assert len(out) == lines
    assert out[:3] == ["a,b,c", "1,1,Hello", "2,2,Hello"]
    assert all(len(line) == width for line in out[3:])
    assert e["destination"]["bytes"] == 3629


@pytest.mark.parametrize(
    ("send_request", "send_response"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_send_options(send_request: bool, send_response: bool) -> None:
    (e,) = mysql_events("mysql_long_result", send_request=send_request, send_response=send_response)
    assert ("request" in e) is send_request
    assert ("response" in e) is send_response
    if send_request:
        assert e["request"] == "select * from test"
    if send_response:
        assert len(e["response"]) > 0


def test_whitespace_and_line_breaks_in_queries() -> None:
    events = mysql_events("mysql_with_whitespaces")
    assert [e["method"] for e in events] == ["SET", "SET", "DROP", "CREATE", "INSERT", "SELECT", "SELECT"]
    assert [e["query"] for e in events] == [
        "SET NAMES 'utf8' COLLATE 'utf8_general_ci'",
        "SET @@session.autocommit = OFF",
        "drop \n    table \n        if exists  test",
        "create table\n    test (a varchar(20), b varchar(30))",
        'insert \ninto test values("me", "and you")',
        "select *\nfrom test",
        "select\n*\nfrom test",
    ]
    assert "path" not in events[0]
    assert events[5]["path"] == "test.test"
    assert events[5]["destination"]["bytes"] == 118
    assert events[4]["mysql"]["affected_rows"] == 1
    assert all(e["status"] == "OK" for e in events)
    assert all(e["source"]["bytes"] > 0 and e["destination"]["bytes"] > 0 for e in events)


def test_windows_line_endings() -> None:
    (e,) = mysql_events("mysql_windows_lineending", send_response=True)
    assert e["method"] == "SELECT"
    assert e["query"] == "SELECT\r\n\t1;"
    assert e["response"] == "1\n1\n"
    assert e["event"]["end"] - e["event"]["start"] == 1455643000


def test_gap_publishes_partial_result_with_note() -> None:
    (e,) = mysql_events("mysql_with_gap")
    assert e["status"] == "OK"
    assert e["method"] == "SELECT"
    assert e["query"] == "select * from test_long"
    assert e["mysql"]["num_rows"] == 320
    assert e["error"]["message"] == ["Packet loss while capturing the response"]
    # The server sent 144,800 bytes before the 13,032 lost ones (frames 2-22); they hold
    # 323 whole packets (header, 1 column, EOF, 320 rows) = 144,384 bytes.
    assert e["destination"]["bytes"] == 144384
    # The response time ends at the response's first packet, as Packetbeat measures it.
    assert e["event"]["end"] == 1433536241428875000
