"""Cassandra decoder: native protocol v3-v5 frames (LZ4/Snappy compression, v5 segments),
request/response pairing by stream id, event fields as Packetbeat renders them."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.cassandra.config import DEFAULT_PORTS, CassandraConfig
from protocols.cassandra.fields import to_event
from protocols.cassandra.parser import OP_CODES
from protocols.cassandra.transactions import CassandraHandler, CassandraTransaction
from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.registry import register
from protocols.stats import Counters


@register
class CassandraPlugin(Plugin):
    name = "cassandra"
    transports = frozenset({"tcp"})
    config_class = CassandraConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: CassandraConfig

    def __init__(self, config: CassandraConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        #: Opcodes whose transactions are not published (``ignored_ops``).
        self.ignored = frozenset(OP_CODES[op.strip().upper()] for op in config.ignored_ops)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return CassandraHandler(self, conn)

    def to_event(self, txn: CassandraTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = CassandraPlugin
__all__ = ["PLUGIN", "CassandraConfig", "CassandraPlugin"]
