"""memcache decoder: text and binary protocol over TCP and UDP (frame header, replies in
several datagrams), Packetbeat's pairing and ``memcache.*`` fields."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import NS, ConnectionHandler, ConnInfo, Plugin
from protocols.memcache.config import DEFAULT_PORTS, MemcacheConfig
from protocols.memcache.fields import to_event
from protocols.memcache.parser import StreamParser
from protocols.memcache.transactions import MemcacheHandler, MemcacheTransaction, UdpTable
from protocols.registry import register
from protocols.stats import Counters


@register
class MemcachePlugin(Plugin):
    name = "memcache"
    transports = frozenset({"tcp", "udp"})
    config_class = MemcacheConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: MemcacheConfig

    def __init__(self, config: MemcacheConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.udp_timeout_ns = int(config.udptransactiontimeout * NS)
        per_value = config.maxbytespervalue
        self._keep_limit = (
            min(per_value, config.max_message_size) if per_value > 0 else config.max_message_size
        )
        self._store = config.maxvalues != 0
        self.udp = UdpTable(self)

    def new_parser(self) -> StreamParser:
        cfg = self.config
        return StreamParser(cfg.parseunknown, self._store, self._keep_limit, cfg.max_message_size)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return MemcacheHandler(self, conn)

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        return self.udp.datagram(conn, direction, data, ts)

    def tick(self, ts: int) -> list[Any]:
        if not self.udp.exchanges:
            return []
        return self.udp.expire(ts, self.udp_timeout_ns)

    def flush(self) -> list[Any]:
        return self.udp.flush()

    def to_event(self, txn: MemcacheTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = MemcachePlugin
__all__ = ["PLUGIN", "MemcacheConfig", "MemcachePlugin"]
