"""What the SQL decoders share: the method of a query, and Packetbeat's CSV rendering of
result sets (``response`` when ``send_response`` is on)."""

from __future__ import annotations

_WS = " \r\n\t"
_QUOTE_CHARS = frozenset(',"\r\n')
#: unicode.IsSpace in Go: what makes encoding/csv quote a field that starts with it.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def sql_method(query: str) -> tuple[str, str]:
    """(trimmed query, method): the first word, upper-cased; CR/LF/TAB separate words too."""
    q = query.strip(_WS)
    for i, c in enumerate(q):
        if c in _WS:
            return q, q[:i].upper()
    return q, q.upper()


def _csv_field(value: str) -> str:
    if not value:
        return value
    if value == "\\." or not _QUOTE_CHARS.isdisjoint(value) or value[0] in _GO_SPACE:
        return '"' + value.replace('"', '""') + '"'
    return value


def dump_csv(fields: list[str], rows: list[list[str]]) -> str:
    """Packetbeat's ``DumpInCSVFormat``: a header line, then the rows; newlines inside
    values are written as ``\\n``/``\\r`` and quoting follows Go's encoding/csv."""
    lines = []
    if fields:
        lines.append(",".join(_csv_field(f.replace("\n", "\\n")) for f in fields))
    for row in rows:
        lines.append(",".join(_csv_field(v.replace("\n", "\\n").replace("\r", "\\r")) for v in row))
    if not lines:
        return ""
    return "\n".join(lines) + "\n"
