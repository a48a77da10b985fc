"""Thrift transaction → event dict (Packetbeat ``protos/thrift/thrift.go`` ``publishTransactions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK, add_notes, transaction_event
from protocols.handler import FROM_CLIENT
from protocols.thrift.idl import IdlMethod
from protocols.thrift.parser import EXCEPTION, ThriftMessage, format_struct
from protocols.thrift.transactions import ThriftTransaction

if TYPE_CHECKING:
    from protocols.thrift import ThriftPlugin


def lookup(plugin: ThriftPlugin, method: str) -> IdlMethod | None:
    idl = plugin.idl
    if not idl:
        return None
    found = idl.get(method)
    if found is None and ":" in method:
        # TMultiplexedProtocol prefixes the method with "Service:".
        found = idl.get(method.split(":", 1)[1])
    return found


def reply_values(reply: ThriftMessage, idl: IdlMethod | None) -> tuple[str, str]:
    """(return value, exceptions) of a reply: field 0 is the result, any other an exception."""
    if not reply.fields:
        return "", ""
    fid, value = reply.fields[0]
    if fid == 0:
        return value, ""
    # A TApplicationException (message type EXCEPTION) is not one of the IDL's exceptions.
    names = idl.exceptions if idl is not None and reply.mtype != EXCEPTION else None
    return "", format_struct(reply.fields, reply.more_fields, names)


def to_event(plugin: ThriftPlugin, txn: ThriftTransaction) -> dict[str, Any]:
    cfg = plugin.config
    req, reply = txn.request, txn.reply
    idl = lookup(plugin, req.method)
    exceptions = ""
    return_value = ""
    if reply is not None:
        return_value, exceptions = reply_values(reply, idl)
    src_ip, src_port, dst_ip, dst_port = txn.conn.endpoints(FROM_CLIENT)
    evt = transaction_event(
        "thrift",
        "tcp",
        ERROR if exceptions else OK,
        req.ts,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=req.ts,
        end=reply.ts if reply is not None else None,
    )
    params = format_struct(req.fields, req.more_fields, idl.params if idl is not None else None)
    service = idl.service if idl is not None else ""
    if service == "" and ":" in req.method:
        service = req.method.split(":", 1)[0]
    query = req.method + params
    evt["source"]["bytes"] = req.size
    if reply is not None:
        evt["destination"]["bytes"] = reply.size
    evt["method"] = req.method
    evt["path"] = service
    evt["query"] = query
    thrift: dict[str, Any] = {"params": params}
    if service:
        thrift["service"] = service
    if reply is not None:
        thrift["return_value"] = return_value
        if exceptions:
            thrift["exceptions"] = exceptions
    evt["thrift"] = thrift
    if cfg.send_request:
        evt["request"] = query
    if cfg.send_response and reply is not None:
        evt["response"] = return_value if not exceptions else "Exceptions: " + exceptions
    notes = list(req.notes)
    if reply is not None:
        notes += reply.notes
    add_notes(evt, notes)
    return evt
