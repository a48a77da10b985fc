"""Thrift-RPC decoder (binary and compact protocols, socket and framed transports)."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.registry import register
from protocols.stats import Counters
from protocols.thrift.config import DEFAULT_PORTS, ThriftConfig
from protocols.thrift.fields import to_event
from protocols.thrift.idl import IdlMethod, load_idl
from protocols.thrift.parser import Format
from protocols.thrift.transactions import ThriftHandler, ThriftTransaction


@register
class ThriftPlugin(Plugin):
    name = "thrift"
    transports = frozenset({"tcp"})
    config_class = ThriftConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: ThriftConfig

    def __init__(self, config: ThriftConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.format = Format(
            string_max_size=config.string_max_size,
            collection_max_size=config.collection_max_size,
            obfuscate_strings=config.obfuscate_strings,
            max_struct_fields=config.drop_after_n_struct_fields,
        )
        self.idl: dict[str, IdlMethod] = load_idl(list(config.idl_files))

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return ThriftHandler(self, conn)

    def to_event(self, txn: ThriftTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = ThriftPlugin
__all__ = ["PLUGIN", "ThriftConfig", "ThriftPlugin"]
