"""Field definitions: the one source of truth for the template, the data view, the docs and
the tests' schema check.

``protocols/common/fields.yml`` plus every ``protocols/<name>/fields.yml`` (beats
fields.yml format: entries with ``key`` and ``fields``; fields with ``name``, ``type``
(default ``keyword``), ``group``s with nested ``fields``, ``alias`` with ``path``,
``object`` with ``object_type``, ``multi_fields``, ``format``). A protocol that adds its
file is picked up without any change here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import yaml

import protocols.registry
from protocols.common.digits import is_ascii_digits
from shipper.agent.config import ConfigError, safe_yaml

#: Types whose values are searched by default (``index.query.default_field``).
TEXT_TYPES = frozenset({"keyword", "text", "match_only_text", "wildcard", "constant_keyword"})
LEAF_TYPES = frozenset(
    {
        "keyword",
        "constant_keyword",
        "wildcard",
        "text",
        "match_only_text",
        "long",
        "integer",
        "short",
        "byte",
        "double",
        "float",
        "half_float",
        "scaled_float",
        "unsigned_long",
        "boolean",
        "date",
        "date_nanos",
        "ip",
        "geo_point",
        "binary",
        "alias",
        "object",
        "nested",
        "flattened",
        "histogram",
    }
)


class FieldsError(ValueError):
    """A fields.yml that cannot be used (bad type, a conflicting redefinition, a dangling alias)."""


@attrs.frozen
class Field:
    path: str
    type: str
    description: str = ""
    source: str = ""
    required: bool = False
    object_type: str = ""
    object_type_mapping_type: str = ""
    alias_path: str = ""
    migration: bool = False
    format: str = ""
    input_format: str = ""
    output_format: str = ""
    output_precision: int | None = None
    multi_fields: tuple[tuple[str, str], ...] = ()
    ignore_above: int | None = None
    index: bool | None = None
    doc_values: bool | None = None
    enabled: bool | None = None
    scaling_factor: int | None = None
    default_field: bool | None = None
    #: Events may carry values Elasticsearch coerces into the type (a number into a
    #: keyword, a string of digits into a long): the schema check accepts them here only.
    coerce: bool = False


@attrs.frozen
class FieldSet:
    """All definitions: leaves (and object/alias fields) by dotted path, plus group paths."""

    fields: dict[str, Field]
    groups: frozenset[str]
    files: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields.values())

    def __contains__(self, path: object) -> bool:
        return path in self.fields

    def get(self, path: str) -> Field | None:
        return self.fields.get(path)

    def without_migration(self) -> FieldSet:
        kept = {p: f for p, f in self.fields.items() if not f.migration}
        return attrs.evolve(self, fields=kept, groups=_groups_of(kept))

    def lookup(self, path: str) -> tuple[Field | None, str]:
        """The definition that covers ``path``: (field, "exact"|"object"|"group"|"") ."""
        f = self.fields.get(path)
        if f is not None:
            return f, "exact"
        if path in self.groups:
            return None, "group"
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            parent = self.fields.get(".".join(parts[:i]))
            if parent is not None:
                if parent.type in ("object", "flattened", "nested"):
                    return parent, "object"
                return None, ""
        return None, ""


# -- loading -----------------------------------------------------------------------------------


def protocols_dir() -> Path:
    return Path(str(protocols.registry.__file__)).resolve().parent


def field_files(base: Path | None = None) -> list[Path]:
    """The common file first, then every protocol's file (sorted by protocol name)."""
    base = base or protocols_dir()
    common = base / "common" / "fields.yml"
    others = sorted(p for p in base.glob("*/fields.yml") if p.parent.name != "common")
    return ([common] if common.exists() else []) + others


def load_fields(files: Iterable[Path] | None = None) -> FieldSet:
    files = list(files) if files is not None else field_files()
    out: dict[str, Field] = {}
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = safe_yaml(fh, str(path))  # setup.template.fields may be anyone's file
        except (OSError, yaml.YAMLError) as exc:
            raise FieldsError(f"{path}: {exc}") from exc
        except ConfigError as exc:
            raise FieldsError(str(exc)) from None
        if doc is None:
            continue
        if not isinstance(doc, list):
            raise FieldsError(f"{path}: expected a list of entries with 'key' and 'fields'")
        for entry in doc:
            if not isinstance(entry, dict) or "fields" not in entry:
                raise FieldsError(f"{path}: each entry needs 'key' and 'fields'")
            src = f"{path.parent.name}/{path.name}:{entry.get('key', '?')}"
            for f in _walk(entry.get("fields") or [], "", src):
                _add(out, f)
    groups = _groups_of(out)
    for p, f in out.items():
        if p in groups and f.type not in ("object", "nested", "flattened"):
            raise FieldsError(f"{f.source}: {p!r} is a {f.type} field and also a group of other fields")
    for f in out.values():
        if f.type == "alias":
            target = out.get(f.alias_path)
            if target is None or target.type in ("alias", "object"):
                raise FieldsError(f"{f.source}: alias {f.path!r} points to {f.alias_path!r}, not a field")
    return FieldSet(out, groups, tuple(files))


def _groups_of(fields: dict[str, Field]) -> frozenset[str]:
    groups: set[str] = set()
    for p in fields:
        parts = p.split(".")
        for i in range(1, len(parts)):
            groups.add(".".join(parts[:i]))
    return frozenset(groups)


def _walk(items: list[Any], prefix: str, src: str) -> Iterator[Field]:
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise FieldsError(f"{src}: a field without a name under {prefix or 'the top level'!r}")
        path = f"{prefix}{item['name']}"
        ftype = item.get("type") or ("group" if "fields" in item else "keyword")
        if ftype == "group":
            yield from _walk(item.get("fields") or [], path + ".", src)
            continue
        if ftype not in LEAF_TYPES:
            raise FieldsError(f"{src}: field {path!r} has unknown type {ftype!r}")
        if ftype == "alias" and not item.get("path"):
            raise FieldsError(f"{src}: alias {path!r} needs a 'path'")
        multi = tuple((str(m["name"]), str(m.get("type", "keyword"))) for m in item.get("multi_fields") or [])
        yield Field(
            path=path,
            type=ftype,
            description=" ".join(str(item.get("description", "")).split()),
            source=src,
            required=bool(item.get("required", False)),
            object_type=str(item.get("object_type", "") or ""),
            object_type_mapping_type=str(item.get("object_type_mapping_type", "") or ""),
            alias_path=str(item.get("path", "") or ""),
            migration=bool(item.get("migration", False)),
            format=str(item.get("format", "") or ""),
            input_format=str(item.get("input_format", "") or ""),
            output_format=str(item.get("output_format", "") or ""),
            output_precision=item.get("output_precision"),
            multi_fields=multi,
            ignore_above=item.get("ignore_above"),
            index=item.get("index"),
            doc_values=item.get("doc_values"),
            enabled=item.get("enabled"),
            scaling_factor=item.get("scaling_factor"),
            default_field=item.get("default_field"),
            coerce=bool(item.get("coerce", False)),
        )


def _add(out: dict[str, Field], f: Field) -> None:
    old = out.get(f.path)
    if old is None:
        out[f.path] = f
        return
    # The same field declared by two files (e.g. an ECS field a protocol re-declares) is
    # fine as long as the mapping agrees; a different mapping is a real conflict.
    if (old.type, old.object_type, old.alias_path) != (f.type, f.object_type, f.alias_path):
        raise FieldsError(
            f"{f.source}: {f.path!r} is declared as {f.type} but {old.source} declares it as {old.type}"
        )


# -- the schema check --------------------------------------------------------------------------

_INT = (int,)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")


def value_matches(ftype: str, value: Any) -> bool:
    """Would Elasticsearch index ``value`` into a field of ``ftype`` as the type intends?"""
    if ftype in TEXT_TYPES:
        return isinstance(value, str)
    if ftype in ("long", "integer", "short", "byte", "unsigned_long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if ftype in ("double", "float", "half_float", "scaled_float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ftype == "boolean":
        return isinstance(value, bool)
    if ftype == "ip":
        if not isinstance(value, str):
            return False
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True
    if ftype in ("date", "date_nanos"):
        if isinstance(value, int) and not isinstance(value, bool):
            return True
        if not isinstance(value, str) or not _DATE_RE.match(value):
            return False
        try:
            datetime.fromisoformat(value[:19])
        except ValueError:
            return False
        return True
    if ftype == "geo_point":
        return isinstance(value, str | dict | list)
    if ftype == "binary":
        return isinstance(value, str)
    return True


def check_event(event: dict[str, Any], fields: FieldSet) -> list[str]:
    """Every leaf of ``event`` must be defined with a matching type; returns the problems."""
    problems: list[str] = []
    for key, value in event.items():
        if key == "@metadata":
            continue
        _check(key, value, fields, problems)
    return problems


def _check(path: str, value: Any, fields: FieldSet, problems: list[str]) -> None:
    f, how = fields.lookup(path)
    if how == "group":
        # A list of objects is an array of that group (tls.detailed.alerts, certificate chains).
        for item in value if isinstance(value, list) and value else [value]:
            if isinstance(item, dict):
                for k, v in item.items():
                    _check(f"{path}.{k}", v, fields, problems)
            else:
                problems.append(f"{path}: is a group of fields, got {type(item).__name__} {item!r:.60}")
        return
    if f is None:
        problems.append(f"{path}: not defined in any fields.yml (value {value!r:.60})")
        return
    if how == "object":
        _check_object_leaf(path, f, value, problems)
        return
    if f.type == "alias":
        problems.append(f"{path}: is an alias of {f.alias_path}; events must not write to it")
        return
    if f.type == "object":
        # An array of objects (dns.answers ...) is mapped like one object; declared
        # sub-fields (dns.answers.ttl) are checked by their own definitions.
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                problems.append(f"{path}: object expected, got {type(item).__name__}")
                continue
            for k, v in item.items():
                sub, _ = fields.lookup(f"{path}.{k}")
                if sub is not None and sub is not f:
                    _check(f"{path}.{k}", v, fields, problems)
                else:
                    _check_object_leaf(f"{path}.{k}", f, v, problems)
        return
    if f.type in ("flattened", "nested"):
        return
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, dict) or not (value_matches(f.type, v) or (f.coerce and coerces(f.type, v))):
            problems.append(f"{path}: {f.type} expected, got {type(v).__name__} {v!r:.60}")


def coerces(ftype: str, value: Any) -> bool:
    """Elasticsearch's default ``coerce``: a number into a keyword field, a string of
    digits into an integer field (Packetbeat sends ``dns.id``, record TTLs and SIP's
    ``sip.contact.q`` that way; fields that carry such values say ``coerce: true``)."""
    if ftype in ("keyword", "constant_keyword"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ftype in ("long", "integer", "short", "byte", "unsigned_long"):
        return isinstance(value, str) and is_ascii_digits(value.removeprefix("-"))
    return False


def _check_object_leaf(path: str, parent: Field, value: Any, problems: list[str]) -> None:
    """A key inside an ``object`` map: typed by ``object_type`` (or anything when untyped)."""
    if not parent.object_type or parent.type != "object":
        return
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, dict):
            for k, sub in v.items():
                _check_object_leaf(f"{path}.{k}", parent, sub, problems)
            continue
        if value_matches(parent.object_type, v):
            continue
        # A keyword map's dynamic template only matches strings; numbers and booleans in it
        # get Elasticsearch's own dynamic mapping (long/boolean), which is harmless.
        if parent.object_type == "keyword" and isinstance(v, int | float | bool):
            continue
        problems.append(f"{path}: {parent.object_type} expected in {parent.path}, got {v!r:.60}")


def flatten(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in event.items():
        p = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, p + "."))
        else:
            out[p] = v
    return out


# -- docs --------------------------------------------------------------------------------------


def fields_markdown(fields: FieldSet) -> str:
    """A reference page of every exported field, grouped by the file section it came from."""
    lines = ["# Exported fields", ""]
    by_source: dict[str, list[Field]] = {}
    for f in fields:
        by_source.setdefault(f.source, []).append(f)
    for src, items in by_source.items():
        lines += [f"## {src}", "", "| field | type | description |", "|---|---|---|"]
        for f in items:
            t = f"alias of `{f.alias_path}`" if f.type == "alias" else f.type
            if f.object_type:
                t += f" of {f.object_type}"
            lines.append(f"| `{f.path}` | {t} | {f.description.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)
