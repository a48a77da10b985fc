"""The index template and ILM policy generated from the field definitions; ``wirebeat export``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipper.agent.version import VERSION
from shipper.setup.fields import load_fields
from shipper.setup.ilm import PolicyError, default_policy, load_policy
from shipper.setup.template import Target, TemplateError, TemplateOptions, build_template, parse_version
from tests.helpers import ROOT

FIELDS = load_fields()


def _prop(mappings: dict[str, Any], path: str) -> dict[str, Any]:
    node: dict[str, Any] = mappings
    parts = path.split(".")
    for p in parts[:-1]:
        node = node["properties"][p]
    result: dict[str, Any] = node["properties"][parts[-1]]
    return result


def test_composable_data_stream_template_for_es8() -> None:
    t = build_template(Target.elasticsearch("8.17.0"), fields=FIELDS)
    assert t.api == "_index_template" and t.name == f"packetbeat-{VERSION}"
    assert t.path == f"/_index_template/packetbeat-{VERSION}"
    body = t.body
    assert body["index_patterns"] == [f"packetbeat-{VERSION}*"]
    assert body["data_stream"] == {}
    assert body["priority"] == 150
    settings = body["template"]["settings"]["index"]
    assert settings["lifecycle"] == {"name": "packetbeat"}
    assert settings["mapping"]["total_fields"]["limit"] == 10000
    assert (
        "url.full" in settings["query"]["default_field"]
        and "source.ip" not in settings["query"]["default_field"]
    )
    m = body["template"]["mappings"]
    assert m["date_detection"] is False
    assert _prop(m, "source.ip") == {"type": "ip"}
    assert _prop(m, "event.duration") == {"type": "long"}
    assert _prop(m, "@timestamp") == {"type": "date"}
    assert _prop(m, "status") == {"type": "keyword", "ignore_above": 1024}
    assert _prop(m, "url.full") == {
        "type": "wildcard",
        "ignore_above": 1024,
        "fields": {"text": {"type": "match_only_text"}},
    }
    assert _prop(m, "error.message") == {"type": "match_only_text"}
    assert _prop(m, "request") == {"type": "text", "norms": False}
    assert _prop(m, "http.request.headers") == {"type": "object"}
    dyn = {next(iter(d)): next(iter(d.values())) for d in m["dynamic_templates"]}
    assert dyn["http.request.headers"] == {
        "path_match": "http.request.headers.*",
        "match_mapping_type": "string",
        "mapping": {"type": "keyword", "ignore_above": 1024},
    }
    assert list(dyn)[-1] == "strings_as_keyword"
    # Migration aliases only on request.
    assert "bytes_in" not in m["properties"]
    with_aliases = build_template(Target.elasticsearch(), TemplateOptions(migration=True), FIELDS).body
    assert _prop(with_aliases["template"]["mappings"], "bytes_in") == {
        "type": "alias",
        "path": "source.bytes",
    }
    assert _prop(with_aliases["template"]["mappings"], "http.response.code") == {
        "type": "alias",
        "path": "http.response.status_code",
    }


def test_every_defined_field_is_mapped() -> None:
    m = build_template(Target.elasticsearch(), TemplateOptions(migration=True), FIELDS).body["template"][
        "mappings"
    ]
    for f in FIELDS:
        mapped = _prop(m, f.path)
        assert mapped["type"] == f.type, f.path


def test_legacy_template_before_7_8() -> None:
    t = build_template(Target.elasticsearch("7.7.1"), fields=FIELDS)
    assert t.api == "_template" and t.legacy and not t.data_stream
    assert t.body["order"] == 1 and "data_stream" not in t.body and "priority" not in t.body
    idx = t.body["settings"]["index"]
    assert idx["lifecycle"] == {"name": "packetbeat", "rollover_alias": f"packetbeat-{VERSION}"}
    m = t.body["mappings"]
    assert _prop(m, "url.full")["type"] == "keyword"  # no wildcard before 7.9
    assert _prop(m, "error.message") == {"type": "text", "norms": False}  # match_only_text is 7.14+
    six = build_template(Target.elasticsearch("6.8.0"), fields=FIELDS).body
    assert list(six["mappings"]) == ["_doc"]
    with pytest.raises(TemplateError):
        build_template(Target.elasticsearch("5.6.0"), fields=FIELDS)


def test_composable_without_data_streams_on_7_8() -> None:
    t = build_template(Target.elasticsearch("7.8.0"), fields=FIELDS)
    assert t.api == "_index_template" and not t.data_stream and "data_stream" not in t.body
    assert t.body["template"]["settings"]["index"]["lifecycle"]["rollover_alias"] == f"packetbeat-{VERSION}"


def test_opensearch_template_has_no_ilm_and_aggregatable_wildcards() -> None:
    t = build_template(Target.opensearch("2.19.1"), fields=FIELDS)
    assert t.data_stream
    assert "lifecycle" not in t.body["template"]["settings"]["index"]
    assert _prop(t.body["template"]["mappings"], "url.path") == {
        "type": "wildcard",
        "ignore_above": 1024,
        "doc_values": True,
    }
    old = build_template(Target.opensearch("2.11.0"), fields=FIELDS).body["template"]["mappings"]
    assert _prop(old, "url.path")["type"] == "keyword"
    assert _prop(old, "error.message")["type"] == "text"


def test_options_name_pattern_noilm_and_settings() -> None:
    opts = TemplateOptions(
        name="custom-%{[agent.version]}",
        pattern="custom-*",
        ilm_policy=None,
        priority=200,
        index_settings={
            "number_of_shards": 3,
            "codec": "best_compression",
            "mapping.total_fields.limit": 500,
        },
    )
    t = build_template(Target.elasticsearch(), opts, FIELDS)
    assert (
        t.name == f"custom-{VERSION}"
        and t.body["index_patterns"] == ["custom-*"]
        and t.body["priority"] == 200
    )
    idx = t.body["template"]["settings"]["index"]
    assert "lifecycle" not in idx
    assert idx["number_of_shards"] == 3 and idx["codec"] == "best_compression"
    assert idx["mapping"]["total_fields"]["limit"] == 500


def test_version_parsing() -> None:
    assert parse_version("8.17.0-SNAPSHOT") == (8, 17, 0)
    assert parse_version("7.10") == (7, 10, 0)
    with pytest.raises(TemplateError):
        parse_version("latest")


def test_ilm_policy(tmp_path: Path) -> None:
    assert default_policy() == {
        "policy": {
            "phases": {"hot": {"actions": {"rollover": {"max_primary_shard_size": "50gb", "max_age": "30d"}}}}
        }
    }
    old = default_policy(Target.elasticsearch("7.10.2"))["policy"]["phases"]["hot"]["actions"]["rollover"]
    assert old == {"max_size": "50gb", "max_age": "30d"}
    f = tmp_path / "p.json"
    f.write_text('{"policy": {"phases": {"delete": {"min_age": "7d", "actions": {"delete": {}}}}}}')
    assert load_policy(str(f))["policy"]["phases"]["delete"]["min_age"] == "7d"
    f.write_text("{nope")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(str(f))


def wirebeat(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shipper.agent.cli import main; main()", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_export_template_and_policy(tmp_path: Path) -> None:
    r = wirebeat("export", "template", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["index_patterns"] == [f"packetbeat-{VERSION}*"] and body["data_stream"] == {}
    r = wirebeat("export", "template", "--es.version", "7.7.0", "--noilm", cwd=tmp_path)
    legacy = json.loads(r.stdout)
    assert legacy["order"] == 1 and "lifecycle" not in legacy["settings"]["index"]
    r = wirebeat(
        "export",
        "template",
        "-E",
        "setup.template.name=foo",
        "-E",
        "setup.template.pattern=foo-*",
        "--dir",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "template" / "foo.json").read_text())["index_patterns"] == ["foo-*"]
    r = wirebeat("export", "ilm-policy", cwd=tmp_path)
    rollover = json.loads(r.stdout)["policy"]["phases"]["hot"]["actions"]["rollover"]
    assert rollover == {"max_age": "30d", "max_primary_shard_size": "50gb"}
    r = wirebeat(
        "export", "ilm-policy", "-E", "setup.ilm.policy_name=mine", "--dir", str(tmp_path / "o"), cwd=tmp_path
    )
    assert (tmp_path / "o" / "policy" / "mine.json").exists()


def test_export_index_pattern_and_dashboards(tmp_path: Path) -> None:
    r = wirebeat("export", "index-pattern", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ip = json.loads(r.stdout)
    assert ip["type"] == "index-pattern" and ip["id"] == "packetbeat-*"
    assert ip["attributes"]["title"] == "packetbeat-*" and ip["attributes"]["timeFieldName"] == "@timestamp"
    formats = json.loads(ip["attributes"]["fieldFormatMap"])
    assert formats["source.bytes"] == {"id": "bytes"}
    assert formats["event.duration"]["params"]["inputFormat"] == "nanoseconds"
    r = wirebeat("export", "dashboard", "--id", "packetbeat-thrift-ecs", cwd=tmp_path)
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["type"] for o in objs].count("dashboard") == 1
    assert objs[-1]["attributes"]["title"] == "[Packetbeat] Thrift performance ECS"
    r = wirebeat("export", "dashboard", cwd=tmp_path)
    titles = {json.loads(line)["attributes"]["title"] for line in r.stdout.splitlines()}
    for name in (
        "Overview",
        "HTTP",
        "MySQL performance",
        "PostgreSQL performance",
        "Redis",
        "Thrift performance",
        "Flows",
    ):
        assert f"[Packetbeat] {name} ECS" in titles
    r = wirebeat("export", "dashboard", "--id", "nope", cwd=tmp_path)
    assert r.returncode == 1
    assert (
        r.stderr.strip().startswith("Exiting: no dashboard with id 'nope'")
        and len(r.stderr.splitlines()) == 1
    )
    r = wirebeat("export", "nonsense", cwd=tmp_path)
    assert r.returncode == 1 and "Exiting:" in r.stderr


def test_export_fields_reference(tmp_path: Path) -> None:
    r = wirebeat("export", "fields", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Exported fields")
    for f in load_fields():
        assert f"`{f.path}`" in r.stdout
