"""DHCPv4 decoder over UDP (Packetbeat ``protos/dhcpv4``): every BOOTP/DHCP message is its own
event, as in Packetbeat, which does not pair requests and replies; the ``transaction_id``
field ties the messages of one exchange together."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.config import ProtocolConfig
from protocols.dhcpv4.config import DEFAULT_PORTS, Dhcpv4Config
from protocols.dhcpv4.fields import DhcpMessage, to_event
from protocols.dhcpv4.parser import DhcpError, parse
from protocols.handler import ConnInfo, Plugin
from protocols.registry import register
from protocols.stats import Counters


@register
class Dhcpv4Plugin(Plugin):
    name = "dhcpv4"
    transports = frozenset({"udp"})
    config_class: ClassVar[type[ProtocolConfig]] = Dhcpv4Config
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: Dhcpv4Config

    def __init__(self, config: Dhcpv4Config, stats: Counters) -> None:
        super().__init__(config, stats)

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        stats = self.stats
        stats.incr("dhcpv4.total_packets")
        try:
            msg = parse(data)
        except DhcpError as exc:
            stats.incr("dhcpv4.parse_failures")
            stats.incr("dhcpv4.malformed." + exc.reason)
            return []
        src_ip, sport, dst_ip, dport = conn.endpoints(direction)
        return [DhcpMessage(msg, ts, len(data), (src_ip, sport), (dst_ip, dport))]

    def to_event(self, txn: DhcpMessage) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = Dhcpv4Plugin
__all__ = ["PLUGIN", "Dhcpv4Config", "Dhcpv4Plugin"]
