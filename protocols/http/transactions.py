"""Pairing HTTP requests with responses on one connection (Packetbeat §1.7).

Requests wait in a FIFO; every finished response pairs with the oldest one, so
pipelining works. A response with no request waiting is published at once as
``Unmatched response``; requests still waiting when the connection ends come out as
``Unmatched request`` (Packetbeat loses them at the end of a capture file; we don't).
Interim 1xx responses (100 Continue, 102, 103) never pair with a request.

Bytes lost outside a body (in a start line or headers, or between messages) may hold the
start of responses: the requests waiting on the other side then can no longer be paired
by order, so they are published as ``Unmatched request`` right away (Packetbeat drops the
connection's state and loses them) and the responses after the gap pair with the
requests after it. The same when the response stream stops parsing (its message
boundaries are lost, e.g. after the request of a HEAD went missing and its response was
read with a body). The TCP layer delivers a request only after the response bytes it
acknowledges, so those are exactly the requests sent before the lost bytes.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import attrs

from protocols.common.realign import REQUEST_LOSS, RESPONSE_LOSS, Realign
from protocols.compiled import python_class
from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.http.parser import BODY, BODY_TO_CLOSE, START, Message, StreamParser

if TYPE_CHECKING:
    from protocols.http import HttpPlugin

#: More requests than this waiting for responses: the oldest is published unmatched.
MAX_PENDING = 1024
#: The shortest request there can be (``GET / HTTP/1.0`` and the empty line).
MIN_REQUEST = 18
#: Idle parsers kept per plugin for the next connection direction that needs one.
PARSER_POOL = 64
_NO_PARSERS: tuple[None, None] = (None, None)


@attrs.define(slots=True)
class HttpTransaction:
    conn: ConnInfo
    request: Message | None
    response: Message | None
    #: Direction the first message of the pair travelled in (source of the event).
    first_dir: int


@python_class
class HttpHandler(ConnectionHandler):
    """Requests wait in ``pending`` (each message knows its direction). A direction has a
    parser only while a message of it is incomplete: between messages its parser goes
    back to the plugin's pool. So a connection holding one pending request costs little
    more than the request itself."""

    __slots__ = ("deferred", "parsers", "pending", "realign")

    def __init__(self, plugin: HttpPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.plugin: HttpPlugin = plugin
        #: Requests waiting for their response: None, the one request, or a list of them,
        #: oldest first (``_push``, ``_pop``, ``_waiting``).
        self.pending: Message | list[Message] | None = None
        #: Per direction, its parser while a message is incomplete (a tuple, shared while
        #: both are None).
        self.parsers: tuple[StreamParser | None, StreamParser | None] = _NO_PARSERS
        #: Transactions completed by a gap; returned by the next call that can return.
        self.deferred: list[Any] | None = None
        #: While the streams are in step, only the size of the smallest request seen
        #: (``Realign.smallest``); a ``Realign`` from a loss until they are back in step.
        self.realign: Realign | int = MIN_REQUEST

    def _parser(self, direction: int) -> StreamParser:
        p = self.parsers[direction]
        if p is None:
            pool = self.plugin.parser_pool
            if pool:
                p = pool.pop()
                p.requests = self
            else:
                p = StreamParser(self.plugin.parser_config, self)
            self._set_parser(direction, p)
        return p

    def _set_parser(self, direction: int, p: StreamParser | None) -> None:
        c, s = self.parsers
        if direction == 0:
            c = p
        else:
            s = p
        self.parsers = _NO_PARSERS if c is None and s is None else (c, s)

    def _release(self, direction: int, parser: StreamParser) -> None:
        """``parser`` is between messages with nothing held: back to the pool."""
        self._set_parser(direction, None)
        pool = self.plugin.parser_pool
        if len(pool) < PARSER_POOL:
            parser.requests = None
            pool.append(parser)

    # -- seam ----------------------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        parser = self.parsers[direction] or self._parser(direction)
        if parser.state == BODY and len(data) < parser.remaining and not parser.buf:
            # Middle of a Content-Length body (most segments of a download): just count it.
            msg = parser.msg
            assert msg is not None
            if msg.save_body:
                parser.save(msg, data)
            msg.size += len(data)
            parser.remaining -= len(data)
            return []
        errors = parser.errors
        msgs = parser.feed(data, ts)
        lost_sync = parser.errors != errors
        if lost_sync:
            self.plugin.stats.incr("http.parse_errors")
            if parser.last_reason:
                self.plugin.stats.incr("http." + parser.last_reason)
            if self.plugin.debug:
                self.plugin.log.debug(
                    "Couldn't understand HTTP message from the %s on %s (%s); skipping to the next message",
                    "client" if direction == 0 else "server",
                    self.conn,
                    parser.last_reason or "parse error",
                )
        elif parser.state == START and not parser.buf and not parser.resync:
            self._release(direction, parser)
        if not msgs and not self.deferred and not lost_sync:
            return []
        out = self._take_deferred()
        for m in msgs:
            self._handle(m, direction, out)
        if lost_sync:
            self._lost(direction, None)
            out += self._take_deferred()
        return out

    def resync(self, direction: int, after_loss: bool) -> None:
        # The parser needs no warning: text that is not a start line is a parse error,
        # after which it looks for one (and the waiting requests come out unmatched).
        if after_loss and direction == FROM_CLIENT:
            self._unsure().lost(REQUEST_LOSS)

    def on_gap(self, direction: int, nbytes: int) -> bool:
        parser = self._parser(direction)
        partial = parser.msg is not None or bool(parser.buf)
        in_body = parser.msg is not None and parser.state in (BODY, BODY_TO_CLOSE)
        if parser.state == BODY and nbytes > parser.remaining:
            in_body = False  # the loss runs past the body's end, into the next message(s)
        ok, msg = parser.gap(nbytes)
        if not ok:
            self.plugin.stats.incr("http.gap_lost_messages")
        if msg is not None:
            self._handle(msg, direction, self._deferred())
        if not in_body:
            self._lost(direction, RESPONSE_LOSS, nbytes, partial)
        return False

    def _lost(self, direction: int, note: str | None, nbytes: int = 0, partial: bool = False) -> None:
        """Message boundaries were lost in ``direction`` (bytes lost between messages, or
        a message that could not be parsed): responses or whole requests may be gone."""
        if any(r.direction != direction for r in self._waiting()):
            # Response boundaries are lost (a garbled response, or a body misread after a
            # request went missing): the waiting requests can't be paired by order.
            self._lost_responses(direction, note)
        if direction == FROM_CLIENT:
            # Whole requests may be gone: their responses would pair with the requests
            # after them. Those already waiting are answered first.
            safe = sum(1 for r in self._waiting() if r.direction == direction)
            self._unsure().lost(REQUEST_LOSS, safe, nbytes, partial)

    def on_fin(self, direction: int, ts: int) -> list[Any]:
        out = self._take_deferred()
        self._finish(direction, out)
        return out

    def on_close(self, reason: str) -> list[Any]:
        out = self._take_deferred()
        for d in range(len(self.parsers)):
            self._finish(d, out)
        requests = self._waiting()
        if requests:
            self.plugin.stats.incr("http.unmatched_requests", len(requests))
            out += [HttpTransaction(self.conn, req, None, req.direction) for req in requests]
            self.pending = None
        return out

    def _finish(self, direction: int, out: list[Any]) -> None:
        parser = self.parsers[direction]
        if parser is None:
            return  # between messages (or nothing was ever sent that way)
        incomplete = parser.incomplete
        msg = parser.finish()
        if msg is not None:
            self._handle(msg, direction, out)
        elif parser.incomplete != incomplete:
            self.plugin.stats.incr("http.incomplete_messages")

    # -- pairing -------------------------------------------------------------------------

    def _take_deferred(self) -> list[Any]:
        out = self.deferred
        if out:
            self.deferred = None
            return out
        return []

    def _deferred(self) -> list[Any]:
        if self.deferred is None:
            self.deferred = []
        return self.deferred

    def _handle(self, msg: Message, direction: int, out: list[Any]) -> None:
        plugin = self.plugin
        self._hide_headers(msg)
        msg.direction = direction
        if plugin.debug:
            if msg.is_request:
                plugin.log.debug("Received request with tuple: %s (%s %s)", self.conn, msg.method, msg.uri)
            else:
                plugin.log.debug("Received response with tuple: %s (status %d)", self.conn, msg.status_code)
        if msg.is_request:
            r = self.realign
            if isinstance(r, int):
                if 0 < msg.size < r:
                    self.realign = msg.size
            else:
                r.request(msg.size)
            self._push(msg)
            if type(self.pending) is list and len(self.pending) > MAX_PENDING:
                req = self.pending.pop(0)
                plugin.stats.incr("http.unmatched_requests")
                plugin.stats.incr("http.pending_overflow")
                out.append(HttpTransaction(self.conn, req, None, req.direction))
            return
        code = msg.status_code
        if 100 <= code < 200 and code != 101:
            plugin.stats.incr("http.interim_responses")
            if plugin.debug:
                plugin.log.debug("Drop %d interim response", code)
            return
        if code == 101 or (self.request_method(0) == "CONNECT" and 200 <= code < 300):
            for d in (0, 1):
                self._parser(d).upgrade()
            plugin.stats.incr("http.upgraded_connections")
        self._correlate(msg, out)

    def _lost_responses(self, direction: int, note: str | None) -> None:
        """Responses (or their heads) were lost in ``direction``: publish the requests
        they answered, those waiting from the other side, as unmatched."""
        kept: list[Message] = []
        deferred = self._deferred()
        for req in self._waiting():
            if req.direction == direction:
                kept.append(req)
                continue
            if note and note not in req.notes:
                req.add_note(note)
            self.plugin.stats.incr("http.unmatched_requests")
            deferred.append(HttpTransaction(self.conn, req, None, req.direction))
        self.pending = None if not kept else kept[0] if len(kept) == 1 else kept

    def _correlate(self, resp: Message, out: list[Any]) -> None:
        """A final response pairs with the oldest request waiting, or is published
        unmatched (``_flush_responses``)."""
        req = self._pop()
        if req is None:
            self._flush_responses(resp, out)
            return
        r = self.realign
        note = "" if isinstance(r, int) else r.pair()
        if note and note not in req.notes:
            req.add_note(note)
        out.append(HttpTransaction(self.conn, req, resp, req.direction))

    def _flush_responses(self, resp: Message, out: list[Any]) -> None:
        r = self.realign
        if not isinstance(r, int):
            r.surplus()
            if not r.unsure:
                self.realign = r.smallest  # back in step: nothing else to remember
        self.plugin.stats.incr("http.unmatched_responses")
        if self.plugin.debug:
            self.plugin.log.debug("Response from unknown transaction: %s. Reporting error.", self.conn)
        out.append(HttpTransaction(self.conn, None, resp, resp.direction))

    def _unsure(self) -> Realign:
        r = self.realign
        if isinstance(r, int):
            r = self.realign = Realign(r)
        return r

    # -- the requests waiting (most connections have none or one: no list for them) -----

    def _push(self, msg: Message) -> None:
        p = self.pending
        if p is None:
            self.pending = msg
        elif type(p) is list:
            p.append(msg)
        else:
            assert isinstance(p, Message)
            self.pending = [p, msg]

    def _pop(self) -> Message | None:
        p = self.pending
        if type(p) is list:
            req = p.pop(0)
            if len(p) == 1:
                self.pending = p[0]
            return req
        self.pending = None
        assert p is None or isinstance(p, Message)
        return p

    def _waiting(self) -> list[Message]:
        p = self.pending
        if p is None:
            return []
        return p if type(p) is list else [p]  # type: ignore[list-item]

    def request_method(self, i: int) -> str | None:
        """The method of the ``i``-th request waiting (the parsers ask it of a response)."""
        p = self.pending
        if type(p) is list:
            return p[i].method if i < len(p) else None
        if p is not None and i == 0:
            assert isinstance(p, Message)
            return p.method
        return None

    def _hide_headers(self, msg: Message) -> None:
        # ``msg.headers`` may be the shared empty mapping: replace it, never write to it.
        cfg = self.plugin.config
        for name in cfg.redact_headers:
            if name in msg.headers:
                msg.headers = {**msg.headers, name: "REDACTED"}
        if not msg.is_request:
            return
        if not cfg.redact_authorization:
            return
        msg.raw_headers = _redact_raw_authorization(msg.raw_headers)
        for name in ("authorization", "proxy-authorization"):
            if msg.headers.get(name):
                msg.headers = {**msg.headers, name: "*"}
        msg.authorization = ""


def _redact_raw_authorization(raw: bytes) -> bytes:
    """Replace the values of Authorization/Proxy-Authorization headers with ``*``."""
    out = bytearray(raw)
    low = raw.lower()
    pos = 0
    needle = b"uthorization:"  # matches Authorization: and Proxy-Authorization:
    while True:
        i = low.find(needle, pos)
        if i < 0:
            break
        start = i + len(needle)
        # The end of this line (looking for CRLF first would scan past bare-LF lines).
        end = raw.find(b"\n", start)
        if end < 0:
            end = len(raw)
        elif end > start and raw[end - 1] == 0x0D:
            end -= 1
        out[start:end] = b"*" * (end - start)
        pos = end
    return bytes(out)


def basic_auth_user(value: str) -> str:
    if len(value) < 6 or value[:6].lower() != "basic ":
        return ""
    token = value[6:].strip()
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return ""
    text = decoded.decode("utf-8", "replace")
    user, sep, _ = text.partition(":")
    return user if sep else ""
