"""Sans-IO Thrift message parser for one direction of a connection.

Protocols: binary (strict ``0x8001`` and old non-strict headers) and compact. Transports:
socket (unframed) and framed. Which ones a stream uses is detected from its first bytes
(``detect``); the configuration only breaks the tie for non-strict binary.

The parser is resumable: containers live on an explicit stack (depth bounded), and only
the value being read when the bytes run out waits for more, so a reply carrying a list of
10,000 structs is parsed once however it is segmented. Only what the event shows is
rendered: strings keep their first ``string_max_size`` bytes (the rest streams past
without being buffered) and collections their first ``collection_max_size`` elements
(the rest are walked, fixed-size binary elements skipped in one step).

Caps, each overflow dropping the message with a reason the handler counts as
``thrift.<reason>``: Apache Thrift's default ``max_message_size`` (100 MiB, its
TConfiguration) bounds a frame, an unframed message, a string and what a collection's
declared size implies (size times the smallest encoding of its elements, the check
Thrift's own readers make), so a lying length is refused before anything is skipped or
allocated; nesting stops at ``max_depth`` and structs at ``drop_after_n_struct_fields``
fields. The rendered text of one message is capped at ``MAX_RENDERED``; containers past
it render as ``...``.

Values render as Packetbeat's ``thrift.go``: numbers as decimals, doubles in Go's
shortest ``'f'`` form, strings Go-quoted (hex when not UTF-8, ``"*"`` when obfuscated),
lists ``[a, b]``, sets ``{a, b}``, maps ``{k: v}``, structs ``(1: a, 2: b)``, and ``...``
past the collection limit. Deviations: i8/i16/i32 are shown signed (Packetbeat reads them
as unsigned, so -1 became 255/65535/4294967295), and UUID (type 16) is understood.
"""

from __future__ import annotations

import re
import struct
from decimal import Decimal
from typing import Any

import attrs

# Binary protocol type ids (TType); compact types are mapped onto them.
T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64 = 0, 2, 3, 4, 6, 8, 10
T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST, T_UUID = 11, 12, 13, 14, 15, 16
CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4

_CONTAINERS = frozenset({T_STRUCT, T_MAP, T_SET, T_LIST})
_LEAVES = frozenset({T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64, T_STRING, T_UUID})
_BIN_INT = {
    T_BYTE: struct.Struct(">b"),
    T_I16: struct.Struct(">h"),
    T_I32: struct.Struct(">i"),
    T_I64: struct.Struct(">q"),
}
_BIN_SIZE = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8, T_UUID: 16}
#: Compact protocol: elements of fixed size (a bool in a collection is one byte), and
#: integers written as varints.
_COMPACT_SIZE = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_UUID: 16}
_VARINT_TYPES = frozenset({T_I16, T_I32, T_I64})
_HIGH_BYTES = bytes(range(0x80, 0x100))
_LOW_BYTES = bytes(range(0x80))
_LONG_VARINT = re.compile(rb"[\x80-\xff]{10}")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")
_BE_DOUBLE = struct.Struct(">d")
_LE_DOUBLE = struct.Struct("<d")
_COMPACT_TYPES = {
    1: T_BOOL,
    2: T_BOOL,
    3: T_BYTE,
    4: T_I16,
    5: T_I32,
    6: T_I64,
    7: T_DOUBLE,
    8: T_STRING,
    9: T_LIST,
    10: T_SET,
    11: T_MAP,
    12: T_STRUCT,
    13: T_UUID,
}
#: Longest method name accepted (a longer one means this is not Thrift).
MAX_NAME = 64 * 1024
#: Largest message (and frame, string, collection payload) accepted: Apache Thrift's
#: default TConfiguration ``max_message_size``.
MAX_MESSAGE = 100 * 1024 * 1024
MAX_FRAME = MAX_MESSAGE
#: Characters of rendered values kept per message (beyond, containers render ``...``).
MAX_RENDERED = 1024 * 1024
#: Smallest encoding of one element, by type: binary protocol, compact protocol.
_MIN_BINARY = {
    T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8, T_STRING: 4,
    T_STRUCT: 1, T_MAP: 6, T_SET: 5, T_LIST: 5, T_UUID: 16,
}  # fmt: skip
_MIN_COMPACT = {**{t: 1 for t in _MIN_BINARY}, T_DOUBLE: 8, T_UUID: 16}
#: Smaller collections cannot exceed MAX_MESSAGE (an element takes at most 32 bytes).
_CHECKED_SIZE = MAX_MESSAGE // 32
_NO_KEY = object()


class ParseError(Exception):
    """The bytes are not a Thrift message. ``reason``: a counter name for the caps."""

    def __init__(self, detail: str, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class _Need(Exception):
    """Not enough bytes yet (internal)."""


@attrs.frozen
class Format:
    string_max_size: int = 200
    collection_max_size: int = 15
    obfuscate_strings: bool = False
    max_struct_fields: int = 500
    max_depth: int = 64


class ThriftMessage:
    __slots__ = ("fields", "framed", "method", "more_fields", "mtype", "notes", "seqid", "size", "ts")

    def __init__(self, ts: int, mtype: int, method: str, seqid: int) -> None:
        self.ts = ts
        self.mtype = mtype
        self.method = method
        self.seqid = seqid
        #: Top-level fields as (id, rendered value), at most collection_max_size of them.
        self.fields: list[tuple[int, str]] = []
        self.more_fields = False
        self.size = 0
        self.framed = False
        self.notes: list[str] = []

    @property
    def is_request(self) -> bool:
        return self.mtype == CALL or self.mtype == ONEWAY

    def __repr__(self) -> str:
        return f"ThriftMessage(type={self.mtype} {self.method}#{self.seqid} {self.fields} size={self.size})"


class _Frame:
    """An open container: struct, list, set or map."""

    __slots__ = (
        "count",
        "etype",
        "field_id",
        "field_type",
        "items",
        "key",
        "kind",
        "last_id",
        "more",
        "remaining",
        "render",
        "vtype",
    )

    def __init__(self, kind: int, render: bool) -> None:
        self.kind = kind
        self.render = render
        self.items: list[Any] = []
        self.count = 0
        self.more = False
        self.remaining = 0
        self.etype = 0  # list/set element type, map key type
        self.vtype = 0  # map value type
        self.key: Any = _NO_KEY
        self.field_id = 0
        self.field_type = -1  # -1: a field header comes next
        self.last_id = 0  # compact protocol field id deltas


def go_float(x: float) -> str:
    """Go's ``strconv.FormatFloat(x, 'f', -1, 64)``."""
    if x != x:
        return "NaN"
    if x == float("inf"):
        return "+Inf"
    if x == float("-inf"):
        return "-Inf"
    r = repr(x)
    if "e" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (printable runes kept, the rest escaped)."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            if o < 0x80:
                out.append(f"\\x{o:02x}")
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _uuid(b: bytes) -> str:
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _skip_varints(buf: bytes | bytearray, pos: int, n: int, limit: int) -> tuple[int, int]:
    """Skip the complete varints in ``buf[pos:n]`` in a few C passes (an unrendered
    compact list of integers). Returns (count, end); count 0: none complete yet; -1: more
    than ``limit`` are there (the caller walks them one by one)."""
    block = bytes(buf[pos:n])
    end = len(block.rstrip(_HIGH_BYTES))  # just past the last complete varint
    if not end:
        return 0, pos
    body = block[:end]
    count = end - len(body.translate(None, _LOW_BYTES))
    if count > limit:
        return -1, pos
    if _LONG_VARINT.search(body) is not None:
        raise ParseError("varint too long")
    return count, pos + end


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def detect(buf: bytes | bytearray, default_framed: bool) -> tuple[bool, bool] | None:
    """(framed, compact) from a stream's first bytes; None if more bytes are needed."""
    n = len(buf)
    if n < 2:
        return None
    b0, b1 = buf[0], buf[1]
    if b0 == 0x80 and b1 == 0x01:
        return False, False
    if b0 == 0x82 and b1 & 0x1F == 1:
        return False, True
    if n < 6:
        return None
    b4, b5 = buf[4], buf[5]
    if b4 == 0x80 and b5 == 0x01:
        return True, False
    if b4 == 0x82 and b5 & 0x1F == 1:
        return True, True
    return default_framed, False


class ThriftParser:
    """Parser state for one direction."""

    __slots__ = (
        "base",
        "carried",
        "compact",
        "default_framed",
        "errors",
        "fmt",
        "frame_end",
        "frame_len",
        "framed",
        "last_error",
        "msg",
        "msg_start_abs",
        "msg_ts",
        "reasons",
        "render_replies",
        "rendered",
        "rest",
        "resume_pos",
        "skip",
        "stack",
    )

    def __init__(self, fmt: Format, default_framed: bool = False, render_replies: bool = True) -> None:
        self.fmt = fmt
        self.default_framed = default_framed
        self.render_replies = render_replies
        self.framed: bool | None = None
        self.compact = False
        self.rest = bytearray()
        self.base = 0  # absolute stream offset of the buffer's first byte
        self.skip = 0  # bytes to skip before parsing goes on (string tails, frame tails)
        self.stack: list[_Frame] = []
        self.msg: ThriftMessage | None = None
        self.msg_ts = -1
        self.msg_start_abs = 0
        self.frame_len = -1
        self.frame_end = -1  # absolute offset where the current frame ends
        self.resume_pos = 0
        self.carried = 0
        self.errors = 0
        self.last_error = ""
        #: Reasons of dropped or cut messages since the handler last took them.
        self.reasons: list[str] = []
        #: Characters rendered for the current message (negative: budget spent, noted).
        self.rendered = 0

    @property
    def in_message(self) -> bool:
        return self.msg_ts >= 0

    @property
    def in_body(self) -> bool:
        return self.msg is not None

    def reset_message(self) -> None:
        self.stack = []
        self.msg = None
        self.msg_ts = -1
        self.frame_len = -1
        self.frame_end = -1
        self.rendered = 0

    def take_partial(self) -> ThriftMessage | None:
        """The message being read (its header was complete), dropping the parse state."""
        msg = self.msg
        self.reset_message()
        self.rest = bytearray()
        self.skip = 0
        return msg

    # -- feeding -------------------------------------------------------------------------

    def feed(self, data: bytes, ts: int) -> list[ThriftMessage]:
        out: list[ThriftMessage] = []
        rest = self.rest
        if rest:
            rest += data
            buf: bytes | bytearray = rest
        else:
            buf = data
        n = len(buf)
        pos = 0
        for _ in range(n + 1):  # every round consumes bytes or stops
            try:
                pos = self._parse(buf, pos, ts, out)
                break
            except _Error as err:
                self.errors += 1
                self.last_error = err.reason
                if err.slug:
                    self.reasons.append(err.slug)
                end = self.frame_end
                self.reset_message()
                self.skip = 0
                rel = end - self.base
                if end >= 0 and rel > err.pos:
                    # Framed: the frame length says where the next message starts.
                    if rel > n:
                        self.skip = rel - n
                        pos = n
                    else:
                        pos = rel
                else:
                    # Drop what is buffered and retry with the next segment (Packetbeat),
                    # detecting the transport afresh.
                    pos = n
                    self.framed = None
        self.base += pos
        if pos < n:
            if buf is rest:
                del rest[:pos]
            else:
                self.rest = bytearray(buf[pos:])
        elif rest:
            self.rest = bytearray()
        return out

    def _parse(self, buf: bytes | bytearray, pos: int, ts: int, out: list[ThriftMessage]) -> int:
        n = len(buf)
        while True:
            if self.skip:
                k = min(self.skip, n - pos)
                pos += k
                self.skip -= k
                if self.skip:
                    return pos
            if pos >= n:
                return pos
            if self.msg is None:
                if self.msg_ts < 0:
                    self.msg_ts = ts
                    self.msg_start_abs = self.base + pos
                try:
                    pos = self._header(buf, pos, n)
                except _Need:
                    return pos
                except ParseError as exc:
                    raise _Error(str(exc), pos, exc.reason) from None
                msg = self.msg
                assert msg is not None
                render = msg.is_request or self.render_replies
                self.stack = [_Frame(T_STRUCT, render)]
            limit = n
            if self.frame_end >= 0:
                limit = min(n, self.frame_end - self.base)
            try:
                pos = self._body(buf, pos, limit)
            except ParseError as exc:
                raise _Error(str(exc), self.resume_pos, exc.reason) from None
            if self.stack:
                if limit < n and not self.skip:
                    raise _Error("message overruns its frame", pos)
                if self.frame_end < 0 and self.base + pos - self.msg_start_abs > MAX_MESSAGE:
                    raise _Error("message larger than 100 MiB", pos, "message_too_large")
                return pos  # waiting for more bytes
            pos = self._complete(pos, out)

    def _complete(self, pos: int, out: list[ThriftMessage]) -> int:
        msg = self.msg
        assert msg is not None
        consumed = self.base + pos - self.msg_start_abs
        if self.framed:
            body = consumed - 4
            if body > self.frame_len:
                raise _Error("message overruns its frame", pos)
            msg.size = self.frame_len
            msg.framed = True
            if body < self.frame_len:
                self.skip = self.frame_len - body
        else:
            msg.size = consumed
        out.append(msg)
        self.reset_message()
        return pos

    # -- message header ------------------------------------------------------------------

    def _header(self, buf: bytes | bytearray, pos: int, n: int) -> int:
        if self.framed is None:
            found = detect(buf[pos : pos + 6], self.default_framed)
            if found is None:
                raise _Need
            self.framed, self.compact = found
        p = pos
        if self.framed:
            if p + 4 > n:
                raise _Need
            flen = _I32.unpack_from(buf, p)[0]
            if flen <= 0:
                raise ParseError(f"bad frame length {flen}")
            if flen > MAX_FRAME:
                raise ParseError(f"frame length {flen} beyond 100 MiB", "frame_too_large")
            p += 4
            self.frame_len = flen
            self.frame_end = self.base + pos + 4 + flen
            if p + flen <= n:
                # The whole frame is here: the header must fit in it.
                try:
                    return self._message_begin(buf, p, p + flen)
                except _Need:
                    raise ParseError("message header overruns its frame") from None
        return self._message_begin(buf, p, n)

    def _message_begin(self, buf: bytes | bytearray, p: int, n: int) -> int:
        if self.compact:
            if p + 2 > n:
                raise _Need
            if buf[p] != 0x82 or buf[p + 1] & 0x1F != 1:
                raise ParseError("bad compact protocol header")
            mtype = buf[p + 1] >> 5
            seqid, p = self._varint(buf, p + 2, n)
            length, p = self._varint(buf, p, n)
            if length > MAX_NAME:
                raise ParseError("method name too long")
            if p + length > n:
                raise _Need
            name = bytes(buf[p : p + length])
            p += length
        else:
            if p + 4 > n:
                raise _Need
            word = _U32.unpack_from(buf, p)[0]
            if word & 0x80000000:
                if word & 0xFFFF0000 != 0x80010000:
                    raise ParseError(f"bad binary protocol version {word:#x}")
                mtype = word & 0xFF
                if p + 8 > n:
                    raise _Need
                length = _I32.unpack_from(buf, p + 4)[0]
                if length < 0 or length > MAX_NAME:
                    raise ParseError("bad method name length")
                p += 8
                if p + length + 4 > n:
                    raise _Need
                name = bytes(buf[p : p + length])
                p += length
                seqid = _I32.unpack_from(buf, p)[0]
                p += 4
            else:
                length = word
                if length > MAX_NAME:
                    raise ParseError("bad method name length")
                p += 4
                if p + length + 5 > n:
                    raise _Need
                name = bytes(buf[p : p + length])
                p += length
                mtype = buf[p]
                seqid = _I32.unpack_from(buf, p + 1)[0]
                p += 5
        if not CALL <= mtype <= ONEWAY:
            raise ParseError(f"bad message type {mtype}")
        smax = self.fmt.string_max_size
        method = name[:smax].decode("utf-8", "replace") + ("..." if len(name) > smax else "")
        self.msg = ThriftMessage(self.msg_ts, mtype, method, seqid)
        return p

    @staticmethod
    def _varint(buf: bytes | bytearray, p: int, n: int) -> tuple[int, int]:
        result = 0
        shift = 0
        for _ in range(10):
            if p >= n:
                raise _Need
            b = buf[p]
            p += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, p
            shift += 7
        raise ParseError("varint too long")

    # -- values ----------------------------------------------------------------------------

    def _body(self, buf: bytes | bytearray, pos: int, n: int) -> int:
        """Advance through the message body; raises _Need with progress kept in the stack."""
        stack = self.stack
        cmax = self.fmt.collection_max_size
        compact = self.compact
        try:
            return self._walk(buf, pos, n, stack, cmax, compact)
        except _Need:
            return self.resume_pos

    def _walk(
        self, buf: bytes | bytearray, pos: int, n: int, stack: list[_Frame], cmax: int, compact: bool
    ) -> int:
        while stack:
            if self.skip:
                k = min(self.skip, n - pos)
                pos += k
                self.skip -= k
                if self.skip:
                    return pos
            self.resume_pos = pos
            f = stack[-1]
            kind = f.kind
            if kind == T_STRUCT:
                if f.field_type < 0:
                    if pos >= n:
                        raise _Need
                    b = buf[pos]
                    if compact:
                        ctype = b & 0x0F
                        if ctype == 0:
                            pos += 1
                            stack.pop()
                            self._deliver(self._render(f))
                            continue
                        t = _COMPACT_TYPES.get(ctype)
                        if t is None:
                            raise ParseError(f"unknown compact type {ctype}")
                        delta = b >> 4
                        if delta:
                            fid = f.last_id + delta
                            p = pos + 1
                        else:
                            raw, p = self._varint(buf, pos + 1, n)
                            fid = _zigzag(raw)
                        if fid < -32768 or fid > 32767:
                            raise ParseError("field id out of range")
                        f.last_id = fid
                        f.field_id = fid
                        pos = self.resume_pos = p  # the header is consumed: commit it
                        if t == T_BOOL:
                            # The field header carries a compact bool's value.
                            f.field_type = T_BOOL
                            self._deliver("true" if ctype == 1 else "false")
                            continue
                        f.field_type = t
                    else:
                        if b == T_STOP:
                            pos += 1
                            stack.pop()
                            self._deliver(self._render(f))
                            continue
                        if pos + 3 > n:
                            raise _Need
                        f.field_id = _I16.unpack_from(buf, pos + 1)[0]
                        if b not in _LEAVES and b not in _CONTAINERS:
                            raise ParseError(f"unknown field type {b}")
                        f.field_type = b
                        pos += 3
                        self.resume_pos = pos  # the header is consumed: commit it
                t = f.field_type
                render = f.render and len(f.items) < cmax
            elif kind == T_MAP:
                if not f.remaining:
                    stack.pop()
                    self._deliver(self._render(f))
                    continue
                t = f.etype if f.key is _NO_KEY else f.vtype
                render = f.render and f.count < cmax
            else:
                if not f.remaining:
                    stack.pop()
                    self._deliver(self._render(f))
                    continue
                t = f.etype
                render = f.render and f.count < cmax
                if not render:
                    if compact:
                        size = _COMPACT_SIZE.get(t)
                        if size is None and t in _VARINT_TYPES:
                            k, end = _skip_varints(buf, pos, n, f.remaining)
                            if k > 0:
                                pos = end
                                f.remaining -= k
                                if f.count <= cmax:
                                    f.more = f.more or f.count + k > cmax
                                f.count += k
                                continue
                            if k == 0:
                                raise _Need
                    else:
                        size = _BIN_SIZE.get(t)
                    if size is not None:
                        k = min(f.remaining, (n - pos) // size)
                        if k:
                            pos += k * size
                            f.remaining -= k
                            if f.count <= cmax:
                                f.more = f.more or f.count + k > cmax
                            f.count += k
                            continue
                        raise _Need
            if t in _CONTAINERS:
                pos = self._open(buf, pos, n, t, render)
            else:
                value, pos = self._leaf(buf, pos, n, t, render)
                self._deliver(value)
        return pos

    def _open(self, buf: bytes | bytearray, pos: int, n: int, t: int, render: bool) -> int:
        stack = self.stack
        if len(stack) >= self.fmt.max_depth:
            raise ParseError("nesting too deep", "nesting_too_deep")
        f = _Frame(t, render)
        if t == T_STRUCT:
            stack.append(f)
            return pos
        if self.compact:
            if t == T_MAP:
                size, p = self._varint(buf, pos, n)
                if size:
                    if p >= n:
                        raise _Need
                    kv = buf[p]
                    p += 1
                    kt, vt = _COMPACT_TYPES.get(kv >> 4), _COMPACT_TYPES.get(kv & 0x0F)
                    if kt is None or vt is None:
                        raise ParseError("unknown map element type")
                    f.etype, f.vtype = kt, vt
            else:
                if pos >= n:
                    raise _Need
                b = buf[pos]
                size = b >> 4
                p = pos + 1
                if size == 15:
                    size, p = self._varint(buf, p, n)
                et = _COMPACT_TYPES.get(b & 0x0F)
                if et is None:
                    raise ParseError("unknown list element type")
                f.etype = et
        elif t == T_MAP:
            if pos + 6 > n:
                raise _Need
            f.etype, f.vtype = buf[pos], buf[pos + 1]
            size = _I32.unpack_from(buf, pos + 2)[0]
            p = pos + 6
            for et in (f.etype, f.vtype):
                if et not in _LEAVES and et not in _CONTAINERS:
                    raise ParseError(f"unknown map element type {et}")
        else:
            if pos + 5 > n:
                raise _Need
            f.etype = buf[pos]
            size = _I32.unpack_from(buf, pos + 1)[0]
            p = pos + 5
            if f.etype not in _LEAVES and f.etype not in _CONTAINERS:
                raise ParseError(f"unknown element type {f.etype}")
        if size < 0 or size > 0x7FFFFFFF:
            raise ParseError("bad collection size")
        if size > _CHECKED_SIZE:
            mins = _MIN_COMPACT if self.compact else _MIN_BINARY
            each = mins[f.etype] + mins[f.vtype] if t == T_MAP else mins[f.etype]
            if size * each > MAX_MESSAGE:
                raise ParseError(f"collection of {size} beyond 100 MiB", "collection_too_large")
        f.remaining = size * 2 if t == T_MAP else size
        stack.append(f)
        return p

    def _leaf(self, buf: bytes | bytearray, pos: int, n: int, t: int, render: bool) -> tuple[str, int]:
        if t == T_STRING:
            if self.compact:
                length, p = self._varint(buf, pos, n)
                if length > 0x7FFFFFFF:
                    raise ParseError("bad string length")
            else:
                if pos + 4 > n:
                    raise _Need
                length = _I32.unpack_from(buf, pos)[0]
                if length < 0:
                    raise ParseError("negative string length")
                p = pos + 4
            if self.frame_end >= 0 and self.base + p + length > self.frame_end:
                raise ParseError("string overruns its frame")
            if length > MAX_MESSAGE:
                raise ParseError(f"string of {length} bytes beyond 100 MiB", "string_too_large")
            if not render:
                self.skip = length
                return "", p
            smax = self.fmt.string_max_size
            keep = min(length, smax)
            if p + keep > n:
                raise _Need
            raw = bytes(buf[p : p + keep])
            self.skip = length - keep
            if length > smax:
                raw += b"..."
            return self._string(raw), p + keep
        if self.compact:
            if t in (T_I32, T_I64, T_I16):
                zz, p = self._varint(buf, pos, n)
                return (str(_zigzag(zz)) if render else ""), p
            if t == T_DOUBLE:
                if pos + 8 > n:
                    raise _Need
                return (go_float(_LE_DOUBLE.unpack_from(buf, pos)[0]) if render else ""), pos + 8
            if t == T_BOOL:
                if pos >= n:
                    raise _Need
                return ("true" if buf[pos] == 1 else "false"), pos + 1
        else:
            st = _BIN_INT.get(t)
            if st is not None:
                end = pos + st.size
                if end > n:
                    raise _Need
                return (str(st.unpack_from(buf, pos)[0]) if render else ""), end
            if t == T_DOUBLE:
                if pos + 8 > n:
                    raise _Need
                return (go_float(_BE_DOUBLE.unpack_from(buf, pos)[0]) if render else ""), pos + 8
            if t == T_BOOL:
                if pos >= n:
                    raise _Need
                return ("false" if buf[pos] == 0 else "true"), pos + 1
        if t == T_BYTE:
            if pos >= n:
                raise _Need
            b = buf[pos]
            return str(b - 256 if b > 127 else b), pos + 1
        if t == T_UUID:
            if pos + 16 > n:
                raise _Need
            return (_uuid(bytes(buf[pos : pos + 16])) if render else ""), pos + 16
        raise ParseError(f"unknown type {t}")

    def _string(self, raw: bytes) -> str:
        if not raw:
            return '""'
        if self.fmt.obfuscate_strings:
            return '"*"'
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
        return go_quote(s)

    def _deliver(self, value: str) -> None:
        stack = self.stack
        if not stack:
            return
        f = stack[-1]
        kind = f.kind
        cmax = self.fmt.collection_max_size
        if kind == T_STRUCT:
            f.count += 1
            if f.count > self.fmt.max_struct_fields:
                raise ParseError("too many fields in struct", "too_many_fields")
            if f.render:
                if len(f.items) < cmax:
                    f.items.append((f.field_id, value))
                else:
                    f.more = True
            f.field_type = -1
        elif kind == T_MAP:
            if f.key is _NO_KEY:
                f.key = value
            else:
                if f.render:
                    if f.count < cmax:
                        f.items.append(f"{f.key}: {value}")
                    elif f.count == cmax:
                        f.more = True
                f.count += 1
                f.key = _NO_KEY
            f.remaining -= 1
        else:
            if f.render:
                if f.count < cmax:
                    f.items.append(value)
                elif f.count == cmax:
                    f.more = True
            f.count += 1
            f.remaining -= 1

    def _render(self, f: _Frame) -> str:
        if not self.stack:
            # The message body itself: its fields go to the message.
            msg = self.msg
            assert msg is not None
            msg.fields = f.items
            msg.more_fields = f.more
            return ""
        if not f.render:
            return ""
        items = f.items
        kind = f.kind
        if kind == T_STRUCT:
            parts = [f"{fid}: {v}" for fid, v in items]
            if f.more:
                parts.append("...")
            text = "(" + ", ".join(parts) + ")"
        else:
            if f.more:
                items = [*items, "..."]
            body = ", ".join(items)
            if kind == T_MAP:
                text = "{" + body + "}"
            elif not body:
                return ""
            elif kind == T_SET:
                text = "{" + body + "}"
            else:
                text = "[" + body + "]"
        # The message's rendering budget (negative once spent).
        rendered = self.rendered + len(text)
        if self.rendered >= 0 and rendered <= MAX_RENDERED:
            self.rendered = rendered
            return text
        if self.rendered >= 0:
            self.rendered = -1
            self.reasons.append("render_truncated")
        return "..."


class _Error(Exception):
    def __init__(self, reason: str, pos: int, slug: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos
        self.slug = slug


def format_struct(fields: list[tuple[int, str]], more: bool, names: dict[int, str] | None) -> str:
    """Packetbeat's ``formatStruct``: ``(name: value, ...)`` with ids where no name is known."""
    if names:
        parts = [f"{names.get(fid, fid)}: {v}" for fid, v in fields]
    else:
        parts = [f"{fid}: {v}" for fid, v in fields]
    if more:
        parts.append("...")
    return "(" + ", ".join(parts) + ")"
