"""MySQL transaction → event dict (Packetbeat ``protos/mysql``, ECS field names)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK, add_notes, transaction_event
from protocols.common.sql import dump_csv, sql_method
from protocols.mysql import parser as p
from protocols.mysql.transactions import UNKNOWN_EXECUTE, MysqlTransaction

if TYPE_CHECKING:
    from protocols.mysql import MysqlPlugin

PREPARE_QUERY = "Request Prepare Statement"


def response_csv(plugin: MysqlPlugin, txn: MysqlTransaction) -> str:
    limit = plugin.config.max_row_length
    rows: list[list[str]] = []
    for raw in txn.rows:
        try:
            if txn.binary and raw[:1] == b"\x00" and txn.columns:
                rows.append(p.binary_row(raw, txn.columns, limit))
            else:
                rows.append(p.text_row(raw, limit))
        except (p.ParseError, IndexError, struct.error):
            plugin.stats.incr("mysql.row_decode_errors")
    return dump_csv(list(txn.fields), rows)


def to_event(plugin: MysqlPlugin, txn: MysqlTransaction) -> dict[str, Any]:
    cfg = plugin.config
    conn = txn.conn
    evt = transaction_event(
        "mysql",
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
    notes: list[str] = []
    request_raw = txn.query
    if txn.cmd == p.COM_STMT_PREPARE and not txn.is_error:
        notes.append(query)
        query = PREPARE_QUERY
    elif txn.query == UNKNOWN_EXECUTE:
        method = "EXECUTE"
        request_raw = ""
    notes += txn.notes
    evt["method"] = method
    evt["query"] = query
    if txn.tables:
        evt["path"] = ", ".join(txn.tables)
    if txn.params:
        evt["params"] = txn.params
    mysql: dict[str, Any] = {
        "affected_rows": txn.affected_rows,
        "insert_id": txn.insert_id,
        "num_rows": txn.num_rows,
        "num_fields": txn.num_fields,
    }
    if txn.is_error:
        mysql["error_code"] = txn.error_code
        mysql["error_message"] = txn.error_message
    evt["mysql"] = mysql
    if cfg.send_request:
        evt["request"] = request_raw
    if cfg.send_response:
        evt["response"] = response_csv(plugin, txn)
    add_notes(evt, notes)
    return evt
