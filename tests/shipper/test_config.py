"""Configuration loading: Packetbeat's packetbeat.yml (8.x list form and 6.x dict form)
works unchanged, dotted keys, -E overrides, ${VAR:default}, durations and sizes; unknown
keys are warnings, invalid values are errors naming the key."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from protocols import registry
from protocols.registry import available, plugin_class
from shipper.agent.config import ConfigError, parse_duration, parse_size
from shipper.agent.settings import PACKETBEAT_PROTOCOLS, Settings, load_settings
from tests.helpers import ROOT

DATA = ROOT / "tests" / "data"
PB8 = DATA / "packetbeat.yml"
PB6 = DATA / "packetbeat6.yml"

#: Ports of the shipped 8.x packetbeat.yml (tests/data/packetbeat.yml).
SHIPPED_PORTS = {
    "icmp": [],
    "amqp": [5672],
    "cassandra": [9042],
    "dhcpv4": [67, 68],
    "dns": [53],
    "http": [80, 8080, 8000, 5000, 8002],
    "memcache": [11211],
    "mysql": [3306, 3307],
    "pgsql": [5432],
    "redis": [6379],
    "thrift": [9090],
    "mongodb": [27017],
    "nfs": [2049],
    "tls": [443, 993, 995, 5223, 8443, 8883, 9243],
    "sip": [5060],
}
#: Packetbeat's stock processors that wirebeat accepts without implementing them.
PROCESSORS_WARNINGS = [
    "processors.1.add_cloud_metadata: processor 'add_cloud_metadata' is not supported by wirebeat "
    "(wirebeat does not query cloud provider metadata services); ignored",
    "processors.2.add_docker_metadata: processor 'add_docker_metadata' is not supported by wirebeat "
    "(wirebeat does not talk to the Docker daemon); ignored",
]


def load_text(tmp_path: Path, text: str, *overrides: str) -> tuple[Settings, list[str]]:
    path = tmp_path / "packetbeat.yml"
    path.write_text(textwrap.dedent(text))
    return load_settings(str(path), list(overrides), required=True)


def config_error(tmp_path: Path, text: str, *overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, *overrides)
    return info.value


def not_decoded_warning(name: str, where: str) -> str:
    return f"protocol {name!r} ({where}) is not decoded by this wirebeat build; ignored"


@pytest.fixture
def echoproto(monkeypatch: pytest.MonkeyPatch) -> str:
    """A second protocol (``echoproto``) registered for the duration of one test."""
    from tests.shipper import fakeproto

    monkeypatch.setitem(registry._BUILTIN_MODULES, fakeproto.NAME, fakeproto.__name__)
    monkeypatch.setitem(registry._classes, fakeproto.NAME, fakeproto.EchoPlugin)
    return fakeproto.NAME


# -- the shipped packetbeat.yml ------------------------------------------------------------


def test_packetbeat_8x_yml_loads_unchanged_with_warnings_only_for_what_is_unsupported() -> None:
    settings, warnings = load_settings(str(PB8), [], required=True)
    names = list(SHIPPED_PORTS)
    decoded = set(available())
    expected = [
        not_decoded_warning(n, f"packetbeat.protocols.{i}") for i, n in enumerate(names) if n not in decoded
    ]
    expected += PROCESSORS_WARNINGS
    assert sorted(warnings) == sorted(expected)
    assert not [w for w in warnings if "unknown config setting" in w]

    pb = settings.packetbeat
    assert set(pb.protocols) == {n for n in names if n in decoded}
    for name, cfg in pb.protocols.items():
        assert cfg.ports == SHIPPED_PORTS[name], name
        assert cfg.enabled
        assert isinstance(cfg, plugin_class(name).config_class)
    (iface,) = pb.interfaces
    assert iface.device == "any"
    assert iface.poll_default_route == 60.0
    assert iface.internal_networks == ["private"]
    assert pb.flows is not None and pb.flows.timeout == 30.0 and pb.flows.period == 10.0
    assert settings.output_name() == "console"  # both outputs are commented out
    assert settings.setup.template.settings.index["number_of_shards"] == 1
    assert settings.logging.level == "info"
    assert settings.timestamp.precision == "millisecond"
    assert [next(iter(p)) for p in settings.processors][1:] == [
        "add_cloud_metadata",
        "add_docker_metadata",
        "detect_mime_type",
        "detect_mime_type",
    ]


def test_packetbeat_6x_dict_form_yml_loads_unchanged() -> None:
    settings, warnings = load_settings(str(PB6), [], required=True)
    names = ["icmp", "amqp", "cassandra", "dns", "http", "memcache", "mysql", "pgsql", "redis"]
    names += ["thrift", "mongodb", "nfs", "tls"]
    decoded = set(available())
    expected = [not_decoded_warning(n, f"packetbeat.protocols.{n}") for n in names if n not in decoded]
    expected.append("config section 'xpack' is not supported by wirebeat (ignored)")
    # flows are disabled there: no warning about them.
    assert sorted(warnings) == sorted(expected)

    http = settings.packetbeat.protocols["http"]
    assert http.ports == [80, 8080, 8000, 5000, 8002]
    assert http.send_headers == ["user-agent", "cookie", "set-cookie"]  # type: ignore[attr-defined]
    assert http.split_cookie is True  # type: ignore[attr-defined]
    assert http.real_ip_header == "x-forwarded-for"  # type: ignore[attr-defined]
    assert http.hide_keywords == ["pass", "password", "passwd"]  # type: ignore[attr-defined]
    assert http.transaction_timeout == 10.0
    assert settings.packetbeat.flows is not None and not settings.packetbeat.flows.enabled
    (iface,) = settings.packetbeat.interfaces
    assert (iface.device, iface.type, iface.snaplen, iface.buffer_size_mb) == ("any", "af_packet", 65535, 100)
    assert settings.name == "tap-1"
    assert settings.tags == ["service-X", "web-tier"]
    assert settings.fields == {"env": "staging"}
    mem = settings.queue.mem
    assert mem is not None
    assert (mem.events, mem.flush_min_events, mem.flush_timeout) == (4096, 512, 1.0)
    assert settings.logging.files.name == "packetbeat"
    assert settings.logging.files.permissions == 0o644
    assert settings.output_name() == "console"


def test_8x_list_form_and_6x_dict_form_give_the_same_protocol_settings(tmp_path: Path) -> None:
    listed, _ = load_text(
        tmp_path,
        """
        packetbeat.protocols:
        - type: http
          ports: [80, 8080]
          send_all_headers: true
          transaction_timeout: 3s
        """,
    )
    mapped, _ = load_text(
        tmp_path,
        """
        packetbeat.protocols:
          http:
            ports: [80, 8080]
            send_all_headers: true
            transaction_timeout: 3s
        """,
    )
    assert listed.packetbeat.protocols == mapped.packetbeat.protocols
    assert listed.packetbeat.protocols["http"].transaction_timeout == 3.0


def test_legacy_top_level_protocols_are_read_with_a_warning(tmp_path: Path) -> None:
    settings, warnings = load_text(tmp_path, "protocols:\n  http:\n    ports: [8080]\n")
    assert settings.packetbeat.protocols["http"].ports == [8080]
    assert "top-level 'protocols' is the 1.x layout; read as packetbeat.protocols" in warnings


# -- loader mechanics ----------------------------------------------------------------------


def test_dotted_keys_and_nested_mappings_are_the_same_setting(tmp_path: Path) -> None:
    dotted, w1 = load_text(
        tmp_path,
        """
        packetbeat.interfaces.device: lo
        packetbeat.protocols:
        - type: http
          ports: [81]
        logging.level: debug
        logging.metrics.period: 5s
        queue.mem.events: 64
        queue.mem.flush.min_events: 8
        queue.mem.flush.timeout: 250ms
        output.file.path: /tmp/x
        """,
    )
    nested, w2 = load_text(
        tmp_path,
        """
        packetbeat:
          interfaces: {device: lo}
          protocols:
          - {type: http, ports: [81]}
        logging:
          level: debug
          metrics: {period: 5s}
        queue:
          mem:
            events: 64
            flush: {min_events: 8, timeout: 250ms}
        output:
          file: {path: /tmp/x}
        """,
    )
    assert dotted == nested
    assert w1 == w2 == []
    mem = dotted.queue.mem
    assert mem is not None and (mem.events, mem.flush_min_events, mem.flush_timeout) == (64, 8, 0.25)
    assert dotted.logging.metrics.period == 5.0
    assert dotted.output_name() == "file"


def test_E_overrides_take_yaml_values_and_reach_list_and_dict_protocol_forms(tmp_path: Path) -> None:
    s8, _ = load_settings(
        str(PB8),
        [
            "packetbeat.protocols.http.ports=[8080, 8081]",
            "output.file.path=/tmp/out",
            "output.file.number_of_files=3",
            "logging.level=debug",
            "timestamp.precision=nanosecond",
            "queue.mem.events=64",
            "queue.mem.flush.min_events=8",
            "packetbeat.interfaces.internal_networks=[10.0.0.0/8, loopback]",
            "name=probe-7",
        ],
        required=True,
    )
    assert s8.packetbeat.protocols["http"].ports == [8080, 8081]
    for name, cfg in s8.packetbeat.protocols.items():
        if name != "http":
            assert cfg.ports == SHIPPED_PORTS[name]
    assert s8.output_name() == "file"
    assert s8.output_config().path == "/tmp/out"
    assert s8.output_config().number_of_files == 3
    assert s8.logging.level == "debug"
    assert s8.timestamp.precision == "nanosecond"
    assert s8.queue.mem is not None and s8.queue.mem.events == 64
    assert s8.packetbeat.interfaces[0].internal_networks == ["10.0.0.0/8", "loopback"]
    assert s8.beat_name == "probe-7"
    assert s8.raw["output"]["file"]["path"] == "/tmp/out"

    s6, _ = load_settings(str(PB6), ["packetbeat.protocols.http.send_headers=[Host]"], required=True)
    assert s6.packetbeat.protocols["http"].send_headers == ["host"]  # type: ignore[attr-defined]
    assert s6.packetbeat.protocols["http"].ports == [80, 8080, 8000, 5000, 8002]


def test_E_override_without_a_config_file_adds_to_the_defaults() -> None:
    settings, _ = load_settings(None, ["packetbeat.protocols.http.ports=[9999]"])
    assert settings.packetbeat.protocols["http"].ports == [9999]
    assert settings.output_name() == "console"


def test_environment_variables_with_and_without_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """
    name: ${BEAT_NAME:tap-default}
    packetbeat.protocols:
    - type: http
      ports: ["${HTTP_PORT}", 8080]
    output.file.path: ${OUT_DIR:/var/lib}/events
    """
    monkeypatch.setenv("HTTP_PORT", "8888")
    monkeypatch.delenv("BEAT_NAME", raising=False)
    monkeypatch.delenv("OUT_DIR", raising=False)
    settings, _ = load_text(tmp_path, text)
    assert settings.name == "tap-default"
    assert settings.packetbeat.protocols["http"].ports == [8888, 8080]  # typed, not "8888"
    assert settings.output_config().path == "/var/lib/events"

    monkeypatch.setenv("BEAT_NAME", "edge-1")
    monkeypatch.setenv("OUT_DIR", "/data")
    settings, _ = load_text(tmp_path, text)
    assert settings.name == "edge-1"
    assert settings.output_config().path == "/data/events"

    monkeypatch.delenv("HTTP_PORT")
    err = config_error(tmp_path, text)
    assert "HTTP_PORT" in str(err)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("-1s", -1.0), (3, 3.0), ("2.5", 2.5)],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "10 parsecs", "", "1x", True])
def test_invalid_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), (512, 512), ("10KB", 10_000), ("10KiB", 10_240), ("10MiB", 10 * 1024**2), ("1GB", 10**9)],
)
def test_sizes(text: Any, size: int) -> None:
    assert parse_size(text) == size


def test_unknown_keys_are_warnings_naming_the_full_path(tmp_path: Path) -> None:
    settings, warnings = load_text(
        tmp_path,
        """
        colour: red
        packetbeat.protocols:
        - type: http
          ports: [80]
          sned_headers: [Host]
        packetbeat.interfaces.devise: eth0
        queue.mem.evnts: 10
        queue.mem.flush.min_event: 10
        output.file:
          path: /tmp/x
          rotate_every_mb: 5
        logging.files.rotate_every_kb: 5
        """,
    )
    assert sorted(warnings) == sorted(
        [
            "unknown config setting colour (ignored)",
            "unknown config setting packetbeat.protocols.0.sned_headers (ignored)",
            "unknown config setting packetbeat.interfaces.devise (ignored)",
            "unknown config setting queue.mem.evnts (ignored)",
            "unknown config setting queue.mem.flush.min_event (ignored)",
            "unknown config setting output.file.rotate_every_mb (ignored)",
            "unknown config setting logging.files.rotate_every_kb (ignored)",
        ]
    )
    # The known settings next to them still apply.
    assert settings.packetbeat.protocols["http"].ports == [80]
    assert settings.output_config().path == "/tmp/x"


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("timestamp.precision: second", "timestamp.precision", "millisecond, microsecond, nanosecond"),
        ("logging.level: loud", "logging.level", "must be one of"),
        ("packetbeat.protocols:\n- type: http\n  ports: [70000]", "packetbeat.protocols.0.ports", "70000"),
        (
            "packetbeat.protocols:\n- type: http\n  ports: [eighty]",
            "packetbeat.protocols.0.ports.0",
            "integer",
        ),
        (
            "packetbeat.protocols.http.transaction_timeout: soon",
            "packetbeat.protocols.http.transaction_timeout",
            "duration",
        ),
        (
            "packetbeat.protocols.http.send_all_headers: maybe",
            "packetbeat.protocols.http.send_all_headers",
            "true or false",
        ),
        ("packetbeat.protocols: 5", "packetbeat.protocols", "list of protocols"),
        ("packetbeat.protocols:\n- ports: [80]", "packetbeat.protocols.0", "needs a 'type'"),
        ("packetbeat.interfaces.device: [eth0]", "packetbeat.interfaces.device", "string"),
        ("packetbeat.interfaces.snaplen: big", "packetbeat.interfaces.snaplen", "integer"),
        (
            "packetbeat.interfaces.internal_networks: [privat]",
            "packetbeat.interfaces.internal_networks",
            "'privat'",
        ),
        (
            "packetbeat.interfaces.internal_networks: 10.0.0.300/8",
            "packetbeat.interfaces.internal_networks",
            "CIDR",
        ),
        ("packetbeat.interfaces.type: pfring", "packetbeat.interfaces.type", "pcap"),
        ("packetbeat.ignore_outgoing: sometimes", "packetbeat.ignore_outgoing", "true or false"),
        ("queue.mem.events: lots", "queue.mem.events", "integer"),
        ("queue.mem.flush.timeout: later", "queue.mem.flush.timeout", "duration"),
        ("queue: {mem: {}, disk: {}}", "queue", "either queue.mem or queue.disk"),
        ("output.file.rotate_every_kb: 0", "output.file.rotate_every_kb", "requires value >= 1"),
        ("output.file.number_of_files: many", "output.file.number_of_files", "integer"),
        ("output.console.pretty: [1]", "output.console.pretty", "true or false"),
        ("output: [console]", "output", "mapping"),
        ("output.pulsar.hosts: [k:9092]", "output.pulsar", "unknown output type"),
        ("output.kafka.hosts: [k:9092]", "output.kafka", "either 'topic' or 'topics' must be defined"),
        ("logging.files.rotateeverybytes: huge", "logging.files.rotateeverybytes", "size"),
        ("fields: [a, b]", "fields", "mapping"),
        ("packetbeat: 5", "packetbeat", "mapping"),
    ],
)
def test_invalid_values_are_errors_naming_the_key(
    tmp_path: Path, text: str, path: str, fragment: str
) -> None:
    err = config_error(tmp_path, text + "\n")
    assert err.path == path, str(err)
    # A broken rule on a value reads like go-ucfg's ("... accessing 'key'"), the rest "key: ...".
    assert str(err).startswith(f"{path}: ") or f" accessing '{path}' " in str(err), str(err)
    assert fragment in err.message or fragment in (err.got or "")


def test_unknown_protocol_type_is_an_error(tmp_path: Path) -> None:
    err = config_error(
        tmp_path, "packetbeat.protocols:\n- type: http\n  ports: [80]\n- type: gopher\n  ports: [70]\n"
    )
    assert err.path == "packetbeat.protocols.1"
    assert "unknown protocol type 'gopher'" in err.message


def test_packetbeat_protocols_this_build_does_not_decode_are_warnings(tmp_path: Path) -> None:
    missing = [p for p in PACKETBEAT_PROTOCOLS if p not in available()]
    text = "packetbeat.protocols:\n- type: http\n  ports: [80]\n"
    text += "".join(f"- type: {p}\n  ports: [{40000 + i}]\n" for i, p in enumerate(missing))
    settings, warnings = load_text(tmp_path, text)
    assert warnings == [
        not_decoded_warning(p, f"packetbeat.protocols.{i + 1}") for i, p in enumerate(missing)
    ]
    assert list(settings.packetbeat.protocols) == ["http"]


def test_the_same_protocol_twice_is_an_error(tmp_path: Path) -> None:
    err = config_error(
        tmp_path, "packetbeat.protocols:\n- type: http\n  ports: [80]\n- type: http\n  ports: [81]\n"
    )
    assert err.path == "packetbeat.protocols.1"
    assert "configured twice" in err.message


def test_a_port_claimed_by_two_protocols_is_an_error(tmp_path: Path, echoproto: str) -> None:
    text = f"packetbeat.protocols:\n- type: http\n  ports: [80, 7]\n- type: {echoproto}\n  ports: [7]\n"
    err = config_error(tmp_path, text)
    assert err.path == "packetbeat.protocols"
    assert err.message == f"port 7 is claimed by both http and {echoproto}"
    # A disabled protocol claims nothing.
    ok, _ = load_text(tmp_path, text + "  enabled: false\n")
    assert ok.packetbeat.protocols["http"].ports == [80, 7]


def test_the_same_device_twice_is_an_error(tmp_path: Path) -> None:
    err = config_error(tmp_path, "packetbeat.interfaces:\n- device: lo\n- device: lo\n")
    assert err.path == "packetbeat.interfaces"


# -- outputs, queue, logging, timestamp ------------------------------------------------------


def test_no_output_configured_means_console(tmp_path: Path) -> None:
    settings, _ = load_text(tmp_path, "packetbeat.protocols: [{type: http, ports: [80]}]\n")
    assert settings.output_name() == "console"
    assert settings.output == {}


def test_two_enabled_outputs_are_an_error_but_a_disabled_one_does_not_count(tmp_path: Path) -> None:
    err = config_error(tmp_path, "output.console: {}\noutput.file: {path: /tmp/x}\n")
    assert err.path == "output"
    assert "more than one output is enabled (console, file)" in err.message
    settings, _ = load_text(tmp_path, "output.console.enabled: false\noutput.file.path: /tmp/x\n")
    assert settings.output_name() == "file"


def test_output_file_settings(tmp_path: Path) -> None:
    settings, warnings = load_text(
        tmp_path,
        """
        output.file:
          path: /tmp/pb
          filename: pb
          rotate_every_kb: 5000
          number_of_files: 4
          permissions: 0640
          codec.json.pretty: true
        """,
    )
    cfg = settings.output_config()
    assert warnings == []
    assert (cfg.path, cfg.filename, cfg.rotate_every_kb, cfg.number_of_files) == ("/tmp/pb", "pb", 5000, 4)
    assert cfg.permissions == 0o640
    assert cfg.codec.json.pretty is True


def test_logging_settings(tmp_path: Path) -> None:
    settings, warnings = load_text(
        tmp_path,
        """
        logging.level: debug
        logging.selectors: [publish, http]
        logging.to_stderr: true
        logging.to_files: false
        logging.json: false
        logging.files:
          path: /var/log/pb
          name: packetbeat
          rotateeverybytes: 1MiB
          keepfiles: 3
        logging.metrics.enabled: false
        """,
    )
    lg = settings.logging
    assert warnings == []
    assert (lg.level, lg.selectors, lg.to_stderr, lg.to_files, lg.json) == (
        "debug",
        ["publish", "http"],
        True,
        False,
        False,
    )
    assert (lg.files.path, lg.files.name, lg.files.rotateeverybytes, lg.files.keepfiles) == (
        "/var/log/pb",
        "packetbeat",
        1024**2,
        3,
    )
    assert lg.metrics.enabled is False


@pytest.mark.parametrize("precision", ["millisecond", "microsecond", "nanosecond"])
def test_timestamp_precision(tmp_path: Path, precision: str) -> None:
    settings, _ = load_text(tmp_path, f"timestamp.precision: {precision}\n")
    assert settings.timestamp.precision == precision


def test_override_a_whole_protocol_in_the_list_form() -> None:
    settings, _ = load_settings(None, ["packetbeat.protocols.http={ports: [8080, 9000], send_request: true}"])
    http = settings.packetbeat.protocols["http"]
    assert http.ports == [8080, 9000] and http.send_request
    settings, _ = load_settings(None, ["packetbeat.protocols.http=false"])
    assert "http" not in settings.packetbeat.protocols or not settings.packetbeat.protocols["http"].enabled


def test_file_output_number_of_files_bounds() -> None:
    with pytest.raises(ConfigError, match=r"output\.file.*number_of_files"):
        load_settings(None, ["output.file.number_of_files=1"])
