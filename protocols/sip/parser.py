"""SIP wire parser (RFC 3261 §7, §18.3), sans-IO: bytes in, messages out.

Hand-written: the SIP libraries on PyPI build full dialogs and validate far more than a
passive monitor may (a monitor must take what peers send, broken or not, and name each
field as Packetbeat does), and they are slower than a find-based splitter.

* ``parse_datagram``: the messages of one UDP datagram (RFC 3261 §18.3: without
  Content-Length the body runs to the end of the datagram).
* ``SipStream``: one direction of a TCP connection, framed by Content-Length, with
  several messages per segment or one message over many; bounded header and body sizes,
  scan positions kept between segments (linear time); after a framing error it waits for
  the next segment that starts a message, as Packetbeat (which parses every segment on
  its own) effectively does.

The start line is checked the way Packetbeat checks it (at least 14 bytes; a response
starts ``SIP/`` and has a number after the version; a request has a method, a URI and
``SIP/`` after the last space); headers are split the RFC way (CRLF CRLF ends them,
folded lines are joined, compact names expanded, names lower-cased).
"""

from __future__ import annotations

import re

from protocols.common.digits import ascii_uint
from protocols.sip.text import go_lower_bytes, int_ascii, space_bounds, trim_space

#: RFC 3261 §7.3.3 and the IANA SIP header registry: single-letter header names (the set
#: Packetbeat expands).
COMPACT = {
    b"a": b"accept-contact",
    b"b": b"referred-by",
    b"c": b"content-type",
    b"d": b"request-disposition",
    b"e": b"content-encoding",
    b"f": b"from",
    b"i": b"call-id",
    b"j": b"reject-contact",
    b"k": b"supported",
    b"l": b"content-length",
    b"m": b"contact",
    b"o": b"event",
    b"r": b"refer-to",
    b"s": b"subject",
    b"t": b"to",
    b"u": b"allow-events",
    b"v": b"via",
    b"x": b"session-expires",
    b"y": b"identity",
}

MIN_START_LINE = len("SIP/2.0 XXX OK")
_CL = b"content-length"
_CRLF = b"\r\n"
_CRLF2 = b"\r\n\r\n"
_NOT_CRLF = re.compile(rb"[^\r\n]")

Headers = dict[bytes, list[bytes]]


class Message:
    """One SIP message. Header values are trimmed; ``headers`` keeps every value of a name
    in order (Packetbeat reads some headers' last value and some headers' first)."""

    __slots__ = (
        "body",
        "code",
        "content_length",
        "headers",
        "is_request",
        "method",
        "phrase",
        "raw",
        "ts",
        "uri",
        "version",
    )

    def __init__(self) -> None:
        self.ts = 0
        self.is_request = False
        self.method = b""
        self.uri = b""
        self.code = 0
        self.phrase = b""
        self.version = ""
        self.headers: Headers = {}
        #: The Content-Length header's value, None without a valid one.
        self.content_length: int | None = None
        self.body = b""
        #: The bytes ``event.original`` shows.
        self.raw = b""

    def __repr__(self) -> str:
        what = self.method if self.is_request else self.code
        return f"Message({what!r}, {len(self.headers)} headers, body {len(self.body)})"


def start_line(line: bytes, msg: Message) -> bool:
    """Fill ``msg`` from a start line (without its CRLF); False if it is not one."""
    if len(line) < MIN_START_LINE:
        return False
    if line[:4] == b"SIP/":
        version = line[4:7]
        status = line[8:]
        sp = status.find(b" ")
        if sp < 0:
            code = int_ascii(status)
            phrase = b""
        else:
            code = int_ascii(status[:sp])
            phrase = status[sp + 1 :]
        if code is None:
            return False
        msg.code = code & 0xFFFF  # Packetbeat keeps a uint16
        msg.phrase = phrase
    else:
        first, last = space_bounds(line)
        if first < 0 or first == last:
            return False
        vpos = last + 5
        if len(line) <= vpos or line[last + 1 : vpos] != b"SIP/":
            return False
        msg.is_request = True
        msg.method = line[:first]
        msg.uri = line[first + 1 : last]
        version = line[vpos:]
    if len(version) < 3:
        return False
    # Packetbeat reads the two digits as bytes minus '0' (uint8), whatever they are.
    msg.version = f"{(version[0] - 48) & 0xFF}.{(version[2] - 48) & 0xFF}"
    return True


def parse_headers(block: bytes) -> Headers:
    """The header lines between the start line and the empty line (CRLF separated)."""
    headers: Headers = {}
    if not block:
        return headers
    last: list[bytes] | None = None
    for line in block.split(_CRLF):
        if not line:
            continue
        c0 = line[0]
        if c0 == 32 or c0 == 9:
            # A folded line continues the previous value (RFC 3261 §7.3.1: the line break
            # and the leading white space count as one SP).
            if last is not None:
                cont = trim_space(line)
                if cont:
                    last[-1] = last[-1] + b" " + cont if last[-1] else cont
            continue
        colon = line.find(b":")
        if colon < 0:
            continue
        name = line[:colon].rstrip(b" \t")
        name = name.lower() if name.isascii() else go_lower_bytes(name)
        if len(name) == 1:
            name = COMPACT.get(name, name)
        value = line[colon + 1 :].strip()
        if value and (value[0] > 127 or value[-1] > 127):
            value = trim_space(value)
        vals = headers.get(name)
        if vals is None:
            headers[name] = last = [value]
        else:
            vals.append(value)
            last = vals
    return headers


def content_length(headers: Headers) -> tuple[bool, int | None]:
    """(has the header, its value or None when it is not a number). The last one counts,
    as in Packetbeat. Only ASCII digits, at most 10 of them."""
    vals = headers.get(_CL)
    if vals is None:
        return False, None
    return True, ascii_uint(vals[-1], 10)


def skip_crlf(data: bytes | bytearray, pos: int, end: int) -> int:
    """RFC 3261 §7.5: CRLFs before a start line are ignored (keep-alives)."""
    if pos >= end or (data[pos] != 13 and data[pos] != 10):
        return pos
    m = _NOT_CRLF.search(data, pos, end)
    return m.start() if m is not None else end


# -- UDP ---------------------------------------------------------------------------------------


def parse_datagram(data: bytes, ts: int) -> tuple[list[Message], str]:
    """The messages of one datagram and the reason parsing stopped early ("" if it did not):
    ``invalid_start_line``, ``incomplete_messages`` (the header block or the body runs past
    the datagram) or ``bad_content_length`` (the message is kept, its body runs to the end).

    ``raw`` of a message runs from where its parse began (CRLFs before it included) to the
    next message, or for the last one to the end of the datagram (what follows it included,
    as in Packetbeat)."""
    out: list[Message] = []
    starts: list[int] = []
    problem = ""
    n = len(data)
    pos = 0
    while pos < n:
        s = skip_crlf(data, pos, n)
        if s == n:
            break
        eol = data.find(_CRLF, s)
        if eol < 0:
            problem = "incomplete_messages"
            break
        msg = Message()
        if not start_line(data[s:eol], msg):
            problem = "invalid_start_line"
            break
        hend = data.find(_CRLF2, eol)
        if hend < 0:
            problem = "incomplete_messages"
            break
        headers = msg.headers = parse_headers(data[eol + 2 : hend])
        body_start = hend + 4
        has_cl, cl = content_length(headers)
        if cl is None:
            if has_cl:
                problem = "bad_content_length"
            body_end = n
        else:
            body_end = body_start + cl
            if body_end > n:
                problem = "incomplete_messages"
                break
            msg.content_length = cl
        msg.body = data[body_start:body_end]
        msg.ts = ts
        out.append(msg)
        starts.append(pos)
        pos = body_end
        if problem:
            break
    if out:
        starts.append(n)
        for i, msg in enumerate(out[:-1]):
            msg.raw = data[starts[i] : starts[i + 1]]
        out[-1].raw = data[starts[-2] :]
    return out, problem


# -- TCP ---------------------------------------------------------------------------------------


class SipStream:
    """One direction of a SIP-over-TCP connection.

    ``feed`` returns the messages the bytes completed and the problems met (counter names);
    it never raises on bad input. Bytes of an unfinished message wait in ``buf`` (at most
    ``max_header`` before the header block ends, ``max_body`` more for the body). After a
    framing error the rest of the segment is dropped and the next segment is read as the
    start of a message."""

    __slots__ = ("buf", "head", "hint", "max_body", "max_header", "skip", "start", "ts")

    def __init__(self, max_header: int, max_body: int) -> None:
        self.buf = bytearray()
        #: Start time of the message waiting in ``buf``.
        self.ts = 0
        #: Where the search for a line end or the end of the header block resumes.
        self.hint = 0
        #: A message whose start line is read and whose header block is not complete:
        #: (message, start of the start line, its CRLF), offsets in ``buf``.
        self.start: tuple[Message, int, int] | None = None
        #: A message whose header block is complete and whose body is not: (message,
        #: body start in ``buf``, body length).
        self.head: tuple[Message, int, int] | None = None
        #: Bytes of an oversized body still to pass over.
        self.skip = 0
        self.max_header = max_header
        self.max_body = max_body

    @property
    def pending(self) -> int:
        return len(self.buf)

    def reset(self) -> None:
        """Drop what waits (after lost bytes): the next segment must start a message."""
        self.buf = bytearray()
        self.start = None
        self.head = None
        self.hint = 0
        self.skip = 0

    def feed(self, data: bytes, ts: int) -> tuple[list[Message], list[str]]:
        out: list[Message] = []
        problems: list[str] = []
        if self.skip:
            k = min(self.skip, len(data))
            self.skip -= k
            data = data[k:]
        if not data:
            return out, problems
        work: bytes | bytearray
        if self.buf:
            self.buf += data
            work = self.buf
        else:
            work = data
            self.ts = ts
        n = len(work)
        pos = 0
        msg_ts = self.ts
        while pos < n:
            head = self.head
            if head is None:
                st = self.start
                if st is None:
                    s = skip_crlf(work, pos, n)
                    if s == n:
                        pos = n
                        break
                    limit = s + self.max_header
                    eol = work.find(_CRLF, max(s, self.hint), limit)
                    if eol < 0:
                        if n >= limit:
                            return self._fail(out, problems, "headers_too_long")
                        self.hint = max(s, n - 1)
                        break
                    msg = Message()
                    if not start_line(bytes(work[s:eol]), msg):
                        return self._fail(out, problems, "invalid_start_line")
                    self.hint = eol
                else:
                    msg, s, eol = st
                    limit = s + self.max_header
                hend = work.find(_CRLF2, max(eol, self.hint), limit)
                if hend < 0:
                    if n >= limit:
                        return self._fail(out, problems, "headers_too_long")
                    self.start = (msg, s, eol)
                    self.hint = max(eol, n - 3)
                    break
                self.start = None
                self.hint = 0
                headers = msg.headers = parse_headers(bytes(work[eol + 2 : hend]))
                has_cl, cl = content_length(headers)
                if cl is None:
                    if has_cl:
                        return self._fail(out, problems, "bad_content_length")
                    cl = 0  # RFC 3261 §18.3: mandatory over TCP; absent means no body
                else:
                    msg.content_length = cl
                msg.ts = msg_ts
                body_start = hend + 4
                if cl > self.max_body:
                    problems.append("oversized_messages")
                    have = n - body_start
                    if have >= cl:
                        pos = body_start + cl
                        msg_ts = ts
                        continue
                    self.skip = cl - have
                    pos = n
                    break
                head = (msg, body_start, cl)
            msg, body_start, cl = head
            body_end = body_start + cl
            if body_end > n:
                self.head = head
                break
            self.head = None
            msg.body = bytes(work[body_start:body_end])
            end = body_end
            if 0 < n - body_end <= 8 and not work[body_end:n].strip(b"\r\n"):
                end = n  # CRLFs closing the segment belong to this message, as in Packetbeat
            msg.raw = bytes(work[pos:end])
            out.append(msg)
            pos = end
            msg_ts = ts
        self._keep(work, pos, msg_ts)
        return out, problems

    def _keep(self, work: bytes | bytearray, pos: int, msg_ts: int) -> None:
        """Keep the unconsumed tail; the offsets that point into it move with it."""
        n = len(work)
        if pos >= n:
            self.buf = bytearray()
            self.start = self.head = None
            self.hint = 0
            return
        if pos == 0 and work is self.buf:
            return
        self.buf = bytearray(work[pos:])
        self.ts = msg_ts
        if self.start is not None:
            m, s, e = self.start
            self.start = (m, s - pos, e - pos)
        if self.head is not None:
            m, b, c = self.head
            self.head = (m, b - pos, c)
        self.hint = max(0, self.hint - pos)

    def _fail(self, out: list[Message], problems: list[str], reason: str) -> tuple[list[Message], list[str]]:
        problems.append(reason)
        self.reset()
        return out, problems
