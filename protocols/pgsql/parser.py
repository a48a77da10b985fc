"""PostgreSQL frontend/backend protocol 3.0: message framing and message decoders.

Every message but the first ones of a connection is a type byte and a 4-byte big-endian
length that counts itself. The very first client messages (StartupMessage, SSLRequest,
GSSENCRequest, CancelRequest) have no type byte; the server answers SSLRequest and
GSSENCRequest with a single unframed byte. Decoders raise ``ParseError`` (or let
``IndexError``/``struct.error`` escape, which callers treat the same).
"""

from __future__ import annotations

import re
import struct

from protocols.common.framing import FramedStream

#: Codes of the untyped startup-phase messages (PostgreSQL docs, "Message Formats").
CODE_PROTOCOL_3 = 196608
CODE_CANCEL = 80877102
CODE_SSL = 80877103
CODE_GSSENC = 80877104
STARTUP, SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = range(4)
#: Pseudo type of an untyped startup message and of the one-byte SSL/GSS answer.
UNTYPED = 0
SSL_ANSWER = -1

FRONTEND_TYPES = frozenset(b"QPBDESCHFXdcfp")
BACKEND_TYPES = frozenset(b"RKSZTDCEIN123ntsGHWdcVAv")

_I32 = struct.Struct(">i")
#: A dollar-quote delimiter as PostgreSQL's lexer reads it (scan.l ``dolqdelim``): ASCII
#: letters, ``_`` and every non-ASCII character may start the tag, ASCII digits continue it.
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_H = struct.Struct(">H")
_HH = struct.Struct(">HH")


class ParseError(ValueError):
    """Bytes that are not a PostgreSQL message where one should start."""


class MessageStream(FramedStream):
    """Cuts one direction into messages. Bounded: a message longer than ``max_message``
    is delivered as its first ``prefix`` bytes and the rest is skipped unbuffered."""

    __slots__ = ("expect_answer", "max_message", "startup", "valid")

    def __init__(
        self, valid: frozenset[int], startup: bool, max_message: int = 4 << 20, prefix: int = 64 << 10
    ) -> None:
        super().__init__(prefix)
        self.valid = valid
        self.startup = startup
        self.expect_answer = False
        self.max_message = max_message

    def feed(self, data: bytes) -> list[tuple[int, bytes, int]]:
        """(type, body without type and length, wire size) of every complete message.

        Raises ``ParseError`` on a bad type or length; the messages before it are lost
        with the buffer, which the caller clears.
        """
        out: list[tuple[int, bytes, int]] = []
        joined = self._take(data)
        if joined is None:
            return out
        data = joined
        pos = 0
        end = len(data)
        valid = self.valid
        while pos < end:
            if self.expect_answer:
                self.expect_answer = False
                out.append((SSL_ANSWER, data[pos : pos + 1], 1))
                pos += 1
                continue
            avail = end - pos
            if self.startup:
                if avail < 8:
                    self.need = 8
                    break
                n = _I32.unpack_from(data, pos)[0]
                code = _I32.unpack_from(data, pos + 4)[0]
                if code in (CODE_SSL, CODE_GSSENC, CODE_CANCEL) or code >> 16 == 3:
                    if n < 8 or n > 65536:
                        raise ParseError(f"bad startup message length {n}")
                    if avail < n:
                        self.need = n
                        break
                    out.append((UNTYPED, data[pos : pos + n], n))
                    pos += n
                    if code >> 16 == 3 or code == CODE_CANCEL:
                        self.startup = False
                    continue
                self.startup = False  # a typed message: the startup phase was not captured
            if avail < 5:
                self.need = 5
                break
            typ = data[pos]
            n = _I32.unpack_from(data, pos + 1)[0]
            if typ not in valid:
                raise ParseError(f"unknown message type 0x{typ:02x}")
            if n < 4:
                raise ParseError(f"bad message length {n}")
            size = n + 1
            if n > self.max_message:
                # Oversized: keep the first ``prefix`` bytes, however the bytes arrive.
                if avail < 5 + self.prefix:
                    self.need = 5 + self.prefix
                    break
                start = pos + 5 + self.prefix
                out.append((typ, data[pos + 5 : start], size))
                self.oversized += 1
                rest = size - 5 - self.prefix
                if end - start >= rest:
                    pos = start + rest
                    continue
                self.skip = rest - (end - start)
                pos = end
                break
            if avail >= size:
                out.append((typ, data[pos + 5 : pos + size], size))
                pos += size
                continue
            self.need = size
            break
        self._keep(data, pos, 0)
        return out


def cstring(b: bytes, off: int) -> tuple[str, int]:
    """A NUL-terminated string at ``off``: (text, offset after the NUL)."""
    nul = b.find(b"\0", off)
    if nul < 0:
        raise ParseError("unterminated string")
    return b[off:nul].decode("utf-8", "replace"), nul + 1


def startup_kind(msg: bytes) -> int:
    code = _I32.unpack_from(msg, 4)[0]
    if code == CODE_SSL:
        return SSL_REQUEST
    if code == CODE_GSSENC:
        return GSSENC_REQUEST
    if code == CODE_CANCEL:
        return CANCEL_REQUEST
    return STARTUP


def parse_row_description(body: bytes) -> tuple[list[str], list[int]]:
    """RowDescription: (column names, format codes)."""
    n = _H.unpack_from(body, 0)[0]
    off = 2
    names = []
    formats = []
    for _ in range(n):
        name, off = cstring(body, off)
        off += 16  # table oid, column number, type oid, type size, type modifier
        fmt = _H.unpack_from(body, off)[0]
        off += 2
        names.append(name)
        formats.append(fmt)
    return names, formats


def data_row(body: bytes, formats: list[int], limit: int) -> list[str]:
    """DataRow values as Packetbeat keeps them: text-format values, NULL and binary-format
    values as empty strings, the row cut at ``limit`` characters."""
    n = _H.unpack_from(body, 0)[0]
    off = 2
    values: list[str] = []
    used = 0
    nfmt = len(formats)
    for i in range(n):
        length = _I32.unpack_from(body, off)[0]
        off += 4
        value = ""
        if length > 0:
            end = off + length
            if end > len(body):
                raw = body[off:]  # a truncated (oversized) row
                end = len(body)
            else:
                raw = body[off:end]
            if (formats[i] if i < nfmt else 0) == 0:
                value = raw.decode("utf-8", "replace")
            off = end
        if used < limit:
            if used + len(value) > limit:
                value = value[: limit - used]
            values.append(value)
            used += len(value)
        if off >= len(body) and i + 1 < n:
            break
    return values


def parse_error_fields(body: bytes) -> dict[str, str]:
    """ErrorResponse/NoticeResponse: field code letter → value."""
    out: dict[str, str] = {}
    off = 0
    end = len(body)
    while off < end and body[off] != 0:
        code = chr(body[off])
        value, off = cstring(body, off + 1)
        out[code] = value
    return out


def parse_parse(body: bytes) -> tuple[str, str]:
    """Parse: (statement name, query)."""
    name, off = cstring(body, 0)
    query, _ = cstring(body, off)
    return name, query


def parse_bind(body: bytes) -> tuple[str, str]:
    """Bind: (portal name, statement name)."""
    portal, off = cstring(body, 0)
    stmt, _ = cstring(body, off)
    return portal, stmt


def split_statements(query: str) -> list[str]:
    """The statements of a simple Query, as PostgreSQL sees them.

    Packetbeat splits on every ``;``; this splitter also respects quoted strings,
    quoted identifiers, dollar-quoted bodies and comments, and drops statements that
    are only whitespace or comments (the server does not answer those).
    """
    if ";" not in query:
        s = query.strip()
        return [s] if s and not _only_comments(s) else []
    if not any(c in query for c in "'\"$-/"):
        return [s for s in (part.strip() for part in query.split(";")) if s]
    out = []
    start = 0
    i = 0
    n = len(query)
    while i < n:
        c = query[i]
        if c == "'" or c == '"':
            j = query.find(c, i + 1)
            while j != -1 and j + 1 < n and query[j + 1] == c:
                j = query.find(c, j + 2)
            i = n if j == -1 else j + 1
        elif c == "-" and query.startswith("--", i):
            j = query.find("\n", i)
            i = n if j == -1 else j + 1
        elif c == "/" and query.startswith("/*", i):
            j = query.find("*/", i + 2)
            i = n if j == -1 else j + 2
        elif c == "$":
            j = query.find("$", i + 1)
            tag = query[i : j + 1] if j != -1 else ""
            if tag and _DOLLAR_TAG.fullmatch(tag):
                k = query.find(tag, j + 1)
                i = n if k == -1 else k + len(tag)
            else:
                i += 1
        elif c == ";":
            s = query[start:i].strip()
            if s and not _only_comments(s):
                out.append(s)
            start = i + 1
            i += 1
        else:
            i += 1
    s = query[start:].strip()
    if s and not _only_comments(s):
        out.append(s)
    return out


def _only_comments(s: str) -> bool:
    if "--" not in s and "/*" not in s:
        return False
    i = 0
    n = len(s)
    while i < n:
        if s[i].isspace():
            i += 1
        elif s.startswith("--", i):
            j = s.find("\n", i)
            i = n if j == -1 else j + 1
        elif s.startswith("/*", i):
            j = s.find("*/", i + 2)
            i = n if j == -1 else j + 2
        else:
            return False
    return True
