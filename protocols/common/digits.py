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

_DEC = re.compile(rb"[0-9]{1,20}")
_SIGNED = re.compile(rb"-?[0-9]{1,20}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_LEADING = re.compile(rb"\+?([0-9]+)")
_INTEGER = re.compile(rb"[-+]?[0-9]+")
# RESP3 doubles: [sign] digits [. digits] [e [sign] digits], inf, -inf, nan.
_FLOAT = re.compile(rb"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?inf|nan", re.IGNORECASE)


def _b(text: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(text, str):
        try:
            return text.encode("ascii")
        except UnicodeEncodeError:
            return b"\xff"  # never matches: non-ASCII text is not a wire number
    return bytes(text)


def ascii_uint(text: bytes | bytearray | memoryview | str, max_digits: int = 20) -> int | None:
    """``text`` as an unsigned decimal (ASCII digits only, at most ``max_digits``), else None."""
    b = _b(text)
    if len(b) > max_digits or _DEC.fullmatch(b) is None:
        return None
    return int(b)


def ascii_int(text: bytes | bytearray | memoryview | str, max_digits: int = 20) -> int | None:
    """``text`` as a decimal with an optional leading ``-`` (ASCII digits only), else None."""
    b = _b(text)
    if len(b) > max_digits + 1 or _SIGNED.fullmatch(b) is None:
        return None
    return int(b)


def ascii_hex(text: bytes | bytearray | memoryview | str, max_digits: int = 16) -> int | None:
    """``text`` as hexadecimal digits (ASCII only, e.g. an HTTP chunk size), else None."""
    b = _b(text)
    if len(b) > max_digits or _HEX.fullmatch(b) is None:
        return None
    return int(b, 16)


def is_ascii_digits(text: bytes | bytearray | memoryview | str) -> bool:
    """True when ``text`` is non-empty and only ASCII ``0-9``."""
    b = _b(text)
    return bool(b) and b.isascii() and b.isdigit()


def leading_uint(text: bytes | bytearray | memoryview | str, max_digits: int = 19) -> int | None:
    """The ASCII digits ``text`` starts with (after an optional ``+``), as Packetbeat's
    lenient readers take them (``12, 12`` and ``12abc`` give 12); None when it does not
    start with a digit or has more than ``max_digits`` of them."""
    m = _LEADING.match(_b(text))
    if m is None or len(m.group(1)) > max_digits:
        return None
    return int(m.group(1))


def is_ascii_integer(text: bytes | bytearray | memoryview | str) -> bool:
    """An optionally signed decimal of any length (RESP3 big numbers), ASCII digits only.
    Validated, never converted: ``int()`` on a megabyte of digits is quadratic."""
    return _INTEGER.fullmatch(_b(text)) is not None


def is_ascii_float(text: bytes | bytearray | memoryview | str) -> bool:
    """A decimal floating-point number in ASCII (``1``, ``-1.5``, ``2e10``, ``.5``, ``inf``,
    ``nan``), as RESP3 doubles are written; no underscores, spaces or Unicode digits."""
    return _FLOAT.fullmatch(_b(text)) is not None
