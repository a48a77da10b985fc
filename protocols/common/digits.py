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
