"""Pairing MongoDB requests with replies on one connection.

As in Packetbeat (``protos/mongodb/mongodb.go``), the *content* decides what a message is
(OP_REPLY, or an OP_MSG with ``responseTo > 0``, is a reply) and replies pair with requests
by ``responseTo`` = ``requestID``, whatever the order. Requests that get no reply (OP_INSERT,
OP_UPDATE, OP_DELETE, OP_KILL_CURSORS, the old OP_MSG, an OP_MSG with ``moreToCome``) are
transactions on their own at once.

Packetbeat keeps waiting requests and early replies in caches that expire after
``transaction_timeout`` without a word; here they live per connection, expire on capture
time, are capped (``max_pending_requests``; 1000 early replies) and every loss is counted:
``mongodb.unmatched_requests`` (never answered: expired, evicted, replaced by a request with
the same id, or still waiting when the connection ends -- Packetbeat never reports them
either) and ``mongodb.unmatched_responses``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.handler import ConnectionHandler, ConnInfo
from protocols.mongodb.parser import Message, MessageStream

if TYPE_CHECKING:
    from protocols.mongodb import MongodbPlugin

#: Replies seen before their request, kept per connection.
MAX_EARLY_REPLIES = 1000


class MongodbTransaction:
    __slots__ = ("conn", "direction", "request", "response")

    def __init__(self, conn: ConnInfo, direction: int, request: Message, response: Message | None) -> None:
        self.conn = conn
        self.direction = direction
        self.request = request
        self.response = response


class MongodbHandler(ConnectionHandler):
    __slots__ = ("directions", "replies", "requests", "streams")

    plugin: MongodbPlugin

    def __init__(self, plugin: MongodbPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        size = plugin.config.max_message_size
        self.streams = (MessageStream(plugin.stats, size), MessageStream(plugin.stats, size))
        self.requests: dict[int, Message] = {}
        self.directions: dict[int, int] = {}
        self.replies: dict[int, Message] = {}

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        msgs = self.streams[direction].feed(data, ts)
        if not msgs:
            return []
        out: list[Any] = []
        if self.requests:
            self._expire(ts)
        for m in msgs:
            if m.is_response:
                self._reply(m, out)
            else:
                self._request(m, direction, out)
        return out

    def on_close(self, reason: str) -> list[Any]:
        stats = self.plugin.stats
        for s in self.streams:
            if s.pending:
                stats.incr("mongodb.incomplete_messages")
        if self.requests:
            stats.incr("mongodb.unmatched_requests", len(self.requests))
            self.requests.clear()
            self.directions.clear()
        if self.replies:
            stats.incr("mongodb.unmatched_responses", len(self.replies))
            self.replies.clear()
        return []

    def _request(self, msg: Message, direction: int, out: list[Any]) -> None:
        if not msg.awaits_reply():
            out.append(MongodbTransaction(self.conn, direction, msg, None))
            return
        rid = msg.request_id
        reply = self.replies.pop(rid, None)
        if reply is not None:
            out.append(MongodbTransaction(self.conn, direction, msg, reply))
            return
        stats = self.plugin.stats
        if rid in self.requests:
            # Two requests with one id and no reply between: the older is dropped.
            del self.requests[rid]
            stats.incr("mongodb.unmatched_requests")
        self.requests[rid] = msg
        self.directions[rid] = direction
        cap = self.plugin.config.max_pending_requests
        while len(self.requests) > cap:
            old = next(iter(self.requests))
            del self.requests[old]
            del self.directions[old]
            stats.incr("mongodb.unmatched_requests")
            stats.incr("mongodb.pending_evictions")

    def _reply(self, msg: Message, out: list[Any]) -> None:
        rid = msg.response_to
        req = self.requests.pop(rid, None)
        if req is not None:
            out.append(MongodbTransaction(self.conn, self.directions.pop(rid), req, msg))
            return
        # Kept for a request that may still come (a capture that reordered them); replies
        # to an exhaust cursor or to a dropped request stay here until they are counted.
        replies = self.replies
        if rid in replies:
            del replies[rid]
            self.plugin.stats.incr("mongodb.unmatched_responses")
        replies[rid] = msg
        if len(replies) > MAX_EARLY_REPLIES:
            del replies[next(iter(replies))]
            self.plugin.stats.incr("mongodb.unmatched_responses")

    def _expire(self, ts: int) -> None:
        limit = ts - self.plugin.timeout_ns
        requests = self.requests
        stats = self.plugin.stats
        while requests:
            rid = next(iter(requests))
            if requests[rid].ts >= limit:
                break
            del requests[rid]
            del self.directions[rid]
            stats.incr("mongodb.unmatched_requests")
            stats.incr("mongodb.expired_requests")
