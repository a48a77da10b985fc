"""Pairing Thrift calls with replies on one connection.

Packetbeat keeps one call per connection, takes a reply for it only when the method
names match, and publishes a call that is followed by another call (or by FIN) as a
one-way call: no return value, no response bytes. Here:

* ONEWAY messages are published at once (nothing will answer them).
* CALLs wait in a short FIFO. A reply goes to the newest waiting call with its method
  name and sequence id (else the newest with its name); waiting calls older than that
  one with the same sequence id were left unanswered by a synchronous client and are
  published without reply, as Packetbeat would. Asynchronous clients, which number their
  calls, get their replies in any order.
* A reply with no call of its name is dropped (counted).
* When the connection ends, waiting calls are published without reply (Packetbeat does
  this on FIN). A gap in a reply whose header was read publishes what was read with the
  note ``Packet loss while capturing the response``; any gap then drops the state.

A reply costs O(1) however many calls wait (``Pending``): a flood of replies against a
full queue stays linear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.thrift.parser import ONEWAY, ThriftMessage, ThriftParser

if TYPE_CHECKING:
    from protocols.thrift import ThriftPlugin

#: Calls waiting for a reply per connection; past it the oldest is published unanswered.
MAX_PENDING = 1024


K = TypeVar("K")
#: Up to this many waiting calls a reply searches a plain list (the common case: one
#: call waits); beyond it the calls are indexed.
SMALL = 16
_NO_CALLS: tuple[ThriftMessage, ...] = ()


def _index_add(index: dict[K, list[int]], key: K, ident: int) -> None:
    ids = index.get(key)
    if ids is None:
        index[key] = [ident]
    else:
        ids.append(ident)


def _index_remove(index: dict[K, list[int]], key: K, ident: int) -> None:
    ids = index[key]
    if len(ids) == 1:
        del index[key]
    else:
        ids.remove(ident)


class Pending:
    """Calls waiting for a reply, oldest first.

    A reply takes the newest call with its method and sequence id, else the newest with
    its method; calls older than that one with the same sequence id are taken with it
    (left unanswered). With few calls waiting that is a scan of a short list; past
    ``SMALL`` the calls are indexed by method, (method, sequence id) and sequence id, so a
    reply costs O(1) however many wait.
    """

    __slots__ = ("by_id", "by_key", "by_method", "by_seq", "calls", "next_id")

    def __init__(self) -> None:
        self.calls: list[ThriftMessage] | None = []  # None: indexed
        self.by_id: dict[int, ThriftMessage] = {}  # insertion order: oldest first
        self.by_method: dict[str, list[int]] = {}
        self.by_key: dict[tuple[str, int], list[int]] = {}
        self.by_seq: dict[int, list[int]] = {}
        self.next_id = 0

    def __len__(self) -> int:
        calls = self.calls
        return len(calls) if calls is not None else len(self.by_id)

    def add(self, msg: ThriftMessage) -> None:
        calls = self.calls
        if calls is not None:
            if len(calls) < SMALL:
                calls.append(msg)
                return
            self.calls = None
            for old in calls:
                self._index(old)
        self._index(msg)

    def _index(self, msg: ThriftMessage) -> None:
        ident = self.next_id
        self.next_id += 1
        self.by_id[ident] = msg
        _index_add(self.by_method, msg.method, ident)
        _index_add(self.by_key, (msg.method, msg.seqid), ident)
        _index_add(self.by_seq, msg.seqid, ident)

    def _remove(self, ident: int) -> ThriftMessage:
        msg = self.by_id.pop(ident)
        _index_remove(self.by_method, msg.method, ident)
        _index_remove(self.by_key, (msg.method, msg.seqid), ident)
        _index_remove(self.by_seq, msg.seqid, ident)
        if not self.by_id:
            self.calls = []  # back to the plain list
        return msg

    def pop_oldest(self) -> ThriftMessage:
        calls = self.calls
        if calls is not None:
            return calls.pop(0)
        return self._remove(next(iter(self.by_id)))

    def take(self, method: str, seqid: int) -> tuple[ThriftMessage, Sequence[ThriftMessage]] | None:
        """The call a reply answers and the older calls it leaves unanswered, or None."""
        calls = self.calls
        if calls is not None:
            if len(calls) == 1:  # a synchronous client: the usual case
                req = calls[0]
                if req.method != method:
                    return None
                calls.clear()
                return req, _NO_CALLS
            match = -1
            for i in range(len(calls) - 1, -1, -1):
                req = calls[i]
                if req.method == method:
                    if req.seqid == seqid:
                        match = i
                        break
                    if match < 0:
                        match = i
            if match < 0:
                return None
            req = calls.pop(match)
            if not match:
                return req, _NO_CALLS
            olds = [c for c in calls[:match] if c.seqid == req.seqid]
            if olds:
                self.calls = [c for i, c in enumerate(calls) if i >= match or c.seqid != req.seqid]
            return req, olds
        ids = self.by_key.get((method, seqid)) or self.by_method.get(method)
        if ids is None:
            return None
        ident = ids[-1]
        req = self._remove(ident)
        older = self.by_seq.get(req.seqid, ())
        return req, [self._remove(i) for i in [i for i in older if i < ident]]

    def drain(self) -> list[ThriftMessage]:
        calls = self.calls
        msgs = calls if calls is not None else list(self.by_id.values())
        self.calls = []
        for index in (self.by_id, self.by_method, self.by_key, self.by_seq):
            index.clear()
        return msgs


class ThriftTransaction:
    __slots__ = ("conn", "reply", "request")

    def __init__(self, conn: ConnInfo, request: ThriftMessage, reply: ThriftMessage | None) -> None:
        self.conn = conn
        self.request = request
        self.reply = reply


class ThriftHandler(ConnectionHandler):
    __slots__ = ("deferred", "parsers", "pending")

    plugin: ThriftPlugin

    def __init__(self, plugin: ThriftPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        fmt = plugin.format
        framed = plugin.config.transport_type == "framed"
        self.parsers = (
            ThriftParser(fmt, framed),
            ThriftParser(fmt, framed, render_replies=plugin.config.capture_reply),
        )
        self.pending = Pending()
        self.deferred: list[Any] = []

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        parser = self.parsers[direction]
        errors = parser.errors
        msgs = parser.feed(data, ts)
        if parser.errors != errors:
            self.plugin.stats.incr("thrift.parse_errors", parser.errors - errors)
        if parser.reasons:
            for reason in parser.reasons:
                self.plugin.stats.incr("thrift." + reason)
            parser.reasons.clear()
        out: list[Any] = []
        if self.deferred:
            out, self.deferred = self.deferred, []
        for m in msgs:
            if direction == FROM_CLIENT:
                if m.is_request:
                    self._call(m, out)
                else:
                    self.plugin.stats.incr("thrift.unexpected_messages")
            elif m.is_request:
                self.plugin.stats.incr("thrift.unexpected_messages")
            else:
                self._reply(m, out)
        return out

    def on_gap(self, direction: int, nbytes: int) -> bool:
        parser = self.parsers[direction]
        msg = parser.take_partial()
        if msg is not None and not msg.is_request:
            msg.notes.append("Packet loss while capturing the response")
            msg.fields = []
            self._reply(msg, self.deferred)
        # Binary and length-prefixed: too few cases to resynchronise safely mid-stream.
        return True

    def on_close(self, reason: str) -> list[Any]:
        out, self.deferred = self.deferred, []
        for p in self.parsers:
            if p.in_message:
                self.plugin.stats.incr("thrift.incomplete_messages")
        for m in self.pending.drain():
            self.plugin.stats.incr("thrift.unmatched_requests")
            out.append(ThriftTransaction(self.conn, m, None))
        return out

    def _call(self, msg: ThriftMessage, out: list[Any]) -> None:
        if msg.mtype == ONEWAY:
            out.append(ThriftTransaction(self.conn, msg, None))
            return
        self.pending.add(msg)
        if len(self.pending) > MAX_PENDING:
            self.plugin.stats.incr("thrift.unmatched_requests")
            out.append(ThriftTransaction(self.conn, self.pending.pop_oldest(), None))

    def _reply(self, msg: ThriftMessage, out: list[Any]) -> None:
        taken = self.pending.take(msg.method, msg.seqid)
        if taken is None:
            self.plugin.stats.incr("thrift.unmatched_responses")
            return
        req, olds = taken
        for old in olds:
            self.plugin.stats.incr("thrift.unmatched_requests")
            out.append(ThriftTransaction(self.conn, old, None))
        out.append(ThriftTransaction(self.conn, req, msg))
