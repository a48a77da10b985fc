"""Builders for MySQL and PostgreSQL wire messages (benchmarks, unit and fuzz tests).

Only what the tests and benchmarks need; each function returns the bytes one side sends.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

# -- MySQL -------------------------------------------------------------------------------

CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_COMPRESS = 0x20
CLIENT_DEPRECATE_EOF = 0x01000000
SERVER_MORE_RESULTS_EXISTS = 0x0008
BASE_CAPS = 0x000FA68D | CLIENT_PROTOCOL_41


def my_packet(seq: int, payload: bytes) -> bytes:
    n = len(payload)
    return bytes((n & 0xFF, (n >> 8) & 0xFF, n >> 16, seq & 0xFF)) + payload


def lenenc(n: int) -> bytes:
    if n < 0xFB:
        return bytes((n,))
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return lenenc(len(b)) + b


def my_greeting(caps: int = BASE_CAPS) -> bytes:
    body = (
        b"\x0a"
        + b"10.11.0-MariaDB\0"
        + struct.pack("<I", 7)
        + b"abcdefgh\0"
        + struct.pack("<H", caps & 0xFFFF)
        + b"\x2d"
        + struct.pack("<H", 2)
        + struct.pack("<H", caps >> 16)
        + b"\x15"
        + b"\0" * 10
        + b"ijklmnopqrst\0"
        + b"mysql_native_password\0"
    )
    return my_packet(0, body)


def my_handshake_response(caps: int = BASE_CAPS, user: str = "wb") -> bytes:
    body = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + user.encode() + b"\0" + b"\x14" + b"x" * 20
    return my_packet(1, body)


def my_ssl_request(caps: int = BASE_CAPS | CLIENT_SSL) -> bytes:
    return my_packet(1, struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23)


def my_ok(seq: int, affected: int = 0, insert_id: int = 0, status: int = 2, header: int = 0) -> bytes:
    return my_packet(
        seq, bytes((header,)) + lenenc(affected) + lenenc(insert_id) + struct.pack("<HH", status, 0)
    )


def my_err(seq: int, code: int, state: str, message: str) -> bytes:
    return my_packet(seq, b"\xff" + struct.pack("<H", code) + b"#" + state.encode() + message.encode())


def my_eof(seq: int, status: int = 2) -> bytes:
    return my_packet(seq, b"\xfe" + struct.pack("<HH", 0, status))


def my_query(sql: str) -> bytes:
    return my_packet(0, b"\x03" + sql.encode())


def my_command(cmd: int, body: bytes = b"") -> bytes:
    return my_packet(0, bytes((cmd,)) + body)


def my_prepare(sql: str) -> bytes:
    return my_packet(0, b"\x16" + sql.encode())


def my_stmt_close(stmt_id: int) -> bytes:
    return my_packet(0, b"\x19" + struct.pack("<I", stmt_id))


def my_coldef(seq: int, schema: str, table: str, name: str, type_: int = 253, flags: int = 0) -> bytes:
    body = (
        lstr("def")
        + lstr(schema)
        + lstr(table)
        + lstr(table)
        + lstr(name)
        + lstr(name)
        + b"\x0c"
        + struct.pack("<HIBHB", 45, 255, type_, flags, 0)
        + b"\0\0"
    )
    return my_packet(seq, body)


def my_text_row(seq: int, values: Sequence[str | None]) -> bytes:
    return my_packet(seq, b"".join(b"\xfb" if v is None else lstr(v) for v in values))


def my_result_set(
    fields: list[str],
    rows: Sequence[Sequence[str | None]],
    table: str = "t",
    schema: str = "db",
    deprecate_eof: bool = False,
    status: int = 2,
    seq: int = 1,
) -> tuple[bytes, int]:
    """A text result set; returns (bytes, next sequence id)."""
    out = [my_packet(seq, lenenc(len(fields)))]
    seq += 1
    for f in fields:
        out.append(my_coldef(seq, schema, table, f))
        seq += 1
    if not deprecate_eof:
        out.append(my_eof(seq))
        seq += 1
    for r in rows:
        out.append(my_text_row(seq, r))
        seq += 1
    if deprecate_eof:
        out.append(my_ok(seq, status=status, header=0xFE))
    else:
        out.append(my_eof(seq, status))
    return b"".join(out), seq + 1


def my_prepare_ok(stmt_id: int, ncols: int, nparams: int, deprecate_eof: bool = False) -> bytes:
    out = [my_packet(1, b"\x00" + struct.pack("<IHHBH", stmt_id, ncols, nparams, 0, 0))]
    seq = 2
    for group in (nparams, ncols):
        for i in range(group):
            out.append(my_coldef(seq, "", "", f"?{i}"))
            seq += 1
        if group and not deprecate_eof:
            out.append(my_eof(seq))
            seq += 1
    return b"".join(out)


def my_execute(stmt_id: int, params: list[tuple[int, bytes | None]] | None, bound: bool = True) -> bytes:
    """COM_STMT_EXECUTE; ``params`` as (type, encoded value or None for NULL)."""
    body = b"\x17" + struct.pack("<IBI", stmt_id, 0, 1)
    if params:
        bitmap = bytearray((len(params) + 7) // 8)
        for i, (_t, v) in enumerate(params):
            if v is None:
                bitmap[i // 8] |= 1 << (i % 8)
        body += bytes(bitmap) + (b"\x01" if bound else b"\x00")
        if bound:
            body += b"".join(struct.pack("<BB", t, 0) for t, _v in params)
        body += b"".join(v for _t, v in params if v is not None)
    return my_packet(0, body)


# -- PostgreSQL --------------------------------------------------------------------------


def pg_msg(typ: bytes, body: bytes = b"") -> bytes:
    return typ + struct.pack(">i", len(body) + 4) + body


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def pg_startup(user: str = "wb", database: str = "db") -> bytes:
    body = struct.pack(">i", 196608) + cstr("user") + cstr(user) + cstr("database") + cstr(database) + b"\0"
    return struct.pack(">i", len(body) + 4) + body


def pg_ssl_request() -> bytes:
    return struct.pack(">ii", 8, 80877103)


def pg_query(sql: str) -> bytes:
    return pg_msg(b"Q", cstr(sql))


def pg_parse(sql: str, name: str = "") -> bytes:
    return pg_msg(b"P", cstr(name) + cstr(sql) + struct.pack(">h", 0))


def pg_bind(portal: str = "", stmt: str = "", params: list[bytes | None] | None = None) -> bytes:
    params = params or []
    body = cstr(portal) + cstr(stmt) + struct.pack(">h", 0) + struct.pack(">h", len(params))
    for p in params:
        body += struct.pack(">i", -1) if p is None else struct.pack(">i", len(p)) + p
    return pg_msg(b"B", body + struct.pack(">h", 0))


def pg_describe(kind: bytes = b"P", name: str = "") -> bytes:
    return pg_msg(b"D", kind + cstr(name))


def pg_execute(portal: str = "", max_rows: int = 0) -> bytes:
    return pg_msg(b"E", cstr(portal) + struct.pack(">i", max_rows))


def pg_sync() -> bytes:
    return pg_msg(b"S")


def pg_row_description(names: list[str], fmt: int = 0) -> bytes:
    body = struct.pack(">h", len(names))
    for n in names:
        body += cstr(n) + struct.pack(">ihihih", 0, 0, 25, -1, -1, fmt)
    return pg_msg(b"T", body)


def pg_data_row(values: Sequence[str | None]) -> bytes:
    body = struct.pack(">h", len(values))
    for v in values:
        body += struct.pack(">i", -1) if v is None else struct.pack(">i", len(v.encode())) + v.encode()
    return pg_msg(b"D", body)


def pg_complete(tag: str) -> bytes:
    return pg_msg(b"C", cstr(tag))


def pg_ready(status: bytes = b"I") -> bytes:
    return pg_msg(b"Z", status)


def pg_error(code: str, message: str, severity: str = "ERROR") -> bytes:
    return pg_msg(
        b"E", b"S" + cstr(severity) + b"V" + cstr(severity) + b"C" + cstr(code) + b"M" + cstr(message) + b"\0"
    )


def pg_notice(message: str) -> bytes:
    return pg_msg(b"N", b"S" + cstr("NOTICE") + b"C" + cstr("00000") + b"M" + cstr(message) + b"\0")
