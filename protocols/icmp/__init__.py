"""ICMPv4 and ICMPv6 (Packetbeat ``protos/icmp``): request/reply pairing, errors, notes.

The decoder hands every ICMP message to ``on_icmp`` with its IP version and addresses;
pairing and expiry run on capture time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.handler import Plugin
from protocols.icmp.config import DEFAULT_PORTS, IcmpConfig
from protocols.icmp.fields import to_event
from protocols.icmp.parser import parse
from protocols.icmp.transactions import IcmpTracker, IcmpTransaction
from protocols.registry import register
from protocols.stats import Counters


@register
class IcmpPlugin(Plugin):
    name = "icmp"
    transports = frozenset()
    config_class = IcmpConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: IcmpConfig

    def __init__(self, config: IcmpConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.tracker = IcmpTracker(self.timeout_ns, config.max_pending, self)

    def on_icmp(self, ts: int, version: int, src: bytes, dst: bytes, message: bytes) -> list[Any]:
        msg = parse(ts, version, message)
        if msg is None:
            self.stats.incr("icmp.malformed")
            return []
        return self.tracker.on_message(version, src, dst, msg)

    def tick(self, ts: int) -> list[Any]:
        return self.tracker.expire(ts)

    def flush(self) -> list[Any]:
        return self.tracker.flush()

    def to_event(self, txn: IcmpTransaction) -> dict[str, Any]:
        return to_event(txn)


PLUGIN = IcmpPlugin
__all__ = ["PLUGIN", "IcmpConfig", "IcmpPlugin"]
