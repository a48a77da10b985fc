"""Pairing Redis requests with replies on one connection.

Redis answers in order, so requests wait in a FIFO and every reply takes the oldest.
Unlike Packetbeat, which decides request vs reply from the content (a reply that looks
like a command is taken for a request), the direction decides here: everything the
client sends is a request, everything the server sends is a reply or a push.

Not every server message answers a request (https://redis.io/docs/latest/develop/reference/protocol-spec/):

* RESP3 ``>`` pushes and, on a RESP2 connection in subscribed mode, ``message`` /
  ``pmessage`` / ``smessage`` arrays are pub/sub deliveries; client-side-caching
  ``invalidate`` pushes too. They are counted and never paired.
* (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE get one confirmation per channel; they are
  collected into the one transaction of the command. An UNSUBSCRIBE without arguments
  gets one per channel still subscribed (one if none), so subscriptions are tracked.
* After MONITOR's ``+OK`` the server streams one status line per command it runs.
* After SYNC/PSYNC the connection carries replication data, not request/reply: the
  handler stops decoding it.

Limits as Packetbeat's ``MessageQueue``: past ``queue_max_messages`` waiting requests or
``queue_max_bytes`` of their text, the oldest are evicted (counted). The replies of an
evicted request are still expected, so they are skipped instead of being paired with
the wrong request. Replies with no request are dropped (counted), as are requests still
waiting when the connection ends (Packetbeat never reports unanswered Redis requests).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from protocols.common.realign import REQUEST_LOSS, Realign
from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.redis.commands import PUSH_KINDS, SUBSCRIBE_FAMILY, split_command
from protocols.redis.parser import ARRAY, MAP, PUSH, SIMPLE, Message, RespParser

if TYPE_CHECKING:
    from protocols.redis import RedisPlugin

NORMAL, MONITOR, REPLICATION = range(3)
#: The shortest command array (``*1\r\n$4\r\nPING\r\n``).
MIN_REQUEST = 14
#: Subscriptions remembered per kind (beyond it UNSUBSCRIBE-all pairing may be off).
MAX_SUBSCRIPTIONS = 100_000
_SUB_KIND = {
    b"subscribe": 0,
    b"unsubscribe": 0,
    b"psubscribe": 1,
    b"punsubscribe": 1,
    b"ssubscribe": 2,
    b"sunsubscribe": 2,
}


class Request:
    __slots__ = ("expected", "family", "method", "msg", "query", "replies", "resource")

    def __init__(self, msg: Message, method: bytes, resource: bytes, query: bytes) -> None:
        self.msg = msg
        self.method = method
        self.resource = resource
        self.query = query
        self.family: bytes = SUBSCRIBE_FAMILY.get(method, b"")
        # Replies still to come; 0 = not known yet (UNSUBSCRIBE without arguments).
        self.expected = 1
        if self.family:
            assert msg.parts is not None
            self.expected = len(msg.parts) - 1
        self.replies: list[Message] = []


class RedisTransaction:
    __slots__ = ("conn", "error", "notes", "request", "response_size", "response_ts", "value")

    def __init__(self, conn: ConnInfo, request: Request, replies: list[Message]) -> None:
        self.conn = conn
        self.request = request
        first = replies[0]
        self.response_ts = first.ts
        self.response_size = sum(r.size for r in replies)
        if len(replies) == 1:
            self.value = first.render()
            self.error = first.is_error
        else:
            self.value = b", ".join(r.render() for r in replies)
            self.error = False
        self.notes: list[str] = []
        if request.msg.truncated:
            self.notes.append("Request truncated")
        if any(r.truncated for r in replies):
            self.notes.append("Response truncated")


class RedisHandler(ConnectionHandler):
    __slots__ = (
        "evicted_replies",
        "mode",
        "parsers",
        "queue_bytes",
        "realign",
        "requests",
        "resp3",
        "subscriptions",
    )

    plugin: RedisPlugin

    def __init__(self, plugin: RedisPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        max_bytes = plugin.config.max_message_size
        self.parsers = (RespParser(inline=True, max_bytes=max_bytes), RespParser(max_bytes=max_bytes))
        self.requests: deque[Request] = deque()
        self.queue_bytes = 0
        self.evicted_replies = 0
        self.mode = NORMAL
        self.resp3 = False
        self.subscriptions: tuple[set[bytes], set[bytes], set[bytes]] = (set(), set(), set())
        self.realign = Realign(MIN_REQUEST)

    # -- seam ----------------------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        if self.mode == REPLICATION:
            return []
        parser = self.parsers[direction]
        errors = parser.errors
        msgs = parser.feed(data, ts)
        out: list[Any] = []
        if direction == FROM_CLIENT:
            for m in msgs:
                self._request(m)
        else:
            for m in msgs:
                self._reply(m, out)
                if self.mode == REPLICATION:
                    return out
        if parser.errors != errors:
            self.plugin.stats.incr("redis.parse_errors")
            if parser.last_reason:
                self.plugin.stats.incr("redis." + parser.last_reason)
        return out

    def resync(self, direction: int, after_loss: bool) -> None:
        self.parsers[direction].hunt = True
        if after_loss and direction == FROM_CLIENT:
            self.realign.lost(REQUEST_LOSS)

    def on_gap(self, direction: int, nbytes: int) -> bool:
        if direction == FROM_CLIENT and self.mode == NORMAL:
            # Lost commands: the replies to those already waiting come first; the parser
            # looks for the next command array; replies of lost commands are surplus.
            parser = self.parsers[direction]
            partial = parser.in_message
            parser.reset()
            parser.hunt = True
            self.realign.lost(REQUEST_LOSS, len(self.requests), nbytes, partial)
            return False
        # Lost replies: as Packetbeat, drop the connection state (the commands waiting are
        # counted unmatched); the parsers of the next handler look for a message start.
        return True

    def on_close(self, reason: str) -> list[Any]:
        stats = self.plugin.stats
        for p in self.parsers:
            if p.in_message:
                stats.incr("redis.incomplete_messages")
        if self.requests:
            stats.incr("redis.unmatched_requests", len(self.requests))
            self.requests.clear()
        return []

    # -- requests ------------------------------------------------------------------------

    def _request(self, msg: Message) -> None:
        parts = msg.parts
        if not parts:
            # A lone value from the client (not a command): Redis answers it with an
            # error, so keep it as a request to keep the pairing in step.
            parts = [msg.render()]
            msg.parts = parts
        method, resource = split_command(parts)
        query = b" ".join(parts)
        self.realign.request(msg.size)
        req = Request(msg, method, resource, query)
        cfg = self.plugin.config
        self.requests.append(req)
        self.queue_bytes += len(query)
        max_n, max_b = cfg.queue_max_messages, cfg.queue_max_bytes
        while (max_n and len(self.requests) > max_n) or (
            max_b and self.queue_bytes > max_b and len(self.requests) > 1
        ):
            old = self.requests.popleft()
            self.queue_bytes -= len(old.query)
            self.evicted_replies += max(old.expected - len(old.replies), 1)
            self.plugin.stats.incr("redis.unmatched_requests")
            self.plugin.stats.incr("redis.queue_evictions")

    # -- replies -------------------------------------------------------------------------

    def _reply(self, msg: Message, out: list[Any]) -> None:
        stats = self.plugin.stats
        kind = msg.kind
        parts = msg.parts
        head = self.requests[0] if self.requests else None
        if parts and (kind == PUSH or (kind == ARRAY and not self.resp3 and self._subscribed(head))):
            first = parts[0].lower()
            if first in _SUB_KIND:
                self._track_subscription(first, parts)
                if head is not None and head.family == first:
                    self._collect(head, msg, out)
                else:
                    stats.incr("redis.unmatched_responses")
                return
            if kind == PUSH or first in PUSH_KINDS:
                stats.incr("redis.push_messages")
                return
        if self.mode == MONITOR and kind == SIMPLE and msg.value and msg.value[:1].isdigit():
            stats.incr("redis.monitor_lines")
            return
        if self.evicted_replies:
            self.evicted_replies -= 1
            stats.incr("redis.unmatched_responses")
            return
        if head is None:
            stats.incr("redis.unmatched_responses")
            self.realign.surplus()
            return
        # Any other reply ends the request, even a subscribe-family one (an error).
        head.expected = len(head.replies) + 1
        self._collect(head, msg, out)

    def _subscribed(self, head: Request | None) -> bool:
        return bool(
            (head is not None and head.family)
            or self.subscriptions[0]
            or self.subscriptions[1]
            or self.subscriptions[2]
        )

    def _track_subscription(self, kind: bytes, parts: list[bytes]) -> None:
        if len(parts) < 2:
            return
        subs = self.subscriptions[_SUB_KIND[kind]]
        if kind.endswith(b"unsubscribe"):
            subs.discard(parts[1])
        elif len(subs) < MAX_SUBSCRIPTIONS:
            subs.add(parts[1])

    def _collect(self, req: Request, msg: Message, out: list[Any]) -> None:
        if req.expected <= 0:
            # UNSUBSCRIBE without arguments: one confirmation per subscription it ends.
            # The count is taken at the first confirmation, when every earlier reply has
            # been seen (this confirmation has already been applied, hence the +1).
            req.expected = max(1, len(self.subscriptions[_SUB_KIND[req.family]]) + 1)
        req.replies.append(msg)
        if len(req.replies) < req.expected:
            return
        self.requests.popleft()
        self.queue_bytes -= len(req.query)
        txn = RedisTransaction(self.conn, req, req.replies)
        note = self.realign.pair()
        if note:
            txn.notes.append(note)
        out.append(txn)
        method = req.method
        if method == b"MONITOR" and not msg.is_error:
            self.mode = MONITOR
        elif method == b"RESET":
            self.mode = NORMAL
            for s in self.subscriptions:
                s.clear()
        elif method == b"HELLO" and msg.kind == MAP:
            self.resp3 = True
        elif method == b"HELLO" and msg.kind == ARRAY:
            self.resp3 = False
        elif (method == b"PSYNC" or method == b"SYNC") and not msg.is_error:
            self.mode = REPLICATION
            self.plugin.stats.incr("redis.replication_streams")
            for p in self.parsers:
                p.reset()
            self.requests.clear()
