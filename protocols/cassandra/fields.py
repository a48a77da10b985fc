"""Cassandra transaction → event dict (Packetbeat ``protos/cassandra/pub.go``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.cassandra.parser import OP_ERROR, Frame
from protocols.cassandra.transactions import CassandraTransaction
from protocols.common.event import ERROR, OK, add_notes, transaction_event

if TYPE_CHECKING:
    from protocols.cassandra import CassandraPlugin


def _part(frame: Frame, send: bool, header: bool) -> dict[str, Any] | None:
    if not send:
        return None
    data = dict(frame.data) if frame.data else {}
    if header:
        data["headers"] = frame.headers()
    return data or None


def to_event(plugin: CassandraPlugin, txn: CassandraTransaction) -> dict[str, Any]:
    cfg = plugin.config
    req = txn.request
    resp = txn.response
    conn = txn.conn
    first = req if req is not None else resp
    assert first is not None
    # ERROR responses are errors (Packetbeat leaves every transaction OK; docs/differences.md).
    status = ERROR if txn.unmatched or (resp is not None and resp.op == OP_ERROR) else OK
    evt = transaction_event(
        "cassandra",
        "tcp",
        status,
        first.ts,
        (conn.client_ip, conn.client_port),
        (conn.server_ip, conn.server_port),
        start=req.ts if req is not None else None,
        end=resp.ts if resp is not None else None,
        src_bytes=req.size if req is not None else 0,
        dst_bytes=resp.size if resp is not None else 0,
    )
    cassandra: dict[str, Any] = {}
    if req is not None:
        part = _part(req, cfg.send_request, cfg.send_request_header)
        if part:
            cassandra["request"] = part
    else:
        cassandra["no_request"] = True
    if resp is not None:
        part = _part(resp, cfg.send_response, cfg.send_response_header)
        if part:
            cassandra["response"] = part
    if cassandra:
        evt["cassandra"] = cassandra
    if txn.unmatched:
        add_notes(evt, ["Unmatched request"])
    return evt
