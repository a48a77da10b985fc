"""Dotted field paths on event dicts, with libbeat's ``mapstr`` rules.

``a.b.c`` names ``evt["a"]["b"]["c"]``, but a key that itself contains dots wins where it
exists: at every level the whole remaining path is looked up first, then the part before
the first dot (mapstr's ``mapFind``). A path is compiled once into a :class:`FieldPath`,
so the per-event work is a few dict lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: What a lookup returns for an absent field (``None`` is a value an event may carry).
MISSING: Any = object()


class FieldError(ValueError):
    """A put or delete that mapstr refuses (a non-object in the way, an absent key)."""


class FieldPath:
    """One compiled dotted path."""

    __slots__ = ("get", "key", "steps")

    #: ``get(data)``: the value, or :data:`MISSING` (also when a non-object is in the
    #: way); a function generated for the path (the lookup loop unrolled), since
    #: conditions and processors call it for every event.
    get: Callable[[Any], Any]

    def __init__(self, key: str) -> None:
        self.key = key
        steps: list[tuple[str, str | None]] = []
        rest = key
        while True:
            head, dot, tail = rest.partition(".")
            steps.append((rest, head if dot else None))
            if not dot:
                break
            rest = tail
        #: For every level: (the remaining path, the part before its first dot or None).
        self.steps = tuple(steps)
        self.get = _compile_get(self.steps)

    def __repr__(self) -> str:
        return f"FieldPath({self.key!r})"

    def has(self, data: Any) -> bool:
        return self.get(data) is not MISSING

    def _find(self, data: dict[str, Any], create: bool) -> tuple[dict[str, Any], str] | None:
        """The object that holds the last key, and that key; None when absent."""
        for rest, head in self.steps:
            if rest in data or head is None:
                return data, rest
            child = data.get(head, MISSING)
            if child is MISSING:
                if not create:
                    return None
                child = data[head] = {}
            elif type(child) is not dict:
                raise FieldError(f"expected map but type is {_go_type(child)}")
            data = child
        return None  # pragma: no cover - the last step has head None

    def holder(self, data: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        """The object holding the field and its key there; None when absent (or when a
        non-object is in the way)."""
        try:
            found = self._find(data, False)
        except FieldError:
            return None
        if found is None or found[1] not in found[0]:
            return None
        return found

    def put(self, data: dict[str, Any], value: Any) -> Any:
        """Set the value, creating objects on the way; returns the old value or MISSING.
        Raises :class:`FieldError` when a non-object value is in the way."""
        if len(self.steps) == 1:  # a top-level key: no walk
            old = data.get(self.key, MISSING)
            data[self.key] = value
            return old
        found = self._find(data, True)
        assert found is not None
        holder, k = found
        old = holder.get(k, MISSING)
        holder[k] = value
        return old

    def delete(self, data: dict[str, Any]) -> Any:
        """Remove the field and return its value; :class:`FieldError` if it is absent."""
        found = self._find(data, False)
        if found is None or found[1] not in found[0]:
            raise FieldError("key not found")
        holder, k = found
        return holder.pop(k)

    def pop(self, data: dict[str, Any]) -> Any:
        """Remove the field if present; its value or MISSING. Never raises."""
        for rest, head in self.steps:
            if rest in data:
                return data.pop(rest)
            if head is None:
                return MISSING
            data = data.get(head, MISSING)
            if type(data) is not dict:
                return MISSING
        return MISSING  # pragma: no cover


def _compile_get(steps: tuple[tuple[str, str | None], ...]) -> Any:
    """``FieldPath.get`` unrolled for one path (about twice as fast as the loop)."""
    lines = ["def get(d):"]
    for rest, head in steps:
        lines.append("    if type(d) is not dict: return MISSING")
        if head is None:
            lines.append(f"    return d.get({rest!r}, MISSING)")
        else:
            lines.append(f"    v = d.get({rest!r}, MISSING)")
            lines.append("    if v is not MISSING: return v")
            lines.append(f"    d = d.get({head!r}, MISSING)")
    ns: dict[str, Any] = {"MISSING": MISSING, "dict": dict}
    # Safe: the only inputs are the path's keys, written with repr().
    exec("\n".join(lines), ns)
    return ns["get"]


def _go_type(value: Any) -> str:
    """The Go type name libbeat's messages would show for a decoded JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if value is None:
        return "<nil>"
    return type(value).__name__


_cache: dict[str, FieldPath] = {}


def path(key: str) -> FieldPath:
    """A compiled path (shared: paths are immutable)."""
    p = _cache.get(key)
    if p is None:
        if len(_cache) > 4096:
            _cache.clear()
        p = _cache[key] = FieldPath(key)
    return p


def get(data: Any, key: str) -> Any:
    return path(key).get(data)


def put(data: dict[str, Any], key: str, value: Any) -> Any:
    return path(key).put(data, value)


def delete(data: dict[str, Any], key: str) -> Any:
    return path(key).delete(data)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (mapstr's ``Flatten``; lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        full = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, full))
        else:
            out[full] = v
    return out


def deep_update(dst: dict[str, Any], src: dict[str, Any], overwrite: bool = True) -> None:
    """mapstr's ``DeepUpdate`` (``overwrite=False``: ``DeepUpdateNoOverwrite``): objects
    merge key by key; anything else replaces (or, without overwrite, only fills a gap).
    ``src``'s objects are taken, not copied: pass a copy where ``src`` is shared."""
    for k, v in src.items():
        old = dst.get(k, MISSING)
        if old is MISSING:
            dst[k] = v
        elif isinstance(v, dict) and isinstance(old, dict):
            deep_update(old, v, overwrite)
        elif overwrite:
            dst[k] = v
