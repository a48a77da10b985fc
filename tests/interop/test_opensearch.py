"""wirebeat against a real OpenSearch 2.x node: setup, replay through output.elasticsearch,
mappings from the template, the talk's aggregations, the dashboards' queries, bad input."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from protocols.registry import available, plugin_class
from protocols.stats import Counters
from shipper.agent.version import VERSION
from shipper.outputs.base import OutputContext
from shipper.outputs.elasticsearch import ElasticsearchConfig, ElasticsearchOutput
from shipper.setup.fields import load_fields
from shipper.setup.kibana import saved_objects
from tests.helpers import ROOT, decode_file, shared_pcap
from tests.interop.opensearch_node import OpenSearchNode, opensearch_fixture  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

DATA_STREAM = f"packetbeat-{VERSION}"
#: One capture per protocol; protocols not in this build are left out automatically.
CAPTURES = {
    "http": ["http_minitwit", "http_post", "http_url_params"],
    "mysql": ["mysql_long_result", "mysql_err_database_not_selected"],
    "pgsql": ["pgsql_rt", "pgsql_insert_error"],
    "redis": ["redis_one_transaction"],
    "thrift": ["thrift_tutorial"],
}


def wirebeat(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shipper.agent.cli import main; main()", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def config(tmp: Path, node: OpenSearchNode, protocols: list[str], extra: str = "") -> Path:
    lines = ["packetbeat.protocols:"]
    for name in protocols:
        ports = list(plugin_class(name).default_ports) + ([80] if name == "http" else [])
        lines += [f"  - type: {name}", f"    ports: {sorted(set(ports))}"]
    lines += [
        "output.elasticsearch:",
        f'  hosts: ["{node.host}"]',
        "logging.to_files: false",
        f"path.data: {tmp / 'data'}",
        extra,
    ]
    p = tmp / "wirebeat.yml"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture(scope="module")
def replayed(opensearch: OpenSearchNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``setup --index-management`` then every capture of every available protocol."""
    tmp = tmp_path_factory.mktemp("replay")
    protos = [p for p in CAPTURES if p in available()]
    cfg = config(tmp, opensearch, protos)
    setup = wirebeat("setup", "--index-management", "-c", str(cfg), cwd=tmp)
    assert setup.returncode == 0, setup.stderr
    expected: dict[str, int] = {}
    for proto in protos:
        for name in CAPTURES[proto]:
            pcap = shared_pcap(name)
            run = wirebeat("-I", str(pcap), "-t", "-c", str(cfg), cwd=tmp)
            assert run.returncode == 0, run.stderr[-2000:]
            ports = {
                p: {"ports": sorted(set(plugin_class(p).default_ports) | ({80} if p == "http" else set()))}
                for p in protos
            }
            expected[name] = len(decode_file(pcap, ports))
    opensearch.request("POST", f"/{DATA_STREAM}/_refresh")
    return {"setup": setup, "expected": expected, "protocols": protos}


def test_setup_reports_opensearch_and_no_ilm(replayed: dict[str, Any], opensearch: OpenSearchNode) -> None:
    out = replayed["setup"].stdout
    assert "Connected to OpenSearch 2.19" in out
    assert "has no ILM" in out
    assert f"Index template {DATA_STREAM} loaded for {DATA_STREAM}* (data stream)." in out
    tpl = opensearch.request("GET", f"/_index_template/{DATA_STREAM}")["index_templates"][0]["index_template"]
    assert tpl["index_patterns"] == [f"{DATA_STREAM}*"]
    assert tpl["priority"] == 150
    assert "data_stream" in tpl
    assert "lifecycle" not in json.dumps(tpl["template"]["settings"])


def test_documents_land_in_the_data_stream(replayed: dict[str, Any], opensearch: OpenSearchNode) -> None:
    total = sum(replayed["expected"].values())
    assert total > 0
    count = opensearch.request("GET", f"/{DATA_STREAM}/_count")["count"]
    assert count == total
    ds = opensearch.request("GET", f"/_data_stream/{DATA_STREAM}")["data_streams"][0]
    assert ds["template"] == DATA_STREAM
    assert ds["indices"][0]["index_name"].startswith(f".ds-{DATA_STREAM}-")
    # Every document kept its envelope, and none carries @metadata.
    hits = opensearch.request("POST", f"/{DATA_STREAM}/_search", {"size": 1000})["hits"]["hits"]
    assert len(hits) == total
    for h in hits:
        src = h["_source"]
        assert "@metadata" not in src
        assert src["agent"]["type"] == "packetbeat" and src["agent"]["version"] == VERSION
        assert src["event"]["dataset"] == src["type"]


def test_mappings_come_from_the_template(replayed: dict[str, Any], opensearch: OpenSearchNode) -> None:
    fields = "source.ip,destination.ip,client.ip,related.ip,event.duration,source.bytes,@timestamp,event.start,url.full,status,method,type,http.request.headers.content-length,http.request.headers.content-type"
    resp = opensearch.request("GET", f"/{DATA_STREAM}/_mapping/field/{fields}")
    (mapping,) = resp.values()
    types = {name: next(iter(m["mapping"].values()))["type"] for name, m in mapping["mappings"].items()}
    assert types["source.ip"] == "ip"
    assert types["destination.ip"] == "ip"
    assert types["client.ip"] == "ip"
    assert types["related.ip"] == "ip"
    assert types["event.duration"] == "long"
    assert types["source.bytes"] == "long"
    assert types["@timestamp"] == "date"
    assert types["event.start"] == "date"
    assert types["url.full"] == "wildcard"
    assert types["status"] == "keyword"
    assert types["method"] == "keyword"
    assert types["type"] == "keyword"
    assert types["http.request.headers.content-type"] == "keyword"  # the headers' dynamic template


def test_top_methods_by_average_duration(replayed: dict[str, Any], opensearch: OpenSearchNode) -> None:
    """The talk's table: top 10 ``method`` ordered by average ``event.duration``."""
    query = {
        "size": 0,
        "aggs": {
            "methods": {
                "terms": {"field": "method", "size": 10, "order": {"avg_duration": "desc"}},
                "aggs": {"avg_duration": {"avg": {"field": "event.duration"}}},
            }
        },
    }
    buckets = opensearch.request("POST", f"/{DATA_STREAM}/_search", query)["aggregations"]["methods"][
        "buckets"
    ]
    hits = opensearch.request("POST", f"/{DATA_STREAM}/_search", {"size": 1000})["hits"]["hits"]
    durations: dict[str, list[int]] = defaultdict(list)
    for h in hits:
        src = h["_source"]
        if "method" in src and "duration" in src.get("event", {}):
            durations[src["method"]].append(src["event"]["duration"])
    assert durations, "no event has both method and event.duration"
    # Ties in the average are broken by the key, ascending (as the terms aggregation does).
    want = sorted(((sum(v) / len(v), k) for k, v in durations.items()), key=lambda x: (-x[0], x[1]))[:10]
    got = [(b["avg_duration"]["value"], b["key"]) for b in buckets if b["avg_duration"]["value"] is not None]
    assert [k for _, k in got] == [k for _, k in want]
    for (g, _), (w, _) in zip(got, want, strict=True):
        assert g == pytest.approx(w)


def test_duration_per_minute_split_by_type(replayed: dict[str, Any], opensearch: OpenSearchNode) -> None:
    """The talk's chart: sum of ``event.duration`` per minute, one series per ``type``."""
    query = {
        "size": 0,
        "aggs": {
            "per_minute": {
                "date_histogram": {"field": "@timestamp", "fixed_interval": "1m", "min_doc_count": 1},
                "aggs": {
                    "by_type": {
                        "terms": {"field": "type", "size": 10},
                        "aggs": {"duration": {"sum": {"field": "event.duration"}}},
                    }
                },
            }
        },
    }
    aggs = opensearch.request("POST", f"/{DATA_STREAM}/_search", query)["aggregations"]
    got = {
        (b["key_as_string"][:16], t["key"]): t["duration"]["value"]
        for b in aggs["per_minute"]["buckets"]
        for t in b["by_type"]["buckets"]
    }
    hits = opensearch.request("POST", f"/{DATA_STREAM}/_search", {"size": 1000})["hits"]["hits"]
    want: dict[tuple[str, str], float] = defaultdict(float)
    for h in hits:
        src = h["_source"]
        want[(src["@timestamp"][:16], src["type"])] += src.get("event", {}).get("duration", 0)
    assert got == pytest.approx(dict(want))
    assert {t for _, t in got} == set(replayed["protocols"]) & {t for _, t in want}


_KQL = re.compile(r"([\w.@-]+)\s*(:|>=|<=|>|<)\s*")


def _kql_to_lucene(q: str) -> str:
    """The simple KQL the bundled panels use, as query_string syntax."""
    q = _KQL.sub(lambda m: f"{m.group(1)}:" + ("" if m.group(2) == ":" else m.group(2)), q)
    return q.replace(" and ", " AND ").replace(" or ", " OR ")


def _agg_for(visual: dict[str, Any]) -> dict[str, Any]:
    state = json.loads(visual["attributes"]["visState"])
    metrics = {}
    for a in state["aggs"]:
        if a["schema"] == "metric" and a["type"] != "count":
            body: dict[str, Any] = {"field": a["params"]["field"]}
            if a["type"] == "percentiles":
                body["percents"] = a["params"]["percents"]
            metrics[f"m{a['id']}"] = {a["type"]: body}
    inner: dict[str, Any] = metrics
    for a in reversed([a for a in state["aggs"] if a["schema"] != "metric"]):
        p = a["params"]
        if a["type"] == "date_histogram":
            interval = p["interval"] if p["interval"] != "auto" else "1h"
            body = {"date_histogram": {"field": p["field"], "fixed_interval": interval}}
        elif a["type"] == "terms":
            order = {"_count": "desc"} if p["orderBy"] in ("_count", "1") and not metrics else {}
            if p["orderBy"] == "_key":
                order = {"_key": "desc"}
            elif f"m{p['orderBy']}" in metrics:
                order = {f"m{p['orderBy']}": "desc"}
            body = {"terms": {"field": p["field"], "size": p["size"], **({"order": order} if order else {})}}
        elif a["type"] == "histogram":
            body = {"histogram": {"field": p["field"], "interval": p["interval"]}}
        elif a["type"] == "filters":
            body = {
                "filters": {
                    "filters": {
                        f["label"]: {"query_string": {"query": _kql_to_lucene(f["input"]["query"])}}
                        for f in p["filters"]
                    }
                }
            }
        else:
            raise AssertionError(f"unexpected bucket agg {a['type']}")
        # Like Kibana, every bucket level carries the metrics (a terms order may need them).
        sub = {**inner, **metrics}
        if sub:
            body["aggs"] = sub
        inner = {f"b{a['id']}": body}
    return inner


def test_every_visualization_query_runs(replayed: dict[str, Any], opensearch: OpenSearchNode) -> None:
    """Each bundled panel's aggregation runs against the template's mappings without error."""
    objects = saved_objects(load_fields().without_migration())
    ran = 0
    for o in objects:
        if o["type"] != "visualization" or json.loads(o["attributes"]["visState"])["type"] == "markdown":
            continue
        src = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        q = src["query"]["query"]
        body: dict[str, Any] = {"size": 0, "aggs": _agg_for(o)}
        if q:
            body["query"] = {"query_string": {"query": _kql_to_lucene(q)}}
        resp = opensearch.request("POST", f"/{DATA_STREAM}/_search", body)
        assert resp["_shards"]["failed"] == 0, (o["id"], resp)
        ran += 1
    assert ran >= 30


def _output(node: OpenSearchNode, **cfg: Any) -> tuple[ElasticsearchOutput, Counters]:
    stats = Counters()
    ctx = OutputContext(beat_name="t", version=VERSION, stats=stats, data_path=Path("."))
    return ElasticsearchOutput(ElasticsearchConfig(hosts=[node.host], **cfg), ctx), stats


def _event(i: int, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "@timestamp": "2024-05-01T10:00:00.000Z",
        "@metadata": {"beat": "packetbeat", "type": "_doc", "version": VERSION},
        "type": "http",
        "status": "OK",
        "event": {"duration": 1000 + i},
        "source": {"ip": "10.0.0.1", "port": 1000 + i},
    }
    e.update(over)
    return e


def test_mapping_conflicts_are_dropped_and_counted(
    replayed: dict[str, Any], opensearch: OpenSearchNode
) -> None:
    out, stats = _output(opensearch, target_index="wbconflicts-test")
    events = [
        _event(1),
        _event(2, source={"ip": "not an ip"}),
        _event(3, event={"duration": "slow"}),
        _event(4),
    ]
    opensearch.request(
        "PUT",
        "/wbconflicts-test",
        {
            "mappings": {
                "properties": {
                    "source": {"properties": {"ip": {"type": "ip"}}},
                    "event": {"properties": {"duration": {"type": "long"}}},
                }
            }
        },
    )
    acked = asyncio.run(out.publish(events))
    assert acked == 4
    assert stats["output.elasticsearch.events.not_indexable"] == 2
    assert stats["output.elasticsearch.events.acked"] == 2
    opensearch.request("POST", "/wbconflicts-test/_refresh")
    assert opensearch.request("GET", "/wbconflicts-test/_count")["count"] == 2


def test_data_stream_requires_create_and_timestamp(
    replayed: dict[str, Any], opensearch: OpenSearchNode
) -> None:
    """A document without @timestamp cannot enter a data stream: dropped, the rest indexed."""
    stream = f"{DATA_STREAM}-dstest"
    out, stats = _output(opensearch)
    events = [_event(1), _event(2), _event(3)]
    del events[1]["@timestamp"]
    for e in events:
        e["@metadata"]["raw_index"] = stream
    acked = asyncio.run(out.publish(events))
    assert acked == 3
    assert stats["output.elasticsearch.events.acked"] == 2
    assert stats["output.elasticsearch.events.not_indexable"] == 1
    opensearch.request("POST", f"/{stream}/_refresh")
    assert opensearch.request("GET", f"/{stream}/_count")["count"] == 2
    ds = opensearch.request("GET", f"/_data_stream/{stream}")["data_streams"][0]
    assert ds["template"] == DATA_STREAM


def test_legacy_template_and_plain_index(opensearch: OpenSearchNode, tmp_path: Path) -> None:
    """``setup.template.type: legacy`` and no data stream: _template, a plain index, same mappings."""
    cfg = config(
        tmp_path,
        opensearch,
        ["http"],
        "setup.template.name: wblegacy\nsetup.template.pattern: 'wblegacy-*'\nsetup.template.type: legacy\n"
        "setup.template.data_stream: false\noutput.elasticsearch.index: 'wblegacy-%{[agent.version]}'\n",
    )
    r = wirebeat("setup", "--index-management", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Legacy template wblegacy loaded for wblegacy-*." in r.stdout
    assert opensearch.request("GET", "/_template/wblegacy")["wblegacy"]["index_patterns"] == ["wblegacy-*"]
    run = wirebeat("-I", str(shared_pcap("http_post")), "-t", "-c", str(cfg), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    index = f"wblegacy-{VERSION}"
    opensearch.request("POST", f"/{index}/_refresh")
    assert opensearch.request("GET", f"/{index}/_count")["count"] >= 1
    m = opensearch.request("GET", f"/{index}/_mapping/field/source.ip")[index]["mappings"]
    assert m["source.ip"]["mapping"]["ip"]["type"] == "ip"


def test_rejected_template_is_one_clear_line(opensearch: OpenSearchNode, tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        opensearch,
        ["http"],
        "setup.template.name: wbbad\nsetup.template.pattern: 'wbbad-*'\n"
        "setup.template.settings.index.number_of_shards: 0\n",
    )
    r = wirebeat("setup", "--index-management", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("Exiting:")]
    assert len(lines) == 1, r.stderr
    assert "loading template wbbad" in lines[0] and "HTTP 400" in lines[0] and "number_of_shards" in lines[0]
    assert "Traceback" not in r.stderr


def test_opensearch_fixture_started_quickly(opensearch: OpenSearchNode) -> None:
    assert opensearch.started_in < 120
    info = opensearch.request("GET", "/")
    assert info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"].startswith("2.19")


def test_mapping_rejected_by_the_server_is_one_clear_line(opensearch: OpenSearchNode, tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        opensearch,
        ["http"],
        "setup.template.name: wbmap\nsetup.template.pattern: 'wbmap-*'\n"
        "setup.template.append_fields:\n  - name: wb.label\n    type: keyword\n"
        "    multi_fields:\n      - name: geo\n        type: no_such_type\n",
    )
    r = wirebeat("setup", "--index-management", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Exiting: loading template wbmap: HTTP 400:"), r.stderr
    assert "no_such_type" in lines[0]
    assert opensearch.request("GET", "/_index_template/wbmap", ok=(404,)) is not None
