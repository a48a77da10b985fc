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
    """A setting that cannot be used; the message names the key path.

    A broken rule on a value (a range, a type) reads like go-ucfg's, ``requires value >= 32
    accessing 'queue.mem.events'``; other problems read ``key.path: what is wrong``. The
    loader adds where the value came from (``source``: ``-E``, the config file's path, the
    keystore or the environment); a value that came from the keystore is never shown.
    """

    def __init__(self, path: str, message: str, *, got: str | None = None, accessing: bool = False) -> None:
        self.path = path
        self.message = message
        self.got = got
        self.accessing = accessing
        #: Set by the loader: where the value came from.
        self.source = ""
        #: Set by the loader: the value came from the keystore (``got`` is hidden).
        self.secret = False
        super().__init__(path, message)

    def __str__(self) -> str:
        if self.accessing and self.path:
            text = f"{self.message} accessing '{self.path}'"
        else:
            text = f"{self.path}: {self.message}" if self.path else self.message
        extra = []
        if self.got is not None:
            extra.append("got <hidden>" if self.secret else f"got {self.got}")
        if self.source:
            extra.append(f"from {self.source}")
        return f"{text} ({', '.join(extra)})" if extra else text


class RuleError(ValueError):
    """A value that breaks a rule (``requires value >= 32``); ``got`` is the value shown."""

    def __init__(self, rule: str, got: str | None = None) -> None:
        self.rule = rule
        self.got = got
        super().__init__(f"{rule} (got {got})" if got is not None else rule)


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
            raise RuleError(f"requires value >= {_num(lo)}", _show(value))

    return check


def greater_than(lo: float) -> Any:
    """``requires value > lo``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is not None and value <= lo:
            raise RuleError(f"requires value > {_num(lo)}", _show(value))

    return check


def between(lo: float, hi: float) -> Any:
    """``requires value >= lo`` and ``<= hi``."""

    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value is not None and not lo <= value <= hi:
            raise RuleError(f"requires value between {_num(lo)} and {_num(hi)}", _show(value))

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


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> str:
    """Set ``dotted`` in ``tree`` as ``-E`` does; returns the path it really set.

    As in libbeat, a number indexes a list (``packetbeat.protocols.0.ports``,
    ``packetbeat.interfaces.1.device``; the index just past the end appends). wirebeat
    also lets a protocol's name stand for its entry in the 8.x list form
    (``packetbeat.protocols.http.ports`` → the entry whose ``type`` is ``http``).
    """
    parts = dotted.split(".")
    if (
        len(parts) == 3
        and parts[:2] == ["packetbeat", "protocols"]
        and not parts[2].isdigit()
        and isinstance(tree.get("packetbeat", {}).get("protocols"), list)
    ):
        # -E packetbeat.protocols.http={ports: [80]} / =false against the list form.
        entries = tree["packetbeat"]["protocols"]
        entry = _list_entry(entries, parts[2])
        resolved = f"packetbeat.protocols.{entries.index(entry)}"
        if isinstance(value, dict):
            entry.update(value)
        elif value is False or value is None:
            entry["enabled"] = False
            return f"{resolved}.enabled"
        else:
            raise ConfigError(dotted, "expected a mapping of the protocol's settings, or false")
        return resolved
    node: Any = tree
    done: list[str] = []
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if p.isdigit():
                idx = int(p)
                if idx > len(node):
                    raise ConfigError(
                        ".".join(done), f"index {idx} out of range (the list has {len(node)} entries)"
                    )
                if last:
                    if idx == len(node):
                        node.append(value)
                    else:
                        node[idx] = value
                    return ".".join([*done, p])
                if idx == len(node):
                    node.append({})
                if not isinstance(node[idx], dict | list):
                    node[idx] = {}
                node = node[idx]
                done.append(p)
                continue
            if done[-1:] == ["protocols"]:
                # packetbeat.protocols.http.x=1 against the 8.x list form: find the entry.
                entry = _list_entry(node, p)
                done.append(str(node.index(entry)))
                node = entry
                if last:
                    if isinstance(value, dict):
                        entry.update(value)
                    return ".".join(done)
                continue
            if len(node) == 1 and isinstance(node[0], dict):
                node = node[0]  # packetbeat.interfaces.device=eth0 with one interface listed
                done.append("0")
            else:
                raise ConfigError(".".join(done), f"is a list of {len(node)}: use an index (got {p!r})")
        if isinstance(node, list):  # the single entry above was itself a list
            raise ConfigError(".".join(done), f"is a list: use an index (got {p!r})")
        if last:
            node[p] = value
            return ".".join([*done, p])
        child = node.get(p)
        if not isinstance(child, dict | list):
            child = node[p] = {}
        node = child
        done.append(p)
    return ".".join(done)


def _list_entry(entries: list[Any], proto: str) -> dict[str, Any]:
    for e in entries:
        if isinstance(e, dict) and e.get("type") == proto:
            return e
    e = {"type": proto}
    entries.append(e)
    return e


_VAR_RE = re.compile(r"\$\{([^}:]+)(?::([^}]*))?\}")

#: Looks a ``${NAME}`` up: (value, where it came from) or None.
Resolver = Callable[[str], "tuple[str, str] | None"]


def env_resolver(env: typing.Mapping[str, str] | None = None) -> Resolver:
    source: typing.Mapping[str, str] = os.environ if env is None else env

    def look(name: str) -> tuple[str, str] | None:
        value = source.get(name)
        return None if value is None else (value, "environment")

    return look


def expand_vars(
    tree: Any,
    env: dict[str, str] | None = None,
    *,
    resolve: Resolver | None = None,
    used: dict[str, list[tuple[str, str]]] | None = None,
) -> Any:
    """``${VAR}`` / ``${VAR:default}``: from ``resolve`` (the keystore, then the
    environment) or, without it, from the environment (or ``env``). ``used`` collects, per
    key path, the names resolved there and where each came from."""
    look = resolve if resolve is not None else env_resolver(env)
    where = "neither in the keystore nor in the environment" if resolve is not None else "unset"

    def sub(value: str, path: str) -> Any:
        def rep(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            found = look(name)
            if found is not None:
                if used is not None:
                    used.setdefault(path, []).append((name, found[1]))
                return found[0]
            if default is not None:
                return default
            what = "" if resolve is not None else "environment variable "
            raise ConfigError("", f"missing field accessing '{name}' ({what}${{{name}}} {where})")

        whole = _VAR_RE.fullmatch(value)
        if whole:
            text = rep(whole)
            if text == "":
                return ""
            return _typed(text, f"${{{whole.group(1)}}}")
        return _VAR_RE.sub(rep, value)

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return sub(node, path)
        return node

    return walk(tree, "")


def _typed(text: str, what: str) -> Any:
    """The value of a whole ``${VAR}``: a list or mapping in YAML's flow form (``[80, 8080]``),
    ``true``/``false``, a plain integer, null, or a quoted string as YAML reads them; any
    other text as it is. A password must come through unchanged: YAML would read ``yes``
    as true, ``0123`` as 83 and cut ``abc #1`` at the ``#``."""
    try:
        value = safe_yaml(text, what)
    except yaml.YAMLError:
        return text  # not YAML: the text itself (never echoed: it may be a secret)
    bare = text.strip()
    if isinstance(value, bool):
        return value if bare.lower() in ("true", "false") else text
    if isinstance(value, int):
        return value if str(value) == bare else text
    if value is None:
        return None if bare in ("null", "Null", "NULL", "~") else text
    if isinstance(value, str):
        return value if bare[:1] in ("'", '"') else text
    if isinstance(value, list | dict):
        return value if bare[:1] in ("[", "{") else text  # flow form only: "x: y" is text
    return text  # floats, dates ...: the text (the setting's type converts it)


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
            raise rule_error(path, exc) from None

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
            raise ConfigError(path, "expected true or false", got=_show(value), accessing=True)
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
                raise ConfigError(path, "expected an integer", got=_show(value), accessing=True)
            if not INT64_MIN <= n <= INT64_MAX:
                raise ConfigError(path, "integer out of range (64 bits)", got=_show(value), accessing=True)
            return n
        if tp is float:
            try:
                if isinstance(value, bool):
                    raise TypeError
                f = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(path, "expected a number", got=_show(value), accessing=True) from None
            if not math.isfinite(f):
                raise ConfigError(path, "expected a finite number", got=_show(value), accessing=True)
            return f
        if tp is str:
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(path, "expected a string", got=_show(value), accessing=True)
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


_RULE_RE = re.compile(r"(requires value [^()]*?)(?: \(got (.*)\))?", re.DOTALL)


def rule_error(path: str, exc: Exception) -> ConfigError:
    """A validator's error as a ConfigError: a broken range rule (``requires value ...``,
    from :func:`at_least` and the like, or a protocol's own validators) in go-ucfg's
    words, anything else as ``path: message``."""
    if isinstance(exc, RuleError):
        return ConfigError(path, exc.rule, got=exc.got, accessing=True)
    m = _RULE_RE.fullmatch(str(exc))
    if m:
        return ConfigError(path, m.group(1), got=m.group(2), accessing=True)
    return ConfigError(path, str(exc))


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
        raise rule_error(path, exc) from None
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
