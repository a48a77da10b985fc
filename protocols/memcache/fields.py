"""memcache transaction → event dict (Packetbeat ``memcache.go`` ``Event``, the serializers
of ``text.go``/``binary.go``/``commands.go``).

Every argument a command defines is serialized, with its zero value when the message did
not carry it (``noreply: false``, ``cas_unique: 0`` on a ``VALUE`` without CAS), as
Packetbeat does. Differences (docs/differences.md, memcache): ``source.bytes`` is the
request's size and ``destination.bytes`` the reply's (Packetbeat swaps them); ``values``
are base64 strings (Packetbeat writes ``{}`` for each); ``event.outcome`` follows the
status (Packetbeat says ``success`` for every text reply, failures included); a counter
reply with an error status has no ``value`` (Packetbeat reads the error text as a number).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from protocols.common.event import OK, add_notes, transaction_event
from protocols.memcache.codes import (
    A_AUTOMOVE,
    A_BYTES,
    A_CAS,
    A_CAS_OPT,
    A_DELTA,
    A_DEST_CLASS,
    A_ERRMSG,
    A_EXPTIME,
    A_EXPTIME_OPT,
    A_FLAGS,
    A_KEY,
    A_KEYS,
    A_NOREPLY,
    A_RAW,
    A_SLEEP_US,
    A_SOURCE_CLASS,
    A_STAT,
    A_VALUE,
    A_VERBOSITY,
    K_BINARY,
    K_COUNTER_RESP,
    K_DATA_REQ,
    K_DATA_RESP,
    K_UNKNOWN,
    OPCODE_NAMES,
    STATUS_NAMES,
    X_DELTA,
    X_EXPTIME,
    X_FLAGS,
    X_INITIAL,
    X_STATS,
    X_VERBOSITY,
)
from protocols.memcache.parser import Message
from protocols.memcache.transactions import MemcacheTransaction

if TYPE_CHECKING:
    from protocols.memcache import MemcachePlugin

_AUTOMOVE = {0: "standby", 1: "slow", 2: "aggressive"}


def text(b: bytes) -> str:
    """Bytes as Go's encoder writes them: UTF-8, each invalid byte U+FFFD."""
    if b.isascii():
        return b.decode("ascii")
    s = b.decode("utf-8", "surrogateescape")
    return "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in s)


def _keys(msg: Message) -> list[str]:
    return [text(k) for k in msg.keys] if msg.keys else []


def _stats(msg: Message) -> list[dict[str, str]]:
    return [{"name": text(n), "value": text(v)} for n, v in msg.stats] if msg.stats else []


def _values(msg: Message) -> list[str]:
    return [base64.b64encode(v).decode("ascii") for v in msg.values] if msg.values else []


def _text_args(msg: Message, args: tuple[int, ...], out: dict[str, Any]) -> None:
    for a in args:
        if a == A_KEY or a == A_KEYS:
            out["keys"] = _keys(msg)
        elif a == A_FLAGS:
            out["flags"] = msg.flags
        elif a == A_EXPTIME or a == A_EXPTIME_OPT:
            out["exptime"] = msg.exptime
        elif a == A_BYTES:
            out["bytes"] = msg.nbytes
        elif a == A_CAS or a == A_CAS_OPT:
            out["cas_unique"] = msg.cas or 0
        elif a == A_NOREPLY:
            out["noreply"] = msg.noreply
        elif a == A_DELTA:
            out["delta"] = msg.value
        elif a == A_VALUE:
            out["value"] = msg.value
        elif a == A_VERBOSITY:
            out["verbosity"] = msg.value
        elif a == A_SLEEP_US:
            out["sleep_us"] = msg.value
        elif a == A_AUTOMOVE:
            out["automove"] = _AUTOMOVE.get(msg.value, str(msg.value))
        elif a == A_SOURCE_CLASS:
            out["source_class"] = msg.ivalue
        elif a == A_DEST_CLASS:
            out["dest_class"] = msg.ivalue2
        elif a == A_RAW:
            out["raw_args"] = text(msg.raw_args)
        elif a == A_ERRMSG:
            out["error_msg"] = text(msg.error_msg)
        elif a == A_STAT:
            out["stats"] = _stats(msg)


def _binary_args(msg: Message, args: tuple[int, ...], out: dict[str, Any]) -> None:
    for a in args:
        if a == X_FLAGS:
            out["flags"] = msg.flags
        elif a == X_EXPTIME:
            out["exptime"] = msg.exptime
        elif a == X_DELTA:
            out["delta"] = msg.value
        elif a == X_INITIAL:
            out["initial"] = msg.value2
        elif a == X_VERBOSITY:
            out["verbosity"] = msg.value
        elif a == X_STATS and msg.stats:
            out["stats"] = _stats(msg)


def message_fields(msg: Message) -> dict[str, Any]:
    cmd = msg.cmd
    kind = cmd.kind
    out: dict[str, Any] = {"command": cmd.code, "type": cmd.typ}
    if kind == K_BINARY:
        out["opcode"] = OPCODE_NAMES.get(msg.opcode, "")
        out["opcode_value"] = msg.opcode
        out["opaque"] = msg.opaque
        if msg.keys:
            out["keys"] = _keys(msg)
        if msg.cas:
            out["cas_unique"] = msg.cas
        if msg.count_values:
            out["count_values"] = msg.count_values
            if msg.values:
                out["values"] = _values(msg)
            out["bytes"] = msg.nbytes + msg.bytes_lost
        if msg.version is not None:
            out["version"] = text(msg.version)
        if msg.is_request:
            out["quiet"] = msg.quiet
            out["vbucket"] = msg.vbucket
            _binary_args(msg, cmd.args, out)
        else:
            out["status"] = STATUS_NAMES.get(msg.status, "")
            out["status_code"] = msg.status
            if cmd.typ == "Counter" and msg.value_ok:
                out["value"] = msg.value
            _binary_args(msg, cmd.resp_args, out)
        return out
    if kind == K_DATA_REQ:
        out["count_values"] = msg.count_values
        if msg.count_values and msg.values:
            out["values"] = base64.b64encode(msg.values[0]).decode("ascii")
    elif kind == K_DATA_RESP:
        out["count_values"] = msg.count_values
        if msg.count_values and msg.values:
            out["values"] = _values(msg)
    elif kind == K_UNKNOWN:
        out["line"] = text(msg.line)
        return out
    elif kind == K_COUNTER_RESP:
        out["value"] = msg.value
        return out
    _text_args(msg, cmd.args, out)
    return out


def to_event(plugin: MemcachePlugin, txn: MemcacheTransaction) -> dict[str, Any]:
    req = txn.request
    resp = txn.response
    first = req if req is not None else resp
    assert first is not None
    src_ip, src_port, dst_ip, dst_port = txn.endpoints()
    evt = transaction_event(
        "memcache",
        txn.transport,
        txn.status,
        first.ts,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=first.ts,
        end=resp.ts if resp is not None else None,
        src_bytes=req.size if req is not None else 0,
        dst_bytes=resp.size if resp is not None else 0,
    )
    mc: dict[str, Any] = {}
    notes: list[str] = []
    if req is not None:
        mc["request"] = message_fields(req)
        evt["event"]["action"] = "memcache." + req.cmd.typ.lower()
        if req.notes:
            notes += req.notes
    if resp is not None:
        mc["response"] = message_fields(resp)
        evt["event"]["outcome"] = "success" if txn.status == OK else "failure"
        if resp.notes:
            notes += resp.notes
    mc["protocol_type"] = "binary" if first.is_binary else "text"
    evt["memcache"] = mc
    add_notes(evt, notes)
    return evt
