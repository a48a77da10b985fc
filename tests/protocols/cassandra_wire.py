"""Building Cassandra native protocol frames and v5 segments for the tests (written from
native_protocol_v4.spec / v5.spec; requests could come from cassandra-driver's encoder, but
responses are never encoded by a driver, so both are built here the same way)."""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.block

from protocols.cassandra.parser import CRC32_INITIAL, crc24


def short(n: int) -> bytes:
    return struct.pack(">H", n)


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def string(s: str) -> bytes:
    b = s.encode()
    return short(len(b)) + b


def long_string(s: str) -> bytes:
    b = s.encode()
    return i32(len(b)) + b


def string_list(items: list[str]) -> bytes:
    return short(len(items)) + b"".join(string(s) for s in items)


def bytes_(b: bytes | None) -> bytes:
    return i32(-1) if b is None else i32(len(b)) + b


def short_bytes(b: bytes) -> bytes:
    return short(len(b)) + b


def string_map(m: dict[str, str]) -> bytes:
    return short(len(m)) + b"".join(string(k) + string(v) for k, v in m.items())


def multimap(m: dict[str, list[str]]) -> bytes:
    return short(len(m)) + b"".join(string(k) + string_list(v) for k, v in m.items())


def frame(
    op: int, body: bytes, stream: int = 0, version: int = 4, response: bool = False, flags: int = 0
) -> bytes:
    v = version | (0x80 if response else 0)
    return struct.pack(">BBHBI", v, flags, stream & 0xFFFF, op, len(body)) + body


def query(q: str, stream: int = 0, version: int = 4, flags: int = 0) -> bytes:
    # <query><consistency ONE><flags 0> (v5: flags are an [int])
    params = short(1) + (i32(0) if version >= 5 else b"\x00")
    return frame(0x07, long_string(q) + params, stream, version, flags=flags)


def startup(options: dict[str, str], stream: int = 0, version: int = 4) -> bytes:
    return frame(0x01, string_map(options), stream, version)


def ready(stream: int = 0, version: int = 4) -> bytes:
    return frame(0x02, b"", stream, version, response=True)


def options(stream: int = 0, version: int = 4) -> bytes:
    return frame(0x05, b"", stream, version)


def supported(opts: dict[str, list[str]], stream: int = 0, version: int = 4) -> bytes:
    return frame(0x06, multimap(opts), stream, version, response=True)


def col_spec(name: str, type_option: bytes, ks: str = "", table: str = "") -> bytes:
    head = string(ks) + string(table) if ks else b""
    return head + string(name) + type_option


def t(kind: int, *inner: bytes) -> bytes:
    return short(kind) + b"".join(inner)


TEXT = t(0x000D)
INT = t(0x0009)


def rows_metadata(
    cols: list[tuple[str, bytes]],
    ks: str = "ks",
    table: str = "tbl",
    paging: bytes | None = None,
    glob: bool = True,
    no_meta: bool = False,
) -> bytes:
    flags = (1 if glob else 0) | (2 if paging is not None else 0) | (4 if no_meta else 0)
    out = i32(flags) + i32(len(cols))
    if paging is not None:
        out += bytes_(paging)
    if no_meta:
        return out
    if glob:
        out += string(ks) + string(table)
    for name, opt in cols:
        out += col_spec(name, opt, *(() if glob else (ks, table)))
    return out


def rows(
    cols: list[tuple[str, bytes]], n: int, stream: int = 0, version: int = 4, flags: int = 0, **kw: object
) -> bytes:
    body = i32(2) + rows_metadata(cols, **kw) + i32(n)  # type: ignore[arg-type]
    for i in range(n):
        for _ in cols:
            body += bytes_(str(i).encode())
    return frame(0x08, body, stream, version, response=True, flags=flags)


def void(stream: int = 0, version: int = 4, flags: int = 0, prefix: bytes = b"") -> bytes:
    return frame(0x08, prefix + i32(1), stream, version, response=True, flags=flags)


def set_keyspace(ks: str, stream: int = 0, version: int = 4) -> bytes:
    return frame(0x08, i32(3) + string(ks), stream, version, response=True)


def schema_change_body(change: str, target: str, *args: str, fn_args: list[str] | None = None) -> bytes:
    out = string(change) + string(target) + b"".join(string(a) for a in args)
    if fn_args is not None:
        out += string_list(fn_args)
    return out


def schema_result(change: str, target: str, *args: str, stream: int = 0, **kw: list[str]) -> bytes:
    return frame(0x08, i32(5) + schema_change_body(change, target, *args, **kw), stream, 4, response=True)


def prepared(
    pid: bytes,
    bind: list[tuple[str, bytes]],
    result: list[tuple[str, bytes]],
    pk: list[int],
    stream: int = 0,
    version: int = 4,
) -> bytes:
    body = i32(4) + short_bytes(pid)
    if version >= 5:
        body += short_bytes(b"\x01" * 16)
    body += i32(1 if bind else 0) + i32(len(bind))
    if version >= 4:
        body += i32(len(pk)) + b"".join(short(p) for p in pk)
    if bind:
        body += string("ks") + string("tbl")
        for name, opt in bind:
            body += col_spec(name, opt)
    body += rows_metadata(result) if result else i32(4) + i32(0)
    return frame(0x08, body, stream, version, response=True)


def error(code: int, msg: str, extra: bytes = b"", stream: int = 0, version: int = 4) -> bytes:
    return frame(0x00, i32(code) + string(msg) + extra, stream, version, response=True)


def event(body: bytes, version: int = 4) -> bytes:
    return frame(0x0C, body, -1, version, response=True)


def inet(ip: bytes, port: int) -> bytes:
    return bytes([len(ip)]) + ip + i32(port)


def compress_frame(raw: bytes, algo: str) -> bytes:
    """A frame with its body compressed and flag 0x01 set (v4 and older)."""
    head, body = bytearray(raw[:9]), raw[9:]
    if algo == "lz4":
        comp = struct.pack(">I", len(body)) + lz4.block.compress(body, store_size=False)
    else:
        comp = bytes(cramjam.snappy.compress_raw(body))
    head[1] |= 0x01
    head[5:9] = struct.pack(">I", len(comp))
    return bytes(head) + comp


def segment(payload: bytes, self_contained: bool = True, compress: bool = False) -> bytes:
    """One v5 segment (native_protocol_v5.spec §2): header + CRC24, payload + CRC32."""
    if compress:
        comp = lz4.block.compress(payload, store_size=False)
        ulen = len(payload)
        if len(comp) >= len(payload):
            comp, ulen = payload, 0
        h = len(comp) | (ulen << 17) | ((1 if self_contained else 0) << 34)
        head = h.to_bytes(5, "little") + crc24(h, 5).to_bytes(3, "little")
        return head + comp + zlib.crc32(comp, CRC32_INITIAL).to_bytes(4, "little")
    h = len(payload) | ((1 if self_contained else 0) << 17)
    head = h.to_bytes(3, "little") + crc24(h, 3).to_bytes(3, "little")
    return head + payload + zlib.crc32(payload, CRC32_INITIAL).to_bytes(4, "little")


def segments(frames: bytes, compress: bool = False, size: int = (1 << 17) - 1) -> bytes:
    """``frames`` as segments: one self-contained segment when they fit, else pieces."""
    limit = min(size, (1 << 17) - 1)
    if len(frames) <= limit:
        return segment(frames, True, compress)
    return b"".join(segment(frames[i : i + limit], False, compress) for i in range(0, len(frames), limit))
