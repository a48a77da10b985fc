"""MongoDB decoder: wire-protocol parser (legacy opcodes, OP_MSG, OP_COMPRESSED), request/reply
pairing by request id, event fields as Packetbeat renders them."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.mongodb.config import DEFAULT_PORTS, MongodbConfig
from protocols.mongodb.fields import to_event
from protocols.mongodb.transactions import MongodbHandler, MongodbTransaction
from protocols.registry import register
from protocols.stats import Counters


@register
class MongodbPlugin(Plugin):
    name = "mongodb"
    transports = frozenset({"tcp"})
    config_class = MongodbConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: MongodbConfig

    def __init__(self, config: MongodbConfig, stats: Counters) -> None:
        super().__init__(config, stats)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return MongodbHandler(self, conn)

    def to_event(self, txn: MongodbTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = MongodbPlugin
__all__ = ["PLUGIN", "MongodbConfig", "MongodbPlugin"]
