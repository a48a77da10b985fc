"""Sans-IO RESP2/RESP3 parser for one direction of a Redis connection.

Feed bytes, get back finished top-level ``Message`` objects. The parser is resumable at
value granularity: aggregates live on an explicit stack (no recursion, depth bounded) and
only the value being read when the bytes run out is kept for the next call, so a reply
with 10,000 elements arriving in 100 segments is parsed once, not 100 times.

Values are rendered the way Packetbeat renders them (``redis_parse.go``): bulk and simple
strings as their text, ``$-1``/``*-1`` as ``nil``, nested aggregates as ``[a, b]``.
RESP3 types (which Packetbeat does not know) follow the same spirit: ``_`` → ``nil``,
``#t`` → ``true``, doubles and big numbers as sent, verbatim strings without their
``txt:`` prefix, maps as ``{k: v}``, sets and pushes like arrays, attributes dropped.

Memory is bounded: at most ``max_bytes`` of leaf content is kept per message (beyond
it the message is still followed to its end but its content is dropped and
``truncated`` is set; every kept element also counts what holding it costs beyond its
bytes, so a million empty strings are bounded too), a bulk string longer than
what is left of that budget is skipped as it streams by, header lines are capped, and
nesting is capped at ``max_depth``.

Time is linear: a line still waiting for its CRLF is searched from where the last search
stopped. Lengths and counts are ASCII decimals (``protocols.common.digits``) within
Redis' own limits (``MAX_BULK``, ``MAX_COUNT``). A broken rule drops the message with a
reason the handler counts (``redis.<reason>`` for the caps).
"""

from __future__ import annotations

from typing import Any

from protocols.common.digits import ascii_int, is_ascii_float, is_ascii_integer

# Type bytes (https://redis.io/docs/latest/develop/reference/protocol-spec/).
ARRAY, BULK, INT, SIMPLE, ERROR = 0x2A, 0x24, 0x3A, 0x2B, 0x2D  # * $ : + -
NULL, BOOL, DOUBLE, BIGNUM = 0x5F, 0x23, 0x2C, 0x28  # _ # , (
BLOB_ERROR, VERBATIM = 0x21, 0x3D  # ! =
MAP, SET, ATTRIBUTE, PUSH = 0x25, 0x7E, 0x7C, 0x3E  # % ~ | >
#: Pseudo type of a client's inline command (``PING\r\n``).
INLINE = 0

NIL = b"nil"
EMPTY_ARRAY = b"[]"
ELLIPSIS = b"..."

_LINE_TYPES = frozenset({INT, SIMPLE, ERROR, NULL, BOOL, DOUBLE, BIGNUM})
_BULK_TYPES = frozenset({BULK, BLOB_ERROR, VERBATIM})
_AGGREGATE_TYPES = frozenset({ARRAY, MAP, SET, ATTRIBUTE, PUSH})
_ERROR_TYPES = frozenset({ERROR, BLOB_ERROR})
#: Bytes a message may start with when hunting for one (a client sends command arrays).
_CLIENT_STARTS = frozenset({ARRAY})
_SERVER_STARTS = _LINE_TYPES | _BULK_TYPES | _AGGREGATE_TYPES

#: Longest header line (``*<count>``, ``$<len>``) accepted.
MAX_HEADER_LINE = 32
#: Longest inline command (Redis' own PROTO_INLINE_MAX_SIZE).
MAX_INLINE = 64 * 1024
#: Largest bulk string length accepted: Redis' default ``proto-max-bulk-len`` and the
#: documented largest string value (512 MiB). Longer is a lying length: dropped.
MAX_BULK = 512 * 1024 * 1024
#: Largest aggregate count accepted (Redis refuses a multibulk count above INT_MAX).
MAX_COUNT = 0x7FFFFFFF
#: What a kept element costs beyond its bytes: a small ``bytes`` object and its list
#: slot (about 40 bytes in CPython), so ``max_bytes`` bounds memory, not just text.
_ELEMENT_COST = 40
_CMD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.|")


class ParseError(Exception):
    """The bytes are not RESP. ``reason``: a counter name for the caps."""

    def __init__(self, detail: str, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class Message:
    """One top-level RESP value.

    ``parts`` holds the rendered elements of a top-level aggregate (a request's command
    and arguments, a reply's elements); ``value`` holds a top-level scalar.
    """

    __slots__ = ("is_error", "kind", "parts", "size", "truncated", "ts", "value")

    def __init__(
        self,
        ts: int,
        size: int,
        kind: int,
        value: bytes | None,
        parts: list[bytes] | None,
        truncated: bool,
    ) -> None:
        self.ts = ts
        self.size = size
        self.kind = kind
        self.value = value
        self.parts = parts
        self.is_error = kind in _ERROR_TYPES
        self.truncated = truncated

    def render(self) -> bytes:
        """The whole value as Packetbeat prints it (``redis.return_value``)."""
        if self.parts is None:
            return self.value if self.value is not None else b""
        return render_aggregate(self.kind, self.parts, self.truncated)

    def __repr__(self) -> str:
        return f"Message({chr(self.kind) if self.kind else 'inline'} {self.render()[:60]!r} size={self.size})"


def render_aggregate(kind: int, items: list[bytes], dropped: bool) -> bytes:
    if kind == MAP:
        body = b", ".join([k + b": " + v for k, v in zip(items[::2], items[1::2], strict=False)])
        if dropped:
            body = body + b", ..." if body else ELLIPSIS
        return b"{" + body + b"}"
    if dropped:
        items = [*items, ELLIPSIS]
    if not items:
        return EMPTY_ARRAY
    return b"[" + b", ".join(items) + b"]"


class RespParser:
    """Parser state for one direction. ``inline``: accept inline commands (client side)."""

    __slots__ = (
        "carried",
        "errors",
        "hunt",
        "inline",
        "kept",
        "last_error",
        "last_reason",
        "max_bytes",
        "max_depth",
        "msg_ts",
        "rest",
        "scan",
        "skip",
        "stack",
        "truncated",
    )

    def __init__(self, inline: bool = False, max_bytes: int = 10 * 1024 * 1024, max_depth: int = 128) -> None:
        self.inline = inline
        self.max_bytes = max_bytes or (1 << 62)
        self.max_depth = max_depth
        self.rest = bytearray()
        # Open aggregates, innermost last: [type, remaining, items, dropped].
        self.stack: list[list[Any]] = []
        self.msg_ts = -1  # capture time of the current message's first byte (-1: none)
        self.carried = 0  # bytes of the current message consumed by earlier feeds
        self.kept = 0  # leaf bytes stored for the current message
        self.truncated = False
        self.skip = 0  # bytes of an oversized bulk string still to skip (CRLF included)
        #: Bytes of the value being read already searched in vain for its line end.
        self.scan = 0
        self.errors = 0
        self.last_error = ""
        self.last_reason = ""
        #: The stream resumes at an unknown point (picked up mid-way, after lost bytes or
        #: a parse error): skip to a line that starts a message before parsing.
        self.hunt = False

    @property
    def in_message(self) -> bool:
        return not self.hunt and (self.msg_ts >= 0 or bool(self.rest))

    def reset(self) -> None:
        self.rest = bytearray()
        self.stack = []
        self.msg_ts = -1
        self.carried = 0
        self.kept = 0
        self.truncated = False
        self.skip = 0
        self.scan = 0

    def feed(self, data: bytes, ts: int) -> list[Message]:
        """Parse what ``data`` completes. On bad input the state is dropped (counted in
        ``errors``); parsing restarts with the next call (Packetbeat retries with the next
        segment)."""
        out: list[Message] = []
        if self.hunt:
            data = self._hunt(data)
            if not data:
                return out
        rest = self.rest
        if rest:
            rest += data
            buf: bytes | bytearray = rest
        else:
            buf = data
        try:
            pos = self._parse(buf, ts, out)
        except (ParseError, ValueError, IndexError) as exc:
            self.errors += 1
            self.last_error = str(exc) or type(exc).__name__
            self.last_reason = exc.reason if isinstance(exc, ParseError) else ""
            self.reset()
            self.hunt = True  # what follows may be the rest of the bad message
            return out
        if pos < len(buf):
            if buf is rest:
                del rest[:pos]
            else:
                self.rest = bytearray(buf[pos:])
        elif rest:
            self.rest = bytearray()
        return out

    def _hunt(self, data: bytes) -> bytes:
        """The part of ``data`` from the first plausible message start: a command array
        (``*``) from a client, any type byte from a server, at the start of the data or of
        a line. The CRLF before a start may be split across calls: its tail is kept."""
        starts = _CLIENT_STARTS if self.inline else _SERVER_STARTS
        carried = bool(self.rest)
        buf = bytes(self.rest) + data if carried else data
        self.rest = bytearray()
        if not carried and buf and buf[0] in starts:
            self.hunt = False
            return buf
        pos = 0
        while True:
            i = buf.find(b"\r\n", pos)
            if i < 0 or i + 2 >= len(buf):
                tail = 2 if buf.endswith(b"\r\n") else 1 if buf.endswith(b"\r") else 0
                if tail:
                    self.rest = bytearray(buf[-tail:])
                return b""
            if buf[i + 2] in starts:
                self.hunt = False
                return buf[i + 2 :]
            pos = i + 2

    def _parse(self, buf: bytes | bytearray, ts: int, out: list[Message]) -> int:
        n = len(buf)
        pos = 0
        stack = self.stack
        start = 0  # where the current message began in this buffer
        while True:
            if self.skip:
                k = min(self.skip, n - pos)
                pos += k
                self.skip -= k
                if self.skip:
                    break
                t = BULK
                leaf = b""
            else:
                if pos >= n:
                    break
                if self.msg_ts < 0:
                    self.msg_ts = ts
                    self.carried = 0
                    start = pos
                t = buf[pos]
                if t in _BULK_TYPES:
                    eol = buf.find(b"\r\n", pos + 1, pos + MAX_HEADER_LINE)
                    if eol < 0:
                        if n - pos >= MAX_HEADER_LINE:
                            raise ParseError("bulk length line too long")
                        break
                    raw = buf[pos + 1 : eol]
                    # bytes.isdigit is ASCII-only: the common case without a call.
                    length = int(raw) if raw.isdigit() else ascii_int(raw)
                    if length is None:
                        raise ParseError("bad bulk length")
                    if length > MAX_BULK:
                        raise ParseError("bulk length beyond 512 MiB", "bulk_too_large")
                    if length < 0:
                        if t != BULK:
                            raise ParseError("negative length")
                        leaf = NIL
                        pos = eol + 2
                    else:
                        body = eol + 2
                        end = body + length
                        if self.kept + length > self.max_bytes:
                            # Too big to keep: follow it to its end without storing it.
                            self.truncated = True
                            self.skip = length + 2
                            pos = body
                            continue
                        if end + 2 > n:
                            break
                        if buf[end] != 13 or buf[end + 1] != 10:
                            raise ParseError("bulk string not terminated by CRLF")
                        leaf = bytes(buf[body:end])
                        if t == VERBATIM and length >= 4 and leaf[3] == 0x3A:
                            leaf = leaf[4:]
                        pos = end + 2
                elif t in _LINE_TYPES:
                    # Resume the search one byte back: a CR may end the searched part.
                    eol = buf.find(b"\r\n", pos + self.scan if self.scan > 1 else pos + 1)
                    if eol < 0:
                        if n - pos > max(self.max_bytes - self.kept, 0) + 1024:
                            raise ParseError("line too long", "line_too_long")
                        self.scan = n - pos - 1
                        break
                    self.scan = 0
                    leaf = bytes(buf[pos + 1 : eol])
                    pos = eol + 2
                    if t == INT:
                        if not leaf.isdigit() and ascii_int(leaf) is None:
                            raise ParseError("bad integer")
                    elif t == BIGNUM:
                        if not is_ascii_integer(leaf):
                            raise ParseError("bad big number")
                    elif t == DOUBLE:
                        if not is_ascii_float(leaf):
                            raise ParseError("bad double")
                    elif t == NULL:
                        if leaf:
                            raise ParseError("bad null")
                        leaf = NIL
                    elif t == BOOL:
                        if leaf == b"t":
                            leaf = b"true"
                        elif leaf == b"f":
                            leaf = b"false"
                        else:
                            raise ParseError("bad boolean")
                elif t in _AGGREGATE_TYPES:
                    eol = buf.find(b"\r\n", pos + 1, pos + MAX_HEADER_LINE)
                    if eol < 0:
                        if n - pos >= MAX_HEADER_LINE:
                            raise ParseError("aggregate length line too long")
                        break
                    raw = buf[pos + 1 : eol]
                    count = int(raw) if raw.isdigit() else ascii_int(raw)
                    if count is None:
                        raise ParseError("bad aggregate count")
                    if count > MAX_COUNT:
                        raise ParseError("aggregate count beyond 2**31-1", "count_too_large")
                    pos = eol + 2
                    if count < 0:
                        if t != ARRAY:
                            raise ParseError("negative count")
                        leaf = NIL
                    elif count == 0:
                        if t == ATTRIBUTE:
                            continue
                        leaf = b"{}" if t == MAP else EMPTY_ARRAY
                        if not stack:
                            self.kept = 0
                            out.append(self._finish(ts, pos - start, t, None, [], False))
                            continue
                    else:
                        if len(stack) >= self.max_depth:
                            raise ParseError("nesting too deep", "nesting_too_deep")
                        stack.append([t, count * 2 if t in (MAP, ATTRIBUTE) else count, [], False])
                        continue
                elif self.inline and not stack:
                    eol = buf.find(b"\n", pos + self.scan)
                    if eol < 0:
                        if n - pos > MAX_INLINE:
                            raise ParseError("inline command too long", "inline_too_long")
                        self.scan = n - pos
                        break
                    self.scan = 0
                    parts = bytes(buf[pos:eol]).split()
                    pos = eol + 1
                    if not parts:  # Redis ignores empty lines
                        self.msg_ts = -1
                        continue
                    cmd = parts[0]
                    if len(cmd) > 64 or not _CMD_CHARS.issuperset(cmd) or not cmd[:1].isalpha():
                        raise ParseError("not a RESP value nor an inline command")
                    out.append(self._finish(ts, pos - start, INLINE, None, parts, False))
                    continue
                else:
                    raise ParseError(f"unexpected type byte {t:#x}")

            # A complete value: hand it to the innermost open aggregate, closing every
            # aggregate it completes.
            while True:
                if not stack:
                    truncated = self.truncated
                    self.kept = 0
                    self.truncated = False
                    out.append(self._finish(ts, pos - start, t, leaf, None, truncated))
                    break
                frame = stack[-1]
                cost = len(leaf) + _ELEMENT_COST
                if not self.truncated and self.kept + cost <= self.max_bytes:
                    frame[2].append(leaf)
                    self.kept += cost
                else:
                    self.truncated = True
                    frame[3] = True
                frame[1] -= 1
                if frame[1]:
                    break
                stack.pop()
                ft, _, items, dropped = frame
                if ft == ATTRIBUTE:
                    break  # metadata about the next value: dropped
                if not stack:
                    truncated = self.truncated
                    self.kept = 0
                    self.truncated = False
                    out.append(self._finish(ts, pos - start, ft, None, items, truncated or dropped))
                    break
                t = ft
                leaf = render_aggregate(ft, items, dropped)
        if self.msg_ts >= 0:
            self.carried += pos - start
        return pos

    def _finish(
        self,
        ts: int,
        consumed: int,
        kind: int,
        value: bytes | None,
        parts: list[bytes] | None,
        truncated: bool,
    ) -> Message:
        msg = Message(self.msg_ts, self.carried + consumed, kind, value, parts, truncated)
        self.msg_ts = -1
        self.carried = 0
        return msg
