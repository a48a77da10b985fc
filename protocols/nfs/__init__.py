"""NFS decoder: ONC RPC over TCP (record marking) and UDP, NFSv3 procedures and NFSv4.x
COMPOUNDs, call/reply pairing by xid, event fields as Packetbeat renders them."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.config import ProtocolConfig
from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.nfs.config import DEFAULT_PORTS, NfsConfig
from protocols.nfs.fields import to_event
from protocols.nfs.transactions import NfsTcpHandler, NfsTransaction, Pairing
from protocols.registry import register
from protocols.stats import Counters


@register
class NfsPlugin(Plugin):
    name = "nfs"
    #: Packetbeat decodes NFS over TCP only; UDP is decoded here too (docs/differences.md
    #: nfs/udp).
    transports = frozenset({"tcp", "udp"})
    config_class: ClassVar[type[ProtocolConfig]] = NfsConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: NfsConfig

    def __init__(self, config: NfsConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.pairing = Pairing(self)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return NfsTcpHandler(self, conn)

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        out: list[Any] = []
        src_ip, sport, dst_ip, dport = conn.endpoints(direction)
        size = len(data)
        head = data[: self.config.max_record_head]
        self.pairing.message(head, size, len(head) < size, ts, (src_ip, sport), (dst_ip, dport), "udp", out)
        return out

    def tick(self, ts: int) -> list[Any]:
        out: list[Any] = []
        if self.pairing.pending:
            self.pairing.expire(ts, out)
        return out

    def flush(self) -> list[Any]:
        out: list[Any] = []
        self.pairing.flush(out)
        return out

    def to_event(self, txn: NfsTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = NfsPlugin
__all__ = ["PLUGIN", "NfsConfig", "NfsPlugin"]
