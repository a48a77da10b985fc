"""Redis transaction → event dict (Packetbeat ``protos/redis/redis.go`` ``newTransaction``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK, add_notes, transaction_event
from protocols.handler import FROM_CLIENT
from protocols.redis.transactions import RedisTransaction

if TYPE_CHECKING:
    from protocols.redis import RedisPlugin


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def to_event(plugin: RedisPlugin, txn: RedisTransaction) -> dict[str, Any]:
    cfg = plugin.config
    req = txn.request
    src_ip, src_port, dst_ip, dst_port = txn.conn.endpoints(FROM_CLIENT)
    evt = transaction_event(
        "redis",
        "tcp",
        ERROR if txn.error else OK,
        req.msg.ts,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=req.msg.ts,
        end=txn.response_ts,
    )
    evt["source"]["bytes"] = req.msg.size
    evt["destination"]["bytes"] = txn.response_size
    method = _text(req.method)
    query = _text(req.query)
    value = _text(txn.value)
    evt["method"] = method
    evt["resource"] = _text(req.resource)
    evt["query"] = query
    evt["event"]["action"] = "redis." + method.lower()
    if txn.error:
        evt["event"]["outcome"] = "failure"
        evt["redis"] = {"error": value}
    else:
        evt["redis"] = {"return_value": value}
    if cfg.send_request:
        evt["request"] = query
    if cfg.send_response:
        evt["response"] = value
    add_notes(evt, txn.notes)
    return evt
