"""Numbers written in ASCII on the wire (HTTP status codes and lengths, RESP lengths,
memcache and SIP headers, ...).

``str.isdigit``/``bytes.isdigit`` and ``int()`` accept more than a wire format does:
``int()`` takes signs, underscores, surrounding whitespace and any Unicode digit, and
``"²".isdigit()`` is true while ``int("²")`` fails. Every decoder parses wire numbers
through these functions instead: ASCII ``0-9`` only, bounded length, ``None`` when the
text is not a number (the caller counts it as a protocol error).
"""

from __future__ import annotations

import re

_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_LEADING = re.compile(rb"\+?([0-9]+)")
_INTEGER = re.compile(rb"[-+]?[0-9]+")
# RESP3 doubles: [sign] digits [. digits] [e [sign] digits], inf, -inf, nan.
_FLOAT = re.compile(rb"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?inf|nan", re.IGNORECASE)

Text = bytes | bytearray | memoryview | str


def _b(text: Text) -> bytes | bytearray:
    """``text`` as bytes; non-ASCII text becomes a byte no number matches."""
    if isinstance(text, str):
        return text.encode("ascii") if text.isascii() else b"\xff"
    if isinstance(text, (bytes, bytearray)):
        return text
    return bytes(text)


# ``bytes.isdigit`` (unlike ``str.isdigit``) is true for ASCII 0-9 only, and ``int()``
# of such bytes is exact: the fast paths below rest on that.


def ascii_uint(text: Text, max_digits: int = 20) -> int | None:
    """``text`` as an unsigned decimal (ASCII digits only, at most ``max_digits``), else None."""
    b = _b(text)
    if len(b) > max_digits or not b.isdigit():
        return None
    return int(b)


def ascii_int(text: Text, max_digits: int = 20) -> int | None:
    """``text`` as a decimal with an optional leading ``-`` (ASCII digits only), else None."""
    b = _b(text)
    if b[:1] == b"-":
        digits = b[1:]
        if len(digits) > max_digits or not digits.isdigit():
            return None
        return -int(digits)
    if len(b) > max_digits or not b.isdigit():
        return None
    return int(b)


def ascii_hex(text: Text, max_digits: int = 16) -> int | None:
    """``text`` as hexadecimal digits (ASCII only, e.g. an HTTP chunk size), else None."""
    b = _b(text)
    if len(b) > max_digits or _HEX.fullmatch(b) is None:
        return None
    return int(b, 16)


def is_ascii_digits(text: Text) -> bool:
    """True when ``text`` is non-empty and only ASCII ``0-9``."""
    if isinstance(text, str):
        return text.isascii() and text.isdigit()
    return _b(text).isdigit()


def leading_uint(text: Text, max_digits: int = 19) -> int | None:
    """The ASCII digits ``text`` starts with (after an optional ``+``), as Packetbeat's
    lenient readers take them (``12, 12`` and ``12abc`` give 12); None when it does not
    start with a digit or has more than ``max_digits`` of them."""
    b = _b(text)
    if b.isdigit():
        return int(b) if len(b) <= max_digits else None
    m = _LEADING.match(b)
    if m is None or len(m.group(1)) > max_digits:
        return None
    return int(m.group(1))


def is_ascii_integer(text: Text) -> bool:
    """An optionally signed decimal of any length (RESP3 big numbers), ASCII digits only.
    Validated, never converted: ``int()`` on a megabyte of digits is quadratic."""
    return _INTEGER.fullmatch(_b(text)) is not None


def is_ascii_float(text: Text) -> bool:
    """A decimal floating-point number in ASCII (``1``, ``-1.5``, ``2e10``, ``.5``, ``inf``,
    ``nan``), as RESP3 doubles are written; no underscores, spaces or Unicode digits."""
    return _FLOAT.fullmatch(_b(text)) is not None
