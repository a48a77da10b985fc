"""AMQP 0-9-1 decoder: frames, methods and content (per-channel), Packetbeat's pairing of
synchronous methods with their -ok, messages (publish, deliver, get, return) as
transactions of their own, ``amqp.*`` fields as Packetbeat names and renders them."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.amqp.config import DEFAULT_PORTS, AmqpConfig
from protocols.amqp.fields import to_event
from protocols.amqp.transactions import AmqpHandler, AmqpTransaction
from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.registry import register
from protocols.stats import Counters


@register
class AmqpPlugin(Plugin):
    name = "amqp"
    transports = frozenset({"tcp"})
    config_class = AmqpConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: AmqpConfig

    def __init__(self, config: AmqpConfig, stats: Counters) -> None:
        super().__init__(config, stats)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return AmqpHandler(self, conn)

    def to_event(self, txn: AmqpTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = AmqpPlugin
__all__ = ["PLUGIN", "AmqpConfig", "AmqpPlugin"]
