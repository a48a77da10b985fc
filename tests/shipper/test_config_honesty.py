"""No config key is accepted and silently ignored: every key of Packetbeat 9.3's own
packetbeat.reference.yml and of the stock packetbeat.yml is either one wirebeat implements
or named by a warning (or refused with an error); ``output.elasticsearch.preset`` resolves
as in libbeat; an output's own ``queue`` takes precedence over the global one."""

from __future__ import annotations

import ast
import http.server
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from capture import CaptureFile
from shipper.agent.config import ConfigError, expand_dotted, set_path
from shipper.agent.settings import ES_PRESETS, build_settings, load_settings
from shipper.outputs.http import HttpClient
from tests.helpers import ROOT, beats_dir, need
from tests.shipper.config_keys import commented_settings, known_keys

KNOWN = known_keys()
#: What an output needs before any of its other keys can be loaded.
OUTPUT_BASE: dict[str, dict[str, Any]] = {
    "logstash": {"hosts": ["127.0.0.1:5044"]},
    "redis": {"hosts": ["127.0.0.1:6379"]},
    "kafka": {"hosts": ["127.0.0.1:9092"], "topic": "t"},
}


def packetbeat_reference() -> str:
    d = beats_dir()
    if d is None:
        need(
            "Packetbeat 9.3.0's packetbeat.reference.yml (scripts/build-packetbeat downloads the beats module)"
        )
    assert d is not None
    return (d / "packetbeat" / "packetbeat.reference.yml").read_text()


def _known(key: str) -> Any:
    """The schema field for ``key`` (or for the free mapping that holds it), or None."""
    if key in KNOWN:
        return KNOWN[key][0]
    for k, (f, _d) in KNOWN.items():
        if key.startswith(k + "."):
            return f
    return None


def tree_for(key: str, value: Any) -> dict[str, Any]:
    """The smallest config that sets ``key`` (protocol entries in the 8.x list form)."""
    parts = key.split(".")
    if parts[:2] == ["packetbeat", "protocols"] and len(parts) > 3:
        entry: dict[str, Any] = {"type": parts[2]}
        set_path(entry, ".".join(parts[3:]), value)
        return {"packetbeat": {"protocols": [entry]}}
    tree: dict[str, Any] = {}
    if parts[0] == "output" and len(parts) > 2:
        tree["output"] = {parts[1]: dict(OUTPUT_BASE.get(parts[1], {}))}
    set_path(tree, key, value)
    return expand_dotted(tree)


def named(key: str, messages: list[str]) -> bool:
    """A warning or error names ``key``, its section, or (protocols) its list entry."""
    parts = key.split(".")
    forms = [parts]
    if parts[:2] == ["packetbeat", "protocols"] and len(parts) > 3:
        forms.append(["packetbeat", "protocols", "0", *parts[3:]])
    candidates = {f"'{parts[0]}'"}
    for form in forms:
        candidates.add(".".join(form))
        for i in range(1, len(form)):  # a whole unknown (sub-)section (monitoring.elasticsearch ...)
            candidates.add(".".join(form[:i]) + " ")
    return any(c in m or m.endswith(c.strip()) for m in messages for c in candidates)


def silently_ignored(settings: list[tuple[str, str]]) -> list[str]:
    """The keys that load without a warning naming them although wirebeat's schema does
    not know them."""
    bad = []
    for key, text in settings:
        if any(other.startswith(key + ".") for other, _ in settings):
            continue  # a section header: its own keys are checked one by one
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            value = text
        try:
            _settings, warnings = build_settings(tree_for(key, value))
        except ConfigError as exc:
            # Refused: loud, not silent (whatever the value, the key is not dropped quietly).
            warnings = [str(exc)]
            if _known(key) is not None:
                continue
        field = _known(key)
        if field is not None and not field.metadata.get("ignored"):
            continue  # implemented (tests/shipper/test_config_honesty.py::test_every_field_is_read)
        if not named(key, warnings):
            bad.append(f"{key} -> {warnings}")
    return bad


def test_every_key_of_packetbeat_reference_yml_is_implemented_or_warned() -> None:
    settings = commented_settings(packetbeat_reference())
    assert len(settings) > 500
    assert silently_ignored(settings) == []


@pytest.mark.parametrize("name", ["packetbeat.yml", "packetbeat6.yml"])
def test_stock_packetbeat_yml_has_no_silently_ignored_key(name: str) -> None:
    """Packetbeat 9.3's shipped packetbeat.yml (and 6.x's), every setting in it, commented
    out or not."""
    text = (ROOT / "tests" / "data" / name).read_text()
    assert silently_ignored(commented_settings(text)) == []
    # And as a whole file, as users load it.
    _settings, warnings = load_settings(str(ROOT / "tests" / "data" / name), [], required=True)
    assert all("unknown config setting" not in w for w in warnings), warnings


def test_unimplemented_keys_warn_by_name() -> None:
    cases = {
        "logging.to_syslog": True,
        "logging.files.rotateonstartup": False,
        "setup.dashboards.always_kibana": True,
        "queue.disk.read_ahead": 64,
        "output.logstash.proxy_use_local_resolver": True,
        "packetbeat.protocols.http.interface.device": "eth0",
        "output.elasticsearch.kerberos.enabled": True,
        "monitoring.enabled": True,
    }
    for key, value in cases.items():
        _s, warnings = build_settings(tree_for(key, value))
        assert named(key, warnings), (key, warnings)


def test_kafka_partitioner_settings_of_another_partitioner_warn() -> None:
    kafka = {"hosts": ["127.0.0.1:9092"], "topic": "t"}
    _s, warnings = build_settings(
        {"output": {"kafka": {**kafka, "partition": {"round_robin": {"hash": ["a"], "group_events": 2}}}}}
    )
    assert warnings == [
        "config setting output.kafka.partition.round_robin.hash only applies under hash (ignored)"
    ]
    _s, warnings = build_settings(
        {"output": {"kafka": {**kafka, "partition": {"hash": {"group_events": 2}}}}}
    )
    assert warnings == [
        "config setting output.kafka.partition.hash.group_events only applies under random or round_robin (ignored)"
    ]
    _s, warnings = build_settings({"output": {"kafka": {**kafka, "partition": {"hash": {"hash": ["a"]}}}}})
    assert warnings == []


def _config_field_names() -> set[str]:
    return {f.name for f, _d in KNOWN.values() if not f.metadata.get("ignored")}


def test_every_field_is_read() -> None:
    """Each setting the schema accepts without a warning is read somewhere in the code
    (by attribute or by name): a field nobody reads is a key accepted and ignored."""
    read: set[str] = set()
    for pkg in ("shipper", "protocols", "capture"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                    read.add(node.attr)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    read.add(node.value)
    # Read by the loader itself, or checked by a validator that refuses any real use.
    by_loader = {"kerberos", "proxy_url", "processors", "fields", "tags", "enabled"}
    # sip.transport_protocol is validated; each event names the transport it really came
    # over (docs/differences.md, sip/transport-from-packet).
    by_loader.add("transport_protocol")
    unread = sorted(_config_field_names() - read - by_loader)
    assert unread == []


def test_poll_default_route_warns_only_for_default_route() -> None:
    _s, warnings = build_settings(
        {"packetbeat": {"interfaces": {"device": "any", "poll_default_route": "1m"}}}
    )
    assert warnings == []
    _s, warnings = build_settings(
        {"packetbeat": {"interfaces": {"device": "default_route", "poll_default_route": "1m"}}}
    )
    assert any("poll_default_route" in w and "not polled" in w for w in warnings)


# -- output.elasticsearch.preset ------------------------------------------------------------

#: libbeat 9.3's outputs/elasticsearch/config_presets.go, resolved.
LIBBEAT_PRESETS = {
    "balanced": (1600, 1, 3200, 1600, 10.0, 1, 3.0, 1.0, 60.0),
    "throughput": (1600, 4, 12800, 1600, 5.0, 1, 15.0, 1.0, 60.0),
    "scale": (1600, 1, 3200, 1600, 20.0, 1, 1.0, 5.0, 300.0),
    "latency": (50, 1, 4100, 2050, 1.0, 1, 60.0, 1.0, 60.0),
}


def resolved(preset: str, **extra: Any) -> tuple[tuple[Any, ...], list[str]]:
    body = {"hosts": ["127.0.0.1:9200"], "preset": preset, **extra}
    s, warnings = build_settings({"output": {"elasticsearch": body}})
    es = s.output["elasticsearch"]
    mem = s.queue.mem
    assert mem is not None
    return (
        es.bulk_max_size,
        es.worker,
        mem.events,
        mem.flush_min_events,
        mem.flush_timeout,
        es.compression_level,
        es.idle_connection_timeout,
        es.backoff.init,
        es.backoff.max,
    ), warnings


@pytest.mark.parametrize("preset", sorted(LIBBEAT_PRESETS))
def test_preset_values_are_libbeats(preset: str) -> None:
    values, warnings = resolved(preset)
    assert values == LIBBEAT_PRESETS[preset]
    assert warnings == []


def test_presets_match_libbeat_source() -> None:
    """The table above is the one in libbeat's source (when the beats module is here)."""
    d = beats_dir()
    if d is None:
        need("the beats module (libbeat's config_presets.go)")
    assert d is not None
    src = (d / "libbeat" / "outputs" / "elasticsearch" / "config_presets.go").read_text()
    for name, values in ES_PRESETS.items():
        if name == "custom":
            continue
        block = src.split(f"preset{name.capitalize()}: config.MustNewConfigFrom", 1)[1].split("}),", 1)[0]
        assert f'"bulk_max_size":              {values["bulk_max_size"]},' in block
        assert f'"worker":                     {values["worker"]},' in block
        assert f'"queue.mem.events":           {values["queue"]["mem"]["events"]},' in block


def test_preset_overrides_user_settings_with_a_warning() -> None:
    values, warnings = resolved("latency", bulk_max_size=5000, worker=3, max_retries=7)
    assert values[0] == 50 and values[1] == 1
    assert sorted(warnings) == [
        "performance preset 'latency' overrides user setting output.elasticsearch.bulk_max_size",
        "performance preset 'latency' overrides user setting output.elasticsearch.worker",
    ]
    s, _w = build_settings({"output": {"elasticsearch": {"preset": "latency", "max_retries": 7}}})
    assert s.output["elasticsearch"].max_retries == 7  # not a preset setting: kept


def test_preset_custom_keeps_user_settings_and_unknown_fails() -> None:
    s, warnings = build_settings({"output": {"elasticsearch": {"preset": "custom", "worker": 3}}})
    assert s.output["elasticsearch"].worker == 3 and warnings == [] and s.queue.mem is None
    with pytest.raises(ConfigError, match=r"output.elasticsearch.preset: unknown preset value 'fast'"):
        build_settings({"output": {"elasticsearch": {"preset": "fast"}}})


def test_preset_from_the_command_line() -> None:
    s, _w = load_settings(
        None, ["output.elasticsearch.hosts=[127.0.0.1:9200]", "output.elasticsearch.preset=throughput"]
    )
    assert s.output["elasticsearch"].worker == 4
    assert s.queue.mem is not None and s.queue.mem.events == 12800


def test_output_queue_takes_precedence_over_global_queue() -> None:
    s, warnings = build_settings(
        {
            "queue": {"mem": {"events": 64}},
            "output": {
                "logstash": {
                    "hosts": ["127.0.0.1:5044"],
                    # libbeat: flush.min_events (default 1600) may not exceed events
                    "queue": {"mem": {"events": 100, "flush.min_events": 10}},
                }
            },
        }
    )
    assert s.queue.mem is not None and s.queue.mem.events == 100
    assert warnings == [
        "output.logstash.queue takes precedence over the global queue settings: queue.* ignored"
    ]
    with pytest.raises(ConfigError, match=r"output.kafka.queue.mem.events"):
        build_settings(
            {
                "output": {
                    "kafka": {"hosts": ["127.0.0.1:9092"], "topic": "t", "queue": {"mem": {"events": 1}}}
                }
            }
        )


# -- idle_connection_timeout -------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[tuple[str, int]] = []

    def do_GET(self) -> None:
        type(self).peers.append(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("idle", "connections"), [(0.0, 1), (0.2, 2)])
def test_idle_connection_timeout(idle: float, connections: int) -> None:
    _Handler.peers = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HttpClient([f"127.0.0.1:{server.server_address[1]}"], idle_timeout=idle)
        client.request("GET", "/")
        client.request("GET", "/")  # well within the timeout: the same connection
        time.sleep(0.5)
        client.request("GET", "/")
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Handler.peers) == 3
    assert _Handler.peers[0] == _Handler.peers[1]
    assert len(set(_Handler.peers)) == connections


def test_reference_keys_cover_the_preset_keys() -> None:
    assert {"output.elasticsearch.preset", "output.elasticsearch.idle_connection_timeout"} <= set(KNOWN)


def test_paths_exist() -> None:
    assert Path(ROOT / "tests" / "data" / "packetbeat.yml").exists()


# -- keys that were accepted without effect and now work ----------------------------------------


def _run(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shipper.agent.cli import main; main()", "-c", str(cfg), *args],
        cwd=cfg.parent,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dumpfile_key_writes_what_was_read(tmp_path: Path) -> None:
    cfg = tmp_path / "wirebeat.yml"
    cfg.write_text(
        f"packetbeat.interfaces.dumpfile: {tmp_path / 'dump'}\noutput.discard: {{}}\nlogging.to_files: false\n"
    )
    r = _run(cfg, "-e", "-t", "-I", str(ROOT / "samples" / "sample.pcap"))
    assert r.returncode == 0, r.stderr
    (dump,) = tmp_path.glob("dump-*.pcap")
    assert len(list(CaptureFile(str(dump)))) == len(list(CaptureFile(str(ROOT / "samples" / "sample.pcap"))))


def test_log_files_path_and_permissions(tmp_path: Path) -> None:
    cfg = tmp_path / "wirebeat.yml"
    cfg.write_text(
        f"logging.files.path: {tmp_path / 'mylogs'}\nlogging.files.permissions: 0640\n"
        f"path.logs: {tmp_path / 'other'}\noutput.discard: {{}}\n"
    )
    r = _run(cfg, "-t", "-I", str(ROOT / "samples" / "sample.pcap"))
    assert r.returncode == 0, r.stderr
    (log,) = (tmp_path / "mylogs").glob("wirebeat-*.ndjson")
    assert "starting" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    assert not (tmp_path / "other").exists()
