"""Protocol registry: which plugins exist, which ports they own, the capture filter."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from protocols.common.config import ProtocolConfig
from protocols.handler import Plugin
from protocols.stats import Counters

#: Protocol names in Packetbeat's protocol-id order (the BPF filter follows it).
PROTOCOL_ORDER = (
    "http",
    "mysql",
    "redis",
    "pgsql",
    "thrift",
    "mongodb",
    "dns",
    "memcache",
    "icmp",
    "amqp",
    "cassandra",
    "nfs",
    "tls",
    "sip",
    "dhcpv4",
)

#: Modules that define plugins; each exposes ``PLUGIN`` (a Plugin subclass).
_BUILTIN_MODULES = {
    "http": "protocols.http",
    "mysql": "protocols.mysql",
    "pgsql": "protocols.pgsql",
    "redis": "protocols.redis",
    "thrift": "protocols.thrift",
    "dns": "protocols.dns",
    "mongodb": "protocols.mongodb",
    "memcache": "protocols.memcache",
    "icmp": "protocols.icmp",
    "tls": "protocols.tls",
    "cassandra": "protocols.cassandra",
    "amqp": "protocols.amqp",
    "nfs": "protocols.nfs",
    "sip": "protocols.sip",
    "dhcpv4": "protocols.dhcpv4",
}

_classes: dict[str, type[Plugin]] = {}


class ProtocolConfigError(ValueError):
    """Protocol configuration that cannot work (unknown protocol, a port claimed twice)."""


def register(cls: type[Plugin]) -> type[Plugin]:
    _classes[cls.name] = cls
    return cls


def register_module(name: str, module: str) -> None:
    _BUILTIN_MODULES[name] = module


def plugin_class(name: str) -> type[Plugin]:
    if name not in _classes:
        module = _BUILTIN_MODULES.get(name)
        if module is None:
            raise ProtocolConfigError(f"unknown protocol {name!r}")
        importlib.import_module(module)
    return _classes[name]


def available() -> list[str]:
    """Protocols whose module is present in this installation."""
    names = [n for n in PROTOCOL_ORDER if n in _BUILTIN_MODULES]
    names += sorted(n for n in _BUILTIN_MODULES if n not in PROTOCOL_ORDER)
    return [n for n in names if importlib.util.find_spec(_BUILTIN_MODULES[n]) is not None]


def _order(name: str) -> int:
    return PROTOCOL_ORDER.index(name) if name in PROTOCOL_ORDER else len(PROTOCOL_ORDER)


class Registry:
    """The enabled plugins and their port maps; a port claimed twice is an error."""

    def __init__(self, plugins: list[Plugin]) -> None:
        self.plugins = sorted(plugins, key=lambda p: _order(p.name))
        self.tcp_ports: dict[int, Plugin] = {}
        self.udp_ports: dict[int, Plugin] = {}
        self.icmp_plugin: Plugin | None = None
        for p in self.plugins:
            if p.name == "icmp":
                self.icmp_plugin = p
            for transport, table in (("tcp", self.tcp_ports), ("udp", self.udp_ports)):
                if transport not in p.transports:
                    continue
                for port in p.ports:
                    owner = table.get(port)
                    if owner is not None and owner is not p:
                        raise ProtocolConfigError(f"port {port} is claimed by both {owner.name} and {p.name}")
                    table[port] = p

    def bpf_filter(self, with_vlans: bool = False) -> str:
        """The capture filter Packetbeat generates (§1.2): ports, then icmp."""
        terms: list[str] = []
        for p in self.plugins:
            if p.name == "icmp":
                continue
            both = {"tcp", "udp"} <= p.transports
            for port in p.ports:
                if both:
                    terms.append(f"port {port}")
                elif "udp" in p.transports:
                    terms.append(f"udp port {port}")
                else:
                    terms.append(f"tcp port {port}")
        if self.icmp_plugin is not None:
            terms += ["icmp", "icmp6"]
        expr = " or ".join(terms)
        if with_vlans and expr:
            expr = f"{expr} or (vlan and ({expr}))"
        return expr


def build_plugins(configs: dict[str, ProtocolConfig], stats: Counters | None = None) -> list[Plugin]:
    stats = stats if stats is not None else Counters()
    out = []
    for name, cfg in configs.items():
        if not cfg.enabled:
            continue
        out.append(plugin_class(name)(cfg, stats))
    return out


def default_config(name: str, **overrides: Any) -> ProtocolConfig:
    """The config a protocol gets from the shipped packetbeat.yml, with overrides."""
    cls = plugin_class(name)
    if "ports" not in overrides:
        overrides["ports"] = list(cls.default_ports)
    return cls.config_class(**overrides)
