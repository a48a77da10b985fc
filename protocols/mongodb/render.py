"""BSON values (as ``bson`` from pymongo decodes them) rendered to text the way Packetbeat does.

Packetbeat decodes every document into a Go ``bson.M`` (mongo-driver v1.17, nested documents
become maps too) and prints it with Go's ``encoding/json``. That fixes the rendering:

* object keys sorted (byte order of their UTF-8), compact separators;
* strings escaped as Go does: ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\uXXXX``, each
  invalid UTF-8 byte as ``\\ufffd`` (we decode with ``surrogateescape`` so every such byte
  is one lone surrogate);
* doubles in Go's shortest form (``1`` not ``1.0``, ``1e+21``, ``1e-7``); NaN and ±Inf are an
  error (Go's ``json.Marshal`` refuses them), as are dates outside years 0..9999;
* driver types as their Go structs or ``MarshalJSON``: ObjectId as its hex string, a date as
  RFC 3339 UTC with trimmed nanoseconds, Timestamp ``{"T":..,"I":..}``, Binary
  ``{"Subtype":..,"Data":"<base64>"}``, Regex ``{"Pattern":..,"Options":..}``, MinKey/MaxKey
  ``{}``, Decimal128 its string, code-with-scope ``{"Code":..,"Scope":[{"Key":..,"Value":..}]}``.

Written by hand (instead of ``json.dumps``) because Go's float format, struct field order and
escaping cannot be had from the standard encoder. Documents nested deeper than ``MAX_DEPTH``
are refused (:class:`RenderError`) before the recursion could exhaust the stack.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

MAX_DEPTH = 200

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_SPECIAL = re.compile("[<>&\u2028\u2029\udc80-\udcff]")


class RenderError(ValueError):
    """A value Go's ``json.Marshal`` refuses (NaN, ±Inf, a date outside years 0..9999)."""


def _go_escape(m: re.Match[str]) -> str:
    c = m.group()
    return _GO_ESCAPES.get(c, "\\ufffd")


def go_string(s: str) -> str:
    out: str = encode_basestring(s)
    if _GO_SPECIAL.search(out) is not None:
        out = _GO_SPECIAL.sub(_go_escape, out)
    return out


_SURROGATE = re.compile("[\udc80-\udcff]")


def clean(s: str) -> str:
    """Text decoded with ``surrogateescape``, each invalid byte as U+FFFD (for event fields)."""
    if s.isascii():
        return s
    return _SURROGATE.sub("\ufffd", s)


def go_float(f: float) -> str:
    """``strconv.FormatFloat(f, 'f' or 'e', -1, 64)`` as ``encoding/json`` picks it."""
    if f != f or f in (float("inf"), float("-inf")):
        raise RenderError(f"unsupported value: {f!r}")
    if f == 0:
        return "-0" if str(f)[0] == "-" else "0"
    r = repr(f)
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        # Python's repr is in exponent form here too, with Go's two-digit exponents;
        # encoding/json then shortens "e-07" to "e-7".
        m, _, e = r.partition("e")
        if e[0] == "-" and e[1] == "0" and len(e) == 3:
            e = "-" + e[2]
        return f"{m}e{e}"
    if "e" in r:
        return format(Decimal(r), "f")
    if r.endswith(".0"):
        return r[:-2]
    return r


_DAY_MS = 86_400_000


def go_time(ms: int) -> str:
    """A BSON datetime (ms since the epoch) as Go marshals ``time.Time`` in UTC."""
    days, rem = divmod(ms, _DAY_MS)
    # civil_from_days (H. Hinnant), valid for the proleptic Gregorian calendar.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    if not 0 <= y <= 9999:
        raise RenderError("Time.MarshalJSON: year outside of range [0,9999]")
    secs, milli = divmod(rem, 1000)
    hh, secs = divmod(secs, 3600)
    mm, ss = divmod(secs, 60)
    frac = f".{milli:03d}".rstrip("0") if milli else ""
    return f'"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}{frac}Z"'


_REGEX_FLAGS = ((2, "i"), (4, "l"), (8, "m"), (16, "s"), (32, "u"), (64, "x"))


def _regex_options(r: Regex[Any]) -> str:
    flags = r.flags
    if isinstance(flags, str):
        return flags
    return "".join(c for bit, c in _REGEX_FLAGS if flags & bit)


def _sort_keys(d: dict[str, Any]) -> list[str]:
    keys = sorted(d)
    if len(keys) > 1 and not "".join(keys).isascii():
        # Go compares UTF-8 bytes; a lone surrogate (an invalid byte) sorts differently
        # as a code point.
        keys.sort(key=lambda k: k.encode("utf-8", "surrogateescape"))
    return keys


# Leaf renderers by exact type; containers are handled in render().
_LEAF: dict[type, Callable[[Any], str]] = {
    str: go_string,
    int: int.__repr__,
    float: go_float,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
    ObjectId: lambda v: f'"{v}"',
    DatetimeMS: lambda v: go_time(int(v)),
    Timestamp: lambda v: f'{{"T":{v.time},"I":{v.inc}}}',
    Decimal128: lambda v: go_string(str(v)),
    MinKey: lambda v: "{}",
    MaxKey: lambda v: "{}",
    bytes: lambda v: f'{{"Subtype":0,"Data":"{base64.b64encode(v).decode()}"}}',
    Binary: lambda v: f'{{"Subtype":{v.subtype},"Data":"{base64.b64encode(v).decode()}"}}',
    Regex: lambda v: f'{{"Pattern":{go_string(str(v.pattern))},"Options":{go_string(_regex_options(v))}}}',
}


def _leaf(v: Any) -> str:
    fn = _LEAF.get(type(v))
    if fn is not None:
        return fn(v)
    # Subclasses: Int64 (int), Code without scope (str), anything newer.
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, str):
        return go_string(str.__str__(v))
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, bytes):
        return _LEAF[Binary](Binary(v, getattr(v, "subtype", 0)))
    raise RenderError(f"cannot render {type(v).__name__}")


def render(value: Any) -> str:
    """``json.Marshal`` of the value Go's driver would have decoded; raises RenderError."""
    out = _render(value, 0)
    # Go's extra escapes can only occur inside strings: one pass over the whole text.
    if _GO_SPECIAL.search(out) is not None:
        out = _GO_SPECIAL.sub(_go_escape, out)
    return out


def _render(v: Any, depth: int) -> str:
    t = type(v)
    if t is str:
        return encode_basestring(v)
    if t is dict:
        if not v:
            return "{}"
        if depth >= MAX_DEPTH:
            raise RenderError("document nested too deeply")
        d = depth + 1
        return "{" + ",".join([encode_basestring(k) + ":" + _render(v[k], d) for k in _sort_keys(v)]) + "}"
    if t is int:
        return int.__repr__(v)
    if t is list:
        if not v:
            return "[]"
        if depth >= MAX_DEPTH:
            raise RenderError("document nested too deeply")
        d = depth + 1
        return "[" + ",".join([_render(x, d) for x in v]) + "]"
    if isinstance(v, Code):
        code = encode_basestring(str.__str__(v))
        if v.scope is None:
            return code
        if depth >= MAX_DEPTH:
            raise RenderError("document nested too deeply")
        # Go decodes the scope as a primitive.D: a list of {"Key","Value"} in wire order.
        scope = ",".join(
            [
                '{"Key":' + encode_basestring(k) + ',"Value":' + _render(x, depth + 1) + "}"
                for k, x in v.scope.items()
            ]
        )
        return '{"Code":' + code + ',"Scope":[' + scope + "]}"
    if isinstance(v, DBRef):
        return _render(dict(v.as_doc()), depth)
    if isinstance(v, dict):
        return _render(dict(v), depth)
    if isinstance(v, list):
        return _render(list(v), depth)
    return _leaf(v)
