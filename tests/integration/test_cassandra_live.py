"""Live Cassandra native protocol: a real Apache Cassandra 5.0 (Maven Central jars, Java 17)
as the server, the DataStax ``cassandra-driver`` as the client, traffic captured on lo.

One node is started per test session (15-60 s on 2 cores). Five client runs each open their
own ``Cluster`` (a control connection that REGISTERs for events and reads the schema, and a
session connection) and capture their traffic: protocol v4 uncompressed with the full
workload (schema changes, prepared statements and executes, logged/unlogged batches, a batch
over the warning threshold, paging, a traced query, an async burst with many requests in
flight, four kinds of error: more than 200 operations), then v4 with LZ4, v4 with Snappy, v5
(segments with CRC24/CRC32) and v5 with LZ4-compressed segments, each with a shorter run.

``FrameRecorder`` (tests/integration/cassandra_workload.py) records every frame the driver
sent and received with its connection's local port and stream id, and decodes each response
again with the driver's own decoder. Every decoded transaction is paired with the recorded
request and response of the same (client port, stream id), in order, and checked: header
fields, sizes, the query text, result kind and contents (row counts, paging state, keyspace,
prepared id and metadata, schema change), error code, message and details, warnings,
SUPPORTED options and pushed EVENTs.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.cassandra.parser import OP_NAMES, head_flags_name
from tests.helpers import make_decoder
from tests.integration.capture import live_capture
from tests.integration.cassandra_server import CassandraNode, cassandra_node

pytestmark = pytest.mark.integration

cassandra = pytest.importorskip("cassandra")

from cassandra.protocol import (  # noqa: E402
    ErrorMessage,
    EventMessage,
    ResultMessage,
    SupportedMessage,
)

from tests.integration.cassandra_workload import (  # noqa: E402
    Counts,
    FrameRecorder,
    Received,
    Sent,
    cluster,
    full_workload,
    small_workload,
)

RESULT_TYPES = {1: "void", 2: "rows", 3: "set_keyspace", 4: "prepared", 5: "schemaChanged"}
EVENT_STREAM = 0xFFFF


@pytest.fixture(scope="session")
def cassandra_server() -> Iterator[CassandraNode]:
    with cassandra_node() as node:
        print(f"cassandra 5.0 started in {node.started_in:.1f}s")
        yield node


def run(
    node: CassandraNode, pcap: Path, version: int, compression: Any, full: bool, **pb: Any
) -> tuple[FrameRecorder, Counts]:
    rec = FrameRecorder()
    n = Counts()
    ks = f"ks_v{version}_{compression or 'plain'}"
    with live_capture(pcap, node.port, protocol="cassandra", **pb), rec.installed():
        c = cluster(node.port, version, compression)
        try:
            session = c.connect()
            if full:
                full_workload(session, ks, n)
            else:
                small_workload(session, ks, n)
        finally:
            c.shutdown()
    return rec, n


def decode(pcap: Path, port: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    dec = make_decoder({"cassandra": {"ports": [port]}})
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(pcap)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return events, dict(dec.stats)


def _result(res: dict[str, Any], msg: ResultMessage) -> None:
    kind = msg.kind
    assert res["type"] == RESULT_TYPES[kind]
    if kind == 2:
        rows = res["rows"]
        assert rows["num_rows"] == len(msg.parsed_rows)
        meta = rows["meta"]
        cols = getattr(msg, "column_metadata", None) or []
        if msg.paging_state:
            assert meta["paging_state"] == msg.paging_state.hex().upper()
        elif cols and "keyspace" in meta:
            assert (meta["keyspace"], meta["table"]) == (cols[0][0], cols[0][1])
        if cols:
            assert meta["col_count"] == len(cols)
    elif kind == 3:
        assert res["keyspace"] == msg.new_keyspace
    elif kind == 4:
        prep = res["prepared"]
        assert prep["prepared_id"] == str(uuid.UUID(bytes=msg.query_id))
        assert prep["req_meta"]["col_count"] == len(msg.bind_metadata)
        assert prep["req_meta"].get("pkey_columns", []) == list(msg.pk_indexes or [])
        if msg.bind_metadata:
            assert prep["req_meta"]["flags"] == "GlobalTableSpec"
            assert prep["req_meta"]["keyspace"] == msg.bind_metadata[0].keyspace_name
        resp_cols = msg.column_metadata or []
        assert prep["resp_meta"]["col_count"] == len(resp_cols)
    elif kind == 5:
        _schema_change(res["schema_change"], msg.schema_change_event)


def _schema_change(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["change"] == want["change_type"]
    assert got["target"] == want["target_type"]
    assert got["keyspace"] == want["keyspace"]
    target = want["target_type"]
    if target in ("TABLE", "TYPE"):
        assert got["object"] == want[target.lower()]
    elif target in ("FUNCTION", "AGGREGATE"):
        desc = want[target.lower()]
        assert got["name"] == desc.name
        assert got["args"] == list(desc.argument_types)


def check_request(req: dict[str, Any], evt: dict[str, Any], sent: Sent) -> None:
    h = req["headers"]
    assert h["op"] == OP_NAMES[sent.op]
    assert h["version"] == str(sent.version & 0x7F)
    assert h["stream"] == sent.stream
    assert h["flags"] == head_flags_name(sent.flags)
    assert h["length"] == sent.size - 9
    assert evt["source"]["bytes"] == sent.size
    if sent.op == 0x07:
        assert req["query"] == sent.msg.query
    else:
        assert "query" not in req


def check_response(resp: dict[str, Any], evt: dict[str, Any], got: Received) -> str:
    h = resp["headers"]
    msg = got.msg
    assert not isinstance(msg, Exception) or isinstance(msg, ErrorMessage), msg
    assert h["op"] == OP_NAMES[got.op]
    assert h["version"] == str(got.version & 0x7F)
    assert h["stream"] == got.stream & 0xFFFF
    assert h["flags"] == head_flags_name(got.flags)
    assert h["length"] == got.size - 9
    assert evt["destination"]["bytes"] == got.size
    if getattr(msg, "warnings", None) and got.op != 0x07:
        assert resp["warnings"] == list(msg.warnings)
    if isinstance(msg, ResultMessage):
        _result(resp["result"], msg)
        assert evt["status"] == "OK"
        return "result"
    if isinstance(msg, ErrorMessage):
        err = resp["error"]
        assert err["code"] == msg.code
        assert err["msg"] == msg.message
        if msg.code == 0x2400:
            assert err["details"] == {"keyspace": msg.info["keyspace"], "table": msg.info["table"]}
        assert evt["status"] == "Error"
        return "error"
    if isinstance(msg, EventMessage):
        ev = resp["event"]
        assert ev["type"] == msg.event_type
        if msg.event_type == "SCHEMA_CHANGE":
            _schema_change(ev["schema_change"], msg.event_args)
        else:
            assert ev["change"] == msg.event_args["change_type"]
        return "event"
    if isinstance(msg, SupportedMessage):
        # The driver keeps CQL_VERSION apart from the other options.
        assert resp["supported"] == {**msg.options, "CQL_VERSION": msg.cql_versions}
        return "supported"
    return "other"


def check_run(pcap: Path, port: int, rec: FrameRecorder, n: Counts, min_ops: int) -> dict[str, int]:
    events, stats = decode(pcap, port)
    losses = {k: v for k, v in stats.items() if k.startswith("cassandra.") or k.startswith("tcp.gap")}
    assert not losses, losses
    sent: dict[tuple[int, int], list[Sent]] = defaultdict(list)
    for s in rec.sent:
        sent[(s.port, s.stream)].append(s)
    received: dict[tuple[int, int], list[Received]] = defaultdict(list)
    for r in rec.received:
        received[(r.port, r.stream & 0xFFFF)].append(r)
    kinds: dict[str, int] = defaultdict(int)
    for evt in sorted(events, key=lambda e: e["@timestamp"]):
        assert evt["type"] == "cassandra"
        assert evt["destination"]["port"] == port
        c = evt["cassandra"]
        cport = evt["source"]["port"]
        if "request" in c:
            req = c["request"]
            s = sent[(cport, req["headers"]["stream"])].pop(0)
            check_request(req, evt, s)
            assert evt["event"]["start"] <= evt["event"]["end"]
        else:
            assert c["no_request"] is True
            assert c["response"]["headers"]["stream"] == EVENT_STREAM
        resp = c["response"]
        got = received[(cport, resp["headers"]["stream"])].pop(0)
        kinds[check_response(resp, evt, got)] += 1
        kinds["transactions"] += 1
    # Every frame the driver exchanged is in exactly one transaction.
    assert not [s for v in sent.values() for s in v]
    assert not [r for v in received.values() for r in v]
    assert kinds["transactions"] == len(rec.received)
    assert n.ops >= min_ops
    assert kinds["error"] == n.errors
    assert kinds["event"] >= 2
    return dict(kinds)


@pytest.mark.parametrize(
    ("version", "compression", "full", "pb"),
    [
        pytest.param(4, False, True, {}, id="v4"),
        pytest.param(4, "lz4", False, {}, id="v4-lz4"),
        pytest.param(4, "snappy", False, {"compressor": "snappy"}, id="v4-snappy"),
        pytest.param(5, False, False, {}, id="v5"),
        pytest.param(5, "lz4", False, {}, id="v5-lz4"),
    ],
)
def test_cassandra_driver(
    cassandra_server: CassandraNode, tmp_path: Path, version: int, compression: Any, full: bool, pb: Any
) -> None:
    if compression == "lz4":
        pytest.importorskip("lz4")
    if compression == "snappy":
        pytest.importorskip("snappy")
    pcap = tmp_path / f"cassandra-v{version}-{compression or 'plain'}.pcap"
    rec, n = run(cassandra_server, pcap, version, compression, full, **pb)
    if compression:
        # The driver really negotiated it: compressed frames (v4) or compressed segments (v5).
        assert any(r.flags & 1 for r in rec.received) or version == 5
    kinds = check_run(pcap, cassandra_server.port, rec, n, 200 if full else 60)
    assert kinds["result"] >= n.ops - n.errors
    print(f"cassandra v{version} {compression or 'plain'}: {n.ops} operations, {kinds}")
