"""Loading ``wirebeat.yml`` / ``packetbeat.yml``: YAML, dotted keys, ``-E`` overrides,
``${VAR:default}`` expansion, then typed attrs classes with key-path errors.

Like libbeat's go-ucfg, ``a.b.c: 1`` and ``a: {b: {c: 1}}`` are the same setting, a
single value is accepted where a list is expected, and durations and sizes may be
written in human form (``10s``, ``1m``, ``10MiB``). Unknown keys are warnings, invalid
values are errors that name the key.
"""

from __future__ import annotations

import math
import os
import re
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union

import attrs
import yaml

from protocols.common.config import ByteSize, Duration


class ConfigError(Exception):
    """A setting that cannot be used; the message names the key path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


T = TypeVar("T")

_DURATION_RE = re.compile(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> float:
    """Seconds from ``10s``, ``1m30s``, ``500ms``, ``-1s`` or a number (seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, got {value!r}")
    s = value.strip()
    try:
        return float(s)
    except ValueError:
        pass
    neg = s.startswith("-")
    body = s[1:] if neg else s
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(f"invalid duration {value!r} (use forms like 10s, 500ms, 1m)")
    return -total if neg else total


def parse_size(value: Any) -> int:
    """Bytes from ``10MiB`` (1024-based), ``10MB`` (1000-based), ``512`` ..."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a size, got {value!r}")
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"invalid size {value!r} (use forms like 512, 10KB, 10MiB)")
    num, unit, binary, _b = m.groups()
    power = "kmgtp".find(unit.lower()) + 1 if unit else 0
    base = 1024 if binary else 1000
    return int(float(num) * base**power)


# -- range rules (attrs validators with libbeat's wording) ---------------------------------

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: Go's time.Duration: int64 nanoseconds (also Python's threading.TIMEOUT_MAX).
MAX_DURATION = INT64_MAX / 1e9


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _show(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def at_least(lo: float) -> Any:
    """``requires value >= lo``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is not None and value < lo:
            raise ValueError(f"requires value >= {_num(lo)} (got {_show(value)})")

    return check


def greater_than(lo: float) -> Any:
    """``requires value > lo``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is not None and value <= lo:
            raise ValueError(f"requires value > {_num(lo)} (got {_show(value)})")

    return check


def between(lo: float, hi: float) -> Any:
    """``requires value >= lo`` and ``<= hi``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is not None and not lo <= value <= hi:
            raise ValueError(f"requires value between {_num(lo)} and {_num(hi)} (got {_show(value)})")

    return check


#: attrs metadata marking a setting that names files: "file" (must exist and be readable),
#: "pem" (a readable file or inline PEM text), "dir" (a directory that exists and is
#: writable, or can be created). Checked at load time, for ``test config`` too.
PATH_KIND = "path_kind"


def check_path(kind: str, value: str) -> str | None:
    """What is wrong with ``value`` as a ``kind`` path, or None."""
    if not value:
        return None
    if kind == "pem" and value.lstrip().startswith("-----BEGIN"):
        return None
    path = os.path.expanduser(value)
    if kind in ("file", "pem"):
        if not os.path.exists(path):
            return f"file {value!r} does not exist"
        if os.path.isdir(path):
            return f"{value!r} is a directory, not a file"
        if not os.access(path, os.R_OK):
            return f"file {value!r} is not readable"
        return None
    # dir: writable if it exists, else its nearest existing ancestor must let us create it.
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"cannot create directory {value!r}: Not a directory ({probe!r} is a file)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"cannot write to directory {value!r}: Permission denied ({probe!r})"
    return None


# -- raw tree handling ---------------------------------------------------------------------


def expand_dotted(tree: Any) -> Any:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``, merging with siblings, recursively."""
    if isinstance(tree, list):
        return [expand_dotted(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    out: dict[str, Any] = {}
    for key, value in tree.items():
        value = expand_dotted(value)
        parts = str(key).split(".")
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict) and isinstance(value, dict):
            merge(node[last], value)
        else:
            node[last] = value
    return out


def merge(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    if (
        len(parts) == 3
        and parts[:2] == ["packetbeat", "protocols"]
        and isinstance(tree.get("packetbeat", {}).get("protocols"), list)
    ):
        entry = _list_entry(tree["packetbeat"]["protocols"], parts[2])
        if isinstance(value, dict):
            entry.update(value)
        elif value is False or value is None:
            entry["enabled"] = False
        return
    for p in parts[:-1]:
        child = node.get(p)
        if isinstance(child, list) and p == "protocols":
            # -E packetbeat.protocols.http.x=1 against the 8.x list form: find the entry.
            node = _list_entry(child, parts[parts.index(p) + 1])
            parts = parts[parts.index(p) + 1 :]
            rest = ".".join(parts[1:])
            if rest:
                set_path(node, rest, value)
            elif isinstance(value, dict):
                node.update(value)  # -E packetbeat.protocols.http={ports: [80]}
            return
        if not isinstance(child, dict):
            child = node[p] = {}
        node = child
    node[parts[-1]] = value


def _list_entry(entries: list[Any], proto: str) -> dict[str, Any]:
    for e in entries:
        if isinstance(e, dict) and e.get("type") == proto:
            return e
    e = {"type": proto}
    entries.append(e)
    return e


_VAR_RE = re.compile(r"\$\{([^}:]+)(?::([^}]*))?\}")


def expand_vars(tree: Any, env: dict[str, str] | None = None) -> Any:
    """``${VAR}`` / ``${VAR:default}`` from the environment (or other settings)."""
    source: typing.Mapping[str, str] = os.environ if env is None else env

    def sub(value: str) -> Any:
        def rep(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in source:
                return source[name]
            if default is not None:
                return default
            raise ConfigError(
                "", f"missing field accessing '{name}' (environment variable ${{{name}}} unset)"
            )

        whole = _VAR_RE.fullmatch(value)
        if whole:
            text = rep(whole)
            return safe_yaml(text, f"${{{whole.group(1)}}}") if text != "" else ""
        return _VAR_RE.sub(rep, value)

    if isinstance(tree, dict):
        return {k: expand_vars(v, env) for k, v in tree.items()}
    if isinstance(tree, list):
        return [expand_vars(v, env) for v in tree]
    if isinstance(tree, str) and "${" in tree:
        return sub(tree)
    return tree


def parse_override(text: str) -> tuple[str, Any]:
    """``-E key=value``: the value is read as YAML (``[80,8080]``, ``true``, ``10s``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("", f"invalid -E option {text!r}; expected key=value")
    try:
        value = safe_yaml(raw, f"-E {key.strip()}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


# -- YAML without bombs ----------------------------------------------------------------------

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Nodes that aliases may add to a document once expanded (the settings are walked as
#: plain trees, so ``*ref`` costs as much as a copy). A real config adds a few hundred;
#: a "billion laughs" document adds billions, and is refused before anything expands.
MAX_ALIAS_NODES = 100_000
#: Nesting deeper than any config needs (each level costs a Python stack frame later).
MAX_YAML_DEPTH = 100


def safe_yaml(stream: Any, what: str) -> Any:
    """``yaml.safe_load`` that refuses alias bombs, recursive aliases and absurd nesting
    (ConfigError naming ``what``) after composing the node graph and before building
    anything from it."""
    loader = _YamlLoader(stream)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError("", f"{what}: YAML nested too deeply") from None
        if node is None:
            return None
        _check_yaml_nodes(node, what)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_yaml_nodes(root: Any, what: str) -> None:
    """Depth-first over the node graph, where an alias is the node it names: the size
    of the expanded tree (memoised per node, so a bomb costs its own size), its depth,
    and no node inside itself."""
    size: dict[int, int] = {}
    active: set[int] = set()
    distinct = 0
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, finish = stack.pop()
        key = id(node)
        children = _yaml_children(node)
        if finish:
            active.discard(key)
            size[key] = total = 1 + sum(size[id(c)] for c in children)
            if total - distinct > MAX_ALIAS_NODES:
                raise ConfigError(
                    "",
                    f"{what}: YAML aliases expand to more than {MAX_ALIAS_NODES} extra nodes "
                    "(refused: an alias bomb?)",
                )
            continue
        if key in size:
            continue
        if key in active:
            raise ConfigError("", f"{what}: a YAML alias refers to a node that contains it")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError("", f"{what}: YAML nested more than {MAX_YAML_DEPTH} levels deep")
        active.add(key)
        distinct += 1
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children)


def load_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = safe_yaml(fh, f"error loading config file {path}")
    except OSError as exc:
        raise ConfigError("", f"error loading config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "",
            f"error loading config file {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
            f"at offset {exc.start})",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", f"error loading config file {path}: invalid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("", f"error loading config file {path}: the top level must be a mapping")
    return data


# -- typed building ------------------------------------------------------------------------


class Builder:
    """Turns a raw tree into attrs instances, collecting warnings for unknown keys."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        #: Hooks for special sections: (attrs class) -> function(raw, path) -> instance.
        self.hooks: dict[type, Callable[[Builder, Any, str], Any]] = {}

    def build(self, cls: type[T], data: Any, path: str) -> T:
        hook = self.hooks.get(cls)
        if hook is not None:
            return typing.cast(T, hook(self, data, path))
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(path, f"expected a mapping, got {type(data).__name__} {data!r}")
        hints = _hints(cls)
        by_key = {f.metadata.get("key", f.name): f for f in attrs.fields(typing.cast(Any, cls))}
        data = _lift_dotted(data, [k for k in by_key if "." in k])
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            f = by_key.get(key)
            sub = f"{path}.{key}" if path else str(key)
            if f is None:
                if isinstance(value, dict) and value and any(k.startswith(f"{key}.") for k in by_key):
                    # What is left of a section of dotted settings (queue.mem.flush.*).
                    self.warnings += [f"unknown config setting {sub}.{k} (ignored)" for k in value]
                else:
                    self.warnings.append(f"unknown config setting {sub} (ignored)")
                continue
            if f.metadata.get("ignored"):
                self.warnings.append(f"config setting {sub} is accepted for compatibility and has no effect")
            only = f.metadata.get("only_under")  # a setting of some sections of a shared class only
            if only and path.rsplit(".", 1)[-1] not in only:
                self.warnings.append(f"config setting {sub} only applies under {' or '.join(only)} (ignored)")
            kwargs[f.name] = self.convert(hints[f.name], value, sub)
            _validate_field(f, kwargs[f.name], sub)
            kind = f.metadata.get(PATH_KIND)
            if kind is not None:
                _check_paths(kind, kwargs[f.name], sub)
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(path, str(exc)) from None

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            candidates = [a for a in args if a is not type(None)]
            if len(candidates) == 1:  # Optional[X]: X's own error, with its own key path
                return self.convert(candidates[0], value, path)
            errors = []
            for arg in args:
                if arg is type(None):
                    continue
                try:
                    return self.convert(arg, value, path)
                except ConfigError as exc:
                    errors.append(exc.message)
            raise ConfigError(path, "; ".join(errors))
        try:
            if tp is Duration:
                seconds = parse_duration(value)
                if not -MAX_DURATION <= seconds <= MAX_DURATION:  # also NaN
                    raise ValueError(f"duration {_show(value)} out of range (at most 292 years)")
                return seconds
            if tp is ByteSize:
                size = parse_size(value)
                if not INT64_MIN <= size <= INT64_MAX:
                    raise ValueError(f"size {_show(value)} out of range (at most 8 EiB)")
                return size
        except (ValueError, OverflowError) as exc:
            raise ConfigError(path, str(exc)) from None
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "on", "false", "no", "off"):
                return value.lower() in ("true", "yes", "on")
            raise ConfigError(path, f"expected true or false, got {value!r}")
        if tp is int:
            n: int | None = None
            if isinstance(value, bool):
                pass
            elif isinstance(value, int):
                n = value
            elif isinstance(value, float) and value.is_integer():
                n = int(value)
            elif isinstance(value, str):
                try:
                    n = int(value.strip())
                except ValueError:
                    pass
            if n is None:
                raise ConfigError(path, f"expected an integer, got {_show(value)}")
            if not INT64_MIN <= n <= INT64_MAX:
                raise ConfigError(path, f"integer {_show(value)} out of range (64 bits)")
            return n
        if tp is float:
            try:
                if isinstance(value, bool):
                    raise TypeError
                f = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(path, f"expected a number, got {_show(value)}") from None
            if not math.isfinite(f):
                raise ConfigError(path, f"expected a finite number, got {_show(value)}")
            return f
        if tp is str:
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(path, f"expected a string, got {value!r}")
        if origin is list:
            (item,) = args or (Any,)
            if value is None:
                return []
            if not isinstance(value, list):
                value = [value]
            return [self.convert(item, v, f"{path}.{i}") for i, v in enumerate(value)]
        if origin is dict:
            _k, item = args or (str, Any)
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise ConfigError(path, f"expected a mapping, got {value!r}")
            return {str(k): self.convert(item, v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(tp, type) and attrs.has(tp):
            return self.build(tp, value, path)
        return value


def _lift_dotted(data: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Settings whose key has a dot (``flush.min_events``) arrive nested, since dotted keys
    are expanded on load: move them up to their dotted name (without touching ``data``)."""
    if not keys:
        return data
    out = dict(data)
    for key in keys:
        *parents, leaf = key.split(".")
        node = out
        chain: list[tuple[dict[str, Any], str]] = []
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                break
            node[p] = child = dict(child)
            chain.append((node, p))
            node = child
        else:
            if leaf in node:
                out[key] = node.pop(leaf)
                for parent, p in reversed(chain):
                    if parent[p]:
                        break
                    del parent[p]
    return out


def _validate_field(f: Any, value: Any, path: str) -> None:
    """Run one field's converter and validator now, so an error names the key itself
    (``timestamp.precision``), not the section that holds it."""
    if f.validator is None:
        return
    try:
        if callable(f.converter):
            value = f.converter(value)
        f.validator(None, f, value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(path, str(exc)) from None
    except Exception:
        return  # a validator that needs the instance: the class checks it when built


def _check_paths(kind: str, value: Any, path: str) -> None:
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        if not isinstance(item, str):
            continue
        problem = check_path(kind, item)
        if problem:
            raise ConfigError(f"{path}.{i}" if isinstance(value, list) else path, problem)


_hint_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _hint_cache.get(cls)
    if h is None:
        h = _hint_cache[cls] = typing.get_type_hints(cls)
    return h


def to_plain(obj: Any) -> Any:
    """attrs instances back to plain dicts (``export config``)."""
    if attrs.has(type(obj)):
        out = {}
        for f in attrs.fields(type(obj)):
            out[f.metadata.get("key", f.name)] = to_plain(getattr(obj, f.name))
        return out
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj
