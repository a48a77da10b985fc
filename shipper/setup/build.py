"""From settings to artifacts: the field set, the template, the policy and the saved objects."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from shipper.agent.settings import Settings
from shipper.agent.version import VERSION
from shipper.setup.fields import FieldsError, FieldSet, field_files, load_fields
from shipper.setup.ilm import load_policy
from shipper.setup.kibana import DEFAULT_PATTERN, saved_objects
from shipper.setup.template import (
    Target,
    Template,
    TemplateError,
    TemplateOptions,
    build_template,
    format_name,
)


def field_set(settings: Settings) -> FieldSet:
    """The bundled definitions, or ``setup.template.fields``, plus ``setup.template.append_fields``."""
    t = settings.setup.template
    files = [Path(t.fields)] if t.fields else field_files()
    if t.fields and not files[0].exists():
        raise FieldsError(f"setup.template.fields: {t.fields} does not exist")
    if t.append_fields:
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, encoding="utf-8") as fh:
            yaml.safe_dump([{"key": "append_fields", "fields": t.append_fields}], fh)
            extra = Path(fh.name)
        try:
            return load_fields([*files, extra])
        finally:
            extra.unlink()
    return load_fields(files)


def ilm_active(settings: Settings, target: Target, noilm: bool = False) -> bool:
    return settings.setup.ilm.enabled and not noilm and target.has_ilm


def template_for(settings: Settings, target: Target, *, noilm: bool = False) -> Template:
    t = settings.setup.template
    opts = TemplateOptions(
        name=t.name,
        pattern=t.pattern,
        priority=t.priority,
        order=t.order,
        data_stream=t.data_stream,
        ilm_policy=policy_name(settings) if ilm_active(settings, target, noilm) else None,
        index_settings=dict(t.settings.index),
        source=dict(t.settings.source),
        migration=settings.migration.v6_to_7.enabled,
        legacy=t.type == "legacy",
        version=VERSION,
    )
    if t.json.enabled:
        return _json_template(settings, target, opts)
    return build_template(target, opts, field_set(settings))


def _json_template(settings: Settings, target: Target, opts: TemplateOptions) -> Template:
    j = settings.setup.template.json
    try:
        body: dict[str, Any] = json.loads(Path(j.path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"setup.template.json.path {j.path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise TemplateError(f"setup.template.json.path {j.path} is not valid JSON: {exc}") from exc
    name = format_name(j.name or opts.name)
    api = "_index_template" if target.composable and settings.setup.template.type != "legacy" else "_template"
    patterns = body.get("index_patterns") or [opts.resolved_pattern]
    return Template(name, api, body, bool(j.data_stream or "data_stream" in body), str(patterns[0]))


def policy_name(settings: Settings) -> str:
    return format_name(settings.setup.ilm.policy_name)


def policy_for(settings: Settings, target: Target | None = None) -> dict[str, Any]:
    return load_policy(settings.setup.ilm.policy_file, target)


def index_pattern_title(settings: Settings) -> str:
    return settings.setup.dashboards.index or DEFAULT_PATTERN


def kibana_objects(settings: Settings, only: str = "") -> list[dict[str, Any]]:
    fields = field_set(settings)
    if not settings.migration.v6_to_7.enabled:
        fields = fields.without_migration()
    return saved_objects(fields, index_pattern_title(settings), only)
