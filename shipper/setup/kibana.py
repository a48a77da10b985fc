"""Kibana: the ``packetbeat-*`` data view and the bundled dashboards as ndjson saved objects,
generated from ``dashboards/*.yml``; the ``_import`` call that loads them.

Saved objects follow Kibana 8.x: ``index-pattern`` (the data view), aggregation-based
``visualization`` objects that reference it as ``kibanaSavedObjectMeta.searchSourceJSON.index``,
and ``dashboard`` objects whose panels reference visualizations as ``<i>:panel_<i>``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import yaml

from shipper.outputs.http import HttpClient, TransportError
from shipper.setup.fields import FieldSet

DEFAULT_PATTERN = "packetbeat-*"
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {"index-pattern": "8.0.0", "visualization": "8.5.0", "dashboard": "8.7.0"}
PANEL_VERSION = "8.8.0"
DESCRIPTION_DIR = Path(__file__).with_name("dashboards")
NAV_ID = "packetbeat-navigation-ecs"
#: Types an aggregation can run on (text fields cannot be aggregated).
AGGREGATABLE = frozenset(
    {
        "keyword",
        "constant_keyword",
        "wildcard",
        "long",
        "integer",
        "short",
        "byte",
        "double",
        "float",
        "half_float",
        "scaled_float",
        "unsigned_long",
        "date",
        "date_nanos",
        "ip",
        "boolean",
    }
)
#: Metrics with several values per bucket: a terms aggregation cannot be ordered by them.
MULTI_VALUE_METRICS = frozenset({"percentiles", "percentile_ranks"})
NUMERIC = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
)


class KibanaError(Exception):
    """A Kibana call that failed; the message is one line."""


def load_description(path: Path = DESCRIPTION_DIR) -> dict[str, Any]:
    """Every dashboard description of ``path`` (one per file, in file-name order)."""
    dashboards = []
    for f in sorted(path.glob("*.yml")):
        with open(f, encoding="utf-8") as fh:
            dashboards.append(yaml.safe_load(fh))
    return {"dashboards": dashboards}


def dashboard_id(short: str) -> str:
    return f"packetbeat-{short}-ecs"


def _meta(obj_type: str) -> dict[str, Any]:
    return {
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": TYPE_MIGRATION_VERSION[obj_type],
    }


# -- the data view ---------------------------------------------------------------------------


def index_pattern(
    fields: FieldSet, pattern: str = DEFAULT_PATTERN, pattern_id: str | None = None
) -> dict[str, Any]:
    formats: dict[str, Any] = {}
    for f in fields:
        if f.format == "bytes":
            formats[f.path] = {"id": "bytes"}
        elif f.format == "duration":
            formats[f.path] = {
                "id": "duration",
                "params": {
                    "inputFormat": f.input_format or "nanoseconds",
                    "outputFormat": f.output_format or "asMilliseconds",
                    "outputPrecision": 1 if f.output_precision is None else f.output_precision,
                },
            }
        elif f.format == "url":
            formats[f.path] = {"id": "url"}
    return {
        "id": pattern_id or pattern,
        "type": "index-pattern",
        "attributes": {
            "title": pattern,
            "name": pattern,
            "timeFieldName": "@timestamp",
            "fieldFormatMap": json.dumps(formats, sort_keys=True),
            "fieldAttrs": "{}",
            "runtimeFieldMap": "{}",
            "sourceFilters": "[]",
            "fields": "[]",
            "allowNoIndex": True,
        },
        "references": [],
        **_meta("index-pattern"),
    }


# -- visualizations --------------------------------------------------------------------------


def _and(*queries: str) -> str:
    parts = [q for q in queries if q]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({q})" for q in parts)


def _search_source(query: str, with_index: bool = True) -> str:
    src: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        src["indexRefName"] = "kibanaSavedObjectMeta.searchSourceJSON.index"
    return json.dumps(src, sort_keys=True)


def _metric_agg(i: int, m: dict[str, Any], schema: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if m.get("field"):
        params["field"] = m["field"]
    if m["agg"] == "percentiles":
        params["percents"] = m.get("percents", [50, 90, 99])
    return {"id": str(i), "enabled": True, "type": m["agg"], "params": params, "schema": schema}


def _bucket_agg(
    i: int, b: dict[str, Any], schema: str, metric_ids: list[str], metric_types: list[str]
) -> dict[str, Any]:
    agg = b["agg"]
    params: dict[str, Any]
    if agg == "date_histogram":
        params = {
            "field": b.get("field", "@timestamp"),
            "interval": b.get("interval", "auto"),
            "min_doc_count": 1,
            "extended_bounds": {},
            "useNormalizedEsInterval": True,
            "scaleMetricValues": False,
            "drop_partials": False,
        }
    elif agg == "terms":
        order_by = b.get("order_by", 0)
        params = {
            "field": b["field"],
            "size": b.get("size", 10),
            "order": "desc",
            "otherBucket": False,
            "missingBucket": False,
        }
        # Kibana orders terms by a single-value metric agg id (the first metric by default),
        # by _key, or by a "custom" sub-aggregation (here: the document count).
        if order_by == "key":
            params["orderBy"] = "_key"
        elif order_by == "count":
            params["orderBy"] = "custom"
            params["orderAgg"] = {
                "id": f"{i}-orderAgg",
                "enabled": True,
                "type": "count",
                "params": {},
                "schema": "orderAgg",
            }
        else:
            k = int(order_by)
            if metric_types[k] in MULTI_VALUE_METRICS:
                raise ValueError(
                    f"terms on {b['field']!r} cannot be ordered by a {metric_types[k]} metric; "
                    "use order_by: count, key or a single-value metric"
                )
            params["orderBy"] = metric_ids[k]
    elif agg == "histogram":
        params = {
            "field": b["field"],
            "interval": b.get("interval", 1),
            "min_doc_count": False,
            "extended_bounds": {},
        }
    elif agg == "filters":
        params = {
            "filters": [
                {"input": {"query": f["query"], "language": "kuery"}, "label": f.get("label", "")}
                for f in b["filters"]
            ]
        }
    else:
        raise ValueError(f"unknown bucket aggregation {agg!r}")
    return {"id": str(i), "enabled": True, "type": agg, "params": params, "schema": schema}


def _xy_params(vis_type: str, title: str) -> dict[str, Any]:
    chart = {"line": "line", "area": "area", "bar": "histogram"}[vis_type]
    mode = "stacked" if vis_type in ("bar", "area") else "normal"
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": "bottom",
                "show": True,
                "style": {},
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": True, "truncate": 100},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "style": {},
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": title},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": "line" if chart == "line" else chart,
                "mode": mode,
                "data": {"label": title, "id": "1"},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "lineWidth": 2,
                "showCircles": True,
                "interpolate": "linear",
            }
        ],
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
        "labels": {},
        "detailedTooltip": True,
        "palette": {"type": "palette", "name": "default"},
        "isVislibVis": True,
    }


def visualization(vid: str, panel: dict[str, Any], base_query: str, pattern_id: str) -> dict[str, Any]:
    vis_type = panel["type"]
    title = panel["title"]
    metrics = panel.get("metrics") or [{"agg": "count"}]
    buckets = panel.get("buckets") or []
    aggs: list[dict[str, Any]] = []
    metric_ids = [str(i + 1) for i in range(len(metrics))]
    for i, m in enumerate(metrics):
        aggs.append(_metric_agg(i + 1, m, "metric"))
    n = len(metrics)
    for j, b in enumerate(buckets):
        if vis_type in ("line", "area", "bar"):
            schema = "group" if b.get("split") == "series" else "segment"
        elif vis_type == "pie":
            schema = "segment"
        elif vis_type == "table":
            schema = "bucket" if b.get("split", "rows") == "rows" else "split"
        else:
            schema = "group"
        aggs.append(_bucket_agg(n + j + 1, b, schema, metric_ids, [m["agg"] for m in metrics]))
    params: dict[str, Any]
    if vis_type in ("line", "area", "bar"):
        params = _xy_params(vis_type, title)
        kibana_type = {"bar": "histogram"}.get(vis_type, vis_type)
    elif vis_type == "pie":
        params = {
            "type": "pie",
            "addTooltip": True,
            "addLegend": True,
            "legendPosition": "right",
            "isDonut": True,
            "labels": {"show": False, "values": True, "last_level": True, "truncate": 100},
            "palette": {"type": "palette", "name": "default"},
            "distinctColors": True,
        }
        kibana_type = "pie"
    elif vis_type == "table":
        params = {
            "perPage": 10,
            "showPartialRows": False,
            "showMetricsAtAllLevels": False,
            "showTotal": False,
            "totalFunc": "sum",
            "percentageCol": "",
            "autoFitRowToContent": False,
            "row": True,
        }
        kibana_type = "table"
    elif vis_type == "metric":
        params = {
            "addTooltip": True,
            "addLegend": False,
            "type": "metric",
            "metric": {
                "percentageMode": False,
                "useRanges": False,
                "colorSchema": "Green to Red",
                "metricColorMode": "None",
                "colorsRange": [{"from": 0, "to": 10000}],
                "labels": {"show": True},
                "invertColors": False,
                "style": {
                    "bgFill": "#000",
                    "bgColor": False,
                    "labelColor": False,
                    "subText": "",
                    "fontSize": 60,
                },
            },
        }
        kibana_type = "metric"
    else:
        raise ValueError(f"unknown visualization type {vis_type!r} in panel {title!r}")
    vis_state = {"title": title, "type": kibana_type, "aggs": aggs, "params": params}
    return {
        "id": vid,
        "type": "visualization",
        "attributes": {
            "title": title,
            "description": panel.get("description", ""),
            "version": 1,
            "uiStateJSON": "{}",
            "visState": json.dumps(vis_state, sort_keys=True),
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": _search_source(_and(base_query, panel.get("query", "")))
            },
        },
        "references": [
            {
                "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
                "type": "index-pattern",
                "id": pattern_id,
            }
        ],
        **_meta("visualization"),
    }


def navigation(dashboards: list[dict[str, Any]]) -> dict[str, Any]:
    links = "\n".join(f"- [{d['title']}](#/view/{dashboard_id(d['id'])})" for d in dashboards)
    text = f"### Packetbeat (wirebeat)\n\n{links}\n"
    vis_state = {
        "title": "[Packetbeat] Navigation ECS",
        "type": "markdown",
        "aggs": [],
        "params": {"markdown": text, "fontSize": 12, "openLinksInNewTab": False},
    }
    return {
        "id": NAV_ID,
        "type": "visualization",
        "attributes": {
            "title": vis_state["title"],
            "description": "Links to the Packetbeat dashboards.",
            "version": 1,
            "uiStateJSON": "{}",
            "visState": json.dumps(vis_state, sort_keys=True),
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source("", with_index=False)},
        },
        "references": [],
        **_meta("visualization"),
    }


def dashboard(d: dict[str, Any], vis_ids: list[str], sizes: list[tuple[int, int]]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    x = y = row_h = 0
    for i, (vid, (w, h)) in enumerate(zip(vis_ids, sizes, strict=True), start=1):
        if x + w > 48:
            x, y, row_h = 0, y + row_h, 0
        idx = str(i)
        panels.append(
            {
                "version": PANEL_VERSION,
                "type": "visualization",
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": idx},
                "panelIndex": idx,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{idx}",
            }
        )
        references.append({"name": f"{idx}:panel_{idx}", "type": "visualization", "id": vid})
        x += w
        row_h = max(row_h, h)
    return {
        "id": dashboard_id(d["id"]),
        "type": "dashboard",
        "attributes": {
            "title": f"[Packetbeat] {d['title']} ECS",
            "description": d.get("description", ""),
            "hits": 0,
            "timeRestore": False,
            "version": 1,
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "panelsJSON": json.dumps(panels, sort_keys=True),
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source("", with_index=False)},
        },
        "references": references,
        **_meta("dashboard"),
    }


def saved_objects(
    fields: FieldSet,
    pattern: str = DEFAULT_PATTERN,
    only: str = "",
    description: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The data view, then every visualization and dashboard (or those of dashboard ``only``)."""
    desc = description or load_description()
    dashboards = desc["dashboards"]
    if only:
        chosen = [d for d in dashboards if only in (d["id"], dashboard_id(d["id"]))]
        if not chosen:
            known = ", ".join(dashboard_id(d["id"]) for d in dashboards)
            raise KibanaError(f"no dashboard with id {only!r} (known: {known})")
    else:
        chosen = dashboards
    pattern_id = pattern
    out = [index_pattern(fields, pattern, pattern_id), navigation(dashboards)]
    for d in chosen:
        vis_ids = [NAV_ID]
        sizes = [(48, 5)]
        for p in d["panels"]:
            vid = f"packetbeat-{d['id']}-{p['id']}-ecs"
            out.append(visualization(vid, p, d.get("query", ""), pattern_id))
            vis_ids.append(vid)
            sizes.append((int(p.get("w", 24)), int(p.get("h", 15))))
        out.append(dashboard(d, vis_ids, sizes))
    return out


def to_ndjson(objects: list[dict[str, Any]], replacements: dict[str, str] | None = None) -> bytes:
    text = "".join(json.dumps(o, sort_keys=True, separators=(",", ":")) + "\n" for o in objects)
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    return text.encode("utf-8")


# -- what the objects use (checked against the template by the tests) ---------------------------

_KQL_FIELD_RE = re.compile(r"([A-Za-z_@][\w.@-]*)\s*(?::|>=|<=|>|<)")


def fields_used(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Field → how it is used (``agg:<type>``, ``query``) across the visualizations."""
    used: dict[str, set[str]] = {}
    for o in objects:
        if o["type"] != "visualization":
            continue
        state = json.loads(o["attributes"]["visState"])
        for agg in state.get("aggs", []):
            field = agg.get("params", {}).get("field")
            if field:
                used.setdefault(field, set()).add(f"agg:{agg['type']}")
            for f in agg.get("params", {}).get("filters", []):
                for name in _KQL_FIELD_RE.findall(f["input"]["query"]):
                    used.setdefault(name, set()).add("query")
        src = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        for name in _KQL_FIELD_RE.findall(src.get("query", {}).get("query", "")):
            used.setdefault(name, set()).add("query")
    return used


# -- the import call ---------------------------------------------------------------------------


def multipart(ndjson: bytes, filename: str = "packetbeat.ndjson") -> tuple[bytes, str]:
    boundary = "----wirebeat" + secrets.token_hex(12)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    body = head + ndjson + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


XSRF = {"kbn-xsrf": "true", "osd-xsrf": "true"}


def space_prefix(space: str) -> str:
    return f"/s/{space}" if space else ""


def kibana_version(client: HttpClient, attempts: int = 1, interval: float = 1.0) -> str:
    """``GET /api/status``; the version number, or a KibanaError in one line."""
    last = ""
    for i in range(max(1, attempts)):
        if i:
            time.sleep(interval)
        try:
            r = client.request("GET", "/api/status", headers=XSRF)
        except TransportError as exc:
            last = f"Kibana at {client.url} is not reachable: {exc.message}"
            continue
        if r.status in (401, 403):
            raise KibanaError(
                f"Kibana at {client.url} refused the credentials (HTTP {r.status}): {r.error_reason()}"
            )
        if r.status == 503:
            last = f"Kibana at {client.url} is not ready (HTTP 503)"
            continue
        if not r.ok:
            raise KibanaError(
                f"Kibana at {client.url}: GET /api/status answered HTTP {r.status}: {r.error_reason()}"
            )
        data = r.json()
        version = data.get("version") if isinstance(data, dict) else None
        number = version.get("number") if isinstance(version, dict) else None
        if not isinstance(number, str):
            raise KibanaError(
                f"the server at {client.url} does not look like Kibana (no version in /api/status)"
            )
        return number
    raise KibanaError(last)


def import_objects(client: HttpClient, ndjson: bytes, space: str = "", overwrite: bool = True) -> int:
    """POST the objects to ``_import``; returns how many Kibana stored."""
    body, ctype = multipart(ndjson)
    path = f"{space_prefix(space)}/api/saved_objects/_import"
    params = {"overwrite": "true"} if overwrite else None
    try:
        r = client.request("POST", path, body, headers={**XSRF, "Content-Type": ctype}, params=params)
    except TransportError as exc:
        raise KibanaError(f"Kibana at {client.url} is not reachable: {exc.message}") from None
    if r.status in (401, 403):
        raise KibanaError(
            f"Kibana at {client.url} refused the credentials (HTTP {r.status}): {r.error_reason()}"
        )
    if not r.ok:
        raise KibanaError(f"Kibana import failed with HTTP {r.status}: {r.error_reason()}")
    data = r.json()
    if not isinstance(data, dict):
        raise KibanaError("Kibana import answered something that is not JSON")
    if not data.get("success"):
        errors = data.get("errors") or []
        shown = "; ".join(
            f"{e.get('type')} {e.get('id')}: {(e.get('error') or {}).get('type', '')}"
            for e in errors[:5]
            if isinstance(e, dict)
        )
        raise KibanaError(
            f"Kibana imported {data.get('successCount', 0)} objects, {len(errors)} failed: {shown}"
        )
    return int(data.get("successCount", 0))
