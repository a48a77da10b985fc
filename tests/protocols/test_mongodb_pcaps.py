"""Packetbeat's MongoDB captures give what Packetbeat 9.3 gives (system test 0025).

The expectations (tests/protocols/mongodb_expected.py) are Packetbeat 9.3.0's own events
for these captures, written out once. Every event must come out with the same fields and
values; the only differences are the documented ones (docs/differences.md, MongoDB), on the
OP_MSG capture: ``method``/``resource`` name the command and its collection (Packetbeat:
``msg`` and an empty resource, so the ``query``/``request`` prefix differs too), and a reply
with ``ok: 0`` is an error.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers import decode_file, shared_pcap
from tests.protocols.mongodb_expected import EXPECTED

PORTS = [27017, 9991]


def ms(ts_ns: int) -> str:
    t = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns // 1_000_000 % 1000:03d}Z"


def decode(name: str, **opts: Any) -> list[dict[str, Any]]:
    events = decode_file(shared_pcap(name), {"mongodb": {"ports": PORTS, **opts}})
    return sorted(events, key=lambda e: (e["@timestamp"], e["source"]["port"]))


def actual(evt: dict[str, Any]) -> dict[str, Any]:
    ev = evt["event"]
    out: dict[str, Any] = {
        "ts": ms(evt["@timestamp"]),
        "duration": ev["end"] - ev["start"] if "end" in ev else None,
        "sport": evt["source"]["port"],
        "src_bytes": evt["source"].get("bytes"),
        "dst_bytes": evt["destination"].get("bytes"),
        "method": evt["method"],
        "resource": evt["resource"],
        "query": evt["query"],
        "request": evt["request"],
        "mongodb": evt["mongodb"],
        "status": evt["status"],
    }
    r = evt.get("response")
    if r is not None:
        if len(r) > 400:
            out["response_sha1"] = hashlib.sha1(r.encode()).hexdigest()
            out["response_len"] = len(r)
        else:
            out["response"] = r
    return out


LEGACY = [n for n in EXPECTED if n != "mongodb_op_msg_opcode"]


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_captures_identical(name: str) -> None:
    events = decode(name, send_request=True, send_response=True)
    assert [actual(e) for e in events] == EXPECTED[name]
    for e in events:
        assert e["type"] == "mongodb"
        assert e["network"] == {"transport": "tcp", "protocol": "mongodb"}
        assert e["event"]["start"] == e["@timestamp"]


def test_op_msg_capture_with_documented_differences() -> None:
    events = decode("mongodb_op_msg_opcode", send_request=True, send_response=True)
    expected = EXPECTED["mongodb_op_msg_opcode"]
    assert len(events) == len(expected) == 101
    errors = 0
    for evt, exp in zip(events, expected, strict=True):
        got = actual(evt)
        # Packetbeat: every OP_MSG is method "msg" with an empty resource.
        assert exp["method"] == "msg" and exp["resource"] == ""
        assert exp["query"].startswith(".msg(") and exp["request"].startswith(".msg(")
        method = "replSetHeartbeat" if "replSetHeartbeat" in exp["request"] else "ismaster"
        assert got["method"] == method
        assert got["resource"] == "admin.$cmd"
        assert got["query"] == "admin.$cmd." + method + exp["query"][len(".msg") :]
        assert got["request"] == "admin.$cmd." + method + exp["request"][len(".msg") :]
        # Packetbeat reports ok: 0 replies as OK; here they are errors with the errmsg.
        assert exp["status"] == "OK" and exp["mongodb"] == {}
        if method == "replSetHeartbeat":  # each answered ok: 0 in this capture
            errors += 1
            assert got["status"] == "Error"
            assert got["mongodb"] == {
                "error": "Our replica set configuration is invalid or does not include us"
            }
        else:
            assert got["status"] == "OK" and got["mongodb"] == {}
        for k in ("method", "resource", "query", "request", "status", "mongodb"):
            got.pop(k)
            exp = {kk: vv for kk, vv in exp.items() if kk != k}
        assert got == exp
    assert errors == 78


def test_defaults_leave_out_request_and_response() -> None:
    for name in EXPECTED:
        for evt in decode(name):
            assert "request" not in evt and "response" not in evt


def test_max_docs_and_max_doc_length() -> None:
    (evt,) = decode("mongodb_more_rows", send_response=True, max_docs=0)
    assert len(evt["response"].splitlines()) == 101
    (evt,) = decode("mongodb_more_rows", send_response=True, max_docs=10)
    lines = evt["response"].splitlines()
    assert len(lines) == 11 and lines[-1] == "[...]"
    (evt,) = decode("mongodb_more_rows", send_response=True, max_doc_length=10)
    assert all(len(line) < 15 for line in evt["response"].splitlines())
    assert evt["response"].splitlines()[0] == '{"_id":"55 ...'


def test_invalid_opcode_counted_once_per_message() -> None:
    from tests.helpers import make_decoder

    dec = make_decoder({"mongodb": {"ports": PORTS}})
    from capture import CaptureFile

    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(shared_pcap("mongodb_invalid_opcode_2269"))):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    assert events == []
    assert dec.stats["mongodb.unknown_opcodes"] == 3
    assert "mongodb.malformed_messages" not in dec.stats
