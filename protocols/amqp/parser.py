"""AMQP 0-9-1 framing (sans-IO): one direction of a connection in, messages out.

A frame is ``type (1) | channel (2) | size (4) | payload | 0xCE`` (AMQP 0-9-1 §4.2.3); a
connection opens with the protocol header ``AMQP 0 0 9 1``, skipped wherever it shows up.
Method frames become messages; a content method (``basic.publish``, ``basic.deliver``,
``basic.return``, ``basic.get-ok``) waits on its channel for its content header and body
frames (§4.2.6), which may span any number of frames and segments.

Packetbeat (``protos/amqp/amqp_parser.go``) reads every direction as one stream of frames.
What is kept from it: a frame without its end octet or of an unknown type makes it drop all
it has buffered for that direction and start again with the next segment (counted
``amqp.bad_frames``); its timing of messages (``FrameParser.feed``); the content properties
it decodes and how. What is not: it loses whatever follows an unknown method or a heartbeat in
the same segment, merges a message with an empty body into the next one, appends a message's
body to the previous one's when no segment ended between them, and buffers whole messages (up
to 10 MiB). Here content is assembled per channel, only the first
``max_body_length`` bytes of a body are kept (body frames are never buffered), a message
with an empty body is complete at its header, and unknown methods are skipped
(docs/differences.md, AMQP).

Bounds: a non-body frame larger than ``max_frame_size`` is dropped like a bad frame
(``amqp.oversized_frames``); at most ``MAX_CONTENTS`` channels wait for content per direction.
"""

from __future__ import annotations

import struct
from typing import Any

from protocols.amqp.methods import CONTENT, KEEP_NULL, METHODS, PARSE_ARGUMENTS, Method
from protocols.amqp.wire import Malformed, amqp_time, short_string, table
from protocols.stats import Counters

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE

#: Channels with a content message still waiting for its header or body, per direction.
MAX_CONTENTS = 1024

_FRAME = struct.Struct(">BHI")
_HH = struct.Struct(">HH")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")

CLOSES = frozenset({"connection.close", "channel.close"})


class Message:
    """One method (with its content, for content methods)."""

    __slots__ = (
        "body",
        "body_size",
        "channel",
        "direction",
        "fields",
        "method",
        "name",
        "notes",
        "size",
        "text",
        "ts",
    )

    def __init__(
        self,
        ts: int,
        direction: int,
        channel: int,
        method: Method,
        fields: dict[str, Any],
        text: str,
        size: int,
        notes: list[str] | None,
    ) -> None:
        self.ts = ts
        self.direction = direction
        self.channel = channel
        self.method = method
        self.name = method.name
        self.fields = fields
        #: Packetbeat's short request text (a queue or exchange name, ...).
        self.text = text
        #: The method frame on the wire (header, payload, end octet).
        self.size = size
        self.notes = notes
        #: Content methods: the first ``max_body_length`` bytes and the declared size.
        self.body = b""
        self.body_size = 0

    def __repr__(self) -> str:
        return f"Message({self.name} ch{self.channel} {self.fields!r})"


class _Content:
    """A content method waiting on its channel for the header (size < 0) and body."""

    __slots__ = ("got", "kept", "msg", "size")

    def __init__(self, msg: Message) -> None:
        self.msg = msg
        self.size = -1
        self.got = 0
        self.kept: list[bytes] = []


def properties(payload: bytes, fields: dict[str, Any], keep_null: bool = False) -> None:
    """The basic content properties of a content header frame (after class id, weight and
    body size), into ``fields`` under Packetbeat's names. Raises ``Malformed``."""
    n = len(payload)
    flags1 = payload[12]
    flags2 = payload[13]
    p = 14
    q = 13
    # Further property flag words follow while the last bit of one is set.
    while payload[q] & 1:
        q += 2
        p += 2
        if q >= n:
            raise Malformed("property flags past the end")
    if flags1 & 0x80:
        fields["content-type"], p = short_string(payload, p)
    if flags1 & 0x40:
        fields["content-encoding"], p = short_string(payload, p)
    if flags1 & 0x20:
        headers, p = table(payload, p, keep_null)
        if headers:
            fields["headers"] = headers
    if flags1 & 0x10:
        if p >= n:
            raise Malformed("delivery mode past the end")
        mode = payload[p]
        if mode == 1:
            fields["delivery-mode"] = "non-persistent"
        elif mode == 2:
            fields["delivery-mode"] = "persistent"
        p += 1
    if flags1 & 0x08:
        if p >= n:
            raise Malformed("priority past the end")
        fields["priority"] = payload[p]
        p += 1
    if flags1 & 0x04:
        fields["correlation-id"], p = short_string(payload, p)
    if flags1 & 0x02:
        fields["reply-to"], p = short_string(payload, p)
    if flags1 & 0x01:
        fields["expiration"], p = short_string(payload, p)
    if flags2 & 0x80:
        fields["message-id"], p = short_string(payload, p)
    if flags2 & 0x40:
        if p + 8 > n:
            raise Malformed("timestamp past the end")
        fields["timestamp"] = amqp_time(_I64.unpack_from(payload, p)[0])
        p += 8
    if flags2 & 0x20:
        fields["type"], p = short_string(payload, p)
    if flags2 & 0x10:
        fields["user-id"], p = short_string(payload, p)
    if flags2 & 0x08:
        fields["app-id"], p = short_string(payload, p)


class FrameParser:
    """One direction of a connection: ``feed(data, ts)`` returns the messages it completes."""

    __slots__ = (
        "body_content",
        "body_left",
        "buf",
        "contents",
        "cut",
        "direction",
        "done",
        "end_pending",
        "flags",
        "fresh",
        "hide",
        "keep",
        "max_frame",
        "need",
        "parse_headers",
        "seg_ts",
        "stats",
        "stream_ts",
    )

    def __init__(
        self,
        direction: int,
        stats: Counters,
        max_body_length: int = 1000,
        parse_headers: bool = True,
        parse_arguments: bool = True,
        hide_connection_information: bool = True,
        max_frame_size: int = 10 * 1024 * 1024,
        keep_null: bool = False,
    ) -> None:
        self.direction = direction
        self.stats = stats
        self.keep = max(0, max_body_length)
        self.parse_headers = parse_headers
        self.flags = (PARSE_ARGUMENTS if parse_arguments else 0) | (KEEP_NULL if keep_null else 0)
        self.hide = hide_connection_information
        self.max_frame = max_frame_size
        #: The start of a frame still short of ``need`` bytes.
        self.buf = bytearray()
        self.need = 0
        #: Packetbeat's timing (see ``feed``): the time of the segment that opened the current
        #: stream of unparsed bytes, whether the last frame completed a message, whether the
        #: next frame starts one of Packetbeat's parser calls, whether Packetbeat dropped its
        #: stream in this segment, and this segment's time.
        self.stream_ts: int | None = None
        self.done = True
        self.fresh = True
        self.cut = False
        self.seg_ts = 0
        #: channel → content method waiting for its header and body.
        self.contents: dict[int, _Content] = {}
        #: A body frame split across segments: payload bytes still to come, then its end octet.
        self.body_left = 0
        self.end_pending = False
        self.body_content: _Content | None = None

    @property
    def pending(self) -> int:
        """Bytes held (a partial frame) and messages waiting for content."""
        return len(self.buf) + len(self.contents)

    def feed(self, data: bytes, ts: int) -> list[Message]:
        """The messages ``data`` (one segment) completes.

        Messages are timed as Packetbeat times them: by the segment that opened its buffer of
        unparsed bytes, which it only starts afresh after a segment that ends exactly where a
        message does (or after dropping it). So a message is timed by the segment its method
        frame starts in, unless the segment before that one ended inside a message (messages
        of a burst whose segments never end on a message boundary all share the first one's
        time; the client's ``connection.start-ok`` gets its protocol header's time)."""
        if self.stream_ts is None:
            self.stream_ts = ts
        self.seg_ts = ts
        self.fresh = True
        self.cut = False
        out: list[Message] = []
        self._feed(data, out)
        if self.cut or (self.done and not self.buf and not self.end_pending):
            self.stream_ts = None
        return out

    def _feed(self, data: bytes, out: list[Message]) -> None:
        if self.end_pending:
            data = self._continue_body(data, out)
            if not data:
                return
        if self.buf:
            self.buf += data
            if len(self.buf) < self.need:
                return
            data = bytes(self.buf)
            self.buf = bytearray()
        self._frames(data, out)

    def drop(self) -> int:
        """Forget everything (a gap, or the end): returns the messages lost (a frame cut
        short counts as one)."""
        lost = len(self.contents)
        if self.buf or (self.end_pending and self.body_content is None):
            lost += 1
        self.contents.clear()
        self.buf = bytearray()
        self.body_left = 0
        self.end_pending = False
        self.body_content = None
        return lost

    # -- internals -----------------------------------------------------------------------

    def _cut(self) -> None:
        """Where Packetbeat drops its stream (the rest of the segment with it): what follows
        here, Packetbeat never reports; it is timed by this segment."""
        self.cut = True
        self.stream_ts = self.seg_ts
        self.done = self.fresh = True

    def _resync(self, reason: str) -> None:
        """Packetbeat's answer to a frame it cannot take: drop what is held for this
        direction and start again with the next segment."""
        self.stats.incr(f"amqp.{reason}")
        self._cut()
        if self.contents:
            self.stats.incr("amqp.incomplete_content", len(self.contents))
            self.contents.clear()
        self.buf = bytearray()
        self.body_left = 0
        self.end_pending = False
        self.body_content = None

    def _frames(self, data: bytes, out: list[Message]) -> None:
        pos = 0
        n = len(data)
        unpack = _FRAME.unpack_from
        while True:
            left = n - pos
            if left < 8:
                if left:
                    self.buf = bytearray(data[pos:])
                    self.need = 8
                return
            kind, channel, size = unpack(data, pos)
            if kind == 0x41 and data[pos : pos + 5] == b"AMQP\x00":
                pos += 8
                self.done = self.fresh = False
                continue
            end = pos + 7 + size
            if kind == FRAME_BODY:
                content = self.contents.get(channel)
                if content is None or content.size < 0:
                    self.stats.incr("amqp.unexpected_frames")
                    content = None
                if end >= n:
                    # Stream the payload: body frames are never buffered.
                    if content is not None:
                        self._take(content, data[pos + 7 : n])
                    self.body_content = content
                    self.body_left = end - n
                    self.end_pending = True
                    return
                if data[end] != FRAME_END:
                    self._resync("bad_frames")
                    return
                self.done = self.fresh = False
                if content is not None:
                    self._take(content, data[pos + 7 : end])
                    if content.got >= content.size:
                        self._complete(channel, content, out)
                        self.done = self.fresh = True
                pos = end + 1
                continue
            if kind != FRAME_METHOD and kind != FRAME_HEADER and kind != FRAME_HEARTBEAT:
                self._resync("bad_frames")
                return
            if size > self.max_frame:
                self._resync("oversized_frames")
                return
            if end >= n:
                self.buf = bytearray(data[pos:])
                self.need = size + 8
                return
            if data[end] != FRAME_END:
                self._resync("bad_frames")
                return
            if kind == FRAME_METHOD:
                self._method(data[pos + 7 : end], channel, size + 8, out)
            elif kind == FRAME_HEADER:
                self._header(data[pos + 7 : end], channel, out)
            elif self.fresh:
                self._cut()  # a heartbeat first in one of Packetbeat's parser calls
            pos = end + 1

    def _continue_body(self, data: bytes, out: list[Message]) -> bytes:
        """Go on with a body frame cut by the segment; returns the bytes after it."""
        content = self.body_content
        if self.body_left:
            take = min(len(data), self.body_left)
            if content is not None:
                self._take(content, data[:take])
            self.body_left -= take
            if self.body_left:
                return b""
            data = data[take:]
            if not data:
                return b""
        if data[0] != FRAME_END:
            self._resync("bad_frames")
            return b""
        self.end_pending = False
        self.body_content = None
        self.done = self.fresh = False
        if content is not None and content.got >= content.size:
            channel = content.msg.channel
            if self.contents.get(channel) is content:
                self._complete(channel, content, out)
                self.done = self.fresh = True
        return data[1:]

    def _take(self, content: _Content, piece: bytes) -> None:
        room = self.keep - (content.got if content.got < self.keep else self.keep)
        if room > 0:
            content.kept.append(piece[:room])
        content.got += len(piece)

    def _complete(self, channel: int, content: _Content, out: list[Message]) -> None:
        del self.contents[channel]
        msg = content.msg
        msg.body_size = content.size
        msg.body = b"".join(content.kept) if len(content.kept) != 1 else content.kept[0]
        out.append(msg)

    def _method(self, payload: bytes, channel: int, size: int, out: list[Message]) -> None:
        if len(payload) < 4:
            self.stats.incr("amqp.malformed_methods")
            self.done = self.fresh = False
            return
        if channel in self.contents:
            # A method frame ends any content of its channel (§4.2.6).
            del self.contents[channel]
            self.stats.incr("amqp.incomplete_content")
        method = METHODS.get(_HH.unpack_from(payload, 0))
        if method is None or method.beyond:
            # Unknown to Packetbeat: it drops its stream here.
            self._cut()
            if method is None:
                self.stats.incr("amqp.unknown_methods")
                return
        elif method.hidden and self.hide:
            self._cut()  # (the same: Packetbeat does not know it under this option)
            return
        try:
            dec = method.decode(payload[4:], self.flags)
        except Malformed:
            self.stats.incr("amqp.malformed_methods")
            self._cut()
            return
        if method.role != CONTENT:
            self.done = self.fresh = True
        else:
            self.done = self.fresh = False
        if self.hide and method.name in CLOSES and dec.fields["reply-code"] < 300:
            return  # a normal close: connection information
        ts = self.seg_ts if self.stream_ts is None else self.stream_ts
        msg = Message(ts, self.direction, channel, method, dec.fields, dec.text, size, dec.notes)
        if method.role != CONTENT:
            out.append(msg)
            return
        contents = self.contents
        contents[channel] = _Content(msg)
        if len(contents) > MAX_CONTENTS:
            del contents[next(iter(contents))]
            self.stats.incr("amqp.incomplete_content")

    def _header(self, payload: bytes, channel: int, out: list[Message]) -> None:
        content = self.contents.get(channel)
        if content is None or content.size >= 0:
            self.stats.incr("amqp.unexpected_frames")
            if content is not None:
                del self.contents[channel]
                self.stats.incr("amqp.incomplete_content")
            return
        self.done = self.fresh = False
        if len(payload) < 14:
            self.stats.incr("amqp.malformed_headers")
            del self.contents[channel]
            return
        if self.parse_headers:
            try:
                properties(payload, content.msg.fields, bool(self.flags & KEEP_NULL))
            except (Malformed, IndexError):
                self.stats.incr("amqp.malformed_headers")
                del self.contents[channel]
                self._cut()
                return
        content.size = _U64.unpack_from(payload, 4)[0]
        if content.size == 0:
            self._complete(channel, content, out)
