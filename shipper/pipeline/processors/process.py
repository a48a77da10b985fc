"""``add_process_metadata``: ``process.*`` (and ``container.id``) of the process whose
pid an event names (libbeat/processors/add_process_metadata), read from ``/proc`` and kept
in a small cache. Not done: ``process.entity_id`` and thread capabilities."""

from __future__ import annotations

import threading
import time
from typing import Any

from shipper.pipeline.fieldpath import MISSING, FieldError, path
from shipper.pipeline.processors.base import Context, Event, Opts, Processor, ProcessorError, register
from shipper.pipeline.processors.procinfo import container_id, read_process

_DEFAULT_FIELDS: dict[str, Any] = {
    "process": {
        "name": None,
        "title": None,
        "executable": None,
        "args": None,
        "pid": None,
        "parent": {"pid": None},
        "start_time": None,
        "owner": {"name": None, "id": None},
        "group": {"name": None, "id": None},
    },
    "container": {"id": None},
}
_RESTRICTED = {"process": {**_DEFAULT_FIELDS["process"], "env": None}, "container": {"id": None}}
CACHE_TTL = 30.0
CACHE_MAX = 4096


def _lookup(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _leaves(tree: Any, prefix: str) -> list[str]:
    if not isinstance(tree, dict):
        return [prefix]
    out = []
    for k, v in tree.items():
        out.extend(_leaves(v, f"{prefix}.{k}"))
    return out


def mappings(include: list[str], target: str, restricted: bool) -> list[tuple[str, str]]:
    """(event field, metadata field) pairs, as libbeat's ``getMappings``; ValueError for
    a field that does not exist."""
    valid = _RESTRICTED if restricted else _DEFAULT_FIELDS
    prefix = target + "." if target else ""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for src in include or ["process", "container"]:
        node = _lookup(valid, src)
        if node is MISSING:
            raise ValueError(f"field '{src}' not found")
        for leaf in _leaves(node, src):
            dst = prefix + leaf
            if dst in seen:
                raise ValueError(f"field '{src}' repeated")
            seen.add(dst)
            out.append((dst, leaf))
    return out


def metadata(pid: int, env: bool) -> dict[str, Any] | None:
    p = read_process(pid, env=env)
    if p is None:
        return None
    proc: dict[str, Any] = {
        "name": p.name,
        "title": " ".join(p.args),
        "executable": p.exe,
        "args": p.args,
        "pid": p.pid,
        "parent": {"pid": p.ppid},
        "start_time": p.start_text,
    }
    if env:
        proc["env"] = p.env
    owner = {k: v for k, v in (("name", p.owner_name()), ("id", p.uid)) if v}
    if owner:
        proc["owner"] = owner
    group = {k: v for k, v in (("name", p.group_name()), ("id", p.gid)) if v}
    if group:
        proc["group"] = group
    out: dict[str, Any] = {"process": proc}
    cid = container_id(pid)
    if cid:
        out["container"] = {"id": cid}
    return out


class ProcessCache:
    def __init__(self, env: bool) -> None:
        self.env = env
        self.lock = threading.Lock()
        self.items: dict[int, tuple[float, dict[str, Any] | None]] = {}

    def get(self, pid: int) -> dict[str, Any] | None:
        now = time.monotonic()
        with self.lock:
            hit = self.items.get(pid)
            if hit is not None and now - hit[0] < CACHE_TTL:
                return hit[1]
        meta = metadata(pid, self.env)
        with self.lock:
            if len(self.items) >= CACHE_MAX:
                self.items.clear()
            self.items[pid] = (now, meta)
        return meta


def _pid(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("not an integer or string, but bool")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 10)
        except ValueError:
            raise ValueError(
                f'error converting string to integer: strconv.Atoi: parsing "{v}": invalid syntax'
            ) from None
    raise ValueError(f"not an integer or string, but {type(v).__name__}")


@register("add_process_metadata")
def add_process_metadata(o: Opts, ctx: Context) -> Processor:
    match = o.strings("match_pids") if o.has("match_pids") else ["process.pid", "process.parent.pid"]
    if not match:
        raise o.error("match_pids", "missing required field accessing 'match_pids'")
    ignore_missing = o.bool("ignore_missing", True)
    overwrite = o.bool("overwrite_keys", False)
    restricted = o.bool("restricted_fields", False)
    target = o.str("target")
    include = o.strings("include_fields")
    host_path = o.str("host_path", "/")
    o.strings("cgroup_prefixes")
    o.str("cgroup_regex")
    o.duration("cgroup_cache_expire_time", 30.0)
    if host_path not in ("", "/"):
        ctx.warn(f"{o.where}.host_path: only / is supported by wirebeat (ignored)")
    try:
        maps = [(path(dst), src) for dst, src in mappings(include, target, restricted)]
    except ValueError as exc:
        raise o.error(
            "include_fields", f"error unpacking add_process_metadata.target_fields: {exc}"
        ) from None
    cache = ProcessCache(restricted)
    pid_paths = [path(m) for m in match]

    def run(evt: Event) -> Event:
        for pp in pid_paths:
            v = pp.get(evt)
            if v is MISSING:
                continue
            try:
                pid = _pid(v)
            except ValueError as exc:
                raise ProcessorError(
                    "error applying add_process_metadata processor: "
                    f"cannot parse pid field '{pp.key}': {exc}",
                    evt,
                ) from None
            meta = cache.get(pid)
            if not meta:
                raise ProcessorError("process not found", evt)
            for dst, _src in maps:
                if not overwrite and dst.get(evt) is not MISSING:
                    raise ProcessorError(
                        "error applying add_process_metadata processor: target field "
                        f"'{dst.key}' already exists and overwrite_keys is false",
                        evt,
                    )
            for dst, src in maps:
                value = _lookup(meta, src)
                if value is MISSING:
                    continue
                try:
                    dst.put(evt, value)
                except FieldError as exc:
                    raise ProcessorError(
                        f"error applying add_process_metadata processor: {exc}", evt
                    ) from None
            return evt
        if ignore_missing:
            return evt
        raise ProcessorError("none of the fields in match_pids found in the event", evt)

    return run
