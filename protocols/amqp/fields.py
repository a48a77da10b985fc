"""AMQP transaction → event dict (Packetbeat ``protos/amqp/amqp.go`` ``publishTransaction``).

* ``method`` and ``event.action`` (``amqp.<method>``): the request's method; a
  ``basic.get`` answered by ``basic.get-empty`` is ``basic.get-empty``, one answered by
  ``basic.get-ok`` is ``basic.get``.
* ``amqp``: the request's fields updated with the response's; a delivered message's own
  fields with its content properties.
* ``source``/``destination``: the request's sender and receiver; for messages (publish,
  deliver, get, return), client and server, as Packetbeat orders the connection.
* ``source.bytes``/``destination.bytes``: method frames on the wire; for a message, its body
  size (on the publisher's side for basic.publish, on the receiver's for the others; a
  ``basic.get`` also counts its request frame as ``source.bytes``).
* ``@timestamp``/``event.start``: the request's time (a message's own for messages, a
  ``basic.get``'s ``basic.get-ok``); ``event.end``: the response's.
* ``status``: ``Error`` for ``basic.return``, ``basic.reject`` and closes with a reply code
  of 300 or more.
* ``request``/``response`` (``send_request``/``send_response``): the short request text
  (``queue.declare <queue>``) and ``OK`` once answered; a message's body instead, as text
  when its content type says text or JSON (and no content encoding), else its bytes in
  decimal, cut at ``max_body_length`` with `` [...]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.amqp.parser import CLOSES, Message
from protocols.amqp.transactions import DELIVER, PAIR, PUBLISH, AmqpTransaction
from protocols.amqp.wire import go_text
from protocols.common.event import ERROR, OK, add_notes, transaction_event
from protocols.handler import FROM_CLIENT

if TYPE_CHECKING:
    from protocols.amqp import AmqpPlugin

_ERROR_METHODS = frozenset({"basic.return", "basic.reject"})
_MESSAGE_RESPONSES = frozenset({"basic.deliver", "basic.return", "basic.get"})


def _stringable(fields: dict[str, Any]) -> bool:
    if fields.get("content-encoding"):
        return False
    ctype = fields.get("content-type")
    return isinstance(ctype, str) and ("text" in ctype or "json" in ctype)


def body_text(msg: Message) -> str:
    body = msg.body
    text = go_text(body) if _stringable(msg.fields) else " ".join(map(str, body))
    if len(body) < msg.body_size:
        text += " [...]"
    return text


def _request_text(req: Message | None) -> str:
    if req is None:
        return ""
    return f"{req.name} {req.text}" if req.text else req.name


def to_event(plugin: AmqpPlugin, txn: AmqpTransaction) -> dict[str, Any]:
    cfg = plugin.config
    kind = txn.kind
    req = txn.request
    resp = txn.response
    end = None
    src_bytes = dst_bytes = 0
    notes: list[str] = []
    if kind == PUBLISH:
        assert req is not None
        msg = req
        ts = msg.ts
        direction = FROM_CLIENT
        method = "basic.publish"
        amqp = msg.fields
        src_bytes = msg.body_size
    elif kind == DELIVER:
        assert resp is not None
        msg = resp
        ts = msg.ts
        direction = FROM_CLIENT
        method = "basic.get" if msg.name == "basic.get-ok" else msg.name
        amqp = msg.fields
        dst_bytes = msg.body_size
        if req is not None:
            src_bytes = req.size
    else:
        assert req is not None
        msg = req
        ts = req.ts
        direction = req.direction
        method = req.name
        amqp = dict(req.fields)
        src_bytes = req.size
        if req.notes:
            notes += req.notes
        if resp is not None:
            amqp.update(resp.fields)
            end = resp.ts
            dst_bytes = resp.size
            if resp.name == "basic.get-empty":
                method = "basic.get-empty"
            if resp.notes:
                notes += resp.notes
        if txn.note:
            notes.append(txn.note)
    error = method in _ERROR_METHODS or (method in CLOSES and amqp.get("reply-code", 0) >= 300)
    src_ip, src_port, dst_ip, dst_port = txn.conn.endpoints(direction)
    evt = transaction_event(
        "amqp",
        "tcp",
        ERROR if error else OK,
        ts,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=ts,
        end=end,
        src_bytes=src_bytes,
        dst_bytes=dst_bytes,
    )
    evt["event"]["action"] = "amqp." + method
    evt["method"] = method
    evt["amqp"] = amqp
    user = amqp.get("user-id")
    if user is not None:
        evt["user"] = {"id": user}
    add_notes(evt, notes)
    if cfg.send_request:
        evt["request"] = body_text(msg) if kind == PUBLISH else _request_text(req)
    if cfg.send_response:
        if method in _MESSAGE_RESPONSES and kind == DELIVER:
            evt["response"] = body_text(msg)
        else:
            evt["response"] = "OK" if kind == PAIR else ""
    return evt
