"""``output.elasticsearch`` against a local bulk server: request format, per-document results,
the prefix acknowledgement, whole-request errors, and at-least-once through the pipeline."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocols.stats import Counters
from shipper.agent.settings import load_settings
from shipper.agent.version import VERSION
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import OutputContext, OutputError
from shipper.outputs.elasticsearch import ElasticsearchConfig, ElasticsearchOutput, IndexFormat
from shipper.pipeline.envelope import Envelope
from shipper.pipeline.publisher import Pipeline
from shipper.pipeline.queue import MemQueue
from tests.helpers import free_port
from tests.setup.fakehttp import FakeServer, Request, fake_server

JSON = {"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"}


def parse_bulk(body: bytes) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    lines = body.decode().splitlines()
    assert len(lines) % 2 == 0 and body.endswith(b"\n")
    out = []
    for i in range(0, len(lines), 2):
        action = json.loads(lines[i])
        ((op, meta),) = action.items()
        out.append((op, meta, json.loads(lines[i + 1])))
    return out


def bulk_server(
    decide: Callable[[int, dict[str, Any]], int],
    whole: Callable[[int], int] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Any:
    """``decide(request_no, doc) -> status`` per document; ``whole(request_no)`` for the request."""
    state = {"n": 0}
    lock = threading.Lock()

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        with lock:
            state["n"] += 1
            n = state["n"]
        if whole is not None:
            status = whole(n)
            if status != 200:
                return (
                    status,
                    JSON,
                    json.dumps({"error": {"type": "x", "reason": f"status {status}"}}).encode(),
                )
        items = []
        for op, meta, doc in parse_bulk(req.body):
            s = decide(n, doc)
            res: dict[str, Any] = {"_index": meta["_index"], "status": s}
            if s >= 300:
                res["error"] = {
                    "type": "mapper_parsing_exception" if s == 400 else "es_rejected_execution_exception",
                    "reason": f"doc {doc.get('n')} rejected",
                }
            items.append({op: res})
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return 200, JSON, json.dumps({"took": 1, "errors": errors, "items": items}).encode()

    return fake_server(handler, tls)


def output(srv: FakeServer | str, **cfg: Any) -> tuple[ElasticsearchOutput, Counters]:
    stats = Counters()
    ctx = OutputContext(beat_name="t", version=VERSION, stats=stats, data_path=Path("."))
    host = srv if isinstance(srv, str) else srv.host
    return ElasticsearchOutput(ElasticsearchConfig(hosts=[host], **cfg), ctx), stats


def event(n: int, **meta: Any) -> dict[str, Any]:
    return {
        "@timestamp": "2024-05-01T10:00:00.000Z",
        "@metadata": {"beat": "packetbeat", "type": "_doc", "version": VERSION, **meta},
        "type": "http",
        "n": n,
    }


def docs_seen(srv: FakeServer) -> list[int]:
    return [doc["n"] for r in srv.requests for _op, _m, doc in parse_bulk(r.body)]


def test_bulk_request_format() -> None:
    with bulk_server(lambda n, d: 201) as srv:
        out, stats = output(srv, pipeline="geoip", api_key="id1:secret", compression_level=6)
        events = [event(1), event(2, raw_index="custom-raw", _id="abc"), event(3, pipeline="other")]
        assert asyncio.run(out.publish(events)) == 3
    (req,) = srv.requests
    assert req.method == "POST" and req.route == "/_bulk"
    assert req.headers["content-type"] == "application/x-ndjson"
    assert req.headers["content-encoding"] == "gzip"
    assert req.headers["authorization"] == "ApiKey " + base64.b64encode(b"id1:secret").decode()
    (op1, m1, d1), (op2, m2, _d2), (_op3, m3, _d3) = parse_bulk(req.body)
    assert op1 == "create" and m1 == {"_index": f"packetbeat-{VERSION}", "pipeline": "geoip"}
    assert "@metadata" not in d1 and d1["n"] == 1 and d1["@timestamp"] == "2024-05-01T10:00:00.000Z"
    assert op2 == "create" and m2 == {"_index": "custom-raw", "_id": "abc", "pipeline": "geoip"}
    assert m3["pipeline"] == "other"
    assert stats["output.elasticsearch.events.acked"] == 3


def test_index_format_strings() -> None:
    e = event(1)
    e["agent"] = {"version": "8.17.0"}
    assert IndexFormat("%{[@metadata][beat]}-%{[agent.version]}")(e) == "packetbeat-8.17.0"
    assert IndexFormat("wb-%{[type]}-%{+yyyy.MM.dd}")(e) == "wb-http-2024.05.01"
    assert IndexFormat("Mixed-CASE")(e) == "mixed-case"
    with pytest.raises(KeyError):
        IndexFormat("%{[no.such]}")(e)


def test_unformattable_index_drops_that_event_only() -> None:
    with bulk_server(lambda n, d: 201) as srv:
        out, stats = output(srv, target_index="x-%{[missing]}-%{[type]}")
        events = [event(1), event(2)]
        events[1]["missing"] = "ok"
        assert asyncio.run(out.publish(events)) == 2
    assert docs_seen(srv) == [2]
    assert stats["output.elasticsearch.events.not_indexable"] == 1


def test_per_document_results_and_prefix_ack() -> None:
    first = {1: 201, 2: 429, 3: 400, 4: 201, 5: 409, 6: 503}
    with bulk_server(lambda n, d: first[d["n"]] if n == 1 else 201) as srv:
        out, stats = output(srv)
        events = [event(i) for i in range(1, 7)]
        # 1 indexed; 2 must be retried: only the prefix [1] is acknowledged.
        assert asyncio.run(out.publish(events)) == 1
        # The pipeline hands back 2..6: only 2 and 6 are sent again; 3 (dropped), 4 (indexed)
        # and 5 (duplicate) are acknowledged without another request.
        assert asyncio.run(out.publish(events[1:])) == 5
    assert docs_seen(srv) == [1, 2, 3, 4, 5, 6, 2, 6]
    assert stats["output.elasticsearch.events.not_indexable"] == 1
    assert stats["output.elasticsearch.events.retried"] == 2
    assert stats["output.elasticsearch.events.duplicates"] == 1
    assert stats["output.elasticsearch.events.acked"] == 2 + 2
    assert not out._done


def test_whole_request_errors_are_retriable_or_not() -> None:
    events = [event(1), event(2)]
    with bulk_server(lambda n, d: 201, whole=lambda n: 503) as srv:
        out, stats = output(srv)
        with pytest.raises(OutputError) as ei:
            asyncio.run(out.publish(events))
        assert ei.value.retriable and "HTTP 503" in str(ei.value)
    with bulk_server(lambda n, d: 201, whole=lambda n: 429) as srv:
        out, _ = output(srv)
        with pytest.raises(OutputError) as ei:
            asyncio.run(out.publish(events))
        assert ei.value.retriable
    with bulk_server(lambda n, d: 201, whole=lambda n: 401) as srv:
        out, _ = output(srv, username="u", password="bad")
        with pytest.raises(OutputError) as ei:
            asyncio.run(out.publish(events))
        assert not ei.value.retriable and "HTTP 401" in str(ei.value)
    out, stats = output(f"127.0.0.1:{free_port()}")
    with pytest.raises(OutputError) as ei:
        asyncio.run(out.publish(events))
    assert ei.value.retriable and "connection failed" in str(ei.value)
    assert stats["output.elasticsearch.connection_errors"] == 1


def test_request_too_large_is_split() -> None:
    sizes: list[int] = []

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        docs = parse_bulk(req.body)
        sizes.append(len(docs))
        if len(docs) > 2:
            return 413, JSON, b'{"error":"too large"}'
        items = [{"create": {"_index": "x", "status": 201}} for _ in docs]
        return 200, JSON, json.dumps({"errors": False, "items": items}).encode()

    with fake_server(handler) as srv:
        out, _ = output(srv)
        events = [event(i) for i in range(5)]
        assert asyncio.run(out.publish(events)) == 2
        assert out.batch_size == 2
    assert sizes == [5, 2]


def test_failover_to_the_next_host() -> None:
    with bulk_server(lambda n, d: 201) as srv:
        cfg_hosts = [f"127.0.0.1:{free_port()}", srv.host]
        stats = Counters()
        ctx = OutputContext(beat_name="t", version=VERSION, stats=stats, data_path=Path("."))
        out = ElasticsearchOutput(ElasticsearchConfig(hosts=cfg_hosts, worker=2), ctx)
        assert out.concurrency == 4
        assert asyncio.run(out.publish([event(1)])) == 1
        assert asyncio.run(out.publish([event(2)])) == 1
    assert docs_seen(srv) == [1, 2]


def test_config_from_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.yml"
    p.write_text(
        "output.elasticsearch:\n  hosts: ['https://es1:9200', 'es2']\n  index: 'wb-%{[agent.version]}'\n"
        "  api_key: 'a:b'\n  ssl.verification_mode: none\n  bulk_max_size: 50\n  worker: 2\n"
        "  pipeline: p\n  backoff.init: 2s\n"
    )
    settings, warnings = load_settings(str(p), required=True)
    cfg = settings.output["elasticsearch"]
    assert isinstance(cfg, ElasticsearchConfig)
    assert cfg.hosts == ["https://es1:9200", "es2"] and cfg.target_index == "wb-%{[agent.version]}"
    assert cfg.ssl.verification_mode == "none" and cfg.bulk_max_size == 50 and cfg.backoff.init == 2.0
    assert not warnings
    ctx = OutputContext(beat_name="t", version=VERSION, stats=Counters(), data_path=tmp_path)
    out = ElasticsearchOutput(cfg, ctx)
    assert out.client.urls == ["https://es1:9200", "http://es2:9200"]
    assert out.batch_size == 50 and out.concurrency == 4


def test_pipeline_delivers_everything_once_through_failures() -> None:
    """At-least-once end to end: 503s, a refused connection window, per-document 429s."""
    indexed: Counter[int] = Counter()
    lock = threading.Lock()

    def handler(req: Request) -> tuple[int, dict[str, str], bytes]:
        with lock:
            handler.calls += 1  # type: ignore[attr-defined]
            n = handler.calls  # type: ignore[attr-defined]
        if n in (1, 2):
            return 503, JSON, b'{"error":"unavailable"}'
        items = []
        for op, meta, doc in parse_bulk(req.body):
            status = 429 if (n == 3 and doc["source"]["port"] % 3 == 0) else 201
            if status == 201:
                with lock:
                    indexed[doc["source"]["port"]] += 1
            items.append({op: {"_index": meta["_index"], "status": status}})
        return 200, JSON, json.dumps({"errors": True, "items": items}).encode()

    handler.calls = 0  # type: ignore[attr-defined]
    with fake_server(handler) as srv:
        out, stats = output(srv, bulk_max_size=20, max_retries=10)
        queue = MemQueue(max_events=100, flush_min_events=1, flush_timeout=0.05, stats=stats)
        pipe = Pipeline(out, queue, Envelope(beat_name="t"), stats, backoff=Backoff(0.01, 0.05, jitter=False))
        pipe.start()
        for port in range(1, 61):
            pipe.publish(
                {
                    "@timestamp": 1_700_000_000_000_000_000 + port,
                    "type": "http",
                    "status": "OK",
                    "event": {},
                    "network": {"transport": "tcp", "protocol": "http"},
                    "source": {"ip": "10.0.0.1", "port": port},
                    "destination": {"ip": "10.0.0.2", "port": 80},
                }
            )
        assert pipe.close(30.0)
    assert sorted(indexed) == list(range(1, 61))
    assert set(indexed.values()) == {1}, "an event was indexed twice"
    assert stats["output.acked"] == 60
    assert stats["output.elasticsearch.events.retried"] > 0
    assert stats.get("queue.dropped_max_retries", 0) == 0
