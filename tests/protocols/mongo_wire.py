"""Building MongoDB wire messages for the tests and the benchmark (with pymongo's ``bson``)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import bson
import cramjam
import zstandard
from bson.binary import Binary
from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.son import SON
from bson.timestamp import Timestamp

from benchmarks.synth import Conversation
from tests.helpers import decode_packets

CLIENT = ("10.0.0.1", 40001)
SERVER = ("10.0.0.2", 27017)


def doc(d: Any) -> bytes:
    return bson.encode(d) if not isinstance(d, bytes) else d


def header(length: int, request_id: int, response_to: int, opcode: int) -> bytes:
    return struct.pack("<iiii", length, request_id, response_to, opcode)


def message(request_id: int, response_to: int, opcode: int, body: bytes) -> bytes:
    return header(16 + len(body), request_id, response_to, opcode) + body


def op_query(
    rid: int, ns: str, query: Any, skip: int = 0, limit: int = 0, fields: Any = None, flags: int = 0
) -> bytes:
    body = struct.pack("<i", flags) + ns.encode() + b"\0" + struct.pack("<ii", skip, limit) + doc(query)
    if fields is not None:
        body += doc(fields)
    return message(rid, 0, 2004, body)


def op_reply(
    rid: int, to: int, docs: list[Any], cursor: int = 0, start: int = 0, n: int | None = None
) -> bytes:
    body = struct.pack("<iqii", 0, cursor, start, len(docs) if n is None else n) + b"".join(
        doc(d) for d in docs
    )
    return message(rid, to, 1, body)


def op_insert(rid: int, ns: str, docs: list[Any]) -> bytes:
    return message(rid, 0, 2002, struct.pack("<i", 0) + ns.encode() + b"\0" + b"".join(doc(d) for d in docs))


def op_update(rid: int, ns: str, selector: Any, update: Any) -> bytes:
    body = struct.pack("<i", 0) + ns.encode() + b"\0" + struct.pack("<i", 0) + doc(selector) + doc(update)
    return message(rid, 0, 2001, body)


def op_delete(rid: int, ns: str, selector: Any) -> bytes:
    body = struct.pack("<i", 0) + ns.encode() + b"\0" + struct.pack("<i", 0) + doc(selector)
    return message(rid, 0, 2006, body)


def op_get_more(rid: int, ns: str, n: int, cursor: int) -> bytes:
    return message(rid, 0, 2005, struct.pack("<i", 0) + ns.encode() + b"\0" + struct.pack("<iq", n, cursor))


def op_kill_cursors(rid: int, cursors: list[int]) -> bytes:
    body = struct.pack("<ii", 0, len(cursors)) + b"".join(struct.pack("<q", c) for c in cursors)
    return message(rid, 0, 2007, body)


def op_msg(
    rid: int,
    to: int,
    body: Any,
    sequences: dict[str, list[Any]] | None = None,
    flags: int = 0,
    checksum: bool = False,
    first_sequence: bool = False,
) -> bytes:
    secs = [b"\0" + doc(body)]
    for ident, docs in (sequences or {}).items():
        payload = ident.encode() + b"\0" + b"".join(doc(d) for d in docs)
        secs.append(b"\1" + struct.pack("<i", 4 + len(payload)) + payload)
    if first_sequence:
        secs = secs[1:] + secs[:1]
    if checksum:
        flags |= 1
    data = struct.pack("<I", flags) + b"".join(secs)
    if checksum:
        data += b"\0\0\0\0"  # not checked by the decoder
    return message(rid, to, 2013, data)


def compress(msg: bytes, compressor: int, level: int = -1) -> bytes:
    """OP_COMPRESSED wrapping of a whole message (header included)."""
    _len, rid, to, opcode = struct.unpack_from("<iiii", msg)
    body = msg[16:]
    if compressor == 0:
        packed = body
    elif compressor == 1:
        packed = bytes(cramjam.snappy.compress_raw(body))
    elif compressor == 2:
        packed = zlib.compress(body, level)
    else:
        packed = zstandard.ZstdCompressor().compress(body)
    return message(rid, to, 2012, struct.pack("<iiB", opcode, len(body), compressor) + packed)


def run(
    messages: list[tuple[int, bytes]], close: bool = True, split: int = 0, **cfg: Any
) -> tuple[list[dict[str, Any]], Any]:
    """Decode a conversation: each (side, bytes) one segment (or ``split``-byte segments)."""
    conv = Conversation(CLIENT, SERVER).handshake()
    for side, data in messages:
        if split:
            for i in range(0, len(data), split):
                conv.send(side, data[i : i + split])
        else:
            conv.send(side, data)
    if close:
        conv.close()
    return decode_packets([(ts, 1, f) for ts, f in conv.frames], {"mongodb": {"ports": [27017], **cfg}})


def element(kind: int, name: str | bytes, value: bytes) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return bytes([kind]) + raw + b"\0" + value


def raw_doc(*elements: bytes) -> bytes:
    body = b"".join(elements)
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def bson_string(s: bytes) -> bytes:
    return struct.pack("<i", len(s) + 1) + s + b"\0"


OID = ObjectId("5c6ed8cc0a94b1327d1fe194")

#: One document per case: every BSON type and the awkward values of each, as raw bytes.
RENDER_CASES: list[tuple[str, bytes]] = [
    ("order", doc(SON([("z", 1), ("a", 2), ("B", 3), ("_id", OID), ("é", 4), ("$x", 5)]))),
    ("nested", doc(SON([("b", {"y": [1, {"d": 1, "c": 2}], "x": {}}), ("a", [])]))),
    ("ints", doc({"i32": -(2**31), "i64": Int64(2**62), "i64n": Int64(-(2**63)), "zero": 0})),
    ("floats1", doc({"a": 1.0, "b": -0.0, "c": 0.5, "d": 123456789.0, "e": 1e20, "f": 1e21})),
    (
        "floats2",
        doc({"a": 1e-6, "b": 1e-7, "c": 1.5e-5, "d": 2.0**60, "e": 1e16, "f": 1.7976931348623157e308}),
    ),
    ("floats3", doc({"a": 5e-324, "b": 0.1, "c": -3.25, "d": 123.456e5, "e": 1.2345678901234567e-300})),
    ("nan", doc({"a": float("nan")})),
    ("inf", doc({"a": float("inf")})),
    ("strings1", doc({"a": "<b>&amp;</b>", "b": 'q"\\/', "c": "\n\r\t\b\f\x01\x1f\x7f"})),
    ("strings2", doc({"a": "\u2028\u2029", "b": "héllo wörld ✓ 😀", "c": ""})),
    (
        "badutf8",
        raw_doc(element(2, "a", bson_string(b"x\xff\xfey")), element(2, "b", bson_string(b"\xe2\x82"))),
    ),
    (
        "badkey",
        raw_doc(
            element(16, b"k\xff", b"\1\0\0\0"),
            element(16, b"k\xc3\xa9", b"\2\0\0\0"),
            element(16, b"k~", b"\3\0\0\0"),
        ),
    ),
    ("dates", doc({"a": bson.datetime_ms.DatetimeMS(0), "b": bson.datetime_ms.DatetimeMS(1550768051781)})),
    ("dates2", doc({"a": bson.datetime_ms.DatetimeMS(-1), "b": bson.datetime_ms.DatetimeMS(1550768051000)})),
    ("dates3", doc({"a": bson.datetime_ms.DatetimeMS(-62167219200000)})),
    ("date_far", doc({"a": bson.datetime_ms.DatetimeMS(253402300800000)})),
    ("date_neg", doc({"a": bson.datetime_ms.DatetimeMS(-62167219200001)})),
    (
        "binary",
        doc(
            {
                "a": Binary(b"\x00\x01\xff", 0),
                "b": Binary(b"abc", 4),
                "c": Binary(b"", 0),
                "d": Binary(b"x", 128),
            }
        ),
    ),
    ("binary_old", raw_doc(element(5, "a", struct.pack("<iB", 7, 2) + struct.pack("<i", 3) + b"abc"))),
    ("regex", doc({"a": Regex("^a.*b$", "i"), "b": Regex("x", "imsx"), "c": Regex("", "")})),
    ("timestamp", doc({"a": Timestamp(1550768363, 1), "b": Timestamp(0, 0)})),
    ("minmax", doc({"a": MinKey(), "b": MaxKey()})),
    (
        "decimal",
        doc(
            {"a": Decimal128("1.5"), "b": Decimal128("-0"), "c": Decimal128("1E+10"), "d": Decimal128("NaN")}
        ),
    ),
    (
        "decimal2",
        doc(
            {
                "a": Decimal128("0.000001"),
                "b": Decimal128("123456789012345678901234567890"),
                "c": Decimal128("-Infinity"),
            }
        ),
    ),
    ("code", doc({"a": Code("function(){return 1;}"), "b": Code("x", {"z": 1, "a": {"d": 1, "c": 2}})})),
    ("code_empty_scope", doc({"a": Code("y", {})})),
    ("bool_null", doc({"a": True, "b": False, "c": None})),
    ("oid", doc({"a": OID})),
    ("undefined", raw_doc(element(6, "a", b""))),
    ("symbol", raw_doc(element(14, "a", bson_string(b"sym")))),
    ("dbpointer", raw_doc(element(12, "a", bson_string(b"db.coll") + OID.binary))),
    ("dbref", doc({"r": SON([("$ref", "coll"), ("$id", OID), ("$db", "db"), ("extra", 1)])})),
    (
        "dupkeys",
        raw_doc(element(16, "a", b"\1\0\0\0"), element(16, "b", b"\2\0\0\0"), element(16, "a", b"\3\0\0\0")),
    ),
    (
        "array_keys",
        raw_doc(element(4, "a", raw_doc(element(16, "5", b"\1\0\0\0"), element(16, "x", b"\2\0\0\0")))),
    ),
    ("deep", doc({"a": {"b": {"c": {"d": {"e": [[[[{"f": 1}]]]]}}}}})),
    ("empty", doc({})),
]
