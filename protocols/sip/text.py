"""Wire text the way Packetbeat's Go code reads and writes it.

SIP headers are bytes; Packetbeat trims them with ``bytes.TrimSpace`` (Unicode white space),
changes case with ``bytes.ToUpper``/``ToLower`` (simple case mapping, each invalid UTF-8 byte
becomes U+FFFD) and its JSON encoder writes every invalid byte as U+FFFD. Numbers go through
``streambuf.IntASCII`` (a leading ``[+-]?[0-9]+``, the rest ignored) or ``strconv.Atoi``
(the whole text, clamped to 64 bits). These helpers do the same on ASCII digits only
(``protocols.common.digits`` rules: never ``int()`` on wire text that is not checked first).
"""

from __future__ import annotations

import re

#: Go's ``unicode.IsSpace`` (Python's ``str.isspace`` also takes U+001C..U+001F).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_GO_SPACE_SET = frozenset(GO_SPACE)
_ASCII_SPACE = b"\t\n\v\f\r "
_ASCII_SPACE_RE = re.compile(rb"[\t\n\v\f\r ]")
_SURROGATE = re.compile("[\udc80-\udcff]")
_LEADING_DIGITS = re.compile(rb"[0-9]*")
_ATOI = re.compile(rb"[+-]?[0-9]+")
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)
_U64 = 1 << 64
#: Go's simple case mapping differs from Python's full mapping where Python gives two
#: characters; these are the ones whose simple mapping is not the character itself.
_LOWER_SPECIAL = {"\u0130": "i"}


def gostr(b: bytes) -> str:
    """Bytes as Go's JSON encoder writes them: UTF-8, each invalid byte U+FFFD."""
    if b.isascii():
        return b.decode("ascii")
    return _SURROGATE.sub("\ufffd", b.decode("utf-8", "surrogateescape"))


def go_upper(b: bytes) -> str:
    """``bytes.ToUpper`` then JSON: simple case mapping."""
    if b.isascii():
        return b.upper().decode("ascii")
    return "".join(u if len(u := c.upper()) == 1 else c for c in gostr(b))


def go_lower_str(s: str) -> str:
    if s.isascii():
        return s.lower()
    return "".join(_LOWER_SPECIAL.get(c) or (u if len(u := c.lower()) == 1 else c) for c in s)


def go_lower(b: bytes) -> str:
    """``bytes.ToLower`` then JSON: simple case mapping."""
    if b.isascii():
        return b.lower().decode("ascii")
    return go_lower_str(gostr(b))


def go_lower_bytes(b: bytes) -> bytes:
    """``bytes.ToLower`` as bytes (header names: a map key, not output)."""
    if b.isascii():
        return b.lower()
    return go_lower(b).encode("utf-8")


def trim_space(b: bytes) -> bytes:
    """``bytes.TrimSpace``: ASCII white space, and the Unicode white space of UTF-8 text."""
    s = b.strip(_ASCII_SPACE)
    if s and (s[0] >= 0x80 or s[-1] >= 0x80):
        u = s.decode("utf-8", "surrogateescape").strip(GO_SPACE)
        return u.encode("utf-8", "surrogateescape")
    return s


def space_bounds(line: bytes) -> tuple[int, int]:
    """Byte offsets of the first and the last Unicode space of ``line`` (-1 if none), as
    ``bytes.IndexFunc``/``LastIndexFunc(line, unicode.IsSpace)`` find them."""
    if line.isascii():
        m = _ASCII_SPACE_RE.search(line)
        if m is None:
            return -1, -1
        last = max(line.rfind(c) for c in (b" ", b"\t", b"\n", b"\v", b"\f", b"\r"))
        return m.start(), last
    first = last = -1
    off = 0
    for c in line.decode("utf-8", "surrogateescape"):
        n = 1 if "\udc80" <= c <= "\udcff" else len(c.encode("utf-8"))
        if c in _GO_SPACE_SET:
            if first < 0:
                first = off
            last = off
        off += n
    return first, last


def int_ascii(t: bytes) -> int | None:
    """``streambuf.IntASCII``: an optional sign, then leading ASCII digits (what follows is
    ignored); None without digits. More than 20 digits is refused (Packetbeat would wrap)."""
    if not t:
        return None
    start = 1 if t[0] in b"+-" else 0
    m = _LEADING_DIGITS.match(t, start)
    assert m is not None
    digits = m.group()
    if not digits or len(digits) > 20:
        return None
    v = int(digits) % _U64
    if t[0] == 45:  # '-'
        v = (-v) % _U64
    return v - _U64 if v > _INT64_MAX else v


def atoi(t: bytes) -> int:
    """``strconv.Atoi`` with the error dropped: ``[+-]?[0-9]+`` or 0, clamped to 64 bits."""
    if _ATOI.fullmatch(t) is None:
        return 0
    neg = t[0] == 45  # '-'
    digits = t.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 19:
        return _INT64_MIN if neg else _INT64_MAX
    v = -int(digits or b"0") if neg else int(digits or b"0")
    return _INT64_MAX if v > _INT64_MAX else _INT64_MIN if v < _INT64_MIN else v
