"""``dissect``: split a string with a tokenizer such as ``"%{key1} %{key2}"``
(libbeat/processors/dissect), keys with ``?`` (skip), ``+`` (append, ``/n`` order),
``*``/``&`` (key from another field's value), ``->`` (greedy delimiter), ``#n`` (fixed
length) and ``|type`` (integer, long, float, double, boolean, ip, string).

Positions are counted in characters (Go counts bytes: a fixed length ``#n`` over non-ASCII
text differs).
"""

from __future__ import annotations

import re
from typing import Any

from shipper.pipeline.conditions import parse_ip
from shipper.pipeline.fieldpath import MISSING, FieldError, path
from shipper.pipeline.processors.base import (
    Backup,
    Context,
    Event,
    Opts,
    Processor,
    ProcessorError,
    add_tags,
    register,
)
from shipper.pipeline.processors.gofmt import parse_bool, parse_float, parse_int, wrap_int

_DELIM = re.compile(r"(.*?)%\{([^}]*?)}", re.S)
_SUFFIX = re.compile(r"(.+?)(/(\d{1,2}))?(#(\d{1,2}))?(->)?(\|([A-Za-z]*)?)?$")
TYPES = ("integer", "long", "float", "double", "string", "boolean", "ip")


class DissectError(ValueError):
    pass


class Field:
    """One ``%{…}`` of the tokenizer."""

    __slots__ = ("dtype", "greedy", "id", "key", "kind", "length", "ordinal", "previous")

    def __init__(self, fid: int, kind: str, key: str, ordinal: int = 0, length: int = 0) -> None:
        self.id = fid
        self.kind = kind  # normal, skip, named_skip, pointer, indirect, append
        self.key = key
        self.ordinal = ordinal
        self.length = length
        self.greedy = False
        self.dtype = ""
        self.previous = ""

    @property
    def saveable(self) -> bool:
        return self.kind not in ("skip", "named_skip", "pointer")

    def apply(self, value: str, m: dict[str, str]) -> None:
        k = self.kind
        if k == "skip":
            return
        if k == "indirect":
            ref = m.get(self.key)
            if ref is not None:
                m[ref] = value
            return
        if k == "append":
            old = m.get(self.key)
            if old is not None:
                m[self.key] = old + (self.previous or " ") + value
                return
        m[self.key] = value


def _new_field(fid: int, raw: str, previous: str) -> Field:
    if not raw:
        return Field(fid, "skip", "")
    m = _SUFFIX.match(raw)
    if m is None:
        raise DissectError("empty key")
    key = m.group(1)
    ordinal = int(m.group(3)) if m.group(3) else 0
    length = int(m.group(5)) if m.group(5) else 0
    greedy = bool(m.group(6))
    dtype = m.group(8) or ""
    if raw.endswith("|"):
        raise DissectError("missing data type")
    if dtype and dtype not in TYPES:
        raise DissectError("invalid data type")
    if key.startswith("+&") or key.startswith("&+"):
        raise DissectError("mixed prefix `&+`")
    if key.startswith("?"):
        f = Field(fid, "named_skip", key[1:], length=length)
    elif key.startswith("*"):
        f = Field(fid, "pointer", key[1:], length=length)
    elif key.startswith("+"):
        f = Field(fid, "append", key[1:], ordinal, length)
        f.greedy = greedy
        f.previous = previous
    elif key.startswith("&"):
        f = Field(fid, "indirect", key[1:], length=length)
        f.dtype = dtype
    else:
        f = Field(fid, "normal", key, ordinal, length)
        f.greedy = greedy
        f.dtype = dtype
    return f


class Dissector:
    def __init__(self, tokenizer: str) -> None:
        self.raw = tokenizer
        matches = list(_DELIM.finditer(tokenizer))
        if not matches:
            raise DissectError("invalid dissect tokenizer")
        self.delims: list[str] = []
        self.greedy: list[bool] = []
        fields: list[Field] = []
        pos = 0
        for fid, m in enumerate(matches):
            d = m.group(1)
            f = _new_field(fid, m.group(2), d)
            fields.append(f)
            self.delims.append(d)
            self.greedy.append(f.greedy)
            pos = m.end()
        if pos < len(tokenizer):
            self.delims.append(tokenizer[pos:])
            self.greedy.append(False)
        self.by_id = list(fields)
        self.fields = sorted(fields, key=lambda f: f.ordinal)
        self.references = [f for f in self.fields if not f.saveable]
        self.convert = any(f.dtype for f in self.fields)
        for f in self.fields:
            if f.kind == "indirect" and not any(r.key == f.key for r in self.references):
                raise DissectError(f"missing reference for key '{f.key}'")

    def _extract(self, s: str) -> list[tuple[int, int]]:
        delims = self.delims
        n = len(self.by_id)
        positions = [(0, 0)] * n
        first = delims[0]
        if first and not s.startswith(first):
            raise DissectError(
                f"could not find beginning delimiter: `{first}` in remaining: `{s}`, (offset: 0)"
            )
        offset = len(first)
        i = 0
        while i + 1 < len(delims):
            start = offset
            field = self.by_id[i]
            nxt = delims[i + 1]
            if field.length:
                end = offset + field.length
                if end > len(s):
                    raise DissectError(
                        f"field length is grater than string length: remaining: `{s[offset:]}`, "
                        f"(offset: {offset})"
                    )
            else:
                end = s.find(nxt, offset) if nxt else offset
                if end == -1:
                    raise DissectError(
                        f"could not find delimiter: `{delims[i]}` in remaining: `{s[offset:]}`, "
                        f"(offset: {offset})"
                    )
            offset = end
            if self.greedy[i] and nxt:
                while True:
                    look = s.find(nxt, offset + 1)
                    if look != offset + 1:
                        break
                    offset = look
            positions[i] = (start, end)
            offset += len(nxt)
            i += 1
        if i < n:
            field = self.by_id[i]
            if field.length and offset + field.length != len(s):
                raise DissectError(
                    f"last fixed length key `{field.key}` (length: {field.length}) does not fit into "
                    f"remaining: `{s}`, (offset: {offset})"
                )
            if offset < len(s):
                positions[i] = (offset, len(s))
        return positions

    def dissect(self, s: str, trim: Any = None) -> dict[str, Any]:
        if not s:
            raise DissectError("empty string provided")
        positions = self._extract(s)
        if trim is not None and not self.convert:
            positions = [trim(s, a, b) for a, b in positions]
        m: dict[str, str] = {}
        if not self.convert:
            for f in self.fields:
                a, b = positions[f.id]
                f.apply(s[a:b], m)
            for f in self.references:
                m.pop(f.key, None)
            return m
        lookup: dict[str, str] = {}
        out: dict[str, Any] = {}
        for f in self.fields:
            a, b = positions[f.id]
            f.apply(s[a:b], m)
            if not f.saveable:
                lookup[f.key] = s[a:b]
            else:
                key = lookup.get(f.key, f.key)
                v = m.get(key, "")
                out[key] = convert(f.dtype, v) if f.dtype else v
        for f in self.references:
            out.pop(f.key, None)
        return out


def convert(dtype: str, value: str) -> Any:
    """dissect's ``convertData``: the typed value, or the text when it does not parse."""
    v = value.rstrip(" ")
    try:
        if dtype == "long":
            return parse_int(v, 64)
        if dtype == "integer":
            return wrap_int(parse_int(v, 32), 32)
        if dtype == "float":
            return parse_float(v, 32)
        if dtype == "double":
            return parse_float(v, 64)
        if dtype == "boolean":
            return parse_bool(v)
        if dtype == "ip":
            return v if parse_ip(v) is not None else value
        return v
    except ValueError:
        return value


def _trimmer(chars: str, left: bool, right: bool) -> Any:
    def trim(s: str, a: int, b: int) -> tuple[int, int]:
        if left:
            while a < b and s[a] in chars:
                a += 1
        if right:
            while a < b and s[b - 1] in chars:
                b -= 1
        return a, b

    return trim


@register("dissect")
def dissect(o: Opts, ctx: Context) -> Processor:
    tok = o.str("tokenizer", required=True)
    try:
        d = Dissector(tok)
    except DissectError as exc:
        raise o.error("tokenizer", str(exc)) from None
    field = path(o.str("field", "message"))
    prefix = o.opt_str("target_prefix")
    prefix = "dissect" if prefix is None else prefix
    ignore_failure = o.bool("ignore_failure", False)
    overwrite = o.bool("overwrite_keys", False)
    mode = o.str("trim_values", "none").lower()
    modes = {"": (False, False), "none": (False, False), "left": (True, False), "right": (False, True)}
    modes.update({"all": (True, True), "both": (True, True)})
    if mode not in modes:
        raise o.error("trim_values", f"unsupported value {mode}. Must be one of [none, left, right, all]")
    left, right = modes[mode]
    chars = o.str("trim_chars", " ")
    trim = _trimmer(chars, left, right) if left or right else None
    pre = prefix + "." if prefix else ""
    if prefix:
        o.writes(prefix, "log.flags")

    def run(evt: Event) -> Event:
        v = field.get(evt)
        if v is MISSING:
            raise ProcessorError("key not found", evt)
        if not isinstance(v, str):
            raise ProcessorError(f"field is not a string, value: `{v}`, field: `{field.key}`", evt)
        try:
            m = d.dissect(v, trim)
        except DissectError as exc:
            add_tags(evt, "log.flags", ["dissect_parsing_error"])
            if ignore_failure:
                return evt
            raise ProcessorError(str(exc), evt) from None
        keys = [pre + k for k in m]
        backup = Backup(keys)
        saved = backup.take(evt)
        for k, val in m.items():
            pk = pre + k
            p = path(pk)
            if overwrite or p.get(evt) is MISSING:
                try:
                    p.put(evt, val)
                except FieldError:
                    pass
            else:
                raise ProcessorError(f"cannot override existing key with `{pk}`", backup.restore(evt, saved))
        return evt

    return run
