"""MongoDB transaction → event dict (Packetbeat ``protos/mongodb/mongodb.go``
``newTransaction``, ``reconstructQuery``, ``publishTransaction``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK, transaction_event
from protocols.mongodb.parser import Message
from protocols.mongodb.render import RenderError, render
from protocols.mongodb.transactions import MongodbTransaction

if TYPE_CHECKING:
    from protocols.mongodb import MongodbPlugin

#: What the short ``query`` leaves out of a legacy command's parameters (the data itself).
_DATA_KEYS = {"insert": "documents", "update": "updates", "findandmodify": "update"}


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def reconstruct_query(req: Message, full: bool) -> str:
    """``<resource>.<method>(<parameters as JSON>)``.

    Packetbeat's rules, quirks included: an OP_QUERY shows its parameters only in the full
    form (``request``) except for insert, update and findandmodify, whose data it leaves
    out; an OP_MSG shows its body without ``lsid`` (and without ``documents`` in the short
    form); anything else is ``null``. Its ``.skip(n)``/``.limit(n)`` suffixes never appear
    (the numbers are int32 and the code looks for int), so they do not here either.
    """
    doc: Any = None
    params = req.params
    if params:
        if full:
            doc = params
        else:
            key = _DATA_KEYS.get(req.method)
            if key is not None:
                doc = _without(params, key)
    elif req.documents:
        first = req.documents[0]
        if isinstance(first, dict):
            doc = _without(first, "lsid") if full else _without(first, "lsid", "documents")
    try:
        text = render(doc)
    except RenderError:
        text = ""
    return f"{req.resource}.{req.method}({text})"


def _response_text(docs: list[Any], max_docs: int, max_len: int, plugin: MongodbPlugin) -> str:
    lines: list[str] = []
    for i, doc in enumerate(docs):
        if max_docs > 0 and i >= max_docs:
            lines.append("[...]")
            break
        try:
            text = render(doc)
        except RenderError:
            plugin.stats.incr("mongodb.render_errors")
            continue
        if max_len > 0:
            if text.isascii():
                if len(text) > max_len:
                    text = text[:max_len] + " ..."
            else:
                raw = text.encode("utf-8")
                if len(raw) > max_len:
                    # Go cuts bytes; a character cut in two becomes U+FFFD per byte.
                    cut = raw[:max_len].decode("utf-8", "surrogateescape")
                    text = "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in cut) + " ..."
        lines.append(text)
    return "\n".join(lines)


def to_event(plugin: MongodbPlugin, txn: MongodbTransaction) -> dict[str, Any]:
    cfg = plugin.config
    req = txn.request
    resp = txn.response
    src_ip, src_port, dst_ip, dst_port = txn.conn.endpoints(txn.direction)
    mongo = dict(req.event)
    error = ""
    documents = req.documents
    end = None
    dst_bytes = 0
    if resp is not None:
        mongo.update(resp.event)
        error = resp.error or (resp.ok_error if req.command else "")
        documents = resp.documents
        end = resp.ts
        dst_bytes = resp.length
    if error:
        mongo["error"] = error
    evt = transaction_event(
        "mongodb",
        "tcp",
        ERROR if error else OK,
        req.ts,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=req.ts,
        end=end,
        src_bytes=req.length,
        dst_bytes=dst_bytes,
    )
    evt["mongodb"] = mongo
    evt["method"] = req.method
    evt["resource"] = req.resource
    evt["query"] = reconstruct_query(req, False)
    if cfg.send_request:
        evt["request"] = reconstruct_query(req, True)
    if cfg.send_response and documents:
        evt["response"] = _response_text(documents, cfg.max_docs, cfg.max_doc_length, plugin)
    return evt
