"""``wirebeat export template|ilm-policy|index-pattern|dashboard`` (the ``export`` hook of the CLI).

Output goes to stdout, or under ``--dir`` (``template/<name>.json``, ``policy/<name>.json``,
``index-pattern/<id>.json``, ``dashboard/<id>.ndjson``, ``docs/fields.md``). ``export fields``
writes the field reference generated from the fields.yml files. ``--es.version`` picks the form of
the template (legacy ``_template`` before 7.8); ``--noilm`` leaves out the ILM settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shipper.agent.settings import Settings
from shipper.setup import build
from shipper.setup.fields import FieldsError, fields_markdown
from shipper.setup.ilm import PolicyError
from shipper.setup.kibana import KibanaError, to_ndjson
from shipper.setup.template import DEFAULT_ES_VERSION, Target, TemplateError

WHAT = ("template", "ilm-policy", "index-pattern", "dashboard", "fields")


def _write(text: str, args: argparse.Namespace, sub: str, name: str) -> None:
    if args.export_dir:
        path = Path(args.export_dir) / sub / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"Writing to {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def export(what: str, settings: Settings, args: argparse.Namespace) -> int:
    try:
        return _export(what, settings, args)
    except (TemplateError, FieldsError, PolicyError, KibanaError) as exc:
        print(f"Exiting: {exc}", file=sys.stderr)
        return 1


def _export(what: str, settings: Settings, args: argparse.Namespace) -> int:
    target = Target.elasticsearch(getattr(args, "es_version", "") or DEFAULT_ES_VERSION)
    if what == "template":
        t = build.template_for(settings, target, noilm=bool(getattr(args, "noilm", False)))
        _write(_json(t.body), args, "template", f"{t.name}.json")
        return 0
    if what in ("ilm-policy", "ilm"):
        _write(
            _json(build.policy_for(settings, target)), args, "policy", f"{build.policy_name(settings)}.json"
        )
        return 0
    if what == "index-pattern":
        obj = build.kibana_objects(settings)[0]
        _write(_json(obj), args, "index-pattern", f"{obj['id'].replace('*', '')}.json".replace("-.", "."))
        return 0
    if what == "dashboard":
        only = getattr(args, "dashboard_id", "") or ""
        objects = build.kibana_objects(settings, only)
        data = to_ndjson(objects, settings.setup.dashboards.string_replacements).decode()
        _write(data, args, "dashboard", f"{only or 'packetbeat-dashboards'}.ndjson")
        return 0
    if what == "fields":
        _write(fields_markdown(build.field_set(settings)), args, "docs", "fields.md")
        return 0
    print(f"Exiting: unknown export {what!r} (use one of: config, {', '.join(WHAT)})", file=sys.stderr)
    return 1
