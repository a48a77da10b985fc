"""Redis decoder (RESP2 and RESP3): parser, request/reply pairing, event fields."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.redis.config import DEFAULT_PORTS, RedisConfig
from protocols.redis.fields import to_event
from protocols.redis.transactions import RedisHandler, RedisTransaction
from protocols.registry import register
from protocols.stats import Counters


@register
class RedisPlugin(Plugin):
    name = "redis"
    transports = frozenset({"tcp"})
    config_class = RedisConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: RedisConfig

    def __init__(self, config: RedisConfig, stats: Counters) -> None:
        super().__init__(config, stats)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return RedisHandler(self, conn)

    def to_event(self, txn: RedisTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = RedisPlugin
__all__ = ["PLUGIN", "RedisConfig", "RedisPlugin"]
