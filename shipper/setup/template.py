"""The index template, generated from the field definitions (libbeat's template processor).

Forms:
- composable (``PUT _index_template/<name>``, Elasticsearch ≥ 7.8 and OpenSearch), a data
  stream by default (Elasticsearch ≥ 7.9, OpenSearch);
- legacy (``PUT _template/<name>``) for Elasticsearch before 7.8.

Field types the target does not know are mapped down the way libbeat does it
(``wildcard`` → ``keyword`` before ES 7.9, ``match_only_text`` → ``text`` before 7.14 ...);
OpenSearch gets no ILM settings (it has no ILM).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from shipper.agent.version import VERSION
from shipper.setup.fields import TEXT_TYPES, Field, FieldSet, load_fields

DEFAULT_ES_VERSION = "8.17.0"
KEYWORD_IGNORE_ABOVE = 1024


class TemplateError(ValueError):
    """A template that cannot be built for the target (e.g. too old a server)."""


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", text or "")
    if not m:
        raise TemplateError(f"invalid version {text!r} (expected e.g. 8.17.0)")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


@attrs.frozen
class Target:
    """The server a template is built for."""

    flavor: str = "elasticsearch"  # or "opensearch"
    version: tuple[int, int, int] = parse_version(DEFAULT_ES_VERSION)

    @classmethod
    def elasticsearch(cls, version: str = DEFAULT_ES_VERSION) -> Target:
        return cls("elasticsearch", parse_version(version))

    @classmethod
    def opensearch(cls, version: str = "2.19.0") -> Target:
        return cls("opensearch", parse_version(version))

    @property
    def is_opensearch(self) -> bool:
        return self.flavor == "opensearch"

    @property
    def composable(self) -> bool:
        return self.is_opensearch or self.version >= (7, 8, 0)

    @property
    def data_streams(self) -> bool:
        return self.is_opensearch or self.version >= (7, 9, 0)

    @property
    def has_ilm(self) -> bool:
        return not self.is_opensearch and self.version >= (6, 6, 0)

    def describe(self) -> str:
        name = "OpenSearch" if self.is_opensearch else "Elasticsearch"
        return f"{name} {'.'.join(map(str, self.version))}"

    def map_type(self, ftype: str) -> str:
        v = self.version
        if self.is_opensearch:
            return {
                "wildcard": "wildcard" if v >= (2, 15, 0) else "keyword",
                "match_only_text": "match_only_text" if v >= (2, 12, 0) else "text",
                "constant_keyword": "keyword",
                "flattened": "flat_object" if v >= (2, 7, 0) else "object",
                "histogram": "object",
                "unsigned_long": "long",
            }.get(ftype, ftype)
        return {
            "wildcard": "wildcard" if v >= (7, 9, 0) else "keyword",
            "match_only_text": "match_only_text" if v >= (7, 14, 0) else "text",
            "constant_keyword": "constant_keyword" if v >= (7, 7, 0) else "keyword",
            "flattened": "flattened" if v >= (7, 3, 0) else "object",
            "unsigned_long": "unsigned_long" if v >= (7, 10, 0) else "long",
        }.get(ftype, ftype)


def format_name(text: str, version: str = VERSION, beat: str = "packetbeat") -> str:
    """Expand ``%{[agent.version]}`` / ``%{[beat.version]}`` / ``%{[agent.name]}`` in names."""
    return (
        text.replace("%{[agent.version]}", version)
        .replace("%{[beat.version]}", version)
        .replace("%{[observer.version]}", version)
        .replace("%{[agent.name]}", beat)
        .replace("%{[beat.name]}", beat)
    )


@attrs.frozen
class TemplateOptions:
    name: str = "packetbeat-%{[agent.version]}"
    pattern: str = ""
    priority: int = 150
    order: int = 1
    data_stream: bool = True
    #: The ILM policy to attach (``None``: no lifecycle settings).
    ilm_policy: str | None = "packetbeat"
    #: Extra index settings (``setup.template.settings.index``), dotted or nested.
    index_settings: dict[str, Any] = attrs.field(factory=dict)
    source: dict[str, Any] = attrs.field(factory=dict)
    migration: bool = False
    #: Force the legacy ``_template`` API (``setup.template.type: legacy``).
    legacy: bool = False
    beat: str = "packetbeat"
    version: str = VERSION

    @property
    def resolved_name(self) -> str:
        return format_name(self.name, self.version, self.beat)

    @property
    def resolved_pattern(self) -> str:
        return (
            format_name(self.pattern, self.version, self.beat) if self.pattern else self.resolved_name + "*"
        )


# -- mappings ----------------------------------------------------------------------------------


def field_mapping(f: Field, target: Target) -> dict[str, Any]:
    t = target.map_type(f.type)
    m: dict[str, Any]
    if t == "alias":
        return {"type": "alias", "path": f.alias_path}
    if t == "object":
        m = {"type": "object"}
        if f.enabled is not None:
            m["enabled"] = f.enabled
        return m
    m = {"type": t}
    if t in ("keyword", "wildcard"):
        ignore = KEYWORD_IGNORE_ABOVE if f.ignore_above is None else f.ignore_above
        if ignore:
            m["ignore_above"] = ignore
        if t == "wildcard" and target.is_opensearch:
            # OpenSearch's wildcard has no doc values by default, so no aggregations;
            # Elasticsearch's always has them (and rejects the parameter).
            m["doc_values"] = True
    elif t == "text":
        m["norms"] = False
    elif t == "scaled_float":
        m["scaling_factor"] = f.scaling_factor or 1000
    if f.index is False:
        m["index"] = False
    if f.doc_values is False:
        m["doc_values"] = False
    if f.multi_fields:
        m["fields"] = {name: _multi(mt, target) for name, mt in f.multi_fields}
    return m


def _multi(ftype: str, target: Target) -> dict[str, Any]:
    t = target.map_type(ftype)
    m: dict[str, Any] = {"type": t}
    if t == "keyword":
        m["ignore_above"] = KEYWORD_IGNORE_ABOVE
    elif t == "text":
        m["norms"] = False
    return m


def dynamic_templates(fields: FieldSet, target: Target) -> list[dict[str, Any]]:
    """``object`` fields with an ``object_type`` become path-matched dynamic templates."""
    out: list[dict[str, Any]] = []
    for f in fields:
        if f.type != "object" or not f.object_type:
            continue
        t = target.map_type(f.object_type)
        mapping: dict[str, Any] = {"type": t}
        if t == "keyword":
            mapping["ignore_above"] = KEYWORD_IGNORE_ABOVE
        elif t == "text":
            mapping["norms"] = False
        elif t == "scaled_float":
            mapping["scaling_factor"] = f.scaling_factor or 1000
        match = f.object_type_mapping_type or {
            "keyword": "string",
            "text": "string",
            "wildcard": "string",
            "match_only_text": "string",
            "scaled_float": "*",
        }.get(f.object_type, f.object_type)
        if match in ("integer", "short", "byte"):
            match = "long"
        name = f.path if match in ("string", "*") else f"{f.path}_{match}"
        out.append({name: {"path_match": f.path + ".*", "match_mapping_type": match, "mapping": mapping}})
    out.append(
        {
            "strings_as_keyword": {
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
            }
        }
    )
    return out


def properties(fields: FieldSet, target: Target) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in sorted(fields, key=lambda x: x.path):
        if f.type == "alias" and target.version < (6, 4, 0) and not target.is_opensearch:
            continue
        node = props
        parts = f.path.split(".")
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            node = child.setdefault("properties", {})
        leaf = node.setdefault(parts[-1], {})
        mapping = field_mapping(f, target)
        if "properties" in leaf:
            # An object field that also has declared sub-fields keeps both.
            mapping = {**mapping, "properties": leaf["properties"]}
        leaf.clear()
        leaf.update(mapping)
    return props


def default_fields(fields: FieldSet) -> list[str]:
    out = []
    for f in fields:
        if f.default_field is False or f.index is False:
            continue
        if f.type in TEXT_TYPES:
            out.append(f.path)
    return [*sorted(out), "fields.*"]


def mappings(fields: FieldSet, target: Target, opts: TemplateOptions) -> dict[str, Any]:
    m: dict[str, Any] = {
        "_meta": {"beat": opts.beat, "version": opts.version},
        "date_detection": False,
        "dynamic_templates": dynamic_templates(fields, target),
        "properties": properties(fields, target),
    }
    if opts.source:
        m["_source"] = opts.source
    return m


def index_settings(
    fields: FieldSet, target: Target, opts: TemplateOptions, data_stream: bool
) -> dict[str, Any]:
    index: dict[str, Any] = {
        "refresh_interval": "5s",
        "mapping": {"total_fields": {"limit": 10000}},
        "max_docvalue_fields_search": 200,
        "query": {"default_field": default_fields(fields)},
    }
    if opts.ilm_policy and target.has_ilm:
        lifecycle: dict[str, Any] = {"name": opts.ilm_policy}
        if not data_stream:
            lifecycle["rollover_alias"] = opts.resolved_name
        index["lifecycle"] = lifecycle
    _merge(index, _nest(opts.index_settings))
    return {"index": index}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = str(key).split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _nest(value) if isinstance(value, dict) else value
    return out


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


@attrs.frozen
class Template:
    """A built template: where it goes (``api``: ``_index_template`` or ``_template``) and its body."""

    name: str
    api: str
    body: dict[str, Any]
    data_stream: bool
    pattern: str

    @property
    def path(self) -> str:
        return f"/{self.api}/{self.name}"

    @property
    def legacy(self) -> bool:
        return self.api == "_template"


def build_template(
    target: Target, opts: TemplateOptions | None = None, fields: FieldSet | None = None
) -> Template:
    opts = opts or TemplateOptions()
    if not target.is_opensearch and target.version < (6, 0, 0):
        raise TemplateError(f"{target.describe()} is not supported (6.0 or newer needed)")
    fields = fields if fields is not None else load_fields()
    if not opts.migration:
        fields = fields.without_migration()
    name = opts.resolved_name
    pattern = opts.resolved_pattern
    composable = target.composable and not opts.legacy
    data_stream = opts.data_stream and target.data_streams and composable
    settings = index_settings(fields, target, opts, data_stream)
    maps = mappings(fields, target, opts)
    if composable:
        body: dict[str, Any] = {
            "index_patterns": [pattern],
            "priority": opts.priority,
            "template": {"settings": settings, "mappings": maps},
            "_meta": {"beat": opts.beat, "version": opts.version},
        }
        if data_stream:
            body["data_stream"] = {}
        return Template(name, "_index_template", body, data_stream, pattern)
    typeless = target.is_opensearch or target.version >= (7, 0, 0)
    legacy_maps: dict[str, Any] = maps if typeless else {"_doc": maps}
    body = {
        "index_patterns": [pattern],
        "order": opts.order,
        "settings": settings,
        "mappings": legacy_maps,
    }
    return Template(name, "_template", body, False, pattern)
