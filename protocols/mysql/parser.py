"""MySQL client/server protocol: packet framing and the packet decoders.

Wire format (MySQL "Client/Server Protocol", also spoken by MariaDB): every packet is a
3-byte little-endian payload length, a 1-byte sequence id and the payload. A payload of
exactly 0xFFFFFF bytes is continued by the next packet. Decoders here are pure functions
over one payload; they raise ``ParseError`` (or let ``IndexError``/``struct.error``
escape, which callers treat the same) on malformed input.
"""

from __future__ import annotations

import struct

from protocols.common.framing import FramedStream

#: Commands (``COM_*``) that Packetbeat turns into transactions.
COM_QUIT = 0x01
COM_QUERY = 0x03
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
#: Commands the server never answers.
NO_RESPONSE = frozenset({COM_QUIT, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE})
#: Highest command byte we accept when looking for a packet boundary (COM_STMT_BULK_EXECUTE, MariaDB).
MAX_COMMAND = 0xFA

# Capability flags (protocol::CapabilityFlags).
CLIENT_COMPRESS = 0x00000020
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SSL = 0x00000800
CLIENT_DEPRECATE_EOF = 0x01000000
CLIENT_ZSTD = 0x04000000
CLIENT_QUERY_ATTRIBUTES = 0x08000000

# Server status flags.
SERVER_MORE_RESULTS_EXISTS = 0x0008

MAX_PAYLOAD = 0xFFFFFF

# Column types (enum_field_types).
T_DECIMAL, T_TINY, T_SHORT, T_LONG, T_FLOAT, T_DOUBLE, T_NULL, T_TIMESTAMP = range(8)
T_LONGLONG, T_INT24, T_DATE, T_TIME, T_DATETIME, T_YEAR, T_NEWDATE, T_VARCHAR, T_BIT = range(8, 17)
T_TIMESTAMP2, T_DATETIME2, T_TIME2 = 17, 18, 19
UNSIGNED_FLAG = 0x20

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_FIXED_INT = {
    T_TINY: (1, struct.Struct("<b"), struct.Struct("<B")),
    T_YEAR: (2, struct.Struct("<h"), struct.Struct("<H")),
    T_SHORT: (2, struct.Struct("<h"), struct.Struct("<H")),
    T_INT24: (4, struct.Struct("<i"), struct.Struct("<I")),
    T_LONG: (4, struct.Struct("<i"), struct.Struct("<I")),
    T_LONGLONG: (8, struct.Struct("<q"), struct.Struct("<Q")),
}
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")
_DATES = DATE_TYPES = frozenset({T_TIMESTAMP, T_DATE, T_DATETIME, T_NEWDATE, T_TIMESTAMP2, T_DATETIME2})
_TIMES = frozenset({T_TIME, T_TIME2})


class ParseError(ValueError):
    """A payload that does not decode as the packet it should be."""


class PacketStream(FramedStream):
    """Cuts one direction into packets. Bounded: a packet larger than ``max_packet`` is
    delivered as its first ``prefix`` bytes and the rest is skipped without buffering."""

    __slots__ = ("cont", "max_packet")

    def __init__(self, max_packet: int = 4 << 20, prefix: int = 64 << 10) -> None:
        super().__init__(prefix)
        self.cont = False
        self.max_packet = max_packet

    def reset(self) -> None:
        super().reset()
        self.cont = False

    def feed(self, data: bytes) -> list[tuple[int, bytes, int, bool]]:
        """(seq, payload, full payload length, is continuation) for every complete packet."""
        out: list[tuple[int, bytes, int, bool]] = []
        joined = self._take(data)
        if joined is None:
            return out
        data = joined
        pos = 0
        end = len(data)
        while end - pos >= 4:
            n = data[pos] | (data[pos + 1] << 8) | (data[pos + 2] << 16)
            avail = end - pos - 4
            cont = self.cont
            self.cont = n == MAX_PAYLOAD
            if n > self.max_packet:
                # Oversized: keep the first ``prefix`` bytes, however the bytes arrive.
                if avail < self.prefix:
                    self.need = 4 + self.prefix
                    self.cont = cont
                    break
                start = pos + 4 + self.prefix
                out.append((data[pos + 3], data[pos + 4 : start], n, cont))
                self.oversized += 1
                rest = n - self.prefix
                if end - start >= rest:
                    pos = start + rest
                    continue
                self.skip = rest - (end - start)
                pos = end
                break
            if avail >= n:
                out.append((data[pos + 3], data[pos + 4 : pos + 4 + n], n, cont))
                pos += 4 + n
                continue
            self.need = 4 + n
            self.cont = cont
            break
        self._keep(data, pos, 4)
        return out


# -- primitive readers --------------------------------------------------------------------


def lenenc_int(b: bytes, off: int) -> tuple[int, int]:
    """A length-encoded integer at ``off``: (value, offset after it)."""
    c = b[off]
    if c < 0xFB:
        return c, off + 1
    if c == 0xFC:
        return _U16.unpack_from(b, off + 1)[0], off + 3
    if c == 0xFD:
        return b[off + 1] | (b[off + 2] << 8) | (b[off + 3] << 16), off + 4
    if c == 0xFE:
        return _U64.unpack_from(b, off + 1)[0], off + 9
    raise ParseError(f"invalid length-encoded integer 0x{c:02x}")


def lenenc_str(b: bytes, off: int) -> tuple[bytes, int]:
    n, off = lenenc_int(b, off)
    end = off + n
    if end > len(b):
        raise ParseError("length-encoded string runs past the packet")
    return b[off:end], end


def text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# -- generic response packets -------------------------------------------------------------


def parse_ok(p: bytes) -> tuple[int, int, int]:
    """OK packet (0x00, or 0xFE when it ends a result set): (affected rows, insert id, status)."""
    affected, off = lenenc_int(p, 1)
    insert_id, off = lenenc_int(p, off)
    status = _U16.unpack_from(p, off)[0] if off + 2 <= len(p) else 0
    return affected, insert_id, status


def eof_status(p: bytes) -> int:
    """Status flags of a classic EOF packet (0xFE, warnings, status)."""
    return _U16.unpack_from(p, 3)[0] if len(p) >= 5 else 0


def parse_err(p: bytes) -> tuple[int, str]:
    """ERR packet: (error code, ``SQLSTATE: message``) as Packetbeat renders it."""
    if len(p) < 3:
        raise ParseError("short ERR packet")
    code = _U16.unpack_from(p, 1)[0]
    if len(p) >= 9 and p[3] == 0x23:  # '#' marks the SQLSTATE (CLIENT_PROTOCOL_41)
        return code, f"{text(p[4:9])}: {text(p[9:])}"
    return code, text(p[3:])


def is_eof(p: bytes, n: int) -> bool:
    """Classic EOF packet: 0xFE and shorter than 9 bytes (5 in protocol 4.1)."""
    return n < 9 and len(p) > 0 and p[0] == 0xFE


def is_terminator(p: bytes, n: int) -> bool:
    """End of a row stream: an EOF packet, or the OK packet (0xFE header) that replaces it
    under CLIENT_DEPRECATE_EOF. A row cannot start with 0xFE unless its first value is at
    least 2**24 bytes, which makes the packet 0xFFFFFF long."""
    return n < MAX_PAYLOAD and len(p) > 0 and p[0] == 0xFE


class ColumnDef:
    __slots__ = ("flags", "name", "path", "schema", "table", "type")

    def __init__(self, schema: str, table: str, name: str, type_: int, flags: int) -> None:
        self.schema = schema
        self.table = table
        self.name = name
        self.type = type_
        self.flags = flags
        #: ``schema.table`` as Packetbeat reports it in ``path``.
        self.path = f"{schema}.{table}"


#: Column definitions repeat with every execution of the same query: decode each once.
_COLUMN_CACHE: dict[bytes, ColumnDef] = {}
_COLUMN_CACHE_MAX = 4096


def column_def(p: bytes) -> ColumnDef:
    col = _COLUMN_CACHE.get(p)
    if col is None:
        col = parse_column_def(p)
        if len(_COLUMN_CACHE) >= _COLUMN_CACHE_MAX:
            _COLUMN_CACHE.clear()
        _COLUMN_CACHE[p] = col
    return col


def parse_column_def(p: bytes) -> ColumnDef:
    """Column definition (protocol 4.1): catalog, schema, table, org_table, name, org_name,
    then fixed fields: charset(2) length(4) type(1) flags(2) decimals(1)."""
    _, off = lenenc_str(p, 0)
    schema, off = lenenc_str(p, off)
    table, off = lenenc_str(p, off)
    _, off = lenenc_str(p, off)
    name, off = lenenc_str(p, off)
    _, off = lenenc_str(p, off)
    type_ = flags = 0
    if off < len(p):
        _, off = lenenc_int(p, off)  # length of the fixed fields (0x0c)
        if off + 9 <= len(p):
            type_ = p[off + 6]
            flags = _U16.unpack_from(p, off + 7)[0]
    return ColumnDef(text(schema), text(table), text(name), type_, flags)


def parse_prepare_ok(p: bytes) -> tuple[int, int, int]:
    """COM_STMT_PREPARE OK: (statement id, number of columns, number of parameters)."""
    if len(p) < 9:
        raise ParseError("short PREPARE OK packet")
    stmt_id = _U32.unpack_from(p, 1)[0]
    ncols, nparams = struct.unpack_from("<HH", p, 5)
    return stmt_id, ncols, nparams


# -- rows ---------------------------------------------------------------------------------


def _cut(values: list[str], value: str, used: int, limit: int) -> int:
    """Packetbeat's row cap: values are appended while the row is under ``limit``
    characters; the value that crosses it is cut, later values are left out."""
    if used < limit:
        if used + len(value) > limit:
            value = value[: limit - used]
        values.append(value)
        used += len(value)
    return used


def text_row(p: bytes, limit: int) -> list[str]:
    """A text-protocol row: one length-encoded string per column, 0xFB for NULL."""
    values: list[str] = []
    used = 0
    off = 0
    end = len(p)
    while off < end:
        if p[off] == 0xFB:
            value = "NULL"
            off += 1
        else:
            try:
                n, off = lenenc_int(p, off)
            except (ParseError, IndexError, struct.error):
                break  # a cut-off row: keep what was read
            # A value past the end belongs to an oversized row kept only in part.
            value = text(p[off : off + n])
            off += n
        used = _cut(values, value, used, limit)
    return values


def binary_value(p: bytes, off: int, type_: int, unsigned: bool) -> tuple[str, int]:
    """One value of a binary-protocol row or of COM_STMT_EXECUTE parameters."""
    fixed = _FIXED_INT.get(type_)
    if fixed is not None:
        size, signed_s, unsigned_s = fixed
        v = (unsigned_s if unsigned else signed_s).unpack_from(p, off)[0]
        return str(v), off + size
    if type_ == T_FLOAT:
        return repr(_FLOAT.unpack_from(p, off)[0]), off + 4
    if type_ == T_DOUBLE:
        return repr(_DOUBLE.unpack_from(p, off)[0]), off + 8
    if type_ == T_NULL:
        return "NULL", off
    if type_ in _DATES:
        n = p[off]
        d = p[off + 1 : off + 1 + n]
        if len(d) < n:
            raise ParseError("date value runs past the packet")
        off += 1 + n
        if n == 0:
            return "0000-00-00 00:00:00" if type_ != T_DATE else "0000-00-00", off
        year = _U16.unpack_from(d, 0)[0]
        s = f"{year:04d}-{d[2]:02d}-{d[3]:02d}"
        if n >= 7:
            s += f" {d[4]:02d}:{d[5]:02d}:{d[6]:02d}"
        if n >= 11:
            s += f".{_U32.unpack_from(d, 7)[0]:06d}"
        return s, off
    if type_ in _TIMES:
        n = p[off]
        d = p[off + 1 : off + 1 + n]
        if len(d) < n:
            raise ParseError("time value runs past the packet")
        off += 1 + n
        if n == 0:
            return "00:00:00", off
        neg = d[0] == 1
        days = _U32.unpack_from(d, 1)[0]
        s = f"{days * 24 + d[5]:02d}:{d[6]:02d}:{d[7]:02d}"
        if n >= 12:
            s += f".{_U32.unpack_from(d, 8)[0]:06d}"
        return ("-" + s if neg else s), off
    raw, off = lenenc_str(p, off)
    return text(raw), off


def binary_row(p: bytes, columns: list[ColumnDef], limit: int) -> list[str]:
    """A binary-protocol row (COM_STMT_EXECUTE result): 0x00, NULL bitmap (offset 2), values."""
    values: list[str] = []
    ncols = len(columns)
    off = 1 + (ncols + 9) // 8
    used = 0
    for i, col in enumerate(columns):
        bit = i + 2
        if p[1 + bit // 8] & (1 << (bit % 8)):
            value = "NULL"
        else:
            try:
                value, off = binary_value(p, off, col.type, bool(col.flags & UNSIGNED_FLAG))
            except (ParseError, IndexError, struct.error):
                break
        used = _cut(values, value, used, limit)
    return values


# -- requests -----------------------------------------------------------------------------


def execute_params(
    p: bytes, nparams: int, saved_types: list[tuple[int, bool]] | None, query_attributes: bool = False
) -> tuple[list[str], list[tuple[int, bool]] | None]:
    """Bound values of COM_STMT_EXECUTE: (values as strings, parameter types to remember).

    Layout: 0x17, stmt id(4), flags(1), iterations(4), [parameter count (lenenc) when
    CLIENT_QUERY_ATTRIBUTES and flag 0x08], NULL bitmap, new-params-bound(1),
    [type(1) unsigned(1) [name (lenenc) with query attributes]] * n when bound, values.
    Types are sent with the first execution only, so later executions reuse them. Query
    attributes (MySQL 8) are extra parameters after the statement's own; they are skipped.
    """
    off = 10
    total = nparams
    if query_attributes and len(p) > 5 and p[5] & 0x08:
        total, off = lenenc_int(p, off)
    if total <= 0:
        return [], saved_types
    nbitmap = (total + 7) // 8
    bitmap = p[off : off + nbitmap]
    off += nbitmap
    if len(bitmap) < nbitmap or off >= len(p):
        raise ParseError("short COM_STMT_EXECUTE")
    bound = p[off]
    off += 1
    types = saved_types
    if bound == 1:
        types = []
        for _ in range(total):
            types.append((p[off], bool(p[off + 1] & 0x80)))
            off += 2
            if query_attributes:
                _, off = lenenc_str(p, off)
    if types is None or len(types) < nparams:
        raise ParseError("COM_STMT_EXECUTE without parameter types")
    values = []
    for i in range(nparams):
        if bitmap[i // 8] & (1 << (i % 8)):
            values.append("NULL")
            continue
        type_, unsigned = types[i]
        value, off = binary_value(p, off, type_, unsigned)
        values.append(value)
    return values, types[:nparams] if bound == 1 else types


def query_text(p: bytes, query_attributes: bool) -> bytes:
    """The SQL of COM_QUERY. With CLIENT_QUERY_ATTRIBUTES (MySQL 8) it follows a parameter
    count, a parameter-set count (always 1) and, when there are attributes, their NULL
    bitmap, types, names and values."""
    if not query_attributes:
        return p[1:]
    n, off = lenenc_int(p, 1)
    _, off = lenenc_int(p, off)
    if n:
        bitmap = p[off : off + (n + 7) // 8]
        off += (n + 7) // 8
        bound = p[off]
        off += 1
        types = []
        if bound == 1:
            for _ in range(n):
                types.append((p[off], bool(p[off + 1] & 0x80)))
                _, off = lenenc_str(p, off + 2)
        for i, (type_, unsigned) in enumerate(types):
            if not bitmap[i // 8] & (1 << (i % 8)):
                _, off = binary_value(p, off, type_, unsigned)
    return p[off:]
