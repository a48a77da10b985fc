"""Go (RE2) regular expressions, as libbeat's configs write them, run by Python's ``re``.

libbeat compiles ``regexp`` conditions, ``drop_fields`` patterns, ``replace`` patterns ...
with Go's ``regexp`` package. The two dialects agree on most of what configs use; where they
differ this module translates (``\\z``, ``\\Q..\\E``, POSIX classes such as ``[[:digit:]]``,
``(?<name>..)``, ``$`` at the end of the text only) or refuses what Go refuses (look-around,
back-references), so a pattern behaves here as it does in Packetbeat or fails at start-up
with the reason. Python's engine backtracks where RE2 does not: patterns with nested
quantifiers can be slow on hostile input; the documentation says so.
"""

from __future__ import annotations

import re
from functools import lru_cache

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}


class RegexpError(ValueError):
    pass


def translate(pattern: str) -> str:
    """The Python form of a Go pattern; :class:`RegexpError` for what Go would refuse."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    multiline = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise RegexpError("trailing backslash at end of expression")
            d = pattern[i + 1]
            if d == "Q" and not in_class:
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(lit))
                i = n if end < 0 else end + 2
                continue
            if d == "z":
                out.append("\\Z")
            elif d.isdigit() and d != "0":
                raise RegexpError(f"invalid escape sequence: \\{d} (Go has no back-references)")
            elif d in "pP":
                raise RegexpError(f"Unicode classes (\\{d}) are not supported by wirebeat's regexp engine")
            else:
                out.append(c + d)
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                if end > 0:
                    name = pattern[i + 2 : end]
                    neg = name.startswith("^")
                    name = name.lstrip("^")
                    if name not in _POSIX:
                        raise RegexpError(f"invalid character class range: [:{name}:]")
                    if neg:
                        raise RegexpError("negated POSIX classes are not supported by wirebeat")
                    out.append(_POSIX[name])
                    i = end + 2
                    continue
            if c == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            elif c == "[":
                out.append("\\[")
                i += 1
                continue
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
            else:
                out.append("[")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal
                out.append("\\]")
                i += 1
            continue
        if c == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2 : i + 4]
            if rest[:1] in ("=", "!") or rest in ("<=", "<!"):
                raise RegexpError("invalid or unsupported Perl syntax: look-around assertions (Go has none)")
            if rest[:1] == "<":
                out.append("(?P<")
                i += 3
                continue
            m = re.match(r"\(\?([imsU-]*)[:)]", pattern[i:])
            if m:
                flags = m.group(1)
                if "U" in flags:
                    raise RegexpError("the ungreedy flag (?U) is not supported by wirebeat")
                if "m" in flags.split("-")[0]:
                    multiline = True
        if c == "$" and not multiline:
            out.append("\\Z")  # Go's $ without (?m) is the end of the text, never before a \n
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a Go pattern; :class:`RegexpError` says what is wrong with it."""
    if not isinstance(pattern, str):
        raise RegexpError(f"expected a string pattern, got {pattern!r}")
    try:
        return re.compile(translate(pattern))
    except re.error as exc:
        raise RegexpError(f"error parsing regexp {pattern!r}: {exc}") from None
