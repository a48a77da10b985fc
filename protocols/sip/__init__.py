"""SIP decoder over UDP and TCP: every message published as its own event, with
Packetbeat 9.3's ``sip.*`` fields (URIs, name-addrs, credentials, SDP)."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.config import ProtocolConfig
from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.registry import register
from protocols.sip.config import DEFAULT_PORTS, SipConfig
from protocols.sip.fields import to_event
from protocols.sip.parser import parse_datagram
from protocols.sip.transactions import SipEvent, SipTcpHandler


@register
class SipPlugin(Plugin):
    name = "sip"
    transports = frozenset({"udp", "tcp"})
    config_class: ClassVar[type[ProtocolConfig]] = SipConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: SipConfig

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return SipTcpHandler(self, conn)

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        msgs, problem = parse_datagram(data, ts)
        if problem:
            self.stats.incr("sip." + problem)
        if not msgs:
            return []
        src_ip, sport, dst_ip, dport = conn.endpoints(direction)
        src = (src_ip, sport)
        dst = (dst_ip, dport)
        return [SipEvent(m, src, dst, "udp") for m in msgs]

    def to_event(self, txn: SipEvent) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = SipPlugin
__all__ = ["PLUGIN", "SipConfig", "SipPlugin"]
