"""Go's text forms of values, where libbeat's output depends on them (``%v`` in
``fingerprint`` and ``convert`` to string, ``strconv`` number parsing in ``convert`` and
``dissect``), so the same event gives the same strings and hashes as in Packetbeat."""

from __future__ import annotations

import math
import re
import struct
from decimal import Decimal
from typing import Any

_INT10 = re.compile(r"[+-]?[0-9]+")
_INT16 = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
)
_BOOLS = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}


def format_float(f: float) -> str:
    """``fmt.Sprintf("%v", f)`` for a float64: shortest digits, exponent form when the
    exponent is < -4 or >= 6 (Go's %v is %g with the shortest precision)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digits, exp = Decimal(repr(f)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    nd = len(ds)
    dp = len(digits) + int(exp)  # position of the decimal point from the left
    x = dp - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{neg}{mant}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= nd:
        return f"{neg}{ds}{'0' * (dp - nd)}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def format_value(v: Any) -> str:
    """``fmt.Sprintf("%v", v)`` for JSON-like values."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, bytes | bytearray):
        return "[" + " ".join(str(b) for b in v) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{format_value(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def parse_int(s: str, bits: int) -> int:
    """``strconv.ParseInt`` in base 10, or base 16 with a 0x prefix; ValueError when out of
    range for ``bits``."""
    if _INT10.fullmatch(s):
        n = int(s, 10)
    elif _INT16.fullmatch(s):
        n = int(s, 16)
    else:
        raise ValueError(f'strconv.ParseInt: parsing "{s}": invalid syntax')
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not lo <= n <= hi:
        raise ValueError(f'strconv.ParseInt: parsing "{s}": value out of range')
    return n


def parse_float(s: str, bits: int = 64) -> float:
    """``strconv.ParseFloat``; for 32 bits the value is rounded to float32."""
    if not _FLOAT.fullmatch(s):
        raise ValueError(f'strconv.ParseFloat: parsing "{s}": invalid syntax')
    f = float(s)
    return to_float32(f) if bits == 32 else f


def to_float32(f: float) -> float:
    """A float32 value, written back with its shortest float32 digits (what Go's JSON
    encoder writes for a float32), as a Python float."""
    if math.isnan(f) or math.isinf(f):
        return f
    try:
        (g,) = struct.unpack("<f", struct.pack("<f", f))
    except OverflowError:
        return math.copysign(math.inf, f)
    for p in range(1, 10):
        text = f"{g:.{p}g}"
        (back,) = struct.unpack("<f", struct.pack("<f", float(text)))
        if back == g:
            return float(text)
    return float(g)


def parse_bool(s: str) -> bool:
    """``strconv.ParseBool``."""
    try:
        return _BOOLS[s]
    except KeyError:
        raise ValueError(f'strconv.ParseBool: parsing "{s}": invalid syntax') from None


def wrap_int(n: int, bits: int) -> int:
    """Go's integer conversion to a narrower signed type (two's complement wrap)."""
    mask = (1 << bits) - 1
    n &= mask
    return n - (1 << bits) if n >> (bits - 1) else n
