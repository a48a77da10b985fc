"""Pairing AMQP methods into transactions, per channel.

Packetbeat's rules (``protos/amqp/amqp.go``), kept:

* a synchronous request waits for the next response on its channel; a second request
  before it is answered drops the first (``amqp.unmatched_requests``) -- so the method a
  server refuses with ``channel.close`` is dropped and the close is the transaction;
* ``basic.ack``, ``basic.nack``, ``basic.reject`` and requests with ``no-wait`` are
  transactions on their own at once;
* ``basic.publish`` is a transaction alone, from the client's side; ``basic.deliver`` and
  ``basic.return`` too (their body is the response); ``basic.get-ok`` completes a waiting
  ``basic.get`` with its message, ``basic.get-empty`` answers it like any response;
* a response nothing waits for is dropped (``amqp.unmatched_responses``);
* a ``connection.close``/``channel.close`` with an error code that never gets its close-ok is
  reported with the note ``Close-ok method not received by sender`` when it expires.

Unlike Packetbeat, which keeps one waiting request per connection (a request on another
channel, an acknowledgement or a delivery in between loses it), requests wait per channel
and side, and acknowledgements, publishes and deliveries leave them alone. A response
answers the other side's request: a client request sent after the server's
``channel.close`` but before the client read it is discarded by the server, and is counted
as unmatched when the close-ok completes the close, never paired with the close-ok.
Waiting requests expire after ``transaction_timeout`` of capture time; when the connection
ends, a close with an error code is reported as on expiry and other requests are counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.amqp.methods import ASYNC, CONTENT, REQUEST
from protocols.amqp.parser import CLOSES, FrameParser, Message
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnectionHandler, ConnInfo

if TYPE_CHECKING:
    from protocols.amqp import AmqpPlugin

#: Transaction kinds.
ALONE = 0  # a request published without a reply (async, or an unanswered close)
PAIR = 1  # request and response
PUBLISH = 2  # basic.publish
DELIVER = 3  # basic.deliver, basic.return, and basic.get-ok (with its basic.get when seen)

NOTE_NO_CLOSE_OK = "Close-ok method not received by sender"


class AmqpTransaction:
    __slots__ = ("conn", "kind", "note", "request", "response")

    def __init__(
        self,
        conn: ConnInfo,
        kind: int,
        request: Message | None,
        response: Message | None = None,
        note: str = "",
    ) -> None:
        self.conn = conn
        self.kind = kind
        self.request = request
        self.response = response
        self.note = note

    def __repr__(self) -> str:
        return f"AmqpTransaction({self.kind}, {self.request!r}, {self.response!r})"


def _waiting(channel: int, side: int) -> int:
    """The key of the request ``side`` (FROM_CLIENT, FROM_SERVER) waits with on ``channel``."""
    return 2 * channel + side


def is_close_error(msg: Message) -> bool:
    return msg.name in CLOSES and msg.fields.get("reply-code", 0) >= 300


class AmqpHandler(ConnectionHandler):
    __slots__ = ("parsers", "pending")

    plugin: AmqpPlugin

    def __init__(self, plugin: AmqpPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        cfg = plugin.config
        self.parsers = tuple(
            FrameParser(
                d,
                plugin.stats,
                cfg.max_body_length,
                cfg.parse_headers,
                cfg.parse_arguments,
                cfg.hide_connection_information,
                cfg.max_frame_size,
                cfg.keep_null,
            )
            for d in (FROM_CLIENT, FROM_SERVER)
        )
        #: ``_waiting(channel, side that sent it)`` → the request waiting for its response
        #: (oldest first). Both sides may have a request waiting on one channel: the
        #: server's ``channel.close`` while a client request it will discard is on the way.
        self.pending: dict[int, Message] = {}

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        msgs = self.parsers[direction].feed(data, ts)
        if not msgs and not self.pending:
            return []
        out: list[Any] = []
        if self.pending:
            self._expire(ts, out)
        for m in msgs:
            role = m.method.role
            if role == CONTENT:
                self._content(m, out)
            elif role == REQUEST:
                self._request(m, out)
            else:
                self._response(m, out)
        return out

    def on_close(self, reason: str) -> list[Any]:
        stats = self.plugin.stats
        for p in self.parsers:
            lost = p.drop()
            if lost:
                stats.incr("amqp.incomplete_content", lost)
        out: list[Any] = []
        for msg in self.pending.values():
            if is_close_error(msg):
                out.append(AmqpTransaction(self.conn, ALONE, msg, note=NOTE_NO_CLOSE_OK))
            else:
                stats.incr("amqp.unmatched_requests")
        self.pending.clear()
        return out

    def _request(self, msg: Message, out: list[Any]) -> None:
        if msg.name in ASYNC or msg.fields.get("no-wait") is True:
            out.append(AmqpTransaction(self.conn, ALONE, msg))
            return
        pending = self.pending
        stats = self.plugin.stats
        key = _waiting(msg.channel, msg.direction)
        if pending.pop(key, None) is not None:
            stats.incr("amqp.unmatched_requests")
        pending[key] = msg
        if len(pending) > self.plugin.config.max_pending_requests:
            del pending[next(iter(pending))]
            stats.incr("amqp.unmatched_requests")
            stats.incr("amqp.pending_evictions")

    def _response(self, msg: Message, out: list[Any]) -> None:
        # A response answers the other side's request on its channel.
        req = self.pending.pop(_waiting(msg.channel, 1 - msg.direction), None)
        if req is None:
            if msg.name not in ("channel.close-ok", "connection.close-ok"):
                # (the close-ok of a normal close, left out as connection information, is not)
                self.plugin.stats.incr("amqp.unmatched_responses")
            return
        out.append(AmqpTransaction(self.conn, PAIR, req, msg))
        if req.name in CLOSES:
            # The channel (or connection) is closed: what the closing side's peer sent on it
            # meanwhile was discarded unanswered (AMQP 0-9-1, channel.close).
            self._closed(req)

    def _closed(self, close: Message) -> None:
        pending = self.pending
        if close.name == "connection.close":
            dead = list(pending)
        else:
            dead = [k for k in (_waiting(close.channel, d) for d in (0, 1)) if k in pending]
        for k in dead:
            del pending[k]
        if dead:
            self.plugin.stats.incr("amqp.unmatched_requests", len(dead))

    def _content(self, msg: Message, out: list[Any]) -> None:
        name = msg.name
        if name == "basic.publish":
            out.append(AmqpTransaction(self.conn, PUBLISH, msg))
            return
        req = None
        if name == "basic.get-ok":
            key = _waiting(msg.channel, 1 - msg.direction)
            waiting = self.pending.get(key)
            if waiting is not None and waiting.name == "basic.get":
                req = self.pending.pop(key)
        elif name == "basic.return" and msg.fields["reply-code"] < 300:
            # Not an error: Packetbeat ignores it.
            self.plugin.stats.incr("amqp.ignored_returns")
            return
        out.append(AmqpTransaction(self.conn, DELIVER, req, msg))

    def _expire(self, ts: int, out: list[Any]) -> None:
        limit = ts - self.plugin.timeout_ns
        pending = self.pending
        stats = self.plugin.stats
        while pending:
            key = next(iter(pending))
            msg = pending[key]
            if msg.ts >= limit:
                break
            del pending[key]
            if is_close_error(msg):
                out.append(AmqpTransaction(self.conn, ALONE, msg, note=NOTE_NO_CLOSE_OK))
            else:
                stats.incr("amqp.unmatched_requests")
                stats.incr("amqp.expired_requests")
