"""libbeat's event format strings (``libbeat/common/fmtstr``): ``%{[field]}``, ``%{[a][b]}``,
``%{[a.b]}``, ``%{[field]:default}`` and ``%{+yyyy.MM.dd}`` (the event's ``@timestamp``).

Semantics kept from libbeat:

- a field without a default is *required*: when the event lacks it (or it holds an
  object or a list), :meth:`FormatString.run` raises :class:`FieldMissing`, and the caller
  decides (a topic selector falls back to its ``default``; a message key is left out);
- with ``:default``, a missing or empty value is replaced by the default text;
- values are written as libbeat's ``tryConvString`` writes them: strings as they are,
  ``true``/``false``, integers in decimal, floats in Go's shortest ``%g`` form (``1e+06``);
- ``\\`` escapes the next character; ``%`` not followed by ``{`` is literal.
- field paths follow libbeat's ``GetValue``: ``@timestamp``, ``@metadata.*``, and a dotted
  path that first tries the whole key, then splits at the first dot (mapstr semantics).

Written by hand: no library implements libbeat's syntax; the grammar is small.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any


class FormatError(ValueError):
    """The format string does not compile (the message says why, as libbeat does)."""


class FieldMissing(KeyError):
    """A required field of the format string is missing from the event."""


_MISSING = object()
_OPS = "!@#&*=+<>?"


def lookup(event: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (dotted) in ``event``, or ``_MISSING`` (mapstr's ``GetValue``:
    the whole remaining key first, then split at the first dot)."""
    node: Any = event
    key = path
    while True:
        if not isinstance(node, Mapping):
            return _MISSING
        try:
            if key in node:
                return node[key]
        except TypeError:
            return _MISSING
        head, dot, rest = key.partition(".")
        if not dot:
            return _MISSING
        try:
            node = node.get(head, _MISSING) if head in node else _MISSING
        except TypeError:
            return _MISSING
        if node is _MISSING:
            return _MISSING
        key = rest


def get_value(event: Mapping[str, Any], path: str) -> Any:
    """``lookup`` that raises :class:`FieldMissing` instead of returning a sentinel."""
    v = lookup(event, path)
    if v is _MISSING:
        raise FieldMissing(path)
    return v


def go_float(f: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'g', -1, 64)``: the shortest digits that read back as
    ``f``, in exponent form when the decimal exponent is < -4 or >= 6 (``1e+06``)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if str(f).startswith("-") else ""
    if f == 0:
        return sign + "0"
    digits, exp = _shortest(abs(f))
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= exp + 1:
        return sign + digits + "0" * (exp + 1 - len(digits))
    return f"{sign}{digits[: exp + 1]}.{digits[exp + 1 :]}"


def _shortest(f: float) -> tuple[str, int]:
    """(significant digits, decimal exponent of the first digit) of ``repr(f)``, the
    shortest form that reads back (as Go's shortest formatting)."""
    mant, _, ex = f"{f!r}".partition("e")
    whole, _, frac = mant.partition(".")
    exp = int(ex) if ex else 0
    digits = (whole + frac).lstrip("0")
    lead = len(whole.lstrip("0"))
    if lead:
        exp += lead - 1
    else:
        exp -= len(frac) - len(frac.lstrip("0")) + 1
    return digits.rstrip("0") or "0", exp


def to_text(value: Any) -> str | None:
    """libbeat's ``tryConvString``: None when the value has no string form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


# -- timestamps (libbeat's dtfmt, Joda-style patterns) -----------------------------------------

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September"]
_MONTHS += ["October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _compile_time(pattern: str) -> list[tuple[str, int]]:
    """Joda pattern → [(letter or "'" for literal text, count or text)]."""
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            j = pattern.find("'", i + 1)
            if j < 0:
                raise FormatError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append(("'", pattern[i + 1 : j] or "'"))
            i = j + 1
            continue
        if c.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == c:
                j += 1
            if c not in "GCYxwEeyDMdaKhHkmsSzZ":
                raise FormatError(f"unsupported letter {c!r} in timestamp pattern {pattern!r}")
            out.append((c, j - i))
            i = j
            continue
        out.append(("'", c))
        i += 1
    return out


def _format_time(parts: list[tuple[str, Any]], ts: datetime.datetime) -> str:
    out = []
    for letter, n in parts:
        if letter == "'":
            out.append(n)
        elif letter in "yY":
            out.append(f"{ts.year % 100:02d}" if n == 2 else f"{ts.year:0{n}d}")
        elif letter == "x":
            year = ts.isocalendar()[0]
            out.append(f"{year % 100:02d}" if n == 2 else f"{year:0{n}d}")
        elif letter == "w":
            out.append(f"{ts.isocalendar()[1]:0{n}d}")
        elif letter == "C":
            out.append(f"{ts.year // 100:0{n}d}")
        elif letter == "G":
            out.append("AD")
        elif letter == "M":
            if n >= 4:
                out.append(_MONTHS[ts.month - 1])
            elif n == 3:
                out.append(_MONTHS[ts.month - 1][:3])
            else:
                out.append(f"{ts.month:0{n}d}")
        elif letter == "d":
            out.append(f"{ts.day:0{n}d}")
        elif letter == "D":
            out.append(f"{ts.timetuple().tm_yday:0{n}d}")
        elif letter == "E":
            out.append(_DAYS[ts.weekday()] if n >= 4 else _DAYS[ts.weekday()][:3])
        elif letter == "e":
            out.append(f"{ts.isoweekday():0{n}d}")
        elif letter == "a":
            out.append("AM" if ts.hour < 12 else "PM")
        elif letter == "H":
            out.append(f"{ts.hour:0{n}d}")
        elif letter == "k":
            out.append(f"{ts.hour or 24:0{n}d}")
        elif letter == "K":
            out.append(f"{ts.hour % 12:0{n}d}")
        elif letter == "h":
            out.append(f"{ts.hour % 12 or 12:0{n}d}")
        elif letter == "m":
            out.append(f"{ts.minute:0{n}d}")
        elif letter == "s":
            out.append(f"{ts.second:0{n}d}")
        elif letter == "S":
            out.append(f"{ts.microsecond:06d}000"[:n].ljust(n, "0"))
        elif letter == "z":
            out.append("UTC")
        elif letter == "Z":
            out.append("Z" if n == 1 else "+00:00" if n == 2 else "UTC")
    return "".join(out)


def event_time(event: Mapping[str, Any]) -> datetime.datetime:
    """The event's ``@timestamp`` as an aware UTC datetime (now, if it has none)."""
    ts = event.get("@timestamp") if isinstance(event, Mapping) else None
    if isinstance(ts, datetime.datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=datetime.UTC)
    if isinstance(ts, str):
        parsed = parse_timestamp(ts)
        if parsed is not None:
            return parsed
    return datetime.datetime.now(datetime.UTC)


_TS_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_timestamp(text: str) -> datetime.datetime | None:
    """RFC 3339 (any number of fraction digits) → UTC datetime; None when it is not one."""
    m = _TS_RE.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime.datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            int(s),
            int((frac or "0")[:6].ljust(6, "0")),
            tzinfo=datetime.UTC,
        )
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        dt -= sign * datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return dt


# -- the format string ---------------------------------------------------------------------


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens: ("str", s), ("open", ""), ("close", ""), ("op", ":" or ":x")."""
    tokens: list[tuple[str, str]] = []
    buf: list[str] = []
    depth = 0
    i = 0
    n = len(text)

    def flush() -> None:
        if buf:
            tokens.append(("str", "".join(buf)))
            buf.clear()

    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 < n:
                buf.append(text[i + 1])
            i += 2
            continue
        if c == "%" and i + 1 < n and text[i + 1] == "{":
            flush()
            tokens.append(("open", ""))
            depth += 1
            i += 2
            continue
        if depth and c == "}":
            flush()
            tokens.append(("close", ""))
            depth -= 1
            i += 1
            continue
        if depth and c == ":" and i + 1 < n:
            flush()
            if text[i + 1] in _OPS:
                tokens.append(("op", text[i : i + 2]))
                i += 2
            else:
                tokens.append(("op", ":"))
                i += 1
            continue
        buf.append(c)
        i += 1
    flush()
    return tokens


def _event_path(field: str) -> str:
    """``[a][b.c]`` → ``a.b.c`` (libbeat's parseEventPath)."""
    field = field.strip(" \n\r\t")
    parts = []
    while field:
        if field[0] != "[":
            raise FormatError("expected field extractor start with '['")
        end = field.find("]")
        if end < 0:
            raise FormatError("missing closing ']'")
        name = field[1:end]
        if not name:
            raise FormatError("empty fields selector '[]'")
        parts.append(name)
        field = field[end + 1 :]
    return ".".join(parts)


class FormatString:
    """A compiled event format string; ``run(event)`` evaluates it."""

    __slots__ = ("_parts", "fields", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        #: ("lit", text) | ("field", path, default or None) | ("time", parts)
        self._parts: list[tuple[Any, ...]] = []
        tokens = _lex(text)
        i = 0
        while i < len(tokens):
            kind, val = tokens[i]
            if kind == "str":
                self._add_literal(val)
                i += 1
                continue
            if kind != "open":
                raise FormatError(f"Token '{val}' not allowed")
            # a variable: str (op str)* close
            strings: list[str] = []
            ops: list[str] = []
            i += 1
            while True:
                if i >= len(tokens):
                    raise FormatError("missing closing '}'")
                kind, val = tokens[i]
                i += 1
                if kind == "open":
                    raise FormatError("format string variables can not be nested")
                if kind == "close":
                    break
                if kind == "str":
                    if len(strings) != len(ops):
                        raise FormatError(f"Unexpected string token {val}, expected operator")
                    strings.append(val)
                else:
                    if not strings:
                        raise FormatError("unexpected formatter operator")
                    ops.append(val)
                    if len(ops) > len(strings):
                        raise FormatError(f"Consecutive operator tokens '{val}'")
            if not strings:
                raise FormatError("empty format expansion")
            self._add_variable(strings[0], ops, strings[1:])
        self.fields = [p[1] for p in self._parts if p[0] == "field"]

    def _add_literal(self, s: str) -> None:
        if self._parts and self._parts[-1][0] == "lit":
            self._parts[-1] = ("lit", self._parts[-1][1] + s)
        else:
            self._parts.append(("lit", s))

    def _add_variable(self, expr: str, ops: list[str], params: list[str]) -> None:
        if not expr:
            raise FormatError("empty expression")
        if expr[0] == "+":
            self._parts.append(("time", _compile_time(expr[1:])))
            return
        if expr[0] != "[":
            raise FormatError(f'unsupported format expression "{expr}"')
        if len(ops) > 1:
            raise FormatError("too many format modifiers given")
        default = None
        if ops:
            if ops[0] != ":":
                raise FormatError(f"unsupported format operator: {ops[0]}")
            default = params[0] if params else ""
        self._parts.append(("field", _event_path(expr), default))

    def is_const(self) -> bool:
        return all(p[0] == "lit" for p in self._parts)

    def run(self, event: Mapping[str, Any]) -> str:
        out = []
        for part in self._parts:
            kind = part[0]
            if kind == "lit":
                out.append(part[1])
            elif kind == "field":
                _, path, default = part
                value = lookup(event, path)
                text = None if value is _MISSING else to_text(value)
                if text is None:
                    if default is None:
                        raise FieldMissing(path)
                    text = ""
                if text == "" and default is not None:
                    text = default
                out.append(text)
            else:
                out.append(_format_time(part[1], event_time(event)))
        return "".join(out)

    def __repr__(self) -> str:
        return f"FormatString({self.text!r})"


def compile_format(text: str) -> FormatString:
    """Compile ``text``; raises :class:`FormatError` naming what is wrong."""
    return FormatString(text)
