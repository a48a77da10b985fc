"""memcache wire parser, sans-IO: bytes in, messages out (text and binary protocol).

Written by hand: the formats are small (a command line and a data block; a 24-byte header,
extras, key and value) and no maintained Python library parses memcache *traffic* (the
client libraries only parse what they asked for). The reading follows Packetbeat
(``protos/memcache/text.go``, ``binary.go``) so that events match it:

* The first byte of a message decides: 0x80/0x81 is a binary request/reply, anything else
  a text line ended by CRLF. A text line whose command starts with a lowercase letter is a
  request, otherwise a reply; a reply starting with a digit is an incr/decr result.
* Arguments are the space-separated tokens after the command, in the command's order;
  missing optional ones keep their zero value, tokens past the last argument are ignored.
* Unknown commands end the stream (Packetbeat's ``parseunknown: false``) unless
  ``parseunknown`` is set; they must not carry a data block.

Values are never buffered whole: a data block is followed to its end, keeping only what
``maxvalues``/``maxbytespervalue`` ask for, so a lying length costs nothing but the bytes
that really come. Lines, binary headers (with extras and key) and the bodies that are read
as numbers or text (counter, version and stat replies) are buffered up to
``max_message_size``; past it, or on anything that is not memcache, the parser reports an
error and the caller drops the stream as Packetbeat does.
"""

from __future__ import annotations

import re
import struct

from protocols.common.digits import ascii_uint
from protocols.memcache.codes import (
    A_AUTOMOVE,
    A_BYTES,
    A_CAS,
    A_CAS_OPT,
    A_DELTA,
    A_DEST_CLASS,
    A_ERRMSG,
    A_EXPTIME,
    A_EXPTIME_OPT,
    A_FLAGS,
    A_KEY,
    A_KEYS,
    A_NOREPLY,
    A_RAW,
    A_SLEEP_US,
    A_SOURCE_CLASS,
    A_STAT,
    A_VALUE,
    A_VERBOSITY,
    B_COUNTER,
    B_DATA,
    B_STAT,
    B_VERSION,
    BINARY_COMMANDS,
    BINARY_UNKNOWN,
    COUNTER_RESPONSE,
    HEADER_SIZE,
    K_SUB,
    MAGIC_REQUEST,
    MAGIC_RESPONSE,
    QUIET_OPCODES,
    TEXT_REQUESTS,
    TEXT_RESPONSES,
    UNKNOWN,
    X_DELTA,
    X_EXPTIME,
    X_FLAGS,
    X_INITIAL,
    X_VERBOSITY,
    Cmd,
)

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
_HEADER = struct.Struct(">BBHBBHIIQ")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_LEADING_DIGITS = re.compile(rb"[0-9]+")
_SIGNED = re.compile(rb"[+-]?[0-9]{1,64}")

#: The note Packetbeat attaches when a binary message's extras are shorter than its
#: command's fields (Go's streambuf error text).
NOTE_SHORT_EXTRAS = "unexpected end of buffer"
NOTE_REQUEST_LOSS = "Packet loss while capturing the request"
NOTE_RESPONSE_LOSS = "Packet loss while capturing the response"

_CMD, _DATA, _CRLF, _BIN_DATA = range(4)
_REQUIRED_NUMBERS = frozenset({A_FLAGS, A_EXPTIME, A_BYTES, A_CAS})


class ParseError(Exception):
    """The stream is not memcache (or breaks a limit); ``reason`` names the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Message:
    """One text or binary message, with the fields Packetbeat serializes."""

    __slots__ = (
        "bytes_lost",
        "cas",
        "cmd",
        "complete",
        "count_values",
        "direction",
        "error_msg",
        "exptime",
        "flags",
        "is_binary",
        "is_request",
        "ivalue",
        "ivalue2",
        "kept",
        "keys",
        "line",
        "nbytes",
        "noreply",
        "notes",
        "opaque",
        "opcode",
        "quiet",
        "raw_args",
        "size",
        "stats",
        "status",
        "ts",
        "value",
        "value2",
        "value_ok",
        "values",
        "vbucket",
        "version",
    )

    def __init__(self, ts: int, cmd: Cmd, is_request: bool, is_binary: bool) -> None:
        self.ts = ts
        self.cmd = cmd
        self.is_request = is_request
        self.is_binary = is_binary
        self.size = 0
        self.notes: list[str] | None = None
        self.complete = True
        self.direction = 0
        self.keys: list[bytes] | None = None
        self.flags = 0
        self.exptime = 0
        self.nbytes = 0
        self.bytes_lost = 0
        self.count_values = 0
        self.values: list[bytes] | None = None
        #: Bytes of ``values``.
        self.kept = 0
        self.cas: int | None = None
        self.noreply = False
        self.value = 0
        self.value2 = 0
        self.value_ok = True
        self.ivalue = 0
        self.ivalue2 = 0
        self.raw_args = b""
        self.error_msg = b""
        self.line = b""
        self.stats: list[tuple[bytes, bytes]] | None = None
        self.version: bytes | None = None
        self.opcode = 0
        self.status = 0
        self.vbucket = 0
        self.opaque = 0
        self.quiet = False

    def add_note(self, note: str) -> None:
        if self.notes is None:
            self.notes = [note]
        else:
            self.notes.append(note)

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary else "text"
        side = "request" if self.is_request else "response"
        return f"<memcache {kind} {side} {self.cmd.code} size={self.size}>"


def _tokens(raw: bytes) -> list[bytes]:
    if not raw:
        return []
    toks = raw.split(b" ")
    if b"" in toks:
        toks = [t for t in toks if t]
    return toks


def _uint(tok: bytes) -> int | None:
    v = ascii_uint(tok, 64)
    return None if v is None else v & M64


def _int(tok: bytes) -> int | None:
    if _SIGNED.fullmatch(tok) is None:
        return None
    v = int(tok) & M64  # Go parses the magnitude as uint64, then negates an int64
    v = v - (1 << 64) if v >= 1 << 63 else v
    return v


def parse_text_args(msg: Message, cmd: Cmd, raw: bytes) -> str | None:
    """Fill ``msg`` from the argument text; returns an error reason or None."""
    toks = _tokens(raw)
    n = len(toks)
    i = 0
    for a in cmd.args:
        if a == A_KEY:
            if i >= n:
                return "missing_argument"
            msg.keys = [toks[i]]
            i += 1
        elif a == A_KEYS:
            if i >= n:
                return "missing_argument"
            msg.keys = toks[i:]
            i = n
        elif a == A_NOREPLY:
            if i < n:
                if not toks[i].startswith(b"noreply"):
                    return "bad_argument"
                msg.noreply = True
                i += 1
        elif a in _REQUIRED_NUMBERS:  # flags, exptime, bytes, cas
            if i >= n:
                return "missing_argument"
            v = _uint(toks[i])
            if v is None:
                return "bad_argument"
            i += 1
            if a == A_FLAGS:
                msg.flags = v & M32
            elif a == A_EXPTIME:
                msg.exptime = v & M32
            elif a == A_BYTES:
                msg.nbytes = v & M32
            else:
                msg.cas = v
        elif a == A_EXPTIME_OPT or a == A_CAS_OPT:
            if i < n:
                v = _uint(toks[i])
                if v is None:
                    return "bad_argument"
                i += 1
                if a == A_EXPTIME_OPT:
                    msg.exptime = v & M32
                else:
                    msg.cas = v
        elif a in (A_DELTA, A_VALUE, A_VERBOSITY, A_SLEEP_US, A_AUTOMOVE):
            if i >= n:
                return "missing_argument"
            v = _uint(toks[i])
            if v is None:
                return "bad_argument"
            msg.value = v
            i += 1
        elif a == A_SOURCE_CLASS or a == A_DEST_CLASS:
            if i >= n:
                return "missing_argument"
            s = _int(toks[i])
            if s is None:
                return "bad_argument"
            if a == A_SOURCE_CLASS:
                msg.ivalue = s
            else:
                msg.ivalue2 = s
            i += 1
        elif a == A_RAW:
            msg.raw_args = raw
        elif a == A_ERRMSG:
            msg.error_msg = raw
        elif a == A_STAT:
            msg.stats = [(toks[0] if n > 0 else b"", toks[1] if n > 1 else b"")]
    return None


class StreamParser:
    """Messages of one direction of a stream (or of one UDP payload, ``fixed``)."""

    __slots__ = (
        "buf",
        "crlf",
        "keep",
        "keep_limit",
        "max_size",
        "msg",
        "now",
        "parse_unknown",
        "pos",
        "remaining",
        "scan",
        "start_ts",
        "state",
        "store",
    )

    def __init__(self, parse_unknown: bool, store: bool, keep_limit: int, max_size: int) -> None:
        self.parse_unknown = parse_unknown
        #: Keep values (``maxvalues`` != 0), at most ``keep_limit`` bytes of each.
        self.store = store
        self.keep_limit = keep_limit
        self.max_size = max_size
        self.buf: bytes | bytearray = b""
        self.pos = 0
        self.scan = 0
        self.state = _CMD
        self.msg: Message | None = None
        self.start_ts = -1
        self.remaining = 0
        self.crlf = False
        self.keep: bytearray | None = None
        self.now = 0

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message held or still expected."""
        return len(self.buf) - self.pos + (self.remaining if self.state != _CMD else 0)

    @property
    def mid_message(self) -> bool:
        return self.state != _CMD or len(self.buf) > self.pos

    def feed(self, data: bytes, ts: int) -> tuple[list[Message], str | None]:
        """Parse what ``data`` completes: (messages, error reason or None).

        After an error the parser must not be fed again (the caller drops the stream)."""
        if self.pos >= len(self.buf):
            # Nothing held: parse the segment in place; only a leftover is copied.
            buf: bytes | bytearray = data
            self.buf = data
            self.pos = 0
            self.scan = 0
        else:
            held = self.buf
            if not isinstance(held, bytearray):
                held = self.buf = bytearray(held)
            held += data
            buf = held
        if self.start_ts < 0 and len(buf) > self.pos:
            self.start_ts = ts
        self.now = ts
        out: list[Message] = []
        try:
            self._run(out)
        except ParseError as exc:
            return out, exc.reason
        pos = self.pos
        if pos:
            end = len(buf)
            if pos == end:
                self.buf = b""
                self.pos = self.scan = 0
            elif isinstance(buf, bytes):
                self.buf = bytearray(buf[pos:])
                self.scan -= pos
                self.pos = 0
            elif pos > 65536:
                del buf[:pos]
                self.scan -= pos
                self.pos = 0
        return out, None

    def _run(self, out: list[Message]) -> None:
        buf = self.buf
        while True:
            state = self.state
            pos = self.pos
            end = len(buf)
            if state == _CMD:
                if end - pos < 2:
                    if end == pos:
                        self.start_ts = -1
                    return
                first = buf[pos]
                if first == MAGIC_REQUEST or first == MAGIC_RESPONSE:
                    if not self._binary(out):
                        return
                    continue
                i = buf.find(b"\r\n", max(pos, self.scan))
                if i < 0:
                    if end - pos > self.max_size:
                        raise ParseError("oversized_messages")
                    self.scan = end - 1
                    return
                line = bytes(buf[pos:i])
                self.pos = i + 2
                self.scan = i + 2
                msg = self._text(line)
                msg.size = i + 2 - pos
                if msg.cmd.data:
                    self.msg = msg
                    self.remaining = msg.nbytes
                    self.keep = bytearray() if self.store else None
                    self.state = _DATA
                    continue
                self._yield(msg, out)
            elif state == _DATA or state == _BIN_DATA:
                cur = self.msg
                assert cur is not None
                take = min(self.remaining, end - pos)
                if take:
                    keep = self.keep
                    if keep is not None and len(keep) < self.keep_limit:
                        keep += buf[pos : pos + min(take, self.keep_limit - len(keep))]
                    self.pos = pos + take
                    self.remaining -= take
                    cur.size += take
                if self.remaining:
                    return
                if state == _DATA:
                    self.state = _CRLF
                else:
                    self._end_data(cur, out)
            else:  # _CRLF after a text data block
                if end - pos < 2:
                    return
                if buf[pos] != 13 or buf[pos + 1] != 10:
                    raise ParseError("bad_data_terminator")
                self.pos = pos + 2
                self.scan = self.pos
                cur = self.msg
                assert cur is not None
                cur.size += 2
                self._end_data(cur, out)

    def _yield(self, msg: Message, out: list[Message]) -> None:
        msg.ts = self.start_ts
        out.append(msg)
        self.msg = None
        self.state = _CMD
        # The next message starts in the segment at hand (Packetbeat stamps it with it).
        self.start_ts = self.now if len(self.buf) > self.pos else -1

    def _end_data(self, msg: Message, out: list[Message]) -> None:
        msg.count_values += 1
        keep = self.keep
        if keep is not None and not msg.bytes_lost:
            msg.values = [bytes(keep)]
            msg.kept = len(keep)
        self.keep = None
        self._yield(msg, out)

    # -- text ------------------------------------------------------------------------------

    def _text(self, line: bytes) -> Message:
        start = 0
        n = len(line)
        while start < n and line[start] == 32:
            start += 1
        if start == n:
            raise ParseError("empty_lines")
        sp = line.find(b" ", start)
        if sp < 0:
            word = line[start:] if start else line
            raw = b""
        else:
            word = line[start:sp]
            raw = line[sp + 1 :]
        is_request = 97 <= word[0] <= 122
        cmd: Cmd | None
        if is_request:
            cmd = TEXT_REQUESTS.get(word)
        else:
            cmd = TEXT_RESPONSES.get(word)
            if cmd is None and 48 <= word[0] <= 57:
                cmd = COUNTER_RESPONSE
        if cmd is None:
            if not self.parse_unknown:
                raise ParseError("unknown_commands")
            cmd = UNKNOWN
        if cmd.kind == K_SUB:
            assert cmd.sub is not None
            j = 0
            while j < len(raw) and raw[j] == 32:
                j += 1
            if j == len(raw):
                raise ParseError("missing_argument")
            sp = raw.find(b" ", j)
            sub_word = raw[j:] if sp < 0 else raw[j:sp]
            raw = b"" if sp < 0 else raw[sp + 1 :]
            sub = cmd.sub.get(sub_word)
            if sub is None:
                if not self.parse_unknown:
                    raise ParseError("unknown_commands")
                sub = UNKNOWN
            cmd = sub
        msg = Message(-1, cmd, is_request, False)
        if cmd is UNKNOWN:
            msg.line = line
            return msg
        if cmd is COUNTER_RESPONSE:
            m = _LEADING_DIGITS.match(word)
            assert m is not None
            msg.value = int(m.group()) & M64
            return msg
        if cmd.args:
            err = parse_text_args(msg, cmd, raw)
            if err is not None:
                raise ParseError(err)
        return msg

    # -- binary ----------------------------------------------------------------------------

    def _binary(self, out: list[Message]) -> bool:
        """One binary message from the buffer; False when more bytes are needed."""
        buf = self.buf
        pos = self.pos
        avail = len(buf) - pos
        if avail < HEADER_SIZE:
            return False
        magic, opcode, keylen, extlen, _dtype, vb_status, total, opaque, cas = _HEADER.unpack_from(buf, pos)
        head = HEADER_SIZE + extlen + keylen
        if avail < head:
            if head > self.max_size:
                raise ParseError("oversized_messages")
            return False
        cmd = BINARY_COMMANDS.get(opcode, BINARY_UNKNOWN)
        is_request = magic == MAGIC_REQUEST
        msg = Message(-1, cmd, is_request, True)
        msg.opcode = opcode
        msg.quiet = opcode in QUIET_OPCODES
        if is_request:
            msg.vbucket = vb_status
        else:
            msg.status = vb_status
        if cas:
            msg.cas = cas
        msg.opaque = opaque
        if total == 0:
            # Nothing but the header (extras and key lengths notwithstanding, as Packetbeat).
            self.pos = pos + HEADER_SIZE
            msg.size = HEADER_SIZE
            self._yield(msg, out)
            return True
        value_len = total - extlen - keylen
        if value_len < 0:
            raise ParseError("bad_lengths")
        body = cmd.body
        if body != B_DATA and value_len > 0:
            if total > self.max_size:
                raise ParseError("oversized_messages")
            if avail < HEADER_SIZE + total:
                return False
        p = pos + HEADER_SIZE
        if extlen:
            args = cmd.args if is_request and cmd.args else cmd.resp_args
            if args:
                _binary_extras(msg, args, bytes(buf[p : p + extlen]))
            p += extlen
        if keylen:
            msg.keys = [bytes(buf[p : p + keylen])]
            p += keylen
        self.pos = p
        msg.size = p - pos
        if value_len == 0:
            self._yield(msg, out)
            return True
        msg.nbytes = value_len
        if body == B_DATA or is_request:
            self.msg = msg
            self.remaining = value_len
            self.keep = bytearray() if self.store else None
            self.state = _BIN_DATA
            return True
        value = bytes(buf[p : p + value_len])
        self.pos = p + value_len
        msg.size += value_len
        if body == B_COUNTER:
            if msg.status == 0:
                if value_len < 8:
                    raise ParseError("bad_counter_values")
                msg.value = _U64.unpack_from(value)[0]
            else:
                # An error reply's body is its message, not a number (Packetbeat reads its
                # first 8 bytes as one anyway; see docs/differences.md).
                msg.value_ok = False
        elif body == B_VERSION:
            msg.version = value
        elif body == B_STAT:
            if not msg.keys:
                raise ParseError("bad_stat_replies")
            msg.stats = [(msg.keys[0], value)]
        self._yield(msg, out)
        return True

    # -- loss ------------------------------------------------------------------------------

    def on_gap(self, nbytes: int) -> bool:
        """``nbytes`` lost: True when they fall inside a value and parsing can go on."""
        msg = self.msg
        if msg is None:
            return False
        msg.add_note(NOTE_REQUEST_LOSS if msg.is_request else NOTE_RESPONSE_LOSS)
        if (self.state == _DATA or self.state == _BIN_DATA) and nbytes <= self.remaining:
            self.remaining -= nbytes
            msg.bytes_lost += nbytes
            self.keep = None
            return True
        return False


def _binary_extras(msg: Message, args: tuple[int, ...], extras: bytes) -> None:
    off = 0
    n = len(extras)
    for a in args:
        if a == X_DELTA or a == X_INITIAL:
            if off + 8 > n:
                msg.add_note(NOTE_SHORT_EXTRAS)
                return
            v = _U64.unpack_from(extras, off)[0]
            off += 8
            if a == X_DELTA:
                msg.value = v
            else:
                msg.value2 = v
        elif a == X_FLAGS or a == X_EXPTIME or a == X_VERBOSITY:
            if off + 4 > n:
                msg.add_note(NOTE_SHORT_EXTRAS)
                return
            v = _U32.unpack_from(extras, off)[0]
            off += 4
            if a == X_FLAGS:
                msg.flags = v
            elif a == X_EXPTIME:
                msg.exptime = v
            else:
                msg.value = v
