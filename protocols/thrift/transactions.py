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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.thrift.parser import ONEWAY, ThriftMessage, ThriftParser

if TYPE_CHECKING:
    from protocols.thrift import ThriftPlugin

#: Calls waiting for a reply per connection; past it the oldest is published unanswered.
MAX_PENDING = 1024


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
        self.pending: list[ThriftMessage] = []
        self.deferred: list[Any] = []

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        parser = self.parsers[direction]
        errors = parser.errors
        msgs = parser.feed(data, ts)
        if parser.errors != errors:
            self.plugin.stats.incr("thrift.parse_errors", parser.errors - errors)
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
        for m in self.pending:
            self.plugin.stats.incr("thrift.unmatched_requests")
            out.append(ThriftTransaction(self.conn, m, None))
        self.pending = []
        return out

    def _call(self, msg: ThriftMessage, out: list[Any]) -> None:
        if msg.mtype == ONEWAY:
            out.append(ThriftTransaction(self.conn, msg, None))
            return
        self.pending.append(msg)
        if len(self.pending) > MAX_PENDING:
            self.plugin.stats.incr("thrift.unmatched_requests")
            out.append(ThriftTransaction(self.conn, self.pending.pop(0), None))

    def _reply(self, msg: ThriftMessage, out: list[Any]) -> None:
        pending = self.pending
        match = -1
        for i in range(len(pending) - 1, -1, -1):
            req = pending[i]
            if req.method == msg.method:
                if req.seqid == msg.seqid:
                    match = i
                    break
                if match < 0:
                    match = i
        if match < 0:
            self.plugin.stats.incr("thrift.unmatched_responses")
            return
        req = pending.pop(match)
        keep: list[ThriftMessage] = []
        for i, old in enumerate(pending):
            if i < match and old.seqid == req.seqid:
                self.plugin.stats.incr("thrift.unmatched_requests")
                out.append(ThriftTransaction(self.conn, old, None))
            else:
                keep.append(old)
        self.pending = keep
        out.append(ThriftTransaction(self.conn, req, msg))
