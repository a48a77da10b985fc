"""The shared cassandra_* captures against what Packetbeat 9.3 emits for them
(tests/protocols/cassandra_expected.py, generated from its output with compressor: snappy).

Request maps, sizes and times are Packetbeat's exactly. Response maps too wherever Packetbeat
paired a request with its own response, except ``num_rows``, which is tshark's row count
(cassandra/num-rows); where Packetbeat paired another request's response
(cassandra/pairing-by-stream-id) the response must carry the request's stream id. ERROR
responses make the transaction ``status: Error`` (cassandra/error-status).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers import decode_file, shared_pcap
from tests.protocols.cassandra_expected import EXPECTED


def _ms(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _decode(name: str, **opts: Any) -> list[dict[str, Any]]:
    return decode_file(shared_pcap(f"{name}.pcap"), {"cassandra": {"ports": [9042], **opts}})


def _without_num_rows(resp: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(resp)
    rows = out.get("result", {}).get("rows")
    if rows is not None:
        rows.pop("num_rows", None)
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("compressor", ["snappy", ""])
def test_shared_capture(name: str, compressor: str) -> None:
    events = _decode(name, compressor=compressor)
    expected = EXPECTED[name]
    assert len(events) == len(expected)
    ours = {
        (e["source"]["port"], e["cassandra"]["request"]["headers"]["stream"], _ms(e["event"]["start"])): e
        for e in events
    }
    assert len(ours) == len(events)
    mispaired = 0
    for exp in expected:
        req: Any = exp["request"]
        evt = ours[(exp["sport"], req["headers"]["stream"], exp["ts"])]
        c = evt["cassandra"]
        assert c["request"] == req
        assert evt["source"]["bytes"] == exp["src_bytes"]
        resp = c["response"]
        assert resp["headers"]["stream"] == req["headers"]["stream"]
        assert evt["status"] == ("Error" if resp["headers"]["op"] == "ERROR" else "OK")
        if exp["response"] is None:
            mispaired += 1
            continue
        assert _without_num_rows(resp) == _without_num_rows(exp["response"])  # type: ignore[arg-type]
        assert evt["destination"]["bytes"] == exp["dst_bytes"]
        assert evt["event"]["end"] - evt["event"]["start"] == exp["duration"]
        if "true_num_rows" in exp:
            assert resp["result"]["rows"]["num_rows"] == exp["true_num_rows"]
    if name in ("cassandra_mixed_frame", "cassandra_compressed", "cassandra_create_index"):
        assert mispaired > 0


def test_packetbeat_system_test_expectations() -> None:
    """The values Packetbeat's own tests/system/test_0062_cassandra.py asserts."""
    (o,) = _decode("cassandra_create_keyspace")[:1]
    assert o["event"]["end"] - o["event"]["start"] == 62453000
    assert (o["source"]["bytes"], o["destination"]["bytes"]) == (133, 44)
    c = o["cassandra"]
    assert c["request"]["query"].startswith("CREATE KEYSPACE mykeyspace WITH REPLICATION")
    assert c["request"]["headers"] == {
        "version": "4",
        "op": "QUERY",
        "length": 124,
        "flags": "Default",
        "stream": 20,
    }
    assert c["response"]["result"] == {
        "type": "schemaChanged",
        "schema_change": {"change": "CREATED", "keyspace": "mykeyspace", "target": "KEYSPACE"},
    }
    (o,) = _decode("cassandra_trace_err")
    assert o["cassandra"]["request"]["headers"]["flags"] == "Tracing"
    assert o["cassandra"]["response"]["error"] == {
        "code": 8960,
        "msg": "Cannot drop non existing keyspace 'mykeyspace'.",
        "type": "errConfig",
    }
    mixed = _decode("cassandra_mixed_frame", ignored_ops=["OPTIONS", "REGISTER"])
    assert [e["cassandra"]["request"]["headers"]["op"] for e in mixed[:2]] == ["STARTUP", "QUERY"]
    assert (mixed[1]["source"]["bytes"], mixed[1]["destination"]["bytes"]) == (101, 116)
    comp = _decode("cassandra_compressed")
    (q,) = [
        e["cassandra"]
        for e in comp
        if e["cassandra"]["request"].get("query") == "SELECT * FROM system.local WHERE key='local'"
    ]
    assert q["response"]["result"]["rows"]["meta"]["table"] == "local"
    assert q["response"]["result"]["rows"]["num_rows"] == 1


def test_send_options() -> None:
    e = _decode("cassandra_insert", send_request=False, send_response_header=False)[0]
    assert "request" not in e["cassandra"]
    assert e["cassandra"]["response"] == {"result": {"type": "void"}}
    e = _decode("cassandra_insert", send_response=False, send_request_header=False)[0]
    assert e["cassandra"] == {
        "request": {"query": "INSERT INTO users (user_id,  fname, lname)\n  VALUES (1745, 'john', 'smith');"}
    }
    e = _decode("cassandra_mixed_frame", send_request=False, send_response=False)[0]
    assert "cassandra" not in e


def test_select_capture_of_packetbeats_system_tests() -> None:
    """cassandra_select.pcap (not among the shared captures): Packetbeat's test_select_data."""
    from tests.helpers import beats_pcap

    (o,) = decode_file(beats_pcap("cassandra_select"), {"cassandra": {"ports": [9042]}})
    c = o["cassandra"]
    assert c["request"] == {
        "query": "SELECT * FROM users;",
        "headers": {"version": "4", "op": "QUERY", "length": 41, "flags": "Default", "stream": 253},
    }
    assert c["response"]["headers"] == {
        "version": "4",
        "op": "RESULT",
        "length": 89,
        "flags": "Default",
        "stream": 253,
    }
    assert c["response"]["result"]["type"] == "rows"
    assert c["response"]["result"]["rows"]["meta"] == {
        "flags": "GlobalTableSpec",
        "col_count": 3,
        "keyspace": "mykeyspace",
        "table": "users",
    }
    assert c["response"]["result"]["rows"]["num_rows"] == 1  # Packetbeat: 488819 (cassandra/num-rows)
