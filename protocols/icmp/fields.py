"""ICMP transaction → event dict (Packetbeat ``protos/icmp/icmp.go`` ``publishTransaction``)."""

from __future__ import annotations

from typing import Any

from protocols.common.event import ERROR, OK, add_notes
from protocols.icmp.parser import IcmpMessage, message_name
from protocols.icmp.transactions import IcmpTransaction
from protocols.net import ip_to_str

_TYPE = ["connection"]


def _message(version: int, msg: IcmpMessage) -> dict[str, Any]:
    return {"message": message_name(version, msg.type, msg.code), "type": msg.type, "code": msg.code}


def to_event(txn: IcmpTransaction) -> dict[str, Any]:
    src, dst = ip_to_str(txn.src), ip_to_str(txn.dst)
    v = txn.version
    event: dict[str, Any] = {"dataset": "icmp", "type": _TYPE}
    source: dict[str, Any] = {"ip": src}
    destination: dict[str, Any] = {"ip": dst}
    icmp: dict[str, Any] = {"version": v}
    req, resp = txn.request, txn.response
    if req is not None:
        event["start"] = req.ts
        if req.size:
            source["bytes"] = req.size
        icmp["request"] = _message(v, req)
    if resp is not None:
        event["end"] = resp.ts
        if resp.size:
            destination["bytes"] = resp.size
        icmp["response"] = _message(v, resp)
    evt: dict[str, Any] = {
        "@timestamp": txn.ts,
        "type": "icmp",
        "status": ERROR if txn.error else OK,
        "path": dst,
        "event": event,
        "network": {"transport": "icmp" if v == 4 else "ipv6-icmp"},
        "source": source,
        "destination": destination,
        "related": {"ip": [src] if src == dst else [src, dst]},
        "icmp": icmp,
    }
    add_notes(evt, txn.notes)
    return evt
