"""AMQP 0-9-1 data types: short and long strings, field tables, timestamps, decimals, the
basic content properties -- rendered the way Packetbeat 9.3 renders them
(``protos/amqp/amqp_fields.go``, ``amqp_parser.go``).

Written by hand (no AMQP library decodes a table without a connection around it, and pika's
decoder renders values its own way): every read is bounds-checked and raises ``Malformed``.

Renderings that follow Packetbeat:

* a field array is a map keyed by the element's index (``{"0": .., "1": ..}``);
* a timestamp is ``January _2 15:04:05 2006`` (Go's layout), in UTC;
* a decimal is its digits with a point ``scale`` places from the right (``.05`` for 0.05);
* floats are the shortest decimal that reads back as the same float32/float64;
* strings are UTF-8 with each invalid byte turned into U+FFFD (Go's JSON encoder).

Renderings that fix Packetbeat (docs/differences.md, AMQP): ``I`` and ``l`` are signed (Go
reads them unsigned), ``s`` is a 16-bit signed integer (RabbitMQ's errata; Go takes it for
a short string), a byte array ``x`` shows its own bytes (Go shows the 4 bytes after them),
and a decimal's value is signed.
"""

from __future__ import annotations

import struct
import time
from typing import Any

_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_BI32 = struct.Struct(">Bi")

#: Nesting of tables and arrays within tables (Packetbeat recurses without a bound).
MAX_DEPTH = 64

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class Malformed(ValueError):
    """Bytes that do not decode as what they should be (short, lying lengths, bad types)."""


def go_text(raw: bytes) -> str:
    """Bytes as Go's ``string(b)`` comes out of its JSON encoder: U+FFFD per invalid byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
        return "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in text)


def short_string(buf: bytes, pos: int) -> tuple[str, int]:
    """A length byte and that many bytes."""
    try:
        end = pos + 1 + buf[pos]
    except IndexError:
        raise Malformed("short string length past the end") from None
    if end > len(buf):
        raise Malformed("short string past the end")
    raw = buf[pos + 1 : end]
    try:
        return raw.decode(), end
    except UnicodeDecodeError:
        return go_text(raw), end


def long_string(buf: bytes, pos: int) -> tuple[str, int]:
    if pos + 4 > len(buf):
        raise Malformed("long string length past the end")
    end = pos + 4 + _U32.unpack_from(buf, pos)[0]
    if end > len(buf):
        raise Malformed("long string past the end")
    return go_text(buf[pos + 4 : end]), end


def _days_to_civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 → (year, month, day), proleptic Gregorian, any range."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def amqp_time(seconds: int) -> str:
    """Seconds since the epoch in Go's ``January _2 15:04:05 2006`` layout (UTC)."""
    if 0 <= seconds < 253402300800:  # years 1970-9999: the C library's conversion
        t = time.gmtime(seconds)
        return (
            f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {t.tm_year}"
        )
    days, rest = divmod(seconds, 86400)
    y, m, d = _days_to_civil(days)
    hh, rest = divmod(rest, 3600)
    mm, ss = divmod(rest, 60)
    year = f"-{-y:04d}" if y < 0 else f"{y:04d}"
    return f"{MONTHS[m - 1]} {d:2d} {hh:02d}:{mm:02d}:{ss:02d} {year}"


def float32(x: float) -> float:
    """A float32 value as the float of its shortest decimal form (``0.1``, not
    ``0.10000000149011612``): what Go prints for it."""
    if x != x or x in (float("inf"), float("-inf")):
        return x
    for digits in range(1, 10):
        text = f"{x:.{digits}g}"
        if _F32.unpack(_F32.pack(float(text)))[0] == x:
            return float(text)
    return x


def decimal_text(scale: int, value: int) -> str:
    """Packetbeat's decimal: the digits with a point ``scale`` places from the right and no
    leading zero (``123.45``, ``.5``). Where Packetbeat drops the zeros a small value needs
    (0.05 → ``5``), they are put back (``.05``); zero stays ``0``."""
    digits = str(abs(value))
    if scale and (value or scale == 1):
        if scale > len(digits):
            digits = "0" * (scale - len(digits)) + digits
        digits = digits[: len(digits) - scale] + "." + digits[len(digits) - scale :]
    return "-" + digits if value < 0 else digits


#: A void value (``V``) in a table: left out unless ``keep_null`` (libbeat drops nulls).
VOID: Any = object()


def _value(buf: bytes, pos: int, end: int, depth: int, keep_null: bool) -> tuple[Any, int]:
    """One typed value at ``pos`` (its type byte); returns (value, next position)."""
    if pos >= end:
        raise Malformed("field value past the end of its table")
    kind = buf[pos]
    p = pos + 1
    if kind == 0x53:  # 'S' long string
        if p + 4 > end:
            raise Malformed("long string past the end of its table")
        stop = p + 4 + _U32.unpack_from(buf, p)[0]
        if stop > end:
            raise Malformed("long string past the end of its table")
        return go_text(buf[p + 4 : stop]), stop
    if kind == 0x49:  # 'I' signed 32
        n = 4
        if p + n > end:
            raise Malformed("value past the end of its table")
        return _I32.unpack_from(buf, p)[0], p + n
    if kind == 0x74:  # 't' boolean
        if p >= end:
            raise Malformed("value past the end of its table")
        return buf[p] == 1, p + 1
    if kind == 0x46:  # 'F' nested table
        return _table(buf, p, end, depth + 1, True, keep_null)
    if kind == 0x41:  # 'A' array: a map keyed by index
        return _table(buf, p, end, depth + 1, False, keep_null)
    fixed = _FIXED.get(kind)
    if fixed is not None:
        size, unpack = fixed
        if p + size > end:
            raise Malformed("value past the end of its table")
        return unpack(buf, p), p + size
    if kind == 0x56:  # 'V' void
        return (None if keep_null else VOID), p
    if kind == 0x78:  # 'x' byte array
        if p + 4 > end:
            raise Malformed("byte array past the end of its table")
        stop = p + 4 + _U32.unpack_from(buf, p)[0]
        if stop > end:
            raise Malformed("byte array past the end of its table")
        return "[" + ", ".join(str(b) for b in buf[p + 4 : stop]) + "]", stop
    raise Malformed(f"unknown field type {kind:#04x}")


def _s8(buf: bytes, p: int) -> int:
    b = buf[p]
    return b - 256 if b > 127 else b


def _decimal(buf: bytes, p: int) -> str:
    scale, value = _BI32.unpack_from(buf, p)
    return decimal_text(scale, value)


def _timestamp(buf: bytes, p: int) -> str:
    return amqp_time(_I64.unpack_from(buf, p)[0])


def _float(buf: bytes, p: int) -> float:
    return float32(_F32.unpack_from(buf, p)[0])


_FIXED: dict[int, tuple[int, Any]] = {
    0x62: (1, _s8),  # 'b' int8
    0x42: (1, lambda b, p: b[p]),  # 'B' uint8
    0x73: (2, lambda b, p: _I16.unpack_from(b, p)[0]),  # 's' int16 (RabbitMQ)
    0x55: (2, lambda b, p: _I16.unpack_from(b, p)[0]),  # 'U' int16
    0x75: (2, lambda b, p: _U16.unpack_from(b, p)[0]),  # 'u' uint16
    0x69: (4, lambda b, p: _U32.unpack_from(b, p)[0]),  # 'i' uint32
    0x4C: (8, lambda b, p: _I64.unpack_from(b, p)[0]),  # 'L' int64
    0x6C: (8, lambda b, p: _I64.unpack_from(b, p)[0]),  # 'l' int64 (RabbitMQ)
    0x66: (4, _float),  # 'f' float32
    0x64: (8, lambda b, p: _F64.unpack_from(b, p)[0]),  # 'd' float64
    0x44: (5, _decimal),  # 'D' decimal
    0x54: (8, _timestamp),  # 'T' timestamp
}


def _table(
    buf: bytes, pos: int, end: int, depth: int, named: bool, keep_null: bool
) -> tuple[dict[str, Any], int]:
    """A table (``named``) or an array at ``pos`` (its 4-byte length), within ``end``."""
    if depth > MAX_DEPTH:
        raise Malformed("field tables nested too deep")
    if pos + 4 > end:
        raise Malformed("table length past the end")
    start = pos + 4
    stop = start + _U32.unpack_from(buf, pos)[0]
    if stop > end:
        raise Malformed("table longer than its container")
    out: dict[str, Any] = {}
    p = start
    index = 0
    while p < stop:
        if named:
            n = buf[p]
            q = p + 1 + n
            if q > stop:
                raise Malformed("field name past the end of its table")
            name = go_text(buf[p + 1 : q])
        else:
            name = str(index)
            index += 1
            q = p
        v, p = _value(buf, q, stop, depth, keep_null)
        if v is VOID:
            out.pop(name, None)
        else:
            out[name] = v
    return out, stop


def table(buf: bytes, pos: int, keep_null: bool = False) -> tuple[dict[str, Any], int]:
    """A field table at ``pos``: (its entries, the position after it)."""
    return _table(buf, pos, len(buf), 0, True, keep_null)
