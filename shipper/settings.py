"""The configuration schema: ``packetbeat.yml``-compatible sections as attrs classes."""

from __future__ import annotations

import importlib
import socket
from pathlib import Path
from typing import Any

import attrs

from protocols.common.config import ByteSize, Duration, ProtocolConfig, one_of
from protocols.flows import FlowConfig, FlowConfigError
from protocols.registry import ProtocolConfigError, available, plugin_class
from shipper.config import (
    Builder,
    ConfigError,
    expand_dotted,
    expand_vars,
    load_yaml,
    merge,
    parse_override,
    set_path,
)
from shipper.envelope import parse_networks
from shipper.setup.http import SslSettings

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
    snaplen: int = 65535
    buffer_size_mb: int = 24
    with_vlans: bool = False
    bpf_filter: str = ""
    auto_promisc_mode: bool = True
    fanout_group: int | None = None
    internal_networks: list[str] = attrs.field(factory=list, validator=lambda _i, _a, v: parse_networks(v))
    poll_default_route: Duration = Duration(60.0)
    metrics_interval: Duration = Duration(5.0)
    #: Set by ``-I``: read this capture file instead of sniffing.
    file: str = ""
    dumpfile: str = ""
    loop: int = 1
    topspeed: bool = False
    one_at_a_time: bool = False
    ignore_outgoing: bool = False


@attrs.frozen
class TcpSettings:
    """wirebeat extension: bounds of the TCP layer."""

    max_connections: int = 100_000
    reorder_window: int = 64
    reorder_timeout: Duration = Duration(0.5)
    reorder_buffer: ByteSize = ByteSize(1 << 20)


@attrs.frozen
class FlowsSettings:
    """``packetbeat.flows`` (enabled when the section exists)."""

    enabled: bool = True
    #: A flow idle this long (capture time) is reported ``final``; at least 1s.
    timeout: Duration = Duration(30.0)
    #: Report every flow this often; ``-1s`` (or 0): only when it ends. Else at least 1s.
    period: Duration = Duration(10.0)
    keep_null: bool = False
    index: str = ""
    enable_delta_flow_reports: bool = False
    #: Leave the MAC addresses out of the flow key (Packetbeat ``allow_mismatched_eth``).
    allow_mismatched_eth: bool = False
    fields: dict[str, Any] = attrs.field(factory=dict)
    fields_under_root: bool = False
    tags: list[str] = attrs.field(factory=list)
    #: Accepted and handed to the shipper with the flow events' settings
    #: (``Beat.build_envelope``, ``per_protocol["flow"]["processors"]``); applied once
    #: processors are supported.
    processors: list[Any] = attrs.field(factory=list)
    #: wirebeat: most flows tracked at once; past it the oldest is reported and dropped.
    max_flows: int = 100_000

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
class PacketbeatSettings:
    interfaces: list[InterfaceSettings] = attrs.field(factory=lambda: [InterfaceSettings()])
    protocols: dict[str, ProtocolConfig] = attrs.field(factory=dict)
    flows: FlowsSettings | None = None
    ignore_outgoing: bool = False
    shutdown_timeout: Duration = Duration(0.0)
    tcp: TcpSettings = TcpSettings()
    #: wirebeat extension: open the capture sockets as root, then drop to this user.
    run_as: str = ""
    procs: dict[str, Any] = attrs.field(factory=dict, metadata={"ignored": True})


@attrs.frozen
class MemQueueSettings:
    events: int = 3200
    flush_min_events: int = attrs.field(default=1600, metadata={"key": "flush.min_events"})
    flush_timeout: Duration = attrs.field(default=Duration(10.0), metadata={"key": "flush.timeout"})


@attrs.frozen
class DiskQueueSettings:
    path: str = ""
    max_size: ByteSize = ByteSize(10 * 1024**3)
    segment_size: ByteSize = ByteSize(0)
    read_ahead: int = 512
    write_ahead: int = 2048
    retry_interval: Duration = Duration(1.0)
    max_retry_interval: Duration = Duration(30.0)


@attrs.frozen
class QueueSettings:
    mem: MemQueueSettings | None = None
    disk: DiskQueueSettings | None = None


@attrs.frozen
class LogFilesSettings:
    path: str = ""
    name: str = "wirebeat"
    rotateeverybytes: ByteSize = ByteSize(10 * 1024 * 1024)
    keepfiles: int = 7
    permissions: int = 0o600
    interval: Duration = Duration(0.0)
    rotateonstartup: bool = True


@attrs.frozen
class LogMetricsSettings:
    enabled: bool = True
    period: Duration = Duration(30.0)


@attrs.frozen
class LoggingSettings:
    level: str = attrs.field(
        default="info", validator=one_of("debug", "info", "warning", "warn", "error", "critical")
    )
    selectors: list[str] = attrs.field(factory=list)
    to_stderr: bool = False
    to_files: bool = True
    to_syslog: bool = False
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
    port: int = 5066


@attrs.frozen
class PathSettings:
    home: str = ""
    config: str = ""
    data: str = ""
    logs: str = ""


@attrs.frozen
class TemplateJsonSettings:
    enabled: bool = False
    path: str = ""
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
    priority: int = 150
    order: int = 1
    #: ``index`` (composable) or ``legacy`` (``_template``); ``--es.version`` < 7.8 implies legacy.
    type: str = attrs.field(default="index", validator=one_of("index", "legacy"))
    #: wirebeat: install the composable template as a data stream (Packetbeat 8.x does).
    data_stream: bool = True
    fields: str = ""
    append_fields: list[Any] = attrs.field(factory=list)
    settings: TemplateIndexSettings = TemplateIndexSettings()
    json: TemplateJsonSettings = TemplateJsonSettings()


@attrs.frozen
class IlmSettings:
    """``setup.ilm.*`` (libbeat 8.x)."""

    enabled: bool = True
    policy_name: str = "packetbeat"
    policy_file: str = ""
    check_exists: bool = True
    overwrite: bool = False


@attrs.frozen
class DashboardsRetrySettings:
    enabled: bool = False
    interval: Duration = Duration(1.0)
    maximum: int = 0


@attrs.frozen
class DashboardsSettings:
    """``setup.dashboards.*``: the bundled dashboards are always used (no directory/url/file)."""

    enabled: bool = False
    #: Index pattern the dashboards and the data view use (default ``packetbeat-*``).
    index: str = ""
    beat: str = "packetbeat"
    always_kibana: bool = False
    string_replacements: dict[str, str] = attrs.field(factory=dict)
    retry: DashboardsRetrySettings = DashboardsRetrySettings()
    directory: str = attrs.field(default="", metadata={"ignored": True})
    file: str = attrs.field(default="", metadata={"ignored": True})
    url: str = attrs.field(default="", metadata={"ignored": True})
    kibana_index: str = attrs.field(default="", metadata={"ignored": True})


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
    timeout: Duration = Duration(90.0)


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
        out[name] = b.build(cls.config_class, body, sub)
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
}


def output_module(name: str) -> Any:
    return importlib.import_module(OUTPUT_MODULES[name])


def _build_output(b: Builder, raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping of output name to settings")
    enabled: dict[str, Any] = {}
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
        enabled[name] = b.build(mod.CONFIG, body, sub)
    if len(enabled) > 1:
        raise ConfigError(path, f"more than one output is enabled ({', '.join(enabled)}); enable exactly one")
    return enabled


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


def load_settings(
    path: str | None,
    overrides: list[str] | None = None,
    *,
    required: bool = False,
    base: dict[str, Any] | None = None,
) -> tuple[Settings, list[str]]:
    """Load, merge and validate. Returns the settings and the warnings to log."""
    tree: dict[str, Any]
    if path is not None and (required or Path(path).exists()):
        tree = load_yaml(path)
        tree = expand_dotted(tree)
    else:
        tree = default_tree()
    if base:
        tree = merge(expand_dotted(base), tree)
    for item in overrides or []:
        key, value = parse_override(item)
        set_path(tree, key, expand_dotted(value) if isinstance(value, dict) else value)
    tree = expand_dotted(tree)
    tree = expand_vars(tree)
    return build_settings(tree)


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
    interfaces = _build_interfaces(b, pb_raw.pop("interfaces", None), "packetbeat.interfaces")
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
    output = _build_output(b, tree.get("output"), "output")
    for section in ("monitoring", "xpack", "cloud", "keystore", "seccomp", "features", "max_procs", "ilm"):
        if section in rest:
            rest.pop(section)
            b.warnings.append(f"config section {section!r} is not supported by wirebeat (ignored)")
    settings = b.build(Settings, rest, "")
    settings = attrs.evolve(settings, packetbeat=pb, output=output, raw=tree)
    if settings.processors:
        b.warnings.append("processors are not supported yet; the 'processors' section is ignored")
    return settings, b.warnings
