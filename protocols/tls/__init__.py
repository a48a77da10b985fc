"""TLS decoder: handshake metadata (versions, suites, SNI, ALPN, certificates, JA3/JA3S,
alerts, resumption) of SSLv3 and TLS 1.0-1.3 connections; nothing is decrypted."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.registry import register
from protocols.stats import Counters
from protocols.tls.config import DEFAULT_PORTS, TlsConfig
from protocols.tls.fields import to_event
from protocols.tls.transactions import TlsHandler, TlsSession


@register
class TlsPlugin(Plugin):
    name = "tls"
    transports = frozenset({"tcp"})
    config_class = TlsConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: TlsConfig

    def __init__(self, config: TlsConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.fingerprints = config.hash_names()

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return TlsHandler(self, conn)

    def to_event(self, txn: TlsSession) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = TlsPlugin
__all__ = ["PLUGIN", "TlsConfig", "TlsPlugin"]
