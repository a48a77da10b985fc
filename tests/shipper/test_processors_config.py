"""Processors from a real config, at every level, end to end: ``wirebeat -I`` on a shared
capture with global, per-protocol and flows processors (drop_event on a network condition,
drop_fields with a regexp, rename, add_tags with a condition, add_fields), the exact events
checked; ``wirebeat test config`` on a config with every processor, and on broken ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.agent.settings import load_settings
from shipper.agent.version import ECS_VERSION, VERSION
from tests.helpers import shared_pcap
from tests.shipper.shiprun import wirebeat

MULTI = """
name: probe-1
packetbeat.protocols:
- type: http
  ports: [80, 5000]
  tags: [web]
  processors:
    - rename:
        fields:
          - {from: http.response.status_code, to: http.status}
    - drop_fields:
        fields: [http.request.headers, http.response.headers, user_agent, '/^url\\.(scheme|port)$/']
        ignore_missing: true
    - add_tags:
        tags: [not-ok]
        when.range.http.status.gte: 300
packetbeat.flows:
  period: 1s
  processors:
    - add_tags: {tags: [flow-seen]}
    - drop_event.when.equals.flow.final: false
processors:
  - drop_event:
      when.network.source.ip: loopback
  - drop_fields:
      fields: [agent.ephemeral_id, agent.id, event.duration, "@metadata.version"]
      ignore_missing: true
  - add_tags: {tags: [global]}
  - add_fields: {target: site, fields: {name: lab}}
"""


def expected(
    ts: str, end: str, cbytes: int, sbytes: int, path: str, status: int, **extra: Any
) -> dict[str, Any]:
    ip_c, ip_s = "192.168.1.104", "192.168.1.110"
    phrase = {200: "ok", 304: "not modified", 404: "not found"}[status]
    ext = path.rsplit(".", 1)[1] if "." in path else None
    evt: dict[str, Any] = {
        "@metadata": {"beat": "packetbeat", "type": "_doc"},
        "@timestamp": ts,
        "agent": {
            "build": {"original": f"wirebeat {VERSION}"},
            "name": "probe-1",
            "type": "packetbeat",
            "version": VERSION,
        },
        "client": {"bytes": cbytes, "ip": ip_c, "port": 54742},
        "destination": {"bytes": sbytes, "ip": ip_s, "port": 80},
        "ecs": {"version": ECS_VERSION},
        "event": {
            "category": ["network"],
            "dataset": "http",
            "end": end,
            "kind": "event",
            "start": ts,
            "type": ["connection", "protocol"],
        },
        "host": {"name": "probe-1"},
        "http": {
            "request": {"bytes": cbytes, "method": "GET"},
            "response": {"bytes": sbytes, "status_phrase": phrase},
            "status": status,
            "version": "1.1",
        },
        "method": "GET",
        "network": {
            "bytes": cbytes + sbytes,
            "community_id": "1:mq/qOjB5HusPff1mY5rY4xUQy08=",
            "direction": "unknown",
            "protocol": "http",
            "transport": "tcp",
            "type": "ipv4",
        },
        "query": f"GET {path}",
        "related": {"ip": [ip_c, ip_s]},
        "server": {"bytes": sbytes, "ip": ip_s, "port": 80},
        "site": {"name": "lab"},
        "source": {"bytes": cbytes, "ip": ip_c, "port": 54742},
        "status": "OK" if status < 400 else "Error",
        "tags": ["web", "global"] if status < 300 else ["web", "not-ok", "global"],
        "type": "http",
        "url": {"domain": ip_s, "full": f"http://{ip_s}{path}", "path": path},
    }
    if ext:
        evt["url"]["extension"] = ext
    for k, v in extra.items():
        node = evt
        *parents, leaf = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return evt


def flow_event(
    fid: str, start: str, end: str, sport: int, spk: int, sb: int, dpk: int, db: int, cid: str
) -> dict[str, Any]:
    """A final flow report of http_minitwit after the flows' and the global processors."""
    return {
        "@metadata": {"beat": "packetbeat", "type": "_doc"},
        "@timestamp": "2013-07-22T16:29:41.347Z",
        "agent": {
            "build": {"original": f"wirebeat {VERSION}"},
            "name": "probe-1",
            "type": "packetbeat",
            "version": VERSION,
        },
        "destination": {"bytes": db, "ip": "192.168.1.110", "packets": dpk, "port": 80},
        "ecs": {"version": ECS_VERSION},
        "event": {
            "action": "network_flow",
            "category": ["network"],
            "dataset": "flow",
            "end": f"2013-07-22T16:29:{end}Z",
            "kind": "event",
            "start": f"2013-07-22T16:29:{start}Z",
            "type": ["connection", "end"],
        },
        "flow": {"final": True, "id": fid},
        "host": {"name": "probe-1"},
        "network": {
            "bytes": sb + db,
            "community_id": cid,
            "packets": spk + dpk,
            "transport": "tcp",
            "type": "ipv4",
        },
        "site": {"name": "lab"},
        "source": {"bytes": sb, "ip": "192.168.1.104", "packets": spk, "port": sport},
        "tags": ["flow-seen", "global"],
        "type": "flow",
    }


def test_multi_level_config_on_a_shared_capture(tmp_path: Path) -> None:
    cfg = tmp_path / "wb.yml"
    cfg.write_text(MULTI)
    run = wirebeat("-c", cfg, "-e", "-t", "-I", shared_pcap("http_minitwit"), tmp=tmp_path)
    assert run.rc == 0, run
    # The capture holds each request twice: through the 127.0.0.1:5000 proxy (dropped by
    # the global drop_event on a network condition) and on 192.168.1.110:80; then the
    # final reports of the three 192.168.1.x flows (flows processors, then global ones).
    assert run.events == [
        expected(
            "2013-07-22T16:29:39.645Z",
            "2013-07-22T16:29:39.653Z",
            364,
            1000,
            "/",
            200,
            **{"http.response.body": {"bytes": 795}},
        ),
        expected(
            "2013-07-22T16:29:41.163Z",
            "2013-07-22T16:29:41.166Z",
            471,
            234,
            "/static/style.css",
            304,
            **{"http.request.referrer": "http://192.168.1.110/", "related.hosts": ["http://192.168.1.110/"]},
        ),
        expected(
            "2013-07-22T16:29:41.330Z",
            "2013-07-22T16:29:41.332Z",
            289,
            396,
            "/favicon.ico",
            404,
            **{"http.response.body": {"bytes": 200}},
        ),
    ] + [
        flow_event(*f)
        for f in [
            (
                "EAz/////AP//////CAwAAAHAqAFowKgBbtbVUAABAAAAAAAAAA",
                "39.627",
                "41.347",
                54742,
                11,
                2612,
                9,
                3274,
                "1:mq/qOjB5HusPff1mY5rY4xUQy08=",
            ),
            (
                "EAz/////AP//////CAwAAAHAqAFowKgBbtfVUAACAAAAAAAAAA",
                "39.628",
                "41.150",
                54743,
                5,
                364,
                3,
                228,
                "1:BFDmIrlWCkVG6X9fdbIvDZQaZCw=",
            ),
            (
                "EAz/////AP//////CAwAAAHAqAFowKgBbtjVUAADAAAAAAAAAA",
                "39.629",
                "41.152",
                54744,
                5,
                364,
                3,
                228,
                "1:NR19U03kREZcCVrUUJhkOSRX/iI=",
            ),
        ]
    ]
    from shipper.agent.monitor import flatten

    metrics = flatten(next(r for r in run.logs if r["message"] == "Total metrics")["monitoring"]["metrics"])
    # 3 loopback transactions and 3 loopback flows (global drop_event), 4 intermediate flow
    # reports (flows' drop_event on flow.final: false).
    assert metrics["pipeline.publisher.filtered"] == 10


def test_flow_events_get_the_flows_processors(tmp_path: Path) -> None:
    """Flow events (``type: flow``) go through ``packetbeat.flows.processors``, then the
    global ones; transactions never do."""
    from shipper.agent.beat import Beat
    from shipper.pipeline.envelope import EventFiltered

    cfg = tmp_path / "wb.yml"
    cfg.write_text(MULTI + f"\npath.data: {tmp_path / 'data'}\n")
    settings, _ = load_settings(str(cfg), required=True)
    env = Beat(settings).build_envelope()

    def flow(final: bool) -> dict[str, Any]:
        return {
            "@timestamp": 1_374_510_579_645_000_000,
            "type": "flow",
            "event": {
                "kind": "event",
                "category": ["network_traffic"],
                "type": ["connection"],
                "action": "network_flow",
            },
            "flow": {"id": "abc", "final": final},
            "source": {"ip": "192.168.1.104", "port": 54742, "packets": 3, "bytes": 200},
            "destination": {"ip": "192.168.1.110", "port": 80, "packets": 2, "bytes": 900},
            "network": {"transport": "tcp", "type": "ipv4"},
        }

    out = env.apply(flow(True))
    assert out["tags"] == ["flow-seen", "global"]
    assert out["site"] == {"name": "lab"} and "id" not in out["agent"]
    with pytest.raises(EventFiltered):
        env.apply(flow(False))
    # A transaction is untouched by the flows chain.
    http = {
        "@timestamp": 1,
        "type": "http",
        "source": {"ip": "10.0.0.1", "port": 1},
        "destination": {"ip": "10.0.0.2", "port": 80},
        "network": {"transport": "tcp"},
    }
    assert env.apply(http)["tags"] == ["web", "global"]


EVERY = """
processors:
  - add_fields: {target: project, fields: {name: myproject, id: '574734885120952459'}}
  - add_labels: {labels: {number: 1, with.dots: test}}
  - add_tags: {tags: [web, production], target: environment}
  - add_host_metadata: {when.not.contains.tags: forwarded, netinfo.enabled: true, cache.ttl: 5m}
  - add_observer_metadata: {cache.ttl: 5m}
  - add_locale: {format: offset}
  - add_id: ~
  - add_network_direction: {source: source.ip, destination: destination.ip, target: network.direction, internal_networks: [private]}
  - community_id: ~
  - registered_domain: {field: dns.question.name, target_field: dns.question.registered_domain, ignore_missing: true, ignore_failure: true}
  - add_process_metadata: {match_pids: [process.pid], target: proc}
  - drop_event.when.network.destination.ip: ['10.0.0.0/8', loopback]
  - drop_fields: {fields: [a, '/^b\\.c/'], ignore_missing: true}
  - include_fields.when.has_fields: [only]
    include_fields.fields: [only]
  - rename: {fields: [{from: a, to: b}], ignore_missing: true, fail_on_error: false}
  - copy_fields: {fields: [{from: message, to: event.original}], ignore_missing: true, fail_on_error: false}
  - replace: {fields: [{field: file.path, pattern: /usr/, replacement: /usr/local/}], ignore_missing: true}
  - convert: {fields: [{from: src_port, to: source.port, type: integer}], ignore_missing: true, fail_on_error: false}
  - truncate_fields: {fields: [message], max_characters: 5, ignore_missing: true}
  - decode_json_fields: {fields: [json], target: ""}
  - decode_base64_field: {field: {from: b64, to: decoded}, ignore_missing: true}
  - decompress_gzip_field: {field: {from: gz, to: plain}, ignore_missing: true}
  - urldecode: {fields: [{from: url.original, to: url.decoded}], ignore_missing: true}
  - dissect: {tokenizer: '%{key1} %{key2|integer}', field: message, target_prefix: d, ignore_failure: true}
  - fingerprint: {fields: [source.ip, destination.ip], ignore_missing: true}
  - extract_array: {field: arr, mappings: {x: 0}, ignore_missing: true}
  - rate_limit: {limit: 10000/m}
  - translate_sid: {field: sid, account_name_target: user.name, ignore_missing: true, ignore_failure: true}
  - dns: {type: reverse, fields: {source.ip: source.domain}, nameservers: ['127.0.0.1'], timeout: 100ms}
  - script:
      lang: javascript
      source: >
        function process(event) { event.Tag("js"); }
  - detect_mime_type: {field: http.request.body.content, target: http.request.mime_type}
  - if.equals.type: http
    then: [{add_tags: {tags: [h]}}]
    else: [{add_tags: {tags: [o]}}]
  - drop_event:
      when:
        or:
          - equals: {http.response.status_code: 304}
          - contains: {url.path: admin}
          - regexp: {user_agent.original: '^curl'}
          - range: {event.duration.gte: 1000000000}
          - has_fields: [secret]
          - and: [{equals.type: dns}, {not.network.source.ip: private}]
  - add_cloud_metadata: ~
  - add_docker_metadata: ~
  - add_kubernetes_metadata: ~
"""


def test_test_config_accepts_every_processor(tmp_path: Path) -> None:
    cfg = tmp_path / "every.yml"
    cfg.write_text(EVERY)
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path)
    assert run.rc == 0, run
    assert run.stdout == "Config OK\n"
    warned = run.messages("warning")
    assert sorted(w.split(":")[0] for w in warned if w.startswith("processors")) == [
        "processors.33.add_cloud_metadata",
        "processors.34.add_docker_metadata",
        "processors.35.add_kubernetes_metadata",
    ]
    assert len(yaml.safe_load(EVERY)["processors"]) == 36


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            "processors:\n  - add_hots_metadata: ~",
            "Exiting: error loading config: processors.0.add_hots_metadata: the processor action add_hots_metadata does not exist.",
        ),
        (
            "processors:\n  - drop_event.when.regexp.url.path: '(admin'",
            "Exiting: error loading config: processors.0.drop_event.when.regexp.url.path: error parsing regexp '(admin'",
        ),
        (
            "processors:\n  - drop_event.when.equal.type: dns",
            "Exiting: error loading config: processors.0.drop_event.when: missing or invalid condition",
        ),
        (
            "packetbeat.protocols:\n- type: http\n  ports: [80]\n  processors:\n    - drop_fields.fields: ['/[/']",
            "Exiting: error loading config: packetbeat.protocols.0.processors.0.drop_fields.fields.0: wrong configuration in drop_fields[0]",
        ),
        (
            "packetbeat.flows:\n  processors:\n    - rename.fields: [{to: x}]",
            "Exiting: error loading config: packetbeat.flows.processors.0.rename.fields.0.from: missing required field accessing 'from'",
        ),
    ],
)
def test_test_config_names_a_broken_processor_in_one_line(tmp_path: Path, body: str, line: str) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(body + "\n")
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path)
    assert run.rc == 1, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(line), lines[0]


def test_host_is_only_its_name_unless_add_host_metadata(tmp_path: Path) -> None:
    """As in Packetbeat: ``host.name`` alone, the rest from ``add_host_metadata`` (which
    Packetbeat's stock packetbeat.yml configures)."""
    cfg = tmp_path / "wb.yml"
    cfg.write_text("name: probe-2\npacketbeat.protocols:\n- type: dns\n  ports: [53]\n")
    plain = wirebeat("-c", cfg, "-t", "-I", shared_pcap("dns_mx"), tmp=tmp_path)
    assert plain.rc == 0, plain
    (evt,) = plain.events
    assert evt["host"] == {"name": "probe-2"}
    cfg.write_text(
        cfg.read_text() + "processors:\n  - add_host_metadata: {when.not.contains.tags: forwarded}\n"
    )
    full = wirebeat("-c", cfg, "-t", "-I", shared_pcap("dns_mx"), tmp=tmp_path)
    (evt2,) = full.events
    assert {"hostname", "architecture", "os", "id", "containerized"} <= set(evt2["host"])
    assert evt2["agent"]["name"] == "probe-2"
    assert len(json.dumps(evt)) < 0.85 * len(json.dumps(evt2))


def test_shared_parts_are_copied_only_for_processors_that_may_change_them() -> None:
    from shipper.pipeline.envelope import Envelope
    from shipper.pipeline.processors import Context, Processing

    def env(cfg: str) -> Envelope:
        proc = Processing.build(yaml.safe_load(cfg), {}, Context())
        return Envelope(beat_name="b", agent_id="id-1", processing=proc)

    def evt() -> dict[str, Any]:
        return {
            "@timestamp": 1,
            "type": "dns",
            "source": {"ip": "10.0.0.1"},
            "destination": {"ip": "10.0.0.2"},
        }

    e = env("- add_fields: {target: agent, fields: {x: 1}}\n- add_tags: {target: ecs.t, tags: [a]}")
    one, two = e.apply(evt()), e.apply(evt())
    assert one["agent"]["x"] == 1 and "x" not in e.agent
    assert one["ecs"]["t"] == ["a"] and two["ecs"]["t"] == ["a"] and "t" not in e.ecs
    # A processor that may change anything (a script) gets copies of everything.
    e = env(
        '- script: {lang: javascript, source: \'function process(ev) { ev.Put("host.os", "x"); ev.Put("event.category", ["y"]); }\'}'
    )
    one = e.apply(evt())
    assert one["host"]["os"] == "x" and e.host == {"name": "b"}
    assert e.apply(evt())["event"]["category"] == ["y"]
    # Processors that touch none of them share them, as events without processors do.
    e = env("- add_tags: {tags: [a]}")
    one = e.apply(evt())
    assert one["agent"] is e.agent and one["host"] is e.host
