"""The names agree (docs/naming.md): what an event says about itself (``agent.type``,
``@metadata.beat``, ``@metadata.version``), the index the bundled Logstash pipelines and
the Elasticsearch output write it to, the template and ILM policy ``setup`` installs for
that index, and the ``packetbeat-*`` data view the dashboards use."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from typing import Any

import pytest

from shipper.agent.version import VERSION
from shipper.outputs.elasticsearch import DEFAULT_INDEX
from tests.helpers import ROOT
from tests.shipper.shiprun import wirebeat

PIPELINES = sorted((ROOT / "logstash" / "pipeline").glob("*.conf"))


def sprintf(fmt: str, event: dict[str, Any]) -> str:
    """Logstash's ``%{[a][b]}`` field references (and libbeat's ``%{[a.b]}``), filled from
    ``event``; a missing field fails the test."""

    def field(m: re.Match[str]) -> str:
        path = re.findall(r"\[([^\]]+)\]", m[1])
        keys = [k for p in path for k in p.split(".")]
        value: Any = event
        for k in keys:
            assert isinstance(value, dict) and k in value, f"{m[0]} is not in the event"
            value = value[k]
        return str(value)

    return re.sub(r"%\{((?:\[[^\]]+\])+)\}", field, fmt)


def elasticsearch_outputs(conf: str) -> list[dict[str, str]]:
    """The settings of each ``elasticsearch { ... }`` block of a pipeline's output section."""
    out = []
    for block in re.finditer(r"elasticsearch\s*\{(.*?)\n\s*\}", conf.split("output {", 1)[1], re.S):
        out.append(dict(re.findall(r"(\w+)\s*=>\s*\"?([^\"\n]*)\"?", block[1])))
    return out


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("naming")
    out = tmp / "events"
    run = wirebeat("-t", "-I", ROOT / "samples" / "sample.pcap", "-E", f"output.file.path={out}", tmp=tmp)
    assert run.rc == 0, run
    (events_file,) = out.glob("*.ndjson")
    event = json.loads(events_file.read_text().splitlines()[0])
    setup = tmp / "setup"
    for what in ("template", "ilm-policy"):
        r = wirebeat("export", what, "--dir", setup, tmp=tmp)
        assert r.rc == 0, r
    (template_file,) = (setup / "template").glob("*.json")
    (policy_file,) = (setup / "policy").glob("*.json")
    data_view = json.loads(wirebeat("export", "index-pattern", tmp=tmp).stdout)
    dashboards = [json.loads(line) for line in wirebeat("export", "dashboard", tmp=tmp).stdout.splitlines()]
    return {
        "event": event,
        "template_name": template_file.stem,
        "template": json.loads(template_file.read_text()),
        "policy_name": policy_file.stem,
        "data_view": data_view,
        "dashboards": dashboards,
    }


def test_an_event_the_pipelines_the_template_and_the_dashboards_agree(named: dict[str, Any]) -> None:
    event = named["event"]
    meta = event["@metadata"]
    # What the event says about itself.
    assert event["agent"]["type"] == meta["beat"] == "packetbeat"
    assert event["agent"]["version"] == meta["version"] == VERSION
    index = f"packetbeat-{VERSION}"

    # Every Elasticsearch output of every bundled Logstash pipeline writes it there, as a
    # data stream may require (create), leaving templates to `wirebeat setup`.
    assert PIPELINES, "logstash/pipeline/*.conf"
    for conf_path in PIPELINES:
        conf = conf_path.read_text()
        outputs = elasticsearch_outputs(conf)
        assert outputs, conf_path.name
        for o in outputs:
            assert sprintf(o["index"], event) == index, (conf_path.name, o)
            assert o.get("action") == "create" and o.get("manage_template") == "false", (conf_path.name, o)
        # A pipeline that rebuilds @metadata when a codec lost it rebuilds the same values.
        for field, value in re.findall(r"\"\[@metadata\]\[(\w+)\]\"\s*=>\s*\"([^\"]*)\"", conf):
            assert sprintf(value, event) == meta[field], (conf_path.name, field, value)
    # The Redis pipeline reads the list the Redis output fills by default.
    redis_conf = (ROOT / "logstash" / "pipeline" / "redis-elasticsearch.conf").read_text()
    assert re.search(r"key => \"\$\{REDIS_KEY:packetbeat\}\"", redis_conf)

    # The Elasticsearch output's default index is the same.
    assert sprintf(DEFAULT_INDEX, event) == index

    # `setup` installs the template for that index (a data stream of that name) with the
    # ILM policy it installs.
    template = named["template"]
    assert named["template_name"] == index
    assert any(fnmatchcase(index, p) for p in template["index_patterns"]), template["index_patterns"]
    assert (
        template["template"]["settings"]["index"]["lifecycle"]["name"] == named["policy_name"] == "packetbeat"
    )

    # The data view and every dashboard's reference to it cover the index.
    view = named["data_view"]
    assert view["type"] == "index-pattern" and fnmatchcase(index, view["attributes"]["title"])
    refs = {
        r["id"]
        for obj in named["dashboards"]
        for r in obj.get("references", [])
        if r["type"] == "index-pattern"
    }
    assert refs == {view["id"]} == {"packetbeat-*"}


def test_a_custom_index_moves_everything_together() -> None:
    """``output.logstash.index`` (as in libbeat) renames @metadata.beat, hence the index the
    pipelines write to; ``agent.type`` stays ``packetbeat``."""
    from shipper.agent.beat import Beat
    from shipper.agent.settings import load_settings

    settings, _warnings = load_settings(
        None, ["output.logstash.hosts=['127.0.0.1:5044']", "output.logstash.index=netmon"]
    )
    env = Beat(settings).build_envelope()
    event = env.apply(
        {
            "@timestamp": 1_700_000_000_000_000_000,
            "type": "http",
            "source": {"ip": "10.0.0.1", "port": 40000},
            "destination": {"ip": "10.0.0.2", "port": 80},
        }
    )
    assert event["@metadata"]["beat"] == "netmon" and event["agent"]["type"] == "packetbeat"
    for conf_path in PIPELINES:
        for o in elasticsearch_outputs(conf_path.read_text()):
            assert sprintf(o["index"], event) == f"netmon-{VERSION}"
    assert sprintf(DEFAULT_INDEX, event) == f"netmon-{VERSION}"
