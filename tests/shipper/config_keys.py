"""Every config key wirebeat's loader knows, derived from the attrs schema classes
(``shipper.agent.settings``, each output's ``CONFIG``, each protocol's ``config_class``),
with its default. The reference file and the key-honesty tests compare against this.

Keys are dotted paths. The entries of ``packetbeat.protocols`` are named by their type
(``packetbeat.protocols.http.ports``), ``packetbeat.interfaces`` is read as one interface,
and a mapping of named sections (``output.kafka.partition.hash``) by its names where the
schema fixes them. A field whose value is a free mapping or a list of processors is one key.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union

import attrs

from protocols.registry import available, plugin_class
from shipper.agent import settings as S

#: Mappings whose keys are fixed names (not free text): each name and the settings it takes.
NAMED_SECTIONS = {
    "output.kafka.partition": {
        "random": ("reachable_only", "group_events"),
        "round_robin": ("reachable_only", "group_events"),
        "hash": ("reachable_only", "hash", "random"),
    }
}


#: Keys whose value is a list of sections (each documented as ``[]`` plus prose).
KNOWN_LISTS: set[str] = set()


def _unwrap(tp: Any) -> Any:
    """``X | None`` → X."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _default(f: Any) -> Any:
    d = f.default
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        return d.factory()
    return d


def walk(cls: type, prefix: str, out: dict[str, tuple[Any, Any]]) -> None:
    """``out[key] = (field, default)`` for every leaf of ``cls`` under ``prefix``."""
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(typing.cast(Any, cls)):
        if f.metadata.get("internal"):
            continue
        key = f"{prefix}.{f.metadata.get('key', f.name)}" if prefix else f.metadata.get("key", f.name)
        tp = _unwrap(hints[f.name])
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if isinstance(tp, type) and attrs.has(tp):
            walk(tp, key, out)
        elif origin is list and args and isinstance(args[0], type) and attrs.has(args[0]):
            KNOWN_LISTS.add(key)
            walk(args[0], key, out)  # a list of sections (kafka topics, procs.monitored ...)
        elif origin is dict and key in NAMED_SECTIONS and attrs.has(args[1]):
            for name, wanted in NAMED_SECTIONS[key].items():
                sub: dict[str, tuple[Any, Any]] = {}
                walk(args[1], f"{key}.{name}", sub)
                out.update({k: v for k, v in sub.items() if k.rsplit(".", 1)[1] in wanted})
        else:
            out[key] = (f, _default(f))


def known_keys() -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {}
    walk(S.Settings, "", out)
    # The sections build_settings reads through hooks rather than the generic walk.
    for k in [k for k in out if k.startswith(("packetbeat.", "output", "queue"))]:
        del out[k]
    pb: dict[str, tuple[Any, Any]] = {}
    walk(S.PacketbeatSettings, "packetbeat", pb)
    for k in [
        k for k in pb if k.startswith(("packetbeat.protocols", "packetbeat.interfaces", "packetbeat.flows"))
    ]:
        del pb[k]
    out.update(pb)
    walk(S.InterfaceSettings, "packetbeat.interfaces", out)
    walk(S.FlowsSettings, "packetbeat.flows", out)
    for name in available():
        walk(plugin_class(name).config_class, f"packetbeat.protocols.{name}", out)
    walk(S.MemQueueSettings, "queue.mem", out)
    walk(S.DiskQueueSettings, "queue.disk", out)
    for name in S.OUTPUT_MODULES:
        walk(S.output_module(name).CONFIG, f"output.{name}", out)
    return out


if __name__ == "__main__":
    for key, (_f, default) in known_keys().items():
        print(f"{key}: {default!r}")


# -- reading commented reference files ---------------------------------------------------------

_SETTING = re.compile(r"^(\s*)(- )?([a-z_][a-z0-9_.]*):(\s.*|)$")


def commented_settings(text: str, *, strict: bool = False) -> list[tuple[str, str]]:
    """``(dotted key, value text)`` for every setting of a reference file, commented out
    (``#key: value``, and unless ``strict`` also ``# key: value``) or not, its path taken
    from the indentation; the entries of ``packetbeat.protocols`` are named by their
    ``- type:``."""
    stack: list[tuple[int, str]] = []
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        m0 = re.match(r"^(\s*)#(?=[a-z_])(.*)$" if strict else r"^(\s*)#(.*)$", line)
        if strict and m0 is None and line.lstrip().startswith("#"):
            continue  # prose
        s = m0.group(1) + m0.group(2) if m0 else line
        m = _SETTING.match(s)
        if not m:
            continue
        indent = len(m.group(1)) + (1 if m.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        value = m.group(4).split(" #")[0].strip()
        if m.group(2) and m.group(3) == "type":
            stack.append((indent, f"{parent}.{value}"))
            continue
        path = f"{parent}.{m.group(3)}" if parent else m.group(3)
        out.append((path, value))
        stack.append((indent, path))
    return out


def uncomment(text: str) -> str:
    """A reference file with its settings switched on: ``#key: value`` lines lose their
    ``#`` (prose is written ``# text``, with a space, and stays a comment)."""
    return "\n".join(re.sub(r"^(\s*)#(?=[a-z_])", r"\1", line) for line in text.splitlines()) + "\n"
