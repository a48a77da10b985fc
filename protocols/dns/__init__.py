"""DNS decoder over UDP and TCP: wire parser, query/response pairing, event fields."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.config import ProtocolConfig
from protocols.dns.config import DEFAULT_PORTS, DnsConfig
from protocols.dns.fields import to_event
from protocols.dns.parser import DnsError, parse
from protocols.dns.transactions import DnsMessage, DnsTcpHandler, DnsTransaction, Pairing
from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.registry import register
from protocols.stats import Counters


@register
class DnsPlugin(Plugin):
    name = "dns"
    transports = frozenset({"udp", "tcp"})
    config_class: ClassVar[type[ProtocolConfig]] = DnsConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: DnsConfig

    def __init__(self, config: DnsConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.pairing = Pairing(self)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return DnsTcpHandler(self, conn)

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        try:
            msg = parse(data)
        except DnsError as exc:
            self.stats.incr("dns.malformed_messages")
            self.stats.incr("dns.malformed." + exc.reason)
            return []
        src_ip, sport, dst_ip, dport = conn.endpoints(direction)
        m = DnsMessage(msg, ts, len(data), (src_ip, sport), (dst_ip, dport))
        out: list[Any] = []
        if msg.is_response:
            self.pairing.response("udp", m, out)
        else:
            self.pairing.request("udp", m, out)
        return out

    def tick(self, ts: int) -> list[Any]:
        out: list[Any] = []
        self.pairing.expire(ts, out)
        return out

    def flush(self) -> list[Any]:
        out: list[Any] = []
        self.pairing.flush(out)
        return out

    def to_event(self, txn: DnsTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = DnsPlugin
__all__ = ["PLUGIN", "DnsConfig", "DnsPlugin"]
