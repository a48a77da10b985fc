"""Kibana: the generated saved objects, and ``setup --dashboards`` against a recording server."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from shipper.agent.cli import Exit, dispatch
from shipper.setup.fields import load_fields
from shipper.setup.kibana import AGGREGATABLE, NUMERIC, dashboard_id, fields_used, saved_objects
from tests.setup.fakehttp import Request, fake_server

FIELDS = load_fields().without_migration()
OBJECTS = saved_objects(FIELDS)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI in-process; the log handlers it installs (on captured stderr) are removed again."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = dispatch(list(argv))
    except Exit as exc:
        print(exc.message, file=sys.stderr)
        code = exc.code
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


def check_objects(objects: list[dict[str, Any]]) -> None:
    """Each object is a valid saved object and every reference resolves inside the import."""
    by_key = {(o["type"], o["id"]) for o in objects}
    assert len(by_key) == len(objects), "duplicate ids"
    for o in objects:
        assert set(o) >= {"type", "id", "attributes", "references"}
        assert o["type"] in ("index-pattern", "visualization", "dashboard")
        assert isinstance(o["attributes"].get("title"), str) and o["attributes"]["title"]
        assert o.get("coreMigrationVersion") and o.get("typeMigrationVersion")
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in by_key, f"{o['id']}: dangling reference {ref}"
        names = {r["name"] for r in o["references"]}
        if o["type"] == "visualization":
            state = json.loads(o["attributes"]["visState"])
            assert state["title"] == o["attributes"]["title"]
            src = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            if state["type"] != "markdown":
                assert src["indexRefName"] in names
                (ref,) = [r for r in o["references"] if r["name"] == src["indexRefName"]]
                assert ref["type"] == "index-pattern"
        if o["type"] == "dashboard":
            panels = json.loads(o["attributes"]["panelsJSON"])
            assert panels
            for p in panels:
                assert f"{p['panelIndex']}:{p['panelRefName']}" in names or p["panelRefName"] in names
                g = p["gridData"]
                assert g["x"] >= 0 and g["x"] + g["w"] <= 48 and g["i"] == p["panelIndex"]


def test_saved_objects_are_valid_and_references_resolve() -> None:
    check_objects(OBJECTS)
    types = [o["type"] for o in OBJECTS]
    files = list((Path(__file__).resolve().parents[2] / "shipper" / "setup" / "dashboards").glob("*.yml"))
    assert types[0] == "index-pattern" and types.count("dashboard") == len(files) >= 8


def test_visualizations_only_use_fields_the_template_defines() -> None:
    used = fields_used(OBJECTS)
    assert "event.duration" in used and "method" in used and "type" in used
    for field, how in used.items():
        f = FIELDS.get(field)
        assert f is not None, f"{field} is used by a visualization but not defined"
        for use in how:
            if use.startswith("agg:"):
                assert f.type in AGGREGATABLE, f"{field} ({f.type}) cannot be aggregated ({use})"
            if use in ("agg:avg", "agg:sum", "agg:percentiles", "agg:histogram"):
                assert f.type in NUMERIC, f"{field} ({f.type}) is not numeric ({use})"


def _vis(title: str, dash: str) -> dict[str, Any]:
    (o,) = [
        o
        for o in OBJECTS
        if o["type"] == "visualization"
        and o["attributes"]["title"] == title
        and o["id"].startswith(f"packetbeat-{dash}-")
    ]
    state: dict[str, Any] = json.loads(o["attributes"]["visState"])
    state["query"] = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"][
        "query"
    ]
    return state


def test_thrift_dashboard_has_the_talks_panels() -> None:
    slow = _vis("Slowest Thrift RPC methods", "thrift")
    assert slow["type"] == "table"
    metric = {a["id"]: a for a in slow["aggs"] if a["schema"] == "metric"}
    (terms,) = [a for a in slow["aggs"] if a["type"] == "terms"]
    assert terms["params"]["field"] == "method" and terms["params"]["size"] == 10
    order = metric[terms["params"]["orderBy"]]
    assert order["type"] == "avg" and order["params"]["field"] == "event.duration"
    assert terms["params"]["order"] == "desc"
    assert slow["query"] == 'type : "thrift"'
    rt = _vis("Thrift response time over time", "thrift")
    assert rt["type"] == "line"
    kinds = {a["type"]: a for a in rt["aggs"]}
    assert kinds["sum"]["params"]["field"] == "event.duration"
    assert kinds["date_histogram"]["params"]["interval"] == "1m"
    assert kinds["terms"]["params"]["field"] == "type" and kinds["terms"]["schema"] == "group"


def test_dashboards_have_navigation_and_titles() -> None:
    dash = {o["id"]: o for o in OBJECTS if o["type"] == "dashboard"}
    for short in ("overview", "http", "mysql", "pgsql", "redis", "thrift", "icmp", "flows"):
        d = dash[dashboard_id(short)]
        assert d["attributes"]["title"].startswith("[Packetbeat] ") and d["attributes"]["title"].endswith(
            " ECS"
        )
        assert d["references"][0]["id"] == "packetbeat-navigation-ecs"
    nav = next(o for o in OBJECTS if o["id"] == "packetbeat-navigation-ecs")
    text = json.loads(nav["attributes"]["visState"])["params"]["markdown"]
    for short in dash:
        assert f"(#/view/{short})" in text


def test_custom_index_pattern_and_single_dashboard() -> None:
    objs = saved_objects(FIELDS, pattern="wire-*", only="thrift")
    assert objs[0]["id"] == "wire-*" and objs[0]["attributes"]["title"] == "wire-*"
    assert [o["type"] for o in objs].count("dashboard") == 1
    check_objects(objs)
    refs = {r["id"] for o in objs for r in o["references"] if r["type"] == "index-pattern"}
    assert refs == {"wire-*"}


def parse_multipart(req: Request) -> tuple[dict[str, str], bytes]:
    ctype = req.headers["content-type"]
    m = re.fullmatch(r"multipart/form-data; boundary=(\S+)", ctype)
    assert m, ctype
    b = m.group(1).encode()
    body = req.body
    assert body.startswith(b"--" + b + b"\r\n")
    assert body.endswith(b"\r\n--" + b + b"--\r\n")
    inner = body[len(b) + 4 : -(len(b) + 8)]
    assert b"--" + b not in inner, "exactly one part expected"
    head, sep, content = inner.partition(b"\r\n\r\n")
    assert sep
    headers = {}
    for line in head.decode().split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, content


def kibana(import_result: dict[str, Any] | None = None, status: int = 200, version: str = "8.17.0"):  # type: ignore[no-untyped-def]
    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        if status != 200:
            return (
                status,
                {"Content-Type": "application/json"},
                b'{"statusCode":401,"error":"Unauthorized","message":"bad creds"}',
            )
        if req.method == "GET" and req.route.endswith("/api/status"):
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"version": {"number": version}}).encode(),
            )
        if req.method == "POST" and req.route.endswith("/api/saved_objects/_import"):
            _, content = parse_multipart(req)
            n = len(content.splitlines())
            res = import_result or {"success": True, "successCount": n, "successResults": []}
            return 200, {"Content-Type": "application/json"}, json.dumps(res).encode()
        return 404, {}, b"{}"

    return fake_server(handler)


def test_setup_dashboards_imports_into_kibana(capsys: pytest.CaptureFixture[str]) -> None:
    with kibana() as srv:
        code, out, err = run(
            capsys,
            "setup",
            "--dashboards",
            "-E",
            f"setup.kibana.host={srv.host}",
            "-E",
            "setup.kibana.space.id=team-a",
            "-E",
            "setup.kibana.username=elastic",
            "-E",
            "setup.kibana.password=changeme",
        )
    assert code == 0, err
    assert "Connected to Kibana 8.17.0" in out and f"Loaded dashboards ({len(OBJECTS)} saved objects)." in out
    assert srv.routes() == ["GET /api/status", "POST /s/team-a/api/saved_objects/_import"]
    req = srv.requests[1]
    assert req.path == "/s/team-a/api/saved_objects/_import?overwrite=true"
    assert req.headers["kbn-xsrf"]
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"elastic:changeme").decode()
    headers, content = parse_multipart(req)
    disp = headers["content-disposition"]
    assert re.fullmatch(r'form-data; name="file"; filename="[\w.-]+\.ndjson"', disp), disp
    assert headers["content-type"] == "application/ndjson"
    assert content.endswith(b"\n")
    objects = [json.loads(line) for line in content.decode().splitlines()]
    assert len(objects) == len(OBJECTS)
    check_objects(objects)


def test_setup_dashboards_with_api_key_and_path(capsys: pytest.CaptureFixture[str]) -> None:
    with kibana() as srv:
        code, _out, err = run(
            capsys,
            "setup",
            "--dashboards",
            "-E",
            f"setup.kibana.host=http://{srv.host}/kbn",
            "-E",
            "setup.kibana.api_key=myid:mysecret",
            "-E",
            "setup.dashboards.index=wire-*",
        )
    assert code == 0, err
    req = srv.requests[-1]
    assert req.path == "/kbn/api/saved_objects/_import?overwrite=true"
    assert req.headers["authorization"] == "ApiKey " + base64.b64encode(b"myid:mysecret").decode()
    _, content = parse_multipart(req)
    first = json.loads(content.splitlines()[0])
    assert first["id"] == "wire-*"


def test_kibana_refuses_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with kibana(status=401) as srv:
        code, _out, err = run(capsys, "setup", "--dashboards", "-E", f"setup.kibana.host={srv.host}")
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("Exiting: Kibana at") and "HTTP 401" in lines[-1]
    assert sum(ln.startswith("Exiting:") for ln in lines) == 1


def test_kibana_import_errors_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    result = {
        "success": False,
        "successCount": 3,
        "errors": [
            {"id": "packetbeat-http-ecs", "type": "dashboard", "error": {"type": "missing_references"}}
        ],
    }
    with kibana(import_result=result) as srv:
        code, _out, err = run(capsys, "setup", "--dashboards", "-E", f"setup.kibana.host={srv.host}")
    assert code == 1
    assert (
        "Exiting: Kibana imported 3 objects, 1 failed: dashboard packetbeat-http-ecs: missing_references"
        in err
    )


def test_kibana_too_old_or_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    with kibana(version="7.10.2") as srv:
        code, _out, err = run(capsys, "setup", "--dashboards", "-E", f"setup.kibana.host={srv.host}")
    assert code == 1 and "Exiting: Kibana 7.10.2 is too old" in err
    from tests.helpers import free_port

    code, _out, err = run(capsys, "setup", "--dashboards", "-E", f"setup.kibana.host=127.0.0.1:{free_port()}")
    assert code == 1
    assert "Exiting: Kibana at http://127.0.0.1:" in err and "not reachable" in err


def test_terms_order_by_a_percentiles_metric_is_refused_and_count_order_is_custom() -> None:
    """Elasticsearch and OpenSearch cannot order terms by a multi-value metric ("Invalid
    aggregation order path"): the generator says so instead of emitting a broken panel."""
    from shipper.setup.kibana import visualization

    panel: dict[str, Any] = {
        "id": "p",
        "title": "t",
        "type": "line",
        "metrics": [{"agg": "percentiles", "field": "event.duration", "percents": [50]}],
        "buckets": [{"agg": "terms", "field": "method", "split": "series"}],
    }
    with pytest.raises(ValueError, match="cannot be ordered by a percentiles metric"):
        visualization("v", panel, "", "packetbeat-*")
    panel["buckets"][0]["order_by"] = "count"
    state = json.loads(visualization("v", panel, "", "packetbeat-*")["attributes"]["visState"])
    terms = next(a for a in state["aggs"] if a["type"] == "terms")
    assert terms["params"]["orderBy"] == "custom"
    assert terms["params"]["orderAgg"]["type"] == "count"
