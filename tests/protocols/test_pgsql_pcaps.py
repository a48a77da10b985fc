"""Packetbeat's PostgreSQL captures: the values Packetbeat's system tests expect, and the rest
of each event worked out from the capture (tshark -d tcp.port==5432,pgsql)."""

from __future__ import annotations

from typing import Any

from tests.helpers import decode_file, shared_pcap


def pgsql_events(name: str, **opts: Any) -> list[dict[str, Any]]:
    events = decode_file(shared_pcap(name), {"pgsql": {"ports": [5432], **opts}})
    assert all(e["type"] == "pgsql" for e in events)
    return events


def test_select_with_response() -> None:
    (e,) = pgsql_events("pgsql_request_response", send_response=True, send_request=True)
    assert e["method"] == "SELECT"
    assert e["query"] == "select * from test"
    assert e["request"] == "select * from test"
    assert e["response"] == "a,b,c\nmea,meb,mec\nmea1,meb1,mec1\nmea2,meb2,mec2\nmea3,meb3,mec3\n"
    assert e["status"] == "OK"
    assert e["pgsql"] == {"num_rows": 4, "num_fields": 3}
    # Query message 25 bytes; RowDescription + 4 DataRows + CommandComplete = 208 - 6 (ReadyForQuery).
    assert e["source"] == {"ip": "127.0.0.1", "port": 37881, "bytes": 25}
    assert e["destination"] == {"ip": "127.0.0.1", "port": 5432, "bytes": 202}
    assert e["event"]["start"] == 1420919143161944000
    assert e["event"]["end"] == 1420919143163433000
    assert "error" not in e


def test_insert() -> None:
    (e,) = pgsql_events("pgsql_insert")
    assert e["method"] == "INSERT"
    assert e["query"] == "insert into test(a, b, c) values('mea5', 'meb5', 'mec5')"
    assert e["status"] == "OK"
    assert e["source"]["bytes"] == 63
    assert e["destination"]["bytes"] == 16
    assert e["pgsql"] == {"num_rows": 0, "num_fields": 0}
    assert "response" not in e and "request" not in e


def test_insert_error() -> None:
    (e,) = pgsql_events("pgsql_insert_error")
    assert e["method"] == "INSERT"
    assert e["status"] == "Error"
    assert e["pgsql"] == {
        "num_rows": 0,
        "num_fields": 0,
        "error_code": "23505",
        "error_message": 'duplicate key value violates unique constraint "unique_a"',
        "error_severity": "ERROR",
    }
    assert e["source"]["bytes"] == 63
    assert e["destination"]["bytes"] == 147


def test_response_time_after_startup_and_ssl_refusal() -> None:
    # Two connections: SSLRequest answered 'N', StartupMessage, authentication; only the
    # second one sends a query.
    (e,) = pgsql_events("pgsql_rt", send_response=True)
    assert e["method"] == "SELECT"
    assert e["query"] == "select * from test"
    assert (e["event"]["end"] - e["event"]["start"]) // 1_000_000 == 38
    assert e["pgsql"] == {"num_rows": 2, "num_fields": 2}
    assert e["response"] == "a,b\n1,2\n2,3\n"
    assert e["source"]["port"] == 38145
    assert e["destination"]["bytes"] == 95  # frame 26 (101 bytes) minus ReadyForQuery (6)
