"""The configuration schema: ``packetbeat.yml``-compatible sections as attrs classes.

Every section's schema lives here except each output's own (``output.<name>``), which its
module in :mod:`shipper.outputs` declares as ``CONFIG`` and :func:`output_module` loads by
name. This module imports neither :mod:`shipper.outputs` nor :mod:`shipper.setup`
(``tests/shipper/test_layout.py`` holds it to that).
"""

from __future__ import annotations

import copy
import importlib
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import attrs

from protocols.common.config import ByteSize, Duration, ProtocolConfig, one_of
from protocols.flows import FlowConfig, FlowConfigError
from protocols.registry import ProtocolConfigError, available, plugin_class
from protocols.stats import Counters
from shipper.agent.config import (
    PATH_KIND,
    Builder,
    ConfigError,
    at_least,
    between,
    expand_dotted,
    expand_vars,
    greater_than,
    load_yaml,
    merge,
    parse_override,
    set_path,
)
from shipper.pipeline.envelope import parse_networks
from shipper.pipeline.processors import Context, compile_list

#: Protocols in Packetbeat's shipped yml that this build does not decode (yet).
PACKETBEAT_PROTOCOLS = [
    "icmp",
    "amqp",
    "cassandra",
    "dhcpv4",
    "dns",
    "http",
    "memcache",
    "mysql",
    "pgsql",
    "redis",
    "thrift",
    "mongodb",
    "nfs",
    "tls",
    "sip",
]


@attrs.frozen
class InterfaceSettings:
    device: str = "any"
    type: str = attrs.field(default="pcap", validator=one_of("pcap", "af_packet", "autodetect"))
    #: libpcap's largest snapshot length is 262144.
    snaplen: int = attrs.field(default=65535, validator=between(1, 262144))
    #: The capture ring (af_packet) or kernel buffer (pcap); at most 1 TiB.
    buffer_size_mb: int = attrs.field(default=24, validator=between(1, 1 << 20))
    with_vlans: bool = False
    bpf_filter: str = ""
    auto_promisc_mode: bool = True
    fanout_group: int | None = attrs.field(default=None, validator=between(0, 0xFFFF))
    internal_networks: list[str] = attrs.field(factory=list, validator=lambda _i, _a, v: parse_networks(v))
    poll_default_route: Duration = attrs.field(default=Duration(60.0), validator=at_least(0))
    metrics_interval: Duration = attrs.field(default=Duration(5.0), validator=greater_than(0))
    #: Set by ``-I``: read this capture file instead of sniffing.
    file: str = ""
    dumpfile: str = ""
    loop: int = attrs.field(default=1, validator=at_least(0))
    topspeed: bool = False
    one_at_a_time: bool = False
    ignore_outgoing: bool = False


@attrs.frozen
class TcpSettings:
    """wirebeat extension: bounds of the TCP layer."""

    max_connections: int = attrs.field(default=100_000, validator=at_least(1))
    reorder_window: int = attrs.field(default=64, validator=at_least(0))
    reorder_timeout: Duration = attrs.field(default=Duration(0.5), validator=at_least(0))
    reorder_buffer: ByteSize = attrs.field(default=ByteSize(1 << 20), validator=at_least(0))
    reorder_buffer_total: ByteSize = attrs.field(default=ByteSize(128 << 20), validator=at_least(0))


@attrs.frozen
class IpFragmentsSettings:
    """wirebeat extension: bounds of IPv4/IPv6 fragment reassembly. Datagrams still
    incomplete past any of them are dropped oldest first, and counted."""

    #: Memory the incomplete datagrams may hold: fragment bytes plus 192 bytes per
    #: fragment and 640 per datagram (a 100,000-byte datagram in 1480-byte fragments
    #: needs ~114 KB, hence the floor).
    max_bytes: ByteSize = attrs.field(default=ByteSize(32 << 20), validator=at_least(128 << 10))
    #: Incomplete datagrams held at once.
    max_datagrams: int = attrs.field(default=4096, validator=at_least(1))
    #: A datagram not complete this long after its first fragment (capture time) is dropped.
    timeout: Duration = attrs.field(default=Duration(30.0), validator=greater_than(0))


@attrs.frozen
class FlowsSettings:
    """``packetbeat.flows`` (enabled when the section exists)."""

    enabled: bool = True
    #: A flow idle this long (capture time) is reported ``final``; at least 1s.
    timeout: Duration = attrs.field(default=Duration(30.0), validator=greater_than(0))
    #: Report every flow this often; ``-1s`` (or 0): only when it ends. Else at least 1s.
    period: Duration = attrs.field(default=Duration(10.0), validator=at_least(-1))
    keep_null: bool = False
    index: str = ""
    enable_delta_flow_reports: bool = False
    #: Leave the MAC addresses out of the flow key (Packetbeat ``allow_mismatched_eth``).
    allow_mismatched_eth: bool = False
    fields: dict[str, Any] = attrs.field(factory=dict)
    fields_under_root: bool = False
    tags: list[str] = attrs.field(factory=list)
    #: The flow events' own processors (``type: flow``), run before the global ones
    #: (``Beat.build_processing``).
    processors: list[Any] = attrs.field(factory=list)
    #: wirebeat: most flows tracked at once; past it the oldest is reported and dropped.
    max_flows: int = attrs.field(default=100_000, validator=at_least(1))

    def flow_config(self) -> FlowConfig:
        """The flow table's config (raises FlowConfigError for Packetbeat's invalid timings)."""
        return FlowConfig.from_seconds(
            float(self.timeout),
            float(self.period),
            delta=self.enable_delta_flow_reports,
            allow_mismatched_eth=self.allow_mismatched_eth,
            max_flows=self.max_flows,
        )


@attrs.frozen
class MonitoredProcess:
    """``packetbeat.procs.monitored``: processes whose command line contains
    ``cmdline_grep`` are named ``process``."""

    process: str = ""
    cmdline_grep: str = ""


@attrs.frozen
class ProcsSettings:
    """``packetbeat.procs``: ``client.process``/``server.process`` from the local socket
    tables (live capture only; a no-op under ``-I``)."""

    enabled: bool = False
    monitored: list[MonitoredProcess] = attrs.field(factory=list)
    #: How long the details of a process are kept (Packetbeat: 30 s).
    refresh_process_info_every: Duration = attrs.field(default=Duration(30.0), validator=greater_than(0))
    #: Fewest seconds between two scans of /proc on a lookup miss.
    max_proc_read_freq: Duration = attrs.field(default=Duration(0.1), validator=at_least(0))
    #: How long a port → process mapping is trusted (Packetbeat: 10 s).
    refresh_pids_freq: Duration = attrs.field(default=Duration(10.0), validator=greater_than(0))


@attrs.frozen
class PacketbeatSettings:
    interfaces: list[InterfaceSettings] = attrs.field(factory=lambda: [InterfaceSettings()])
    protocols: dict[str, ProtocolConfig] = attrs.field(factory=dict)
    flows: FlowsSettings | None = None
    ignore_outgoing: bool = False
    shutdown_timeout: Duration = attrs.field(default=Duration(0.0), validator=at_least(0))
    tcp: TcpSettings = TcpSettings()
    ip_fragments: IpFragmentsSettings = IpFragmentsSettings()
    #: wirebeat extension: open the capture sockets as root, then drop to this user.
    run_as: str = ""
    procs: ProcsSettings = ProcsSettings()
    #: wirebeat extension: processes that decode (0: one per CPU; 1: the single-process path).
    workers: int = attrs.field(default=0, validator=between(0, 1024))


@attrs.frozen
class MemQueueSettings:
    #: libbeat's memqueue: ``events`` validate:"min=32", ``flush.min_events`` min=0.
    events: int = attrs.field(default=3200, validator=at_least(32))
    flush_min_events: int = attrs.field(
        default=1600, validator=at_least(0), metadata={"key": "flush.min_events"}
    )
    flush_timeout: Duration = attrs.field(
        default=Duration(10.0), validator=at_least(0), metadata={"key": "flush.timeout"}
    )

    def __attrs_post_init__(self) -> None:
        # libbeat's memqueue config Validate (Packetbeat refuses `queue.mem.events: 64` alone).
        if self.flush_min_events > self.events:
            raise ValueError(
                f"flush.min_events ({self.flush_min_events}) must not be more than events ({self.events})"
            )


@attrs.frozen
class DiskQueueSettings:
    path: str = attrs.field(default="", metadata={PATH_KIND: "dir"})
    max_size: ByteSize = attrs.field(default=ByteSize(10 * 1024**3), validator=greater_than(0))
    #: 0: ``max_size / 10``.
    segment_size: ByteSize = attrs.field(default=ByteSize(0), validator=at_least(0))
    # libbeat's tuning of its reader/writer goroutines and of retries after disk errors;
    # wirebeat's disk queue writes synchronously and logs a failed write (no retries).
    read_ahead: int = attrs.field(default=512, validator=at_least(1), metadata={"ignored": True})
    write_ahead: int = attrs.field(default=2048, validator=at_least(1), metadata={"ignored": True})
    retry_interval: Duration = attrs.field(
        default=Duration(1.0), validator=greater_than(0), metadata={"ignored": True}
    )
    max_retry_interval: Duration = attrs.field(
        default=Duration(30.0), validator=greater_than(0), metadata={"ignored": True}
    )


@attrs.frozen
class QueueSettings:
    mem: MemQueueSettings | None = None
    disk: DiskQueueSettings | None = None


@attrs.frozen
class LogFilesSettings:
    path: str = attrs.field(default="", metadata={PATH_KIND: "dir"})
    name: str = "wirebeat"
    rotateeverybytes: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=at_least(1))
    #: libbeat's file rotator keeps 2..1024 files.
    keepfiles: int = attrs.field(default=7, validator=between(2, 1024))
    permissions: int = attrs.field(default=0o600, validator=between(0, 0o777))
    interval: Duration = attrs.field(default=Duration(0.0), validator=at_least(0), metadata={"ignored": True})
    rotateonstartup: bool = attrs.field(default=True, metadata={"ignored": True})


@attrs.frozen
class LogMetricsSettings:
    enabled: bool = True
    period: Duration = attrs.field(default=Duration(30.0), validator=greater_than(0))


@attrs.frozen
class LoggingSettings:
    level: str = attrs.field(
        default="info", validator=one_of("debug", "info", "warning", "warn", "error", "critical")
    )
    selectors: list[str] = attrs.field(factory=list)
    to_stderr: bool = False
    to_files: bool = True
    to_syslog: bool = attrs.field(default=False, metadata={"ignored": True})
    json: bool = True
    files: LogFilesSettings = LogFilesSettings()
    metrics: LogMetricsSettings = LogMetricsSettings()


@attrs.frozen
class TimestampSettings:
    precision: str = attrs.field(
        default="millisecond", validator=one_of("millisecond", "microsecond", "nanosecond")
    )


@attrs.frozen
class HttpEndpointSettings:
    enabled: bool = False
    host: str = "localhost"
    #: 0: any free port.
    port: int = attrs.field(default=5066, validator=between(0, 65535))


@attrs.frozen
class PathSettings:
    home: str = ""
    config: str = ""
    data: str = attrs.field(default="", metadata={PATH_KIND: "dir"})
    logs: str = attrs.field(default="", metadata={PATH_KIND: "dir"})


@attrs.frozen
class TemplateJsonSettings:
    enabled: bool = False
    path: str = attrs.field(default="", metadata={PATH_KIND: "file"})
    name: str = ""
    data_stream: bool = False


@attrs.frozen
class TemplateIndexSettings:
    index: dict[str, Any] = attrs.field(factory=dict)
    source: dict[str, Any] = attrs.field(factory=dict, metadata={"key": "_source"})


@attrs.frozen
class TemplateSettings:
    """``setup.template.*`` (libbeat)."""

    enabled: bool = True
    name: str = "packetbeat-%{[agent.version]}"
    #: Default: the name followed by ``*``.
    pattern: str = ""
    overwrite: bool = False
    priority: int = attrs.field(default=150, validator=at_least(0))
    order: int = attrs.field(default=1, validator=at_least(0))
    #: ``index`` (composable) or ``legacy`` (``_template``); ``--es.version`` < 7.8 implies legacy.
    type: str = attrs.field(default="index", validator=one_of("index", "legacy"))
    #: wirebeat: install the composable template as a data stream (Packetbeat 8.x does).
    data_stream: bool = True
    fields: str = attrs.field(default="", metadata={PATH_KIND: "file"})
    append_fields: list[Any] = attrs.field(factory=list)
    settings: TemplateIndexSettings = TemplateIndexSettings()
    json: TemplateJsonSettings = TemplateJsonSettings()


@attrs.frozen
class IlmSettings:
    """``setup.ilm.*`` (libbeat 8.x)."""

    enabled: bool = True
    policy_name: str = "packetbeat"
    policy_file: str = attrs.field(default="", metadata={PATH_KIND: "file"})
    check_exists: bool = True
    overwrite: bool = False


@attrs.frozen
class DashboardsRetrySettings:
    enabled: bool = False
    interval: Duration = attrs.field(default=Duration(1.0), validator=greater_than(0))
    maximum: int = attrs.field(default=0, validator=at_least(0))


@attrs.frozen
class DashboardsSettings:
    """``setup.dashboards.*``: the bundled dashboards are always used (no directory/url/file)."""

    enabled: bool = False
    #: Index pattern the dashboards and the data view use (default ``packetbeat-*``).
    index: str = ""
    beat: str = "packetbeat"
    #: Dashboards always go through Kibana's API (as in libbeat 8.x).
    always_kibana: bool = attrs.field(default=False, metadata={"ignored": True})
    string_replacements: dict[str, str] = attrs.field(factory=dict)
    retry: DashboardsRetrySettings = DashboardsRetrySettings()
    directory: str = attrs.field(default="", metadata={"ignored": True})
    file: str = attrs.field(default="", metadata={"ignored": True})
    url: str = attrs.field(default="", metadata={"ignored": True})
    kibana_index: str = attrs.field(default="", metadata={"ignored": True})


#: The names ``ssl.supported_protocols`` accepts (libbeat's tlscommon names).
TLS_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def _protocols(_inst: Any, _attr: attrs.Attribute[Any], value: list[str]) -> None:
    for v in value:
        if v not in TLS_VERSIONS:
            raise ValueError(f"unsupported TLS version {v!r} (use {', '.join(TLS_VERSIONS)})")
    if not value:
        raise ValueError("supported_protocols must name at least one TLS version")


@attrs.frozen
class SslSettings:
    """libbeat's ``ssl.*`` client settings (tlscommon), as ``output.logstash.ssl``,
    ``output.elasticsearch.ssl`` and ``setup.kibana.ssl`` take them.

    Defined here, with the rest of the schema, so that ``setup.kibana.ssl`` needs no import
    of :mod:`shipper.outputs`; the outputs' TLS code
    (:func:`shipper.outputs.tlsconfig.client_context`) imports it from here and turns it
    into an :class:`ssl.SSLContext`.
    """

    #: None: on when any other ``ssl.*`` setting is given (libbeat enables TLS then too).
    enabled: bool | None = None
    #: Files or inline PEM text (checked when the config is loaded).
    certificate_authorities: list[str] = attrs.field(factory=list, metadata={"path_kind": "pem"})
    certificate: str = attrs.field(default="", metadata={"path_kind": "pem"})
    key: str = attrs.field(default="", metadata={"path_kind": "pem"})
    key_passphrase: str = ""
    #: full: chain and host name; strict: the same (Python never falls back to the CN);
    #: certificate: chain only; none: no verification (insecure).
    verification_mode: str = attrs.field(
        default="full", validator=one_of("full", "strict", "certificate", "none")
    )
    supported_protocols: list[str] = attrs.field(factory=lambda: ["TLSv1.2", "TLSv1.3"], validator=_protocols)
    cipher_suites: list[str] = attrs.field(factory=list)

    @property
    def active(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return bool(self.certificate_authorities or self.certificate or self.verification_mode != "full")


@attrs.frozen
class KibanaSpaceSettings:
    id: str = ""


@attrs.frozen
class KibanaSettings:
    """``setup.kibana.*``; credentials default to output.elasticsearch's."""

    host: str = "localhost:5601"
    protocol: str = attrs.field(default="http", validator=one_of("http", "https"))
    path: str = ""
    username: str = ""
    password: str = ""
    api_key: str = ""
    space: KibanaSpaceSettings = KibanaSpaceSettings()
    headers: dict[str, str] = attrs.field(factory=dict)
    ssl: SslSettings = SslSettings()
    timeout: Duration = attrs.field(default=Duration(90.0), validator=greater_than(0))


@attrs.frozen
class SetupSettings:
    template: TemplateSettings = TemplateSettings()
    ilm: IlmSettings = IlmSettings()
    dashboards: DashboardsSettings = DashboardsSettings()
    kibana: KibanaSettings = KibanaSettings()


@attrs.frozen
class Migration6to7Settings:
    enabled: bool = False


@attrs.frozen
class MigrationSettings:
    """``migration.6_to_7.enabled``: also install the old names as field aliases."""

    v6_to_7: Migration6to7Settings = attrs.field(factory=Migration6to7Settings, metadata={"key": "6_to_7"})


@attrs.frozen
class KeystoreSettings:
    """``keystore.path``: the secrets keystore (default ``${path.data}/wirebeat.keystore``)."""

    path: str = ""


@attrs.frozen
class Settings:
    name: str = ""
    tags: list[str] = attrs.field(factory=list)
    fields: dict[str, Any] = attrs.field(factory=dict)
    fields_under_root: bool = False
    packetbeat: PacketbeatSettings = PacketbeatSettings()
    #: Output name → its config instance (exactly one enabled).
    output: dict[str, Any] = attrs.field(factory=dict)
    queue: QueueSettings = QueueSettings()
    logging: LoggingSettings = LoggingSettings()
    timestamp: TimestampSettings = TimestampSettings()
    http: HttpEndpointSettings = HttpEndpointSettings()
    path: PathSettings = PathSettings()
    setup: SetupSettings = SetupSettings()
    migration: MigrationSettings = MigrationSettings()
    keystore: KeystoreSettings = KeystoreSettings()
    processors: list[Any] = attrs.field(factory=list)
    #: The merged raw tree (for ``export config``), not a setting.
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False, metadata={"internal": True})

    @property
    def beat_name(self) -> str:
        return self.name or socket.gethostname()

    def output_name(self) -> str:
        return next(iter(self.output)) if self.output else "console"

    def output_config(self) -> Any:
        return next(iter(self.output.values())) if self.output else None

    @property
    def data_path(self) -> Path:
        return Path(self.path.data or Path(self.path.home or ".") / "data")

    @property
    def logs_path(self) -> Path:
        return Path(self.path.logs or Path(self.path.home or ".") / "logs")


# -- special sections ------------------------------------------------------------------------


def _build_protocols(b: Builder, raw: Any, path: str) -> dict[str, ProtocolConfig]:
    """8.x list form (``- type: http``) or 6.x dict form (``http: {...}``)."""
    entries: list[tuple[str, dict[str, Any], str]] = []
    if raw is None:
        return {}
    if isinstance(raw, list):
        for i, e in enumerate(raw):
            if not isinstance(e, dict) or not isinstance(e.get("type"), str):
                raise ConfigError(f"{path}.{i}", "each protocol needs a 'type'")
            body = {k: v for k, v in e.items() if k != "type"}
            entries.append((e["type"], body, f"{path}.{i}"))
    elif isinstance(raw, dict):
        for name, body in raw.items():
            entries.append((str(name), body if isinstance(body, dict) else {}, f"{path}.{name}"))
    else:
        raise ConfigError(path, "expected a list of protocols (- type: http) or a mapping")
    known = set(available())
    out: dict[str, ProtocolConfig] = {}
    for name, body, sub in entries:
        if name not in known:
            if name in PACKETBEAT_PROTOCOLS:
                b.warnings.append(f"protocol {name!r} ({sub}) is not decoded by this wirebeat build; ignored")
                continue
            raise ConfigError(sub, f"unknown protocol type {name!r}")
        if name in out:
            raise ConfigError(sub, f"protocol {name!r} is configured twice")
        try:
            cls = plugin_class(name)
        except ProtocolConfigError as exc:
            raise ConfigError(sub, str(exc)) from None
        cfg = b.build(cls.config_class, body, sub)
        check_processors(b, cfg.processors, f"{sub}.processors")
        if cfg.enabled:
            # Build the plugin once now, so what only its constructor checks (a Thrift IDL
            # that does not parse ...) fails here, in `test config` too, not at run time.
            try:
                cls(cfg, Counters())
            except Exception as exc:
                raise ConfigError(sub, f"{name}: {exc}") from None
        out[name] = cfg
    # A port claimed by two protocols is a config error (checked here, not at capture time).
    seen: dict[tuple[str, int], str] = {}
    for name, cfg in out.items():
        if not cfg.enabled:
            continue
        for transport in plugin_class(name).transports:
            for port in cfg.ports:
                owner = seen.get((transport, port))
                if owner is not None:
                    raise ConfigError(f"{path}", f"port {port} is claimed by both {owner} and {name}")
                seen[(transport, port)] = name
    return out


def _build_interfaces(b: Builder, raw: Any, path: str) -> list[InterfaceSettings]:
    if raw is None:
        return [InterfaceSettings()]
    items = raw if isinstance(raw, list) else [raw]
    out = [
        b.build(InterfaceSettings, item, f"{path}.{i}" if isinstance(raw, list) else path)
        for i, item in enumerate(items)
    ]
    devices = [i.device for i in out]
    if len(set(devices)) != len(devices):
        raise ConfigError(path, "the same device is configured twice")
    return out


OUTPUT_MODULES = {
    "console": "shipper.outputs.console",
    "file": "shipper.outputs.file",
    "discard": "shipper.outputs.discard",
    "logstash": "shipper.outputs.logstash",
    "elasticsearch": "shipper.outputs.elasticsearch",
    "redis": "shipper.outputs.redis",
    "kafka": "shipper.outputs.kafka",
}


def output_module(name: str) -> Any:
    return importlib.import_module(OUTPUT_MODULES[name])


#: libbeat 8.x/9.x ``output.elasticsearch.preset`` (outputs/elasticsearch/config_presets.go):
#: the settings each preset sets, over the user's own.
ES_PRESETS: dict[str, dict[str, Any]] = {
    "custom": {},
    "balanced": {
        "bulk_max_size": 1600,
        "worker": 1,
        "queue": {"mem": {"events": 3200, "flush": {"min_events": 1600, "timeout": "10s"}}},
        "compression_level": 1,
        "idle_connection_timeout": "3s",
    },
    "throughput": {
        "bulk_max_size": 1600,
        "worker": 4,
        "queue": {"mem": {"events": 12800, "flush": {"min_events": 1600, "timeout": "5s"}}},
        "compression_level": 1,
        "idle_connection_timeout": "15s",
    },
    "scale": {
        "bulk_max_size": 1600,
        "worker": 1,
        "queue": {"mem": {"events": 3200, "flush": {"min_events": 1600, "timeout": "20s"}}},
        "compression_level": 1,
        "idle_connection_timeout": "1s",
        "backoff": {"init": "5s", "max": "300s"},
    },
    "latency": {
        "bulk_max_size": 50,
        "worker": 1,
        "queue": {"mem": {"events": 4100, "flush": {"min_events": 2050, "timeout": "1s"}}},
        "compression_level": 1,
        "idle_connection_timeout": "60s",
    },
}


def _flat_keys(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict) or not tree:
        return [prefix] if prefix else []
    return [k for key, v in tree.items() for k in _flat_keys(v, f"{prefix}.{key}" if prefix else str(key))]


def apply_preset(b: Builder, body: dict[str, Any], path: str) -> dict[str, Any]:
    """``output.elasticsearch.preset`` as libbeat applies it: the preset's values replace the
    user's (a warning names each one replaced); a preset that sets the queue replaces the
    whole output-level queue."""
    preset = body.get("preset")
    if preset in (None, ""):
        return body
    values = ES_PRESETS.get(str(preset))
    if values is None:
        raise ConfigError(
            f"{path}.preset", f"unknown preset value {preset!r} (use one of: {', '.join(ES_PRESETS)})"
        )
    preset_keys = set(_flat_keys(values))
    sets_queue = "queue" in values
    for key in _flat_keys(body):
        if (sets_queue and key.startswith("queue.")) or key in preset_keys:
            b.warnings.append(f"performance preset {preset!r} overrides user setting {path}.{key}")
    out = {k: v for k, v in body.items() if not (sets_queue and k == "queue")}
    return merge(out, {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()})


def _build_output(b: Builder, raw: Any, path: str) -> tuple[dict[str, Any], tuple[Any, str] | None]:
    """The enabled output's config, and its own ``queue`` section with its key path, if any
    (libbeat: an output's queue settings take precedence over the global ``queue``)."""
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping of output name to settings")
    enabled: dict[str, Any] = {}
    queue: tuple[Any, str] | None = None
    for name, body in raw.items():
        sub = f"{path}.{name}"
        if name not in OUTPUT_MODULES:
            raise ConfigError(sub, f"unknown output type {name!r} (known: {', '.join(OUTPUT_MODULES)})")
        if isinstance(body, dict) and body.get("enabled") is False:
            continue
        try:
            mod = output_module(name)
        except ImportError:
            raise ConfigError(sub, f"output {name!r} is not available in this build") from None
        if isinstance(body, dict):
            if name == "elasticsearch":
                body = apply_preset(b, body, sub)
            if "queue" in body:
                body = dict(body)
                queue = (body.pop("queue"), f"{sub}.queue")
        enabled[name] = b.build(mod.CONFIG, body, sub)
    if len(enabled) > 1:
        raise ConfigError(path, f"more than one output is enabled ({', '.join(enabled)}); enable exactly one")
    return enabled, queue


def make_builder() -> Builder:
    b = Builder()
    b.hooks[QueueSettings] = lambda b, raw, path: _queue_plain(b, raw, path)
    return b


def _queue_plain(b: Builder, raw: Any, path: str) -> QueueSettings:
    if raw is None:
        return QueueSettings()
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping")
    mem = raw.get("mem")
    disk = raw.get("disk")
    for k in raw:
        if k not in ("mem", "disk"):
            b.warnings.append(f"unknown config setting {path}.{k} (ignored)")
    if mem is not None and disk is not None:
        raise ConfigError(path, "configure either queue.mem or queue.disk, not both")
    return QueueSettings(
        mem=b.build(MemQueueSettings, mem, f"{path}.mem") if mem is not None else None,
        disk=b.build(DiskQueueSettings, disk, f"{path}.disk") if disk is not None else None,
    )


DEFAULT_CONFIG_NAMES = ("wirebeat.yml", "packetbeat.yml")


def default_tree() -> dict[str, Any]:
    """What a config file that says nothing gets: the shipped packetbeat.yml protocols."""
    protocols = []
    for name in available():
        cls = plugin_class(name)
        protocols.append({"type": name, "ports": list(cls.default_ports)})
    return {"packetbeat": {"protocols": protocols}}


class Sources:
    """Where each setting came from, for error messages: ``-E``, the config file, the
    defaults; and the ``${NAME}`` references resolved in it (keystore or environment)."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.flags: list[str] = []
        self.vars: dict[str, list[tuple[str, str]]] = {}
        #: The config as the file (or the defaults) had it, before -E.
        self.file_tree: Any = {}

    def _in_file(self, path: str) -> bool:
        node: Any = self.file_tree
        for part in path.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return False
        return True

    def _match(self, paths: Any, path: str) -> str | None:
        best = None
        for p in paths:
            if (path == p or path.startswith(f"{p}.")) and (best is None or len(p) > len(best)):
                best = p
        return best

    def describe(self, exc: ConfigError) -> None:
        if not exc.path:
            return
        base = self.file or "the defaults"
        if self._match(self.flags, exc.path) is not None:
            origin = "-E"
        elif any(p.startswith(f"{exc.path}.") for p in self.flags):
            # A section with settings from -E: and from the file, if it has the section.
            origin = f"-E and {base}" if self._in_file(exc.path) else "-E"
        else:
            origin = base
        key = self._match(self.vars, exc.path)
        if key is None:  # a value under the error's path came through ${...}
            key = next((p for p in self.vars if p.startswith(f"{exc.path}.")), None)
        if key is not None:
            refs = self.vars[key]
            what = {"keystore": "the keystore key", "environment": "the environment variable"}
            names = ", ".join(f"{what.get(where, where)} ${{{n}}}" for n, where in refs)
            origin = f"{names}, referenced in {origin}"
            exc.secret = any(where == "keystore" for _n, where in refs)
        exc.source = origin


def load_settings(
    path: str | None,
    overrides: list[str] | None = None,
    *,
    required: bool = False,
    base: dict[str, Any] | None = None,
    strict_perms: bool = True,
) -> tuple[Settings, list[str]]:
    """Load, merge and validate. Returns the settings and the warnings to log.

    ``${KEY}`` is looked up in the keystore (``keystore.path``, by default
    ``${path.data}/wirebeat.keystore``) first, then in the environment, as libbeat does.
    With ``strict_perms``, the config file and the keystore must belong to the user (or
    root) and not be writable by others (libbeat's ``strict.perms``)."""
    from shipper.agent.keystore import Keystore, KeystoreError, check_file_perms, keystore_path

    tree: dict[str, Any]
    file = path if path is not None and (required or Path(path).exists()) else None
    sources = Sources(os.path.abspath(file) if file else None)
    if file is not None:
        tree = load_yaml(file)
        if strict_perms:
            try:
                check_file_perms(file, exact=False)
            except KeystoreError as exc:
                raise ConfigError("", f"error loading config file: {exc}") from None
        tree = expand_dotted(tree)
    else:
        tree = default_tree()
    if base:
        tree = merge(expand_dotted(base), tree)
    sources.file_tree = copy.deepcopy(tree)
    try:
        for item in overrides or []:
            key, value = parse_override(item)
            sources.flags.append(
                set_path(tree, key, expand_dotted(value) if isinstance(value, dict) else value)
            )
        tree = expand_dotted(tree)
        raw = copy.deepcopy(tree)
        try:
            store = Keystore(keystore_path(tree), strict_perms=strict_perms)
        except KeystoreError as exc:
            raise ConfigError("", str(exc)) from None

        def resolve(name: str) -> tuple[str, str] | None:
            value = store.get(name)
            if value is not None:
                return value, "keystore"
            env = os.environ.get(name)
            return None if env is None else (env, "environment")

        tree = expand_vars(tree, resolve=resolve, used=sources.vars)
        global _config_dir
        pc = (tree.get("path") or {}).get("config") if isinstance(tree.get("path"), dict) else None
        _config_dir = str(pc) if pc else (str(Path(path).resolve().parent) if path else ".")
        try:
            settings, warnings = build_settings(tree)
        finally:
            _config_dir = "."
    except ConfigError as exc:
        sources.describe(exc)
        raise
    # `export config` prints the config as written: ${KEY} references, never their values.
    return attrs.evolve(settings, raw=raw), warnings


def build_settings(tree: dict[str, Any]) -> tuple[Settings, list[str]]:
    b = make_builder()
    tree = dict(tree)
    # Legacy 1.x layout: top-level protocols/interfaces.
    for legacy in ("protocols", "interfaces"):
        if legacy in tree and legacy not in tree.get("packetbeat", {}):
            tree.setdefault("packetbeat", {})[legacy] = tree.pop(legacy)
            b.warnings.append(f"top-level {legacy!r} is the 1.x layout; read as packetbeat.{legacy}")
    pb_raw = tree.get("packetbeat") or {}
    if not isinstance(pb_raw, dict):
        raise ConfigError("packetbeat", "expected a mapping")
    pb_raw = dict(pb_raw)
    protocols = _build_protocols(b, pb_raw.pop("protocols", None), "packetbeat.protocols")
    pb_raw_interfaces = pb_raw.pop("interfaces", None)
    interfaces = _build_interfaces(b, pb_raw_interfaces, "packetbeat.interfaces")
    flows_raw = pb_raw.pop("flows", None)
    flows = b.build(FlowsSettings, flows_raw, "packetbeat.flows") if flows_raw is not None else None
    if flows is not None and flows.enabled:
        try:
            flows.flow_config()
        except FlowConfigError as exc:
            raise ConfigError("packetbeat.flows", str(exc)) from None
    pb = b.build(PacketbeatSettings, pb_raw, "packetbeat")
    pb = attrs.evolve(pb, protocols=protocols, interfaces=interfaces, flows=flows)
    rest = {k: v for k, v in tree.items() if k not in ("packetbeat", "output")}
    output, output_queue = _build_output(b, tree.get("output"), "output")
    if output_queue is not None:
        if rest.get("queue"):
            b.warnings.append(
                f"{output_queue[1]} takes precedence over the global queue settings: queue.* ignored"
            )
        rest["queue"] = None
    raw_ifaces = pb_raw_interfaces if isinstance(pb_raw_interfaces, list) else [pb_raw_interfaces]
    for iface, raw_iface in zip(interfaces, raw_ifaces, strict=False):
        given = isinstance(raw_iface, dict) and "poll_default_route" in raw_iface
        if given and iface.device.startswith("default_route"):
            b.warnings.append(
                "packetbeat.interfaces.poll_default_route: the default route's device is resolved "
                "once at start, not polled (restart wirebeat after a route change)"
            )
    for section in ("monitoring", "xpack", "cloud", "seccomp", "features", "max_procs", "ilm"):
        if section in rest:
            rest.pop(section)
            b.warnings.append(f"config section {section!r} is not supported by wirebeat (ignored)")
    settings = b.build(Settings, rest, "")
    if output_queue is not None:
        settings = attrs.evolve(settings, queue=_queue_plain(b, output_queue[0], output_queue[1]))
    settings = attrs.evolve(settings, packetbeat=pb, output=output, raw=tree)
    check_processors(b, settings.processors, "processors")
    if flows is not None:
        check_processors(b, flows.processors, "packetbeat.flows.processors")
    return settings, b.warnings


def processor_context(settings: Settings | None = None, *, check_only: bool = False, **kw: Any) -> Context:
    config_dir = settings.path.config if settings is not None and settings.path.config else "."
    return Context(
        beat_name=settings.beat_name if settings is not None else "",
        check_only=check_only,
        config_dir=config_dir,
        **kw,
    )


def check_processors(b: Builder, cfgs: list[Any], where: str) -> None:
    """Compile a processors list once at load time, so that ``test config`` (and ``run``)
    fail on an unknown processor, a bad option, condition or regexp, naming its key path."""
    if not cfgs:
        return
    ctx = Context(check_only=True, warn=b.warnings.append, config_dir=_config_dir)
    compile_list(cfgs, where, ctx, group=True)


#: ``path.config`` (or the config file's directory) while a config is being loaded.
_config_dir = "."
