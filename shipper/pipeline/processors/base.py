"""The processor chain: config → plain callables, once, with libbeat's error rules.

A processor is a function ``event dict -> event dict | None`` (None drops the event). One
that fails the way libbeat's return ``(event, err)`` raises :class:`ProcessorError`
carrying the event to go on with (the original one, restored, when ``fail_on_error``).
Chains keep libbeat's two behaviours:

- a **per-protocol** (client) list is a ``processing.group``: an error is logged and the
  next processor runs on the event the failing one returned;
- the **global** list (and ``then``/``else`` lists) is a ``processors.Processors``: the
  first error ends the list, and the event goes on as it was left.

Every processor module registers its factory with :func:`register`; a factory reads its
options through :class:`Opts` (type checks, required and allowed keys with libbeat's
messages, key paths) and returns the callable. Nothing is looked up per event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from protocols.stats import Counters
from shipper.agent.config import ConfigError, expand_dotted, parse_duration
from shipper.pipeline.conditions import compile_condition
from shipper.pipeline.fieldpath import MISSING, FieldError, path

log = logging.getLogger("processors")

Event = dict[str, Any]
Processor = Callable[[Event], "Event | None"]


class ProcessorError(Exception):
    """A processor failed on one event; ``event`` is what processing goes on with."""

    def __init__(self, message: str, event: Event | None) -> None:
        super().__init__(message)
        self.event = event


class Context:
    """What factories may need besides their options: where warnings go, the beat's
    identity, the run's counters, and flags of the run (live capture or a file)."""

    def __init__(
        self,
        *,
        beat_name: str = "",
        stats: Counters | None = None,
        warn: Callable[[str], None] | None = None,
        live: bool = True,
        check_only: bool = False,
        clock: Callable[[], float] | None = None,
        config_dir: str = ".",
    ) -> None:
        self.beat_name = beat_name
        self.stats = stats if stats is not None else Counters()
        self.warnings: list[str] = []
        self._warn = warn
        self.live = live
        #: Validation only (``test config``): factories skip slow set-up (host look-ups).
        self.check_only = check_only
        #: Seconds, monotonic: rate_limit's refill clock (tests pass their own).
        self.clock = clock or time.monotonic
        #: ``path.config``: where relative script files are found.
        self.config_dir = config_dir

    def warn(self, message: str) -> None:
        if self._warn is not None:
            self._warn(message)
        else:
            self.warnings.append(message)


Factory = Callable[["Opts", Context], Processor]
REGISTRY: dict[str, Factory] = {}
#: Processors accepted and reported as unsupported (a warning, then they do nothing).
UNSUPPORTED: dict[str, str] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(fn: Factory) -> Factory:
        REGISTRY[name] = fn
        return fn

    return deco


def unsupported(name: str, why: str) -> None:
    UNSUPPORTED[name] = why


# -- options ---------------------------------------------------------------------------------------


_Str = str
_Bool = bool
_Int = int


class Opts:
    """One processor's options, read with type checks and key paths in the errors."""

    def __init__(self, name: _Str, body: dict[_Str, Any], where: _Str) -> None:
        self.name = name
        self.body = body
        self.where = where
        self.used: set[_Str] = {"when"}
        #: Top-level keys the processor may change (None: any). Declared by factories
        #: with :meth:`writes`; the pipeline copies the shared parts of an event (agent,
        #: host, ecs, @metadata) only when some processor may change them.
        self.written: set[_Str] | None = None

    def writes(self, *fields: _Str) -> None:
        """Declare the fields (dotted names) this processor may change or add."""
        roots: set[_Str] = set() if self.written is None else self.written
        for f in fields:
            parts = f.split(".")
            roots.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        self.written = roots

    def error(self, key: _Str | None, message: _Str) -> ConfigError:
        return ConfigError(f"{self.where}.{key}" if key else self.where, message)

    def _get(self, key: _Str) -> Any:
        """The option, a dotted key (``cache.ttl``) walking nested mappings; MISSING."""
        self.used.add(key.split(".", 1)[0])
        if key in self.body:
            return self.body[key]
        node: Any = self.body
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return MISSING
            node = node[part]
        return node

    def has(self, key: _Str) -> _Bool:
        v = self._get(key)
        return v is not MISSING and v is not None

    def raw(self, key: _Str, default: Any = None) -> Any:
        v = self._get(key)
        return default if v is None or v is MISSING else v

    def require(self, *keys: _Str) -> None:
        """libbeat's ``checks.RequireFields``."""
        for k in keys:
            if self._get(k) is MISSING:
                raise self.error(None, f"missing {k} option")

    def allow(self, *keys: _Str) -> None:
        """libbeat's ``checks.AllowedFields``: any other option is an error."""
        for k in self.body:
            if k not in keys and k != "when":
                raise self.error(k, f"unexpected {k} option")

    def str(self, key: _Str, default: _Str = "", *, required: _Bool = False) -> _Str:
        v = self.raw(key)
        if v is None:
            if required:
                raise self.error(key, f"missing required field accessing '{key}'")
            return default
        if isinstance(v, _Bool) or not isinstance(v, _Str | _Int | float):
            raise self.error(key, f"expected a string, got {_show(v)}")
        return str(v)

    def opt_str(self, key: _Str) -> _Str | None:
        """A string that may be set to the empty string on purpose (``target: ""``)."""
        v = self._get(key)
        if v is MISSING:
            return None
        return "" if v is None else self.str(key)

    def bool(self, key: _Str, default: _Bool) -> _Bool:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, _Bool):
            return v
        if isinstance(v, _Str) and v.lower() in ("true", "false", "yes", "no", "on", "off"):
            return v.lower() in ("true", "yes", "on")
        raise self.error(key, f"expected true or false, got {_show(v)}")

    def int(self, key: _Str, default: _Int, *, minimum: _Int | None = None) -> _Int:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, _Bool) or not isinstance(v, _Int | float | _Str):
            raise self.error(key, f"expected an integer, got {_show(v)}")
        try:
            n = int(v) if not isinstance(v, float) or v.is_integer() else None
        except ValueError:
            n = None
        if n is None:
            raise self.error(key, f"expected an integer, got {_show(v)}")
        if minimum is not None and n < minimum:
            raise self.error(key, f"requires value >= {minimum} (got {n})")
        return n

    def duration(self, key: _Str, default: float) -> float:
        v = self.raw(key)
        if v is None:
            return default
        try:
            return parse_duration(v)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def strings(self, key: _Str, *, required: _Bool = False) -> list[_Str]:
        v = self.raw(key)
        if v is None:
            if required:
                raise self.error(key, f"missing required field accessing '{key}'")
            return []
        items = v if isinstance(v, list) else [v]
        out = []
        for i, item in enumerate(items):
            if isinstance(item, _Bool) or not isinstance(item, _Str | _Int | float):
                raise self.error(f"{key}.{i}", f"expected a string, got {_show(item)}")
            out.append(str(item))
        return out

    def mapping(self, key: _Str, *, required: _Bool = False) -> dict[_Str, Any]:
        v = self.raw(key)
        if v is None:
            if required:
                raise self.error(key, f"missing required field accessing '{key}'")
            return {}
        if not isinstance(v, dict):
            raise self.error(key, f"expected a mapping, got {_show(v)}")
        return v

    def mappings(self, key: _Str, *, required: _Bool = False) -> list[dict[_Str, Any]]:
        v = self.raw(key)
        if v is None:
            if required:
                raise self.error(key, f"missing required field accessing '{key}'")
            return []
        items = v if isinstance(v, list) else [v]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"{key}.{i}", f"expected a mapping, got {_show(item)}")
        return items

    def from_to(self, key: _Str, *, required: _Bool = True) -> list[tuple[_Str, _Str]]:
        """``fields: [{from: a, to: b}, …]`` (rename, copy_fields)."""
        out = []
        for i, item in enumerate(self.mappings(key, required=required)):
            src, dst = item.get("from"), item.get("to")
            if not isinstance(src, _Str) or not src:
                raise self.error(f"{key}.{i}.from", "missing required field accessing 'from'")
            if not isinstance(dst, _Str):
                raise self.error(f"{key}.{i}.to", "missing required field accessing 'to'")
            out.append((src, dst))
        return out

    def leftover(self) -> list[_Str]:
        return [k for k in self.body if k not in self.used]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- compiling a list --------------------------------------------------------------------------------


def compile_list(cfgs: Any, where: str, ctx: Context, *, group: bool) -> Processor | None:
    """A processors list → one callable (None for an empty list: nothing to do per event).

    ``group``: libbeat's per-client ``processing.group`` rule (go on after an error);
    otherwise ``processors.Processors`` (stop the list at the first error, raising)."""
    procs = build_list(cfgs, where, ctx)
    if not procs:
        return None
    return _group(procs, ctx) if group else _sequence(procs)


def build_list(cfgs: Any, where: str, ctx: Context) -> list[Processor]:
    if cfgs is None:
        return []
    if isinstance(cfgs, dict):
        cfgs = [cfgs]
    if not isinstance(cfgs, list):
        raise ConfigError(where, f"expected a list of processors, got {_show(cfgs)}")
    return [p for i, c in enumerate(cfgs) if (p := build_one(c, f"{where}.{i}", ctx)) is not None]


def build_one(cfg: Any, where: str, ctx: Context) -> Processor | None:
    if not isinstance(cfg, dict):
        raise ConfigError(where, f"a processor must be a mapping such as {{drop_event: …}}, got {_show(cfg)}")
    cfg = expand_dotted(cfg)
    if "if" in cfg:
        return _if_then_else(cfg, where, ctx)
    if len(cfg) != 1:
        names = ",".join(map(str, cfg))
        raise ConfigError(
            where, f"each processor must have exactly one action, but found {len(cfg)} actions ({names})"
        )
    ((name, body),) = cfg.items()
    name = str(name)
    sub = f"{where}.{name}"
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ConfigError(sub, f"expected the processor's options as a mapping, got {_show(body)}")
    factory = REGISTRY.get(name)
    if factory is None:
        if name in UNSUPPORTED:
            ctx.warn(f"{sub}: processor {name!r} is not supported by wirebeat ({UNSUPPORTED[name]}); ignored")
            return None
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(sub, f"the processor action {name} does not exist. Valid actions: {known}")
    opts = Opts(name, body, sub)
    proc = factory(opts, ctx)
    for k in opts.leftover():
        ctx.warn(f"{sub}.{k}: unknown option of processor {name} (ignored)")
    if "when" in body:
        cond = compile_condition(body["when"], f"{sub}.when", ctx.warn)
        inner = proc

        def when(evt: Event) -> Event | None:
            return inner(evt) if cond(evt) else evt

        proc = when
    return _mark(proc, opts.written)


def _mark(proc: Processor, written: set[str] | None) -> Processor:
    """Record on the function what it may change (see :meth:`Opts.writes`)."""
    proc.writes = None if written is None else frozenset(written)  # type: ignore[attr-defined]
    return proc


def writes(procs: list[Processor]) -> frozenset[str] | None:
    """The top-level keys a list of processors may change; None: any."""
    out: set[str] = set()
    for p in procs:
        w = getattr(p, "writes", None)
        if w is None:
            return None
        out |= w
    return frozenset(out)


def _if_then_else(cfg: dict[str, Any], where: str, ctx: Context) -> Processor:
    for k in cfg:
        if k not in ("if", "then", "else"):
            ctx.warn(f"{where}.{k}: unknown key of an if/then/else block (ignored)")
    if cfg.get("then") is None:
        raise ConfigError(f"{where}.then", "missing required field accessing 'then'")
    cond = compile_condition(cfg["if"], f"{where}.if", ctx.warn)
    then = _sequence(build_list(cfg["then"], f"{where}.then", ctx))
    els = _sequence(build_list(cfg["else"], f"{where}.else", ctx)) if cfg.get("else") is not None else None

    def if_then_else(evt: Event) -> Event | None:
        if cond(evt):
            return then(evt)
        if els is not None:
            return els(evt)
        return evt

    both = [then] if els is None else [then, els]
    w = writes(both)
    return _mark(if_then_else, None if w is None else set(w))


def _sequence(procs: list[Processor]) -> Processor:
    """libbeat's ``Processors.Run``: the first error ends the list (raised, with the event)."""
    if len(procs) == 1:
        return procs[0]
    w = writes(procs)

    def run(evt: Event) -> Event | None:
        e: Event | None = evt
        for p in procs:
            e = p(e)  # type: ignore[arg-type]
            if e is None:
                return None
        return e

    return _mark(run, None if w is None else set(w))


def _group(procs: list[Processor], ctx: Context) -> Processor:
    """libbeat's ``processing.group``: an error is logged and processing goes on."""
    stats = ctx.stats

    def run(evt: Event) -> Event | None:
        e: Event | None = evt
        for p in procs:
            try:
                e = p(e)  # type: ignore[arg-type]
            except ProcessorError as exc:
                stats.incr("processors.errors")
                log.debug("processor failed: %s", exc)
                e = exc.event
            except Exception as exc:  # a bug in one processor: the next ones still run
                stats.incr("processors.internal_errors")
                log.debug("processor failed with an internal error: %r", exc)
            if e is None:
                return None
        return e

    w = writes(procs)
    return _mark(run, None if w is None else set(w))


# -- helpers shared by the processors ------------------------------------------------------------


def clone(value: Any) -> Any:
    """A deep copy of JSON-like data (much cheaper than :func:`copy.deepcopy`)."""
    if type(value) is dict:
        return {k: clone(v) for k, v in value.items()}
    if type(value) is list:
        return [clone(v) for v in value]
    return value


class Backup:
    """libbeat's ``backup = event.Clone()`` for ``fail_on_error``, limited to the top-level
    subtrees the processor's fields can reach (an event's other parts are not copied)."""

    __slots__ = ("roots",)

    def __init__(self, keys: list[str]) -> None:
        roots: set[str] = {"error"}
        for key in keys:
            parts = key.split(".")
            roots.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        self.roots = tuple(sorted(roots))

    def take(self, evt: Event) -> dict[str, Any]:
        return {k: clone(evt[k]) for k in self.roots if k in evt}

    def restore(self, evt: Event, saved: dict[str, Any]) -> Event:
        for k in self.roots:
            if k in saved:
                evt[k] = saved[k]
            else:
                evt.pop(k, None)
        return evt


def put_error(evt: Event, message: str) -> None:
    """``event.PutValue("error.message", …)`` (ignored when ``error`` is not an object)."""
    try:
        path("error.message").put(evt, message)
    except FieldError:
        pass


def add_tags(evt: Event, key: str, tags: list[str]) -> None:
    """mapstr's ``AddTagsWithKey``: append to the list (created when absent); a value that
    is not a list is left alone (libbeat returns an error nobody looks at)."""
    if not tags:
        return
    fp = path(key)
    old = fp.get(evt)
    if old is MISSING:
        try:
            fp.put(evt, list(tags))
        except FieldError:
            pass
    elif type(old) is list:
        old.extend(tags)


__all__ = [
    "MISSING",
    "REGISTRY",
    "Backup",
    "Context",
    "Event",
    "Opts",
    "Processor",
    "ProcessorError",
    "add_tags",
    "build_list",
    "clone",
    "compile_list",
    "put_error",
    "register",
    "unsupported",
    "writes",
]
