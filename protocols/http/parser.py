"""Sans-IO HTTP/1.x message parser for one direction of a connection.

Feed bytes, get back finished ``Message`` objects; a stream that is not HTTP raises
``ParseError`` (the handler counts it and resynchronises on the next segment). Bodies
are consumed as they arrive and only kept when an event needs them (``include_body_for``
or a urlencoded form), and never beyond ``max_message_size``: a 1 GB download costs
constant memory.

Linear time on any input: a header block, trailer or chunk-size line that arrives in
many segments is searched from where the previous search stopped, never from its start.
Caps (each overflow drops the message with a reason the handler counts as
``http.<reason>``): the header block and a trailer line at ``max_message_size``
(Packetbeat's option), the start line at 8 KiB, ``MAX_HEADERS`` lines per header block,
``MAX_ENCODINGS`` content/transfer codings per message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol

import attrs

from protocols.common.digits import ascii_hex, is_ascii_digits, leading_uint

START: Final = 0
HEADERS: Final = 1
BODY: Final = 2
BODY_TO_CLOSE: Final = 3
CHUNK_SIZE: Final = 4
CHUNK_DATA: Final = 5
CHUNK_CRLF: Final = 6
TRAILERS: Final = 7
UPGRADED: Final = 8

#: Request methods that are plausible enough to start a message on (resync guard).
_TOKEN_CHARS: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


#: Headers the decoder reads whatever ``send_headers`` says.
_NEEDED_HEADERS = (
    "content-length",
    "content-type",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "host",
    "referer",
    "user-agent",
    "authorization",
)


@functools.lru_cache(maxsize=64)
def _needed_regex(real_ip_header: str) -> re.Pattern[bytes]:
    names = [*_NEEDED_HEADERS, *([real_ip_header] if real_ip_header else [])]
    alternatives = b"|".join(re.escape(n.encode()) for n in dict.fromkeys(names))
    return re.compile(rb"\n(" + alternatives + rb"):([^\n]*)", re.IGNORECASE)


#: After lost sync, a segment is parsed only if it opens like a message: a request line
#: (an upper-case method, a space, a target) or a status line.
_START_LINE: Final = re.compile(rb"[\r\n]*(?:[A-Z][A-Z_-]{1,19} [^\s]|HTTP/\d)")


#: Header block (start line excluded) → the fields the decoder took from it.
_FIELDS_CACHE: Final[dict[tuple[bytes, str], tuple[Any, ...]]] = {}
_FIELDS_CACHE_MAX: Final = 4096

#: Headers whose value is kept as is in a Message attribute.
_PLAIN_FIELDS: Final = {
    "content-type": "content_type",
    "host": "host",
    "referer": "referer",
    "user-agent": "user_agent",
    "authorization": "authorization",
}


#: Longest start line accepted (request target included).
MAX_START_LINE: Final = 8192
#: Longest chunk-size line (extensions included).
MAX_CHUNK_LINE: Final = 1024
#: Header lines per header block: beyond it the message is dropped (``too_many_headers``).
#: No real peer comes near it (Apache refuses more than 100 request fields, Node.js keeps
#: 2000); it bounds the per-header objects a 10 MB block could otherwise make.
MAX_HEADERS: Final = 10_000
_HEADER_BLOCK_CHECK: Final = 2 * MAX_HEADERS
#: Content and transfer codings kept per message; past it the chain ends in ``...``,
#: which the body decoder refuses (a 10,000-layer gzip chain is not decoded).
MAX_ENCODINGS: Final = 16
#: Header blocks up to this size are remembered in the fields cache.
_CACHE_BLOCK_MAX: Final = 4096

_CRLFS: Final = re.compile(rb"[\r\n]*")


class ParseError(Exception):
    """The bytes are not an HTTP message. ``reason``: a counter name for the caps."""

    def __init__(self, detail: str, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


@attrs.frozen
class ParserConfig:
    send_headers: frozenset[str] = frozenset()
    send_all_headers: bool = False
    real_ip_header: str = ""
    include_request_body_for: tuple[str, ...] = ()
    include_response_body_for: tuple[str, ...] = ()
    max_message_size: int = 10 * 1024 * 1024
    #: Keep each message's header block (``raw_headers``): events with ``send_request`` /
    #: ``send_response`` need it; otherwise a message waiting for its pair holds less.
    keep_raw_requests: bool = True
    keep_raw_responses: bool = True


#: Shared by every message without collected headers (a dict per message is ~200 bytes
#: on each pending request); read-only, so a stray write fails loudly.
_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})
#: Request methods kept as one shared string each (a pending request holds its method).
_METHODS: Final = {
    m: m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PROPFIND")
}


class Message:
    """One request or response.

    ``headers``, ``encodings`` and ``notes`` are shared empty values until something is
    put in them: assign a new container rather than mutating them in place.
    """

    __slots__ = (
        "authorization",
        "body",
        "chunked",
        "connection",
        "content_length",
        "content_type",
        "direction",
        "encodings",
        "end_ts",
        "has_content_length",
        "headers",
        "host",
        "is_request",
        "method",
        "notes",
        "raw_headers",
        "real_ip",
        "referer",
        "save_body",
        "send_body",
        "size",
        "status_code",
        "status_phrase",
        "ts",
        "uri",
        "user_agent",
        "version",
    )

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.end_ts = ts
        self.is_request = False
        self.method = ""
        self.uri = ""
        self.version = (1, 1)
        self.status_code = 0
        self.status_phrase = ""
        self.headers: Mapping[str, str] = _NO_HEADERS
        self.content_length = 0
        self.has_content_length = False
        self.content_type = ""
        self.connection = ""
        self.host = ""
        self.referer = ""
        self.user_agent = ""
        self.real_ip = ""
        self.authorization = ""
        self.encodings: Sequence[str] = ()
        self.chunked = False
        self.raw_headers = b""
        self.size = 0
        self.body: bytearray | None = None
        self.send_body = False
        self.save_body = False
        self.notes: Sequence[str] = ()
        #: Set by the handler: the direction the message travelled in.
        self.direction = 0

    @property
    def version_str(self) -> str:
        v = _VERSION_STR.get(self.version)
        return v if v is not None else f"{self.version[0]}.{self.version[1]}"

    def add_note(self, note: str) -> None:
        self.notes = [*self.notes, note]

    def reads_to_close(self) -> bool:
        """No length given: the body runs to the end of the connection."""
        return not self.has_content_length and (
            self.connection == "close" or (self.version == (1, 0) and self.connection != "keep-alive")
        )


_VERSIONS: Final = {"1.1": (1, 1), "1.0": (1, 0)}
_VERSION_STR: Final = {(1, 1): "1.1", (1, 0): "1.0"}


def _parse_version(s: str) -> tuple[int, int]:
    v = _VERSIONS.get(s)
    if v is not None:
        return v
    # Packetbeat: "x.y" with x <= 1 and y <= 2, anything else is treated as 1.0.
    if len(s) >= 3 and "0" <= s[0] <= "9" and "0" <= s[2] <= "9":
        major, minor = ord(s[0]) - 48, ord(s[2]) - 48
        if major <= 1 and minor <= 2:
            return major, minor
    return 1, 0


def _csv_lower(value: str) -> list[str]:
    # At most MAX_ENCODINGS + 1 items, whatever the value holds.
    return [v.strip(" ").lower() for v in value.split(",", MAX_ENCODINGS)]


def _add_encodings(msg: Message, encs: list[str], front: bool) -> None:
    encs = [e for e in encs if e and e != "identity"]
    if not encs:
        return
    have = list(msg.encodings)
    chain = encs + have if front else have + encs
    msg.encodings = chain if len(chain) <= MAX_ENCODINGS else [*chain[: MAX_ENCODINGS - 1], "..."]


class PendingRequests(Protocol):
    """The requests of a connection waiting for a response, as a parser sees them."""

    def request_method(self, i: int) -> str | None:
        """The method of the ``i``-th (from the oldest), None if fewer are waiting."""


#: ``StreamParser._done`` between feeds (it only lives while a feed runs).
_NO_DONE: Final[tuple[Message, ...]] = ()


class StreamParser:
    """Parser state for one direction."""

    __slots__ = (
        "_answered",
        "_counted",
        "_done",
        "buf",
        "cfg",
        "errors",
        "incomplete",
        "last_error",
        "last_reason",
        "msg",
        "need_more",
        "needed",
        "remaining",
        "requests",
        "resync",
        "scan",
        "state",
    )

    def __init__(self, cfg: ParserConfig, requests: PendingRequests | None = None) -> None:
        self.cfg = cfg
        #: Bytes of a message not complete yet (a bytearray once it holds any).
        self.buf: bytes | bytearray = b""
        self.state = START
        self.msg: Message | None = None
        self.remaining = 0
        self.need_more = False
        self.errors = 0
        self.incomplete = 0
        self.last_error = ""
        self.last_reason = ""
        #: Bytes after the current position already searched in vain for the end of the
        #: header block / the line being read (the search resumes there).
        self.scan = 0
        self._done: Sequence[Message] = _NO_DONE
        #: Of ``_done``: how many were looked at, how many are final responses.
        self._counted = 0
        self._answered = 0
        self.needed = _needed_regex(cfg.real_ip_header)
        #: The connection's requests still waiting for a response: a response to HEAD (or
        #: a 2xx to CONNECT) has no body whatever its headers say.
        self.requests = requests
        #: Sync was lost (a gap outside a body, or bytes that are not HTTP): what follows is
        #: the middle of a message until a segment opens with a start line.
        self.resync = False

    @property
    def in_body(self) -> bool:
        return self.state in (BODY, BODY_TO_CLOSE, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS)

    def reset(self) -> None:
        self.buf = b""
        self.state = START
        self.msg = None
        self.remaining = 0
        self.scan = 0

    def upgrade(self) -> None:
        """The connection switched protocols (101, CONNECT): stop parsing HTTP."""
        self.reset()
        self.state = UPGRADED

    # -- feeding -------------------------------------------------------------------------

    def feed(self, data: bytes, ts: int) -> list[Message]:
        if self.state == UPGRADED:
            return []
        if self.resync:
            if not _START_LINE.match(data):
                return []  # the rest of a message whose start was lost
            self.resync = False
        done: list[Message] = []
        self._done = done
        self._counted = self._answered = 0
        buf: bytes | bytearray
        if self.buf:
            assert isinstance(self.buf, bytearray)
            self.buf += data
            buf = self.buf
        else:
            buf = data  # common case: parse the segment in place, copy only a leftover tail
        pos = 0
        try:
            while pos < len(buf):
                state = self.state
                if state == START or state == HEADERS:
                    pos = self._headers(buf, pos, ts)
                    if self.need_more:
                        break
                    msg = self.msg
                    assert msg is not None
                    if self.state == START:  # complete without a body
                        msg.end_ts = ts
                        done.append(msg)
                        self.msg = None
                    elif self.state == UPGRADED:
                        done.append(msg)
                        self.msg = None
                        break
                elif state == BODY:
                    pos = self._body(buf, pos)
                    if self.remaining == 0:
                        self._complete(done, ts)
                elif state == BODY_TO_CLOSE:
                    msg = self.msg
                    assert msg is not None
                    n = len(buf) - pos
                    msg.size += n
                    msg.content_length += n
                    self._save(msg, buf, pos, len(buf))
                    msg.end_ts = ts
                    pos = len(buf)
                elif state == CHUNK_SIZE:
                    eol = buf.find(b"\n", pos + self.scan)
                    if eol < 0:
                        if len(buf) - pos > MAX_CHUNK_LINE:
                            raise ParseError("chunk size line too long", "chunk_line_too_long")
                        self.scan = len(buf) - pos
                        break
                    self.scan = 0
                    line = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
                    size = ascii_hex(line)
                    if size is None:
                        raise ParseError(f"bad chunk size {line[:20]!r}")
                    n = size
                    msg = self.msg
                    assert msg is not None
                    msg.size += eol + 1 - pos
                    pos = eol + 1
                    if n == 0:
                        self.state = TRAILERS
                    else:
                        msg.content_length += n
                        self.remaining = n
                        self.state = CHUNK_DATA
                elif state == CHUNK_DATA:
                    pos = self._body(buf, pos)
                    if self.remaining == 0:
                        self.state = CHUNK_CRLF
                elif state == CHUNK_CRLF:
                    msg = self.msg
                    assert msg is not None
                    if buf[pos] == 0x0A:
                        pos += 1
                        msg.size += 1
                    elif buf[pos] == 0x0D:
                        if len(buf) - pos < 2:
                            break
                        if buf[pos + 1] != 0x0A:
                            raise ParseError("expected CRLF after chunk")
                        pos += 2
                        msg.size += 2
                    else:
                        raise ParseError("expected CRLF after chunk")
                    self.state = CHUNK_SIZE
                elif state == TRAILERS:
                    eol = buf.find(b"\n", pos + self.scan)
                    if eol < 0:
                        if len(buf) - pos > self.cfg.max_message_size:
                            raise ParseError("trailer line too large", "trailer_too_large")
                        self.scan = len(buf) - pos
                        break
                    self.scan = 0
                    msg = self.msg
                    assert msg is not None
                    msg.size += eol + 1 - pos
                    empty = eol == pos or (eol == pos + 1 and buf[pos] == 0x0D)
                    pos = eol + 1
                    if empty:
                        self._complete(done, ts)
                else:  # UPGRADED
                    pos = len(buf)
        except ParseError as exc:
            # Not HTTP (or lost sync): drop what is buffered; the next segment starts over.
            self.errors += 1
            self.last_error = str(exc)
            self.last_reason = exc.reason
            self.reset()
            self.resync = True
            self._done = _NO_DONE
            return done
        self._done = _NO_DONE
        if self.state == UPGRADED:
            self.buf = b""
        elif buf is data:
            if pos < len(data):
                self.buf = bytearray(data[pos:])
        elif pos:
            assert isinstance(self.buf, bytearray)
            del self.buf[:pos]
            if not self.buf:
                self.buf = b""
        return done

    def _complete(self, done: list[Message], ts: int) -> None:
        msg = self.msg
        assert msg is not None
        msg.end_ts = ts
        done.append(msg)
        self.msg = None
        self.state = START
        self.remaining = 0

    def _save(self, msg: Message, buf: bytes | bytearray, start: int, end: int) -> None:
        if msg.save_body and end > start:
            body = msg.body
            if body is None:
                body = msg.body = bytearray()
            room = self.cfg.max_message_size - len(msg.raw_headers) - len(body)
            if room > 0:
                body += buf[start : min(end, start + room)]

    def save(self, msg: Message, data: bytes) -> None:
        self._save(msg, data, 0, len(data))

    def _body(self, buf: bytes | bytearray, pos: int) -> int:
        msg = self.msg
        assert msg is not None
        take = min(len(buf) - pos, self.remaining)
        self._save(msg, buf, pos, pos + take)
        msg.size += take
        self.remaining -= take
        return pos + take

    def _headers(self, buf: bytes | bytearray, pos: int, ts: int) -> int:
        """Parse a start line and headers; returns the new position (``need_more`` if short)."""
        self.need_more = False
        if self.state == START:
            # Validate the start line as soon as it is there, so garbage is refused early.
            if buf[pos] in (0x0D, 0x0A):
                # Tolerate stray CRLF between messages (RFC 9112 §2.2).
                m = _CRLFS.match(buf, pos)
                assert m is not None
                pos = m.end()
            if pos >= len(buf):
                self.need_more = True
                return pos
            if buf[pos] not in _TOKEN_CHARS:
                raise ParseError("not an HTTP start line")
            eol = buf.find(b"\n", pos)
            if eol < 0:
                if len(buf) - pos > MAX_START_LINE:
                    raise ParseError("start line too long", "start_line_too_long")
                self.need_more = True
                return pos
            line = bytes(buf[pos:eol]).rstrip(b"\r")
            first = Message(ts)
            self._start_line(first, line)
            self.msg = first
            self.state = HEADERS
            self.scan = 0
            # Header parsing starts over from the start line once the block is complete.
        msg = self.msg
        assert msg is not None
        # Resume the search where the last one stopped; 3 bytes back so that a blank
        # line split between segments is found.
        end = _find_header_end(buf, pos + self.scan - 3 if self.scan > 3 else pos)
        if end < 0:
            if len(buf) - pos > self.cfg.max_message_size:
                raise ParseError("headers larger than max_message_size", "headers_too_large")
            self.scan = len(buf) - pos
            self.need_more = True
            return pos
        self.scan = 0
        raw = bytes(buf[pos:end])
        # Lines: the start line, the headers, the blank line (each header line >= 2 bytes).
        if len(raw) > _HEADER_BLOCK_CHECK and raw.count(b"\n") - 2 > MAX_HEADERS:
            raise ParseError("too many header lines", "too_many_headers")
        msg.raw_headers = raw
        msg.size = len(raw)
        self._header_fields(msg, raw)
        end = self._after_headers(msg, end)
        if not msg.save_body and not (
            self.cfg.keep_raw_requests if msg.is_request else self.cfg.keep_raw_responses
        ):
            msg.raw_headers = b""  # (a saved body's room is counted from its length)
        return end

    def _start_line(self, msg: Message, line: bytes) -> None:
        if len(line) < 9:
            raise ParseError("first line too small")
        text = line.decode("latin-1")
        if text.startswith("HTTP/"):
            msg.is_request = False
            msg.version = _parse_version(text[5:8])
            rest = text[9:]
            code, _, phrase = rest.partition(" ")
            if len(code) != 3 or not is_ascii_digits(code):
                raise ParseError(f"bad status line {text[:40]!r}")
            msg.status_code = int(code)
            msg.status_phrase = phrase.strip()
            return
        if "\t" in text:
            sp1 = _first_space(text)
            sp2 = _last_space(text)
        else:
            sp1 = text.find(" ")
            sp2 = text.rfind(" ")
        if sp1 < 0 or sp1 == sp2:
            raise ParseError(f"bad request line {text[:40]!r}")
        version = text[sp2 + 1 :]
        if not version.startswith("HTTP/") or len(version) <= 5:
            raise ParseError(f"bad request line {text[:40]!r}")
        msg.is_request = True
        method = text[:sp1]
        msg.method = _METHODS.get(method, method)
        msg.uri = text[sp1 + 1 : sp2].strip()
        msg.version = _parse_version(version[5:])

    def _header_fields(self, msg: Message, raw: bytes) -> None:
        cfg = self.cfg
        collect = cfg.send_all_headers or bool(cfg.send_headers)
        # (bytes.find, not ``in``: ``in`` on bytes tries the operand as an integer first and
        # pays for a TypeError each time)
        if not collect and raw.find(b"\n ") < 0 and raw.find(b"\n\t") < 0:
            self._needed_fields(msg, raw)
            return
        self._all_fields(msg, raw, collect)

    def _needed_fields(self, msg: Message, raw: bytes) -> None:
        """Only the headers the decoder itself needs: one C-level scan, no line loop.

        Clients and servers repeat the same header block message after message (keep-alive
        requests above all), so the fields found in a block are remembered, keyed by the
        block's bytes (start line excluded).
        """
        block = raw[raw.find(b"\n") :]
        key = (block, self.cfg.real_ip_header)
        hit = _FIELDS_CACHE.get(key)
        if hit is not None:
            (
                msg.content_length,
                msg.has_content_length,
                msg.content_type,
                encodings,
                msg.chunked,
                msg.connection,
                msg.host,
                msg.referer,
                msg.user_agent,
                msg.authorization,
                msg.real_ip,
            ) = hit
            if encodings:
                msg.encodings = encodings  # a tuple: shared, never mutated
            return
        self._scan_needed(msg, raw)
        if len(block) > _CACHE_BLOCK_MAX:
            return  # keys are kept: bound what the cache holds
        if len(_FIELDS_CACHE) >= _FIELDS_CACHE_MAX:
            _FIELDS_CACHE.clear()
        _FIELDS_CACHE[key] = (
            msg.content_length,
            msg.has_content_length,
            msg.content_type,
            tuple(msg.encodings),
            msg.chunked,
            msg.connection,
            msg.host,
            msg.referer,
            msg.user_agent,
            msg.authorization,
            msg.real_ip,
        )

    def _scan_needed(self, msg: Message, raw: bytes) -> None:
        apply = self._apply
        plain = _PLAIN_FIELDS
        for name_b, value_b in self.needed.findall(raw):
            name = name_b.decode().lower()
            value = value_b.strip().decode("utf-8", "replace")
            attr = plain.get(name)
            if attr is not None and name != self.cfg.real_ip_header:
                setattr(msg, attr, value)
            else:
                apply(msg, name, value)

    def _all_fields(self, msg: Message, raw: bytes, collect: bool) -> None:
        cfg = self.cfg
        text = raw.decode("utf-8", "replace")
        lines = text.split("\n")
        # lines[0] is the start line; the block ends with an empty line. Folded and
        # repeated headers are joined once at the end (joining as they come is quadratic).
        name = ""
        pending: list[list[str]] = []  # [name, value, continuation lines...]
        for line in lines[1:]:
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                continue
            if line[0] in " \t" and name:
                pending[-1].append(line.strip())
                continue
            colon = line.find(":")
            if colon <= 0:
                continue  # Packetbeat ignores lines without a colon
            name = line[:colon].strip().lower()
            pending.append([name, line[colon + 1 :].strip()])
        collected: dict[str, list[str]] = {}
        for item in pending:
            name = item[0]
            value = item[1] if len(item) == 2 else " ".join(item[1:])
            self._apply(msg, name, value)
            if collect and (cfg.send_all_headers or name in cfg.send_headers):
                values = collected.get(name)
                if values is None:
                    collected[name] = [value]
                else:
                    values.append(value)
        if collected:
            msg.headers = {
                name: values[0] if len(values) == 1 else ", ".join(values)
                for name, values in collected.items()
            }

    def _apply(self, msg: Message, name: str, value: str) -> None:
        if name == "content-length":
            msg.has_content_length = True
            # Packetbeat: the leading ASCII digits (a bad value counts as 0).
            msg.content_length = leading_uint(value.partition(",")[0].strip()) or 0
        elif name == "content-type":
            msg.content_type = value
        elif name == "transfer-encoding":
            encs = _csv_lower(value)
            if encs and encs[-1] == "chunked":
                msg.chunked = True
                encs = encs[:-1]
            _add_encodings(msg, encs, False)
        elif name == "content-encoding":
            _add_encodings(msg, _csv_lower(value), True)
        elif name == "connection":
            msg.connection = value.lower()
        elif name == "host":
            msg.host = value
        elif name == "referer":
            msg.referer = value
        elif name == "user-agent":
            msg.user_agent = value
        elif name == "authorization":
            msg.authorization = value
        if self.cfg.real_ip_header and name == self.cfg.real_ip_header:
            msg.real_ip = value.split(",", 1)[0].strip()

    def _after_headers(self, msg: Message, end: int) -> int:
        code = msg.status_code
        if not msg.is_request:
            if 100 <= code < 200 or code == 204 or code == 304:
                self.state = UPGRADED if code == 101 else START
                return end
            # Responses finished earlier in this same feed have not been paired yet
            # (counted incrementally: a feed may hold thousands of small responses).
            done = self._done
            if len(done) > self._counted:
                for m in done[self._counted :]:
                    if not m.is_request and not 100 <= m.status_code < 200:
                        self._answered += 1
                self._counted = len(done)
            answered = self._answered
            method = self.requests.request_method(answered) if self.requests is not None else None
            if method == "HEAD" or (method == "CONNECT" and 200 <= code < 300):
                self.state = START
                return end
        ctype = msg.content_type.lower()
        include = self.cfg.include_request_body_for if msg.is_request else self.cfg.include_response_body_for
        if include:
            msg.send_body = any(i in ctype for i in include)
        msg.save_body = msg.send_body or (msg.content_length > 0 and "urlencoded" in ctype)
        if msg.chunked:
            self.state = CHUNK_SIZE
            if not msg.save_body and "urlencoded" in ctype:
                msg.save_body = True
            return end
        if msg.content_length == 0 and (msg.is_request or msg.has_content_length):
            self.state = START
            return end
        if msg.reads_to_close():
            self.state = BODY_TO_CLOSE
            return end
        if msg.content_length == 0:
            self.state = START
            return end
        self.remaining = msg.content_length
        self.state = BODY
        return end

    # -- gaps and end of stream --------------------------------------------------------------

    def gap(self, nbytes: int) -> tuple[bool, Message | None]:
        """Bytes lost. Returns (recovered, message completed by the gap)."""
        msg = self.msg
        if msg is None or (self.state == START and not self.buf):
            # Between messages: whatever comes next may start mid-message.
            self.reset()
            self.resync = True
            return True, None
        if self.state not in (BODY, BODY_TO_CLOSE):
            self.reset()
            self.resync = True
            return False, None
        msg.add_note(
            "Packet loss while capturing the request"
            if msg.is_request
            else "Packet loss while capturing the response"
        )
        if self.state == BODY_TO_CLOSE:
            msg.content_length += nbytes
            return True, None
        if nbytes >= self.remaining:
            self.resync = nbytes > self.remaining  # the loss runs into the next message
            self.remaining = 0
            self.msg = None
            self.state = START
            return True, msg
        self.remaining -= nbytes
        return True, None

    def finish(self) -> Message | None:
        """The direction ended (FIN or teardown): hand over a message whose headers are in."""
        msg = self.msg
        if msg is None or self.state in (START, HEADERS):
            if msg is not None or self.buf.strip(b"\r\n"):
                self.incomplete += 1  # a start line or header block cut short
            self.reset()
            return None
        self.msg = None
        self.state = START
        self.buf = b""
        return msg


def _find_header_end(buf: bytes | bytearray, pos: int) -> int:
    """Index just past the blank line ending the header block, or -1."""
    a = buf.find(b"\r\n\r\n", pos)
    # A bare-LF blank line only counts when it comes first; search just that far.
    b = buf.find(b"\n\n", pos, a + 2 if a >= 0 else len(buf))
    if b >= 0 and (a < 0 or b < a):
        return b + 2
    return a + 4 if a >= 0 else -1


def _first_space(s: str) -> int:
    for i, c in enumerate(s):
        if c.isspace():
            return i
    return -1


def _last_space(s: str) -> int:
    for i in range(len(s) - 1, -1, -1):
        if s[i].isspace():
            return i
    return -1
