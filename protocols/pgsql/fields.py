"""PostgreSQL transaction → event dict (Packetbeat ``protos/pgsql``, ECS field names)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK, add_notes, transaction_event
from protocols.common.sql import dump_csv, sql_method
from protocols.pgsql import parser as p
from protocols.pgsql.transactions import UNKNOWN_NOTE, PgsqlTransaction

if TYPE_CHECKING:
    from protocols.pgsql import PgsqlPlugin


def response_csv(plugin: PgsqlPlugin, txn: PgsqlTransaction) -> str:
    limit = plugin.config.max_row_length
    rows = []
    for raw in txn.rows:
        try:
            rows.append(p.data_row(raw, txn.formats, limit))
        except (p.ParseError, IndexError, struct.error):
            plugin.stats.incr("pgsql.row_decode_errors")
    return dump_csv(list(txn.fields), rows)


def to_event(plugin: PgsqlPlugin, txn: PgsqlTransaction) -> dict[str, Any]:
    cfg = plugin.config
    conn = txn.conn
    evt = transaction_event(
        "pgsql",
        "tcp",
        ERROR if txn.is_error else OK,
        txn.ts,
        (conn.client_ip, conn.client_port),
        (conn.server_ip, conn.server_port),
        start=txn.ts,
        end=txn.end_ts,
        src_bytes=txn.req_size,
        dst_bytes=txn.resp_size,
    )
    query, method = sql_method(txn.query)
    if not query and UNKNOWN_NOTE in txn.notes:
        method = "EXECUTE"  # a portal of a statement prepared before the capture started
    evt["method"] = method
    evt["query"] = query
    pgsql: dict[str, Any] = {"num_rows": txn.num_rows, "num_fields": txn.num_fields}
    if txn.is_error:
        pgsql["error_code"] = txn.error_code
        pgsql["error_message"] = txn.error_message
        pgsql["error_severity"] = txn.error_severity
    evt["pgsql"] = pgsql
    if cfg.send_request:
        evt["request"] = query
    if cfg.send_response:
        evt["response"] = response_csv(plugin, txn)
    add_notes(evt, txn.notes)
    return evt
