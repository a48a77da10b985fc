"""``setup --index-management`` against local fakes of Elasticsearch 7/8/9: the official client
path for 8/9 (product header, compatible-with), plain HTTP for 7, and the failure lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import pytest

from shipper.agent.version import VERSION
from tests.helpers import free_port
from tests.setup.fakehttp import FakeServer, Request, fake_server
from tests.setup.test_kibana import run

TEMPLATE = f"packetbeat-{VERSION}"
JSON = {"Content-Type": "application/json"}


@contextmanager
def fake_es(
    version: str = "8.17.0",
    product_header: bool = True,
    policies: dict[str, Any] | None = None,
    fail: dict[str, tuple[int, dict[str, Any]]] | None = None,
) -> Iterator[FakeServer]:
    """A tiny Elasticsearch: GET /, ILM policies, templates, aliases; ``fail`` maps routes to errors."""
    store: dict[str, Any] = {"policies": dict(policies or {}), "templates": {}, "aliases": set()}

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        headers = dict(JSON)
        if product_header:
            headers["X-Elastic-Product"] = "Elasticsearch"
        route = unquote(req.route)
        key = f"{req.method} {route}"
        if fail and key in fail:
            status, body = fail[key]
            return status, headers, json.dumps(body).encode()
        if key == "GET /":
            body = {
                "name": "fake",
                "cluster_name": "fake",
                "version": {"number": version, "build_flavor": "default"},
                "tagline": "You Know, for Search",
            }
            return 200, headers, json.dumps(body).encode()
        if route.startswith("/_ilm/policy/"):
            name = route.rsplit("/", 1)[1]
            if req.method == "GET":
                if name in store["policies"]:
                    return 200, headers, json.dumps({name: store["policies"][name]}).encode()
                return 404, headers, b'{"error":{"type":"resource_not_found_exception","reason":"not found"}}'
            store["policies"][name] = json.loads(req.body)
            return 200, headers, b'{"acknowledged":true}'
        if route.startswith(("/_index_template/", "/_template/")):
            if req.method == "PUT":
                store["templates"][route] = json.loads(req.body)
                return 200, headers, b'{"acknowledged":true}'
            return (200 if route in store["templates"] else 404), headers, b""
        if route.startswith("/_alias/"):
            return (200 if route.split("/")[-1] in store["aliases"] else 404), headers, b""
        if req.method == "PUT" and route.startswith("/<"):
            for alias in json.loads(req.body)["aliases"]:
                store["aliases"].add(alias)
            return 200, headers, b'{"acknowledged":true}'
        return 404, headers, b'{"error":"no route"}'

    with fake_server(handler) as srv:
        srv.store = store  # type: ignore[attr-defined]
        yield srv


def setup(capsys: pytest.CaptureFixture[str], host: str, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "setup", "--index-management", "-E", f"output.elasticsearch.hosts=['{host}']", *extra)


@pytest.mark.parametrize("major", ["8.17.0", "9.1.0"])
def test_es_8_and_9_use_the_official_client(capsys: pytest.CaptureFixture[str], major: str) -> None:
    with fake_es(major) as es:
        code, out, err = setup(
            capsys,
            es.host,
            "-E",
            "output.elasticsearch.username=elastic",
            "-E",
            "output.elasticsearch.password=pw",
        )
    assert code == 0, err
    assert f"Connected to Elasticsearch {major}" in out
    assert "ILM policy packetbeat loaded." in out
    assert f"Index template {TEMPLATE} loaded for {TEMPLATE}* (data stream)." in out
    assert es.routes() == [
        "GET /",
        "GET /_ilm/policy/packetbeat",
        "PUT /_ilm/policy/packetbeat",
        f"PUT /_index_template/{TEMPLATE}",
    ]
    for req in es.requests[1:]:
        assert req.headers["user-agent"].startswith("elasticsearch-py/")
        assert req.headers["accept"] == f"application/vnd.elasticsearch+json; compatible-with={major[0]}"
        assert req.headers["authorization"].startswith("Basic ")
    policy = es.store["policies"]["packetbeat"]  # type: ignore[attr-defined]
    assert policy["policy"]["phases"]["hot"]["actions"]["rollover"] == {
        "max_primary_shard_size": "50gb",
        "max_age": "30d",
    }
    tpl = es.store["templates"][f"/_index_template/{TEMPLATE}"]  # type: ignore[attr-defined]
    assert tpl["data_stream"] == {} and tpl["template"]["settings"]["index"]["lifecycle"] == {
        "name": "packetbeat"
    }


def test_existing_policy_is_kept_unless_overwrite(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_es(policies={"packetbeat": {"policy": {"phases": {}}}}) as es:
        code, out, _ = setup(capsys, es.host)
        assert code == 0 and "ILM policy packetbeat exists already" in out
        assert "PUT /_ilm/policy/packetbeat" not in es.routes()
        code, out, _ = setup(capsys, es.host, "-E", "setup.ilm.overwrite=true")
        assert code == 0 and "PUT /_ilm/policy/packetbeat" in es.routes()


def test_official_client_product_check_rejects_other_servers(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_es("8.17.0", product_header=False) as es:
        code, _out, err = setup(capsys, es.host)
    assert code == 1
    (line,) = [ln for ln in err.splitlines() if ln.startswith("Exiting:")]
    assert "is not Elasticsearch (the official client refuses it)" in line


def test_es7_uses_plain_http_and_legacy_template_with_write_alias(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_es("7.7.1", product_header=False) as es:
        code, out, err = setup(capsys, es.host)
    assert code == 0, err
    assert "Connected to Elasticsearch 7.7.1" in out
    assert f"Legacy template {TEMPLATE} loaded for {TEMPLATE}*." in out
    assert f"Write alias {TEMPLATE} created." in out
    assert es.routes() == [
        "GET /",
        "GET /_ilm/policy/packetbeat",
        "PUT /_ilm/policy/packetbeat",
        f"PUT /_template/{TEMPLATE}",
        f"HEAD /_alias/{TEMPLATE}",
        f"PUT /<{TEMPLATE}-{{now/d}}-000001>",
    ]
    assert not any(r.headers.get("user-agent", "").startswith("elasticsearch-py") for r in es.requests)
    tpl = es.store["templates"][f"/_template/{TEMPLATE}"]  # type: ignore[attr-defined]
    assert tpl["settings"]["index"]["lifecycle"] == {"name": "packetbeat", "rollover_alias": TEMPLATE}
    rollover = es.store["policies"]["packetbeat"]["policy"]["phases"]["hot"]["actions"]["rollover"]  # type: ignore[attr-defined]
    assert rollover == {"max_size": "50gb", "max_age": "30d"}


def test_template_only_and_ilm_only_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_es() as es:
        code, _out, _ = run(capsys, "setup", "--template", "-E", f"output.elasticsearch.hosts=['{es.host}']")
        assert code == 0 and es.routes() == ["GET /", f"PUT /_index_template/{TEMPLATE}"]
    with fake_es() as es:
        code, _out, _ = run(
            capsys, "setup", "--ilm-policy", "-E", f"output.elasticsearch.hosts=['{es.host}']"
        )
        assert code == 0 and es.routes() == [
            "GET /",
            "GET /_ilm/policy/packetbeat",
            "PUT /_ilm/policy/packetbeat",
        ]


def test_wrong_credentials_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    fail = {
        "GET /": (401, {"error": {"type": "security_exception", "reason": "unable to authenticate user"}})
    }
    with fake_es(fail=fail) as es:
        code, _out, err = setup(
            capsys,
            es.host,
            "-E",
            "output.elasticsearch.username=elastic",
            "-E",
            "output.elasticsearch.password=wrong",
        )
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("Exiting: GET http://127.0.0.1:")
    assert "authentication failed (HTTP 401)" in lines[0]


def test_rejected_template_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    reason = {
        "error": {"type": "illegal_argument_exception", "reason": "unknown setting [index.foo]"},
        "status": 400,
    }
    with fake_es(fail={f"PUT /_index_template/{TEMPLATE}": (400, reason)}) as es:
        code, _out, err = setup(capsys, es.host)
    assert code == 1
    assert (
        f"Exiting: loading template {TEMPLATE}: HTTP 400: illegal_argument_exception: unknown setting [index.foo]"
        in err
    )


def test_unreachable_cluster_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, _out, err = setup(capsys, f"127.0.0.1:{port}")
    assert code == 1
    (line,) = [ln for ln in err.splitlines() if ln.startswith("Exiting:")]
    assert line.startswith(
        f"Exiting: cannot connect to Elasticsearch/OpenSearch: connection failed: http://127.0.0.1:{port}"
    )
    assert "refused" in line.lower()


def test_not_a_search_server(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_server(lambda r: (200, {"Content-Type": "text/html"}, b"<html>hello</html>")) as srv:
        code, _out, err = setup(capsys, srv.host)
    assert code == 1 and "is neither Elasticsearch nor OpenSearch" in err


def test_index_management_needs_the_elasticsearch_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "setup", "--index-management", "-E", "output.console.enabled=true")
    assert code == 1
    assert "Exiting: index management requested but the Elasticsearch output is not configured/enabled" in err


def test_conflicting_appended_field_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("setup.template.append_fields:\n  - name: source.ip\n    type: keyword\n")
    with fake_es() as es:
        code, _out, err = setup(capsys, es.host, "-c", str(cfg))
        assert f"PUT /_index_template/{TEMPLATE}" not in es.routes()
    assert code == 1
    (line,) = [ln for ln in err.splitlines() if ln.startswith("Exiting:")]
    assert "'source.ip' is declared as keyword" in line


def test_appended_fields_reach_the_template(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("setup.template.append_fields:\n  - name: site.rack\n    type: long\n")
    with fake_es() as es:
        code, _out, err = setup(capsys, es.host, "-c", str(cfg))
    assert code == 0, err
    tpl = es.store["templates"][f"/_index_template/{TEMPLATE}"]  # type: ignore[attr-defined]
    assert tpl["template"]["mappings"]["properties"]["site"]["properties"]["rack"] == {"type": "long"}
