"""Cassandra native protocol v3-v5: frames, v5 segments, compression, bodies (sans-IO).

A frame is a 9-byte header (version with the response bit 0x80, flags, stream id, opcode,
body length; native_protocol_v4.spec §2) and a body. Bodies are decoded into the maps
Packetbeat 9.3 publishes (``protos/cassandra/internal/gocql/frame.go``): QUERY's query, ERROR's
code, message, type and details, RESULT's kind with rows metadata, keyspace, prepared ids and
metadata or schema change, SUPPORTED's options, EVENT's type and contents, AUTH*'s class or
token, response warnings. Where Packetbeat misreads the wire, the spec wins and
docs/differences.md says so: rows metadata is read to its end, so ``num_rows`` is the row
count and not the first bytes of the first column spec; a response with the tracing flag has
its tracing id skipped before the body; flags are read after decompression; v5 is decoded
(Packetbeat stops at a version above 4).

Compression (v4 and older; §5): the body of a frame with flag 0x01 is LZ4 (a 4-byte
big-endian decompressed length, then an LZ4 block; the ``lz4`` binding) or Snappy (raw
Snappy; cramjam). The algorithm is the one the connection's STARTUP asked for, else the
``compressor`` option, else whichever of the two decodes the body. The decompressed size is
read from the body first and checked against ``max_frame_size`` before anything is
allocated: a larger one is a counted bomb (``cassandra.decompression_bombs``).

v5 framing (native_protocol_v5.spec §2): after a v5 STARTUP from the client and the v5
READY/AUTHENTICATE from the server, each direction carries segments: a 3-byte header
(17-bit payload length, self-contained bit; 5 bytes with a 17-bit uncompressed length when
LZ4 was negotiated) protected by a CRC24, the payload, and its CRC32. Payloads are joined
into a stream of frames (a large frame spans several segments). A CRC mismatch loses that
segment (``cassandra.segment_crc_errors``); a bad header loses the place in the stream,
found again at the next TCP segment that starts with a header whose CRC24 holds. A capture
that begins after the handshake is recognised by the same CRC24 on its first bytes.

Hand-written rather than built on cassandra-driver's decoder: the driver decodes whole rows
into Python values (slow, and more than Packetbeat publishes), raises on the first odd byte,
and its v5 segment codec needs a socket-shaped buffer. Reading the few fields Packetbeat
publishes with ``struct`` on a memoryview is what keeps this linear and fast.

Limits: a frame longer than ``max_frame_size`` keeps its header (its transaction is still
published) and its body is skipped without being buffered (``cassandra.oversized_frames``);
a header that cannot be a frame drops the buffered bytes and the stream waits for the next
TCP segment (``cassandra.bad_headers``); a body that ends early or lies about a length loses
its decoded fields only (``cassandra.malformed_bodies``).
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from typing import Any

import cramjam
import lz4.block

from protocols.stats import Counters

# Opcodes (§2.4).
OP_ERROR = 0x00
OP_STARTUP = 0x01
OP_READY = 0x02
OP_AUTHENTICATE = 0x03
OP_OPTIONS = 0x05
OP_SUPPORTED = 0x06
OP_QUERY = 0x07
OP_RESULT = 0x08
OP_PREPARE = 0x09
OP_EXECUTE = 0x0A
OP_REGISTER = 0x0B
OP_EVENT = 0x0C
OP_BATCH = 0x0D
OP_AUTH_CHALLENGE = 0x0E
OP_AUTH_RESPONSE = 0x0F
OP_AUTH_SUCCESS = 0x10

OP_NAMES = {
    OP_ERROR: "ERROR",
    OP_STARTUP: "STARTUP",
    OP_READY: "READY",
    OP_AUTHENTICATE: "AUTHENTICATE",
    OP_OPTIONS: "OPTIONS",
    OP_SUPPORTED: "SUPPORTED",
    OP_QUERY: "QUERY",
    OP_RESULT: "RESULT",
    OP_PREPARE: "PREPARE",
    OP_EXECUTE: "EXECUTE",
    OP_REGISTER: "REGISTER",
    OP_EVENT: "EVENT",
    OP_BATCH: "BATCH",
    OP_AUTH_CHALLENGE: "AUTH_CHALLENGE",
    OP_AUTH_RESPONSE: "AUTH_RESPONSE",
    OP_AUTH_SUCCESS: "AUTH_SUCCESS",
}
OP_CODES = {v: k for k, v in OP_NAMES.items()}

# Header flags (§2.2).
FLAG_COMPRESS = 0x01
FLAG_TRACING = 0x02
FLAG_CUSTOM_PAYLOAD = 0x04
FLAG_WARNING = 0x08
#: Packetbeat names a flags byte only when exactly one flag (or none) is set.
HEAD_FLAG_NAMES = {0: "Default", 1: "Compress", 2: "Tracing", 4: "CustomPayload", 8: "Warning"}

# Rows metadata flags (§4.2.5.2).
ROWS_GLOBAL_TABLE_SPEC = 0x01
ROWS_HAS_MORE_PAGES = 0x02
ROWS_NO_METADATA = 0x04
ROWS_METADATA_CHANGED = 0x08
ROW_FLAG_NAMES = {1: "GlobalTableSpec", 2: "HasMorePages", 4: "NoMetaData"}

ERROR_TYPES = {
    0x0000: "errServer",
    0x000A: "errProtocol",
    0x0100: "errCredentials",
    0x1000: "errUnavailable",
    0x1001: "errOverloaded",
    0x1002: "errBootstrapping",
    0x1003: "errTruncate",
    0x1100: "errWriteTimeout",
    0x1200: "errReadTimeout",
    0x1300: "errReadFailure",
    0x1400: "errFunctionFailure",
    0x1500: "errWriteFailure",
    0x2000: "errSyntax",
    0x2100: "errUnauthorized",
    0x2200: "errInvalid",
    0x2300: "errConfig",
    0x2400: "errAlreadyExists",
    0x2500: "errUnprepared",
}

CONSISTENCY = {
    0x00: "ANY",
    0x01: "ONE",
    0x02: "TWO",
    0x03: "THREE",
    0x04: "QUORUM",
    0x05: "ALL",
    0x06: "LOCAL_QUORUM",
    0x07: "EACH_QUORUM",
    0x0A: "LOCAL_ONE",
}

HEADER_LEN = 9
MIN_VERSION = 3
MAX_VERSION = 5
#: Packetbeat's own ceiling on a frame's declared body length; above it the header is bad.
MAX_DECLARED = 256 * 1024 * 1024
#: Nesting of collection / UDT / tuple types skipped in column specs.
MAX_TYPE_DEPTH = 32

_HEADER = struct.Struct(">BBHBI")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


def head_flags_name(flags: int) -> str:
    return HEAD_FLAG_NAMES.get(flags) or f"UnknownFlag_{flags}"


def row_flags_name(flags: int) -> str:
    return ROW_FLAG_NAMES.get(flags) or f"FLAG_{flags}"


def op_name(op: int) -> str:
    return OP_NAMES.get(op) or f"UNKNOWN_OP_{op}"


class Malformed(Exception):
    """A body that ends early or lies about a length."""


class Reader:
    """Cursor over a body; every read checks the bounds (lengths never allocate first)."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def take(self, n: int) -> bytes:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise Malformed
        self.pos = p + n
        return bytes(self.buf[p : p + n])

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise Malformed
        self.pos += n

    def u8(self) -> int:
        p = self.pos
        if p >= self.end:
            raise Malformed
        self.pos = p + 1
        return self.buf[p]

    def u16(self) -> int:
        p = self.pos
        if p + 2 > self.end:
            raise Malformed
        self.pos = p + 2
        return int(_U16.unpack_from(self.buf, p)[0])

    def u32(self) -> int:
        """An [int] as Packetbeat reads it: unsigned."""
        p = self.pos
        if p + 4 > self.end:
            raise Malformed
        self.pos = p + 4
        return int(_U32.unpack_from(self.buf, p)[0])

    def i32(self) -> int:
        p = self.pos
        if p + 4 > self.end:
            raise Malformed
        self.pos = p + 4
        return int(_I32.unpack_from(self.buf, p)[0])

    def string(self) -> str:
        return self.take(self.u16()).decode("utf-8", "replace")

    def long_string(self) -> str:
        n = self.i32()
        if n < 0:
            return ""
        return self.take(n).decode("utf-8", "replace")

    def string_list(self) -> list[str]:
        n = self.u16()
        return [self.string() for _ in range(n)]

    def bytes_(self) -> bytes | None:
        n = self.i32()
        if n < 0:
            return None
        return self.take(n)

    def skip_bytes(self) -> None:
        n = self.i32()
        if n > 0:
            self.skip(n)

    def short_bytes(self) -> bytes:
        return self.take(self.u16())

    def inet(self) -> tuple[str, int]:
        size = self.u8()
        if size not in (4, 16):
            raise Malformed
        raw = self.take(size)
        ip: Any = ipaddress.ip_address(raw)
        if size == 16 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # Go prints a v4-mapped address as IPv4
        return str(ip), self.u32()

    def string_map(self) -> dict[str, str]:
        n = self.u16()
        out: dict[str, str] = {}
        for _ in range(n):
            k = self.string()
            out[k] = self.string()
        return out

    def string_multimap(self) -> dict[str, list[str]]:
        n = self.u16()
        out: dict[str, list[str]] = {}
        for _ in range(n):
            k = self.string()
            out[k] = self.string_list()
        return out

    def skip_bytes_map(self) -> None:
        for _ in range(self.u16()):
            self.skip(self.u16())
            self.skip_bytes()

    def skip_option(self, depth: int = 0) -> None:
        """A column type [option] (§4.2.5.2), nested types included."""
        if depth > MAX_TYPE_DEPTH:
            raise Malformed
        kind = self.u16()
        if kind == 0x0000:  # custom: class name
            self.skip(self.u16())
        elif kind in (0x0020, 0x0022):  # list, set
            self.skip_option(depth + 1)
        elif kind == 0x0021:  # map
            self.skip_option(depth + 1)
            self.skip_option(depth + 1)
        elif kind == 0x0030:  # UDT: keyspace, name, fields
            self.skip(self.u16())
            self.skip(self.u16())
            for _ in range(self.u16()):
                self.skip(self.u16())
                self.skip_option(depth + 1)
        elif kind == 0x0031:  # tuple
            for _ in range(self.u16()):
                self.skip_option(depth + 1)


def go_quote(data: bytes | None) -> str:
    """Go's ``fmt.Sprintf("%q", []byte)``: a double-quoted Go string literal."""
    if not data:
        return '""'
    text = data.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in text:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


class Frame:
    """One decoded frame. ``data`` is the map Packetbeat puts under ``cassandra.request`` or
    ``cassandra.response`` (without ``headers``); None when the body was not decoded."""

    __slots__ = ("data", "flags", "length", "op", "size", "stream", "ts", "version")

    def __init__(
        self, version: int, flags: int, stream: int, op: int, length: int, size: int, ts: int
    ) -> None:
        self.version = version
        self.flags = flags
        self.stream = stream
        self.op = op
        self.length = length
        self.size = size
        self.ts = ts
        self.data: dict[str, Any] | None = None

    @property
    def is_response(self) -> bool:
        return bool(self.version & 0x80)

    @property
    def proto(self) -> int:
        return self.version & 0x7F

    def headers(self) -> dict[str, Any]:
        return {
            "version": str(self.version & 0x7F),
            "flags": head_flags_name(self.flags),
            "stream": self.stream,
            "op": op_name(self.op),
            "length": self.length,
        }

    def __repr__(self) -> str:
        kind = "resp" if self.is_response else "req"
        return f"Frame(v{self.proto} {kind} {op_name(self.op)} stream={self.stream} len={self.length})"


class ConnState:
    """What both directions of one connection share: the compression STARTUP asked for."""

    __slots__ = ("compression",)

    def __init__(self, compression: str = "") -> None:
        self.compression = compression


# --- compression ---------------------------------------------------------------------------


class Bomb(Exception):
    pass


def _snappy_len(body: bytes) -> int:
    """The uncompressed length varint that starts a raw Snappy block."""
    n = shift = 0
    for i in range(min(len(body), 5)):
        b = body[i]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n
        shift += 7
    raise Malformed


def decompress(body: bytes, algo: str, cap: int) -> bytes:
    """``body`` decompressed with ``algo`` (``lz4``/``snappy``); Malformed or Bomb otherwise."""
    if algo == "lz4":
        if len(body) < 4:
            raise Malformed
        n = int(_U32.unpack_from(body, 0)[0])
        if n > cap:
            raise Bomb
        if n == 0:
            return b""
        try:
            out = lz4.block.decompress(body[4:], uncompressed_size=n)
        except (lz4.block.LZ4BlockError, ValueError) as exc:
            raise Malformed from exc
        if len(out) != n:
            raise Malformed
        return bytes(out)
    n = _snappy_len(body)
    if n > cap:
        raise Bomb
    try:
        out = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise Malformed from exc
    if len(out) != n:
        raise Malformed
    return out


def guess_decompress(body: bytes, cap: int) -> tuple[bytes, str]:
    """No STARTUP seen and no ``compressor``: LZ4 if its length prefix and block agree, else Snappy."""
    bomb = False
    for algo in ("lz4", "snappy"):
        try:
            return decompress(body, algo, cap), algo
        except Bomb:
            bomb = True
        except Malformed:
            pass
    if bomb:
        raise Bomb
    raise Malformed


# --- bodies --------------------------------------------------------------------------------


def _metadata(r: Reader, proto: int, prepared: bool) -> dict[str, Any]:
    """Rows or prepared metadata (§4.2.5.2, §4.2.5.4), rendered as Packetbeat renders it,
    read to its end (column specs included) so that what follows is read right."""
    flags = r.i32()
    cols = r.i32()
    meta: dict[str, Any] = {"flags": row_flags_name(flags & 0xFFFFFFFF), "col_count": cols & 0xFFFFFFFF}
    if prepared and proto >= 4:
        n = r.i32()
        if n < 0 or n * 2 > r.end - r.pos:
            raise Malformed
        meta["pkey_columns"] = [r.u16() for _ in range(n)]
    paged = False
    if not prepared and flags & ROWS_HAS_MORE_PAGES:
        state = r.bytes_()
        meta["paging_state"] = state.hex().upper() if state else ""
        paged = True
    if not prepared and proto >= 5 and flags & ROWS_METADATA_CHANGED:
        r.skip(r.u16())
    if flags & ROWS_NO_METADATA:
        return meta
    glob = flags & ROWS_GLOBAL_TABLE_SPEC
    if glob:
        keyspace = r.string()
        table = r.string()
        # Packetbeat stops after the paging state, so a paged result names no table.
        if not paged:
            meta["keyspace"] = keyspace
            meta["table"] = table
    if cols < 0 or cols * 4 > r.end - r.pos:
        raise Malformed
    for _ in range(cols):
        if not glob:
            r.skip(r.u16())
            r.skip(r.u16())
        r.skip(r.u16())
        r.skip_option()
    return meta


def _schema_change(r: Reader) -> dict[str, Any]:
    change = r.string()
    target = r.string()
    out: dict[str, Any] = {"change": change, "target": target}
    if target == "KEYSPACE":
        out["keyspace"] = r.string()
    elif target in ("TABLE", "TYPE"):
        out["keyspace"] = r.string()
        out["object"] = r.string()
    elif target in ("FUNCTION", "AGGREGATE"):
        out["keyspace"] = r.string()
        out["name"] = r.string()
        out["args"] = r.string_list()
    return out


def _result(r: Reader, proto: int) -> dict[str, Any]:
    kind = r.i32()
    if kind == 1:
        return {"type": "void"}
    if kind == 2:
        meta = _metadata(r, proto, False)
        return {"type": "rows", "rows": {"meta": meta, "num_rows": r.u32()}}
    if kind == 3:
        return {"type": "set_keyspace", "keyspace": r.string()}
    if kind == 4:
        pid = r.short_bytes()
        if proto >= 5:
            r.skip(r.u16())  # result_metadata_id
        prepared: dict[str, Any] = {
            "prepared_id": _uuid(pid if len(pid) == 16 else bytes(16)),
            "req_meta": _metadata(r, proto, True),
            "resp_meta": _metadata(r, proto, False),
        }
        return {"type": "prepared", "prepared": prepared}
    if kind == 5:
        return {"type": "schemaChanged", "schema_change": _schema_change(r)}
    return {}


def _uuid(b: bytes) -> str:
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reasons(r: Reader) -> int:
    """v5 <reasonmap>: [int] n, then n (inetaddr, short) pairs; returns n."""
    n = r.i32()
    if n < 0:
        raise Malformed
    for _ in range(n):
        size = r.u8()
        r.skip(size)
        r.skip(2)
    return n


def _consistency(r: Reader) -> str:
    c = r.u16()
    return CONSISTENCY.get(c) or f"UNKNOWN_CONS_0x{c:x}"


def _error(r: Reader, proto: int) -> dict[str, Any]:
    code = r.u32()
    msg = r.string()
    etype = ERROR_TYPES.get(code, "ErrUnknown")
    out: dict[str, Any] = {"code": code, "msg": msg, "type": etype}
    d: dict[str, Any] = {}
    if code == 0x1000:
        d["read_consistency"] = _consistency(r)
        d["required"] = r.u32()
        d["alive"] = r.u32()
    elif code == 0x1100:
        d["read_consistency"] = _consistency(r)
        d["received"] = r.u32()
        d["blockfor"] = r.u32()
        d["write_type"] = r.string()
    elif code == 0x1200:
        d["read_consistency"] = _consistency(r)
        d["received"] = r.u32()
        d["blockfor"] = r.u32()
        d["data_present"] = r.u8() != 0
    elif code == 0x2400:
        d["keyspace"] = r.string()
        d["table"] = r.string()
    elif code == 0x2500:
        import base64

        d["stmt_id"] = base64.b64encode(r.short_bytes()).decode()  # Go marshals []byte as base64
    elif code == 0x1300:
        d["read_consistency"] = _consistency(r)
        d["received"] = r.u32()
        d["blockfor"] = r.u32()
        if proto >= 5:
            _reasons(r)
        else:
            r.skip(4)  # numfailures
        d["data_present"] = r.u8() != 0
    elif code == 0x1500:
        d["read_consistency"] = _consistency(r)
        d["received"] = r.u32()
        d["blockfor"] = r.u32()
        d["num_failures"] = _reasons(r) if proto >= 5 else r.u32()
        d["write_type"] = r.string()
    elif code == 0x1400:
        d["keyspace"] = r.string()
        d["function"] = r.string()
        d["arg_types"] = r.string_list()
    if d:
        out["details"] = d
    return out


def _event(r: Reader) -> dict[str, Any]:
    etype = r.string()
    out: dict[str, Any] = {"type": etype}
    if etype in ("TOPOLOGY_CHANGE", "STATUS_CHANGE"):
        out["change"] = r.string()
        host, port = r.inet()
        out["host"] = host
        out["port"] = port
    elif etype == "SCHEMA_CHANGE":
        out["schema_change"] = _schema_change(r)
    return out


def decode_body(frame: Frame, body: bytes | memoryview, conn: ConnState | None = None) -> dict[str, Any]:
    """The Packetbeat map of one (decompressed) body; Malformed when it does not hold."""
    r = Reader(body)
    data: dict[str, Any] = {}
    flags = frame.flags
    response = frame.is_response
    proto = frame.proto
    if response and flags & FLAG_TRACING:
        r.skip(16)  # tracing id [uuid] (§2.2)
    if flags & FLAG_WARNING:
        data["warnings"] = r.string_list()
    if flags & FLAG_CUSTOM_PAYLOAD:
        r.skip_bytes_map()
    op = frame.op
    if op == OP_QUERY:
        return {"query": r.long_string()}
    if op == OP_RESULT:
        data["result"] = _result(r, proto)
    elif op == OP_ERROR:
        data["error"] = _error(r, proto)
    elif op == OP_EVENT:
        data["event"] = _event(r)
    elif op == OP_SUPPORTED:
        return {"supported": r.string_multimap()}
    elif op == OP_AUTHENTICATE:
        data["authentication"] = {"class": r.string()}
    elif op in (OP_AUTH_CHALLENGE, OP_AUTH_SUCCESS):
        data["authentication"] = {"data": go_quote(r.bytes_())}
    elif op == OP_STARTUP and conn is not None and not response:
        opts = r.string_map()
        algo = opts.get("COMPRESSION", "").lower()
        if algo in ("lz4", "snappy"):
            conn.compression = algo
    return data


# --- framing -------------------------------------------------------------------------------


def crc24(value: int, nbytes: int) -> int:
    """CRC24 of the low ``nbytes`` bytes of ``value``, least significant first (v5 §2.2)."""
    crc = 0x875060
    for _ in range(nbytes):
        crc ^= (value & 0xFF) << 16
        value >>= 8
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc & 0xFFFFFF


CRC32_INITIAL = zlib.crc32(b"\xfa\x2d\x55\xca")
MAX_SEGMENT_PAYLOAD = (1 << 17) - 1


class FrameStream:
    """One direction of a connection: bytes in, frames out.

    ``feed`` returns every frame completed by the new bytes. In legacy mode the TCP bytes
    are frames; once v5 framing starts (``segments``) they are segments whose payloads are
    joined in ``fbuf`` and cut into frames there.
    """

    __slots__ = (
        "bts",
        "buf",
        "conn",
        "default_compression",
        "fbuf",
        "fts",
        "lost",
        "max_frame",
        "mode_lz4",
        "segments",
        "skip",
        "skip_frame",
        "stats",
    )

    def __init__(
        self, stats: Counters, conn: ConnState, max_frame: int, default_compression: str = ""
    ) -> None:
        self.stats = stats
        self.conn = conn
        self.max_frame = max_frame
        self.default_compression = default_compression
        self.buf = bytearray()
        self.bts = 0
        #: v5: joined segment payloads not yet cut into frames, and when they started.
        self.fbuf = bytearray()
        self.fts = 0
        self.segments = False
        self.mode_lz4 = False
        #: Body bytes of an oversized frame still to be skipped (legacy mode).
        self.skip = 0
        self.skip_frame = 0
        #: The place in the stream is lost: wait for the next TCP segment.
        self.lost = False

    @property
    def pending(self) -> int:
        return len(self.buf) + len(self.fbuf) + self.skip + self.skip_frame

    def reset(self) -> None:
        """Bytes were lost: drop what is buffered and look for a header in the next data."""
        if self.pending:
            self.stats.incr("cassandra.incomplete_messages")
        self.buf = bytearray()
        self.fbuf = bytearray()
        self.skip = 0
        self.skip_frame = 0
        self.lost = True

    def feed(self, data: bytes, ts: int) -> list[Frame]:
        if self.lost:
            # Resynchronise at a TCP segment boundary, as Packetbeat does after an error.
            self.lost = False
            if not self._plausible_start(data):
                self.stats.incr("cassandra.bad_headers")
                self.lost = True
                return []
        out: list[Frame] = []
        if self.segments:
            self._feed_segments(data, ts, out)
            return out
        if self.skip:
            if len(data) <= self.skip:
                self.skip -= len(data)
                return out
            data = data[self.skip :]
            self.skip = 0
        buf: bytes | bytearray = self.buf
        if buf:
            self.buf += data
            buf = self.buf
        else:
            # Nothing waits: cut frames straight out of the segment, keep only the rest.
            buf = data
            self.bts = ts
        pos = self._frames(buf, self.bts, ts, out, legacy=True)
        if pos < 0:
            return out
        if self.segments and pos < len(buf):
            # The rest of the TCP bytes after the switch are segments.
            rest = bytes(buf[pos:])
            self.buf = bytearray()
            self._feed_segments(rest, ts, out)
            return out
        if buf is data:
            if pos < len(data):
                self.buf = bytearray(data[pos:])
                if pos:
                    self.bts = ts
        elif pos:
            del self.buf[:pos]
            self.bts = ts
        return out

    def _plausible_start(self, data: bytes) -> bool:
        if self.segments:
            return self._segment_header(data, 0) is not None
        if len(data) < 5:
            return False
        v = data[0] & 0x7F
        return (MIN_VERSION <= v <= MAX_VERSION and data[4] in OP_NAMES) or self._segments_begin(data, 0)

    def _segments_begin(self, buf: bytes | bytearray, pos: int) -> bool:
        """A capture that starts after a v5 STARTUP: bytes that are no frame header but a
        segment header whose CRC24 holds (a 1 in 2^24 chance for other bytes) switch this
        direction to segments, LZ4 ones if that is what the 8-byte header form says."""
        for lz4_mode, hlen in ((False, 6), (True, 8)):
            if len(buf) - pos < hlen:
                continue
            self.mode_lz4 = lz4_mode
            head = self._segment_header(buf, pos)
            if head is not None and head[1] >= 0:
                self.segments = True
                self.stats.incr("cassandra.v5_segments_detected")
                return True
        self.mode_lz4 = False
        return False

    def _frames(self, buf: bytes | bytearray, first_ts: int, ts: int, out: list[Frame], legacy: bool) -> int:
        """Cut whole frames out of ``buf``; returns the position reached, -1 after a bad header.

        The first frame started at ``first_ts`` (when the buffered bytes began); the others
        at ``ts``, the data that completed them (Packetbeat's message times).
        """
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_LEN:
            version, flags, stream, op, length = _HEADER.unpack_from(buf, pos)
            proto = version & 0x7F
            if not MIN_VERSION <= proto <= MAX_VERSION or op not in OP_NAMES or length > MAX_DECLARED:
                if legacy and self._segments_begin(buf, pos):
                    return pos
                self.stats.incr("cassandra.bad_headers")
                self.reset()
                return -1
            frame = Frame(version, flags, stream, op, length, HEADER_LEN + length, first_ts)
            first_ts = ts
            if length > self.max_frame:
                self.stats.incr("cassandra.oversized_frames")
                out.append(frame)
                avail = end - pos - HEADER_LEN
                if legacy:
                    self.skip = length - avail
                else:
                    self.skip_frame = length - avail
                return end
            if end - pos - HEADER_LEN < length:
                break
            body = memoryview(buf)[pos + HEADER_LEN : pos + HEADER_LEN + length]
            try:
                self._decode(frame, body)
            finally:
                body.release()
            out.append(frame)
            pos += HEADER_LEN + length
            if legacy and proto >= 5 and self._switches(frame):
                self.segments = True
                self.mode_lz4 = self.conn.compression == "lz4"
                return pos
        return pos

    @staticmethod
    def _switches(frame: Frame) -> bool:
        """v5 framing starts after the client's STARTUP and the server's answer to it."""
        if frame.is_response:
            return frame.op in (OP_READY, OP_AUTHENTICATE)
        return frame.op == OP_STARTUP

    def _decode(self, frame: Frame, body: memoryview) -> None:
        raw: bytes | memoryview = body
        if frame.flags & FLAG_COMPRESS and frame.proto < 5:
            algo = self.conn.compression or self.default_compression
            try:
                if algo:
                    raw = decompress(bytes(body), algo, self.max_frame)
                else:
                    raw, algo = guess_decompress(bytes(body), self.max_frame)
                    self.conn.compression = algo
            except Bomb:
                self.stats.incr("cassandra.decompression_bombs")
                return
            except Malformed:
                self.stats.incr("cassandra.decompression_errors")
                return
        try:
            frame.data = decode_body(frame, raw, self.conn)
        except (Malformed, UnicodeDecodeError, ValueError):
            self.stats.incr("cassandra.malformed_bodies")

    # -- v5 segments --

    def _segment_header(self, buf: bytes | bytearray, pos: int) -> tuple[int, int, int, bool] | None:
        """(header length, payload length on the wire, uncompressed length, self-contained),
        or None when the header's CRC24 does not hold."""
        if self.mode_lz4:
            if len(buf) - pos < 8:
                return (8, -1, 0, False)
            h = int.from_bytes(buf[pos : pos + 5], "little")
            if crc24(h, 5) != int.from_bytes(buf[pos + 5 : pos + 8], "little"):
                return None
            return (8, h & 0x1FFFF, (h >> 17) & 0x1FFFF, bool(h >> 34 & 1))
        if len(buf) - pos < 6:
            return (6, -1, 0, False)
        h = int.from_bytes(buf[pos : pos + 3], "little")
        if crc24(h, 3) != int.from_bytes(buf[pos + 3 : pos + 6], "little"):
            return None
        return (6, h & 0x1FFFF, 0, bool(h >> 17 & 1))

    def _feed_segments(self, data: bytes, ts: int, out: list[Frame]) -> None:
        buf = self.buf
        buf += data
        pos = 0
        end = len(buf)
        while True:
            head = self._segment_header(buf, pos)
            if head is None:
                self.stats.incr("cassandra.segment_crc_errors")
                self.reset()
                return
            hlen, plen, ulen, _self_contained = head
            if plen < 0 or end - pos < hlen + plen + 4:
                break
            start = pos + hlen
            payload = bytes(buf[start : start + plen])
            crc = int.from_bytes(buf[start + plen : start + plen + 4], "little")
            pos = start + plen + 4
            if zlib.crc32(payload, CRC32_INITIAL) != crc:
                self.stats.incr("cassandra.segment_crc_errors")
                self.fbuf = bytearray()
                self.skip_frame = 0
                continue
            if ulen:
                try:
                    payload = lz4.block.decompress(payload, uncompressed_size=ulen)
                except (lz4.block.LZ4BlockError, ValueError):
                    payload = b""
                if len(payload) != ulen:
                    self.stats.incr("cassandra.decompression_errors")
                    self.fbuf = bytearray()
                    self.skip_frame = 0
                    continue
            if not self._segment_payload(payload, ts, out):
                return
        if pos:
            del buf[:pos]

    def _segment_payload(self, payload: bytes, ts: int, out: list[Frame]) -> bool:
        """Frames out of one segment's payload; False when a bad frame header lost the place."""
        if self.skip_frame:
            if len(payload) <= self.skip_frame:
                self.skip_frame -= len(payload)
                return True
            payload = payload[self.skip_frame :]
            self.skip_frame = 0
        fbuf = self.fbuf
        if not fbuf:
            self.fts = ts
        fbuf += payload
        pos = self._frames(fbuf, self.fts, ts, out, legacy=False)
        if pos < 0:
            return False
        if pos:
            del fbuf[:pos]
            self.fts = ts
        return True
