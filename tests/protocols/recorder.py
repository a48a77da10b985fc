"""A test plugin that records what the TCP layer hands to a connection handler."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.config import ProtocolConfig
from protocols.decoder import Decoder, DecoderLimits
from protocols.handler import ConnectionHandler, ConnInfo, Plugin
from protocols.stats import Counters
from protocols.tcp import TcpLimits


class RecordingHandler(ConnectionHandler):
    __slots__ = ("log",)

    def __init__(self, plugin: RecorderPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.log: list[tuple[Any, ...]] = []
        plugin.handlers.append(self)

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        self.log.append(("data", direction, bytes(data)))
        return []

    def on_gap(self, direction: int, nbytes: int) -> bool:
        self.log.append(("gap", direction, nbytes))
        return False

    def on_fin(self, direction: int, ts: int) -> list[Any]:
        self.log.append(("fin", direction))
        return []

    def on_close(self, reason: str) -> list[Any]:
        self.log.append(("close", reason))
        return [("closed", self.conn.client_port, reason)]

    def stream(self, direction: int) -> bytes:
        return b"".join(e[2] for e in self.log if e[0] == "data" and e[1] == direction)

    def gaps(self, direction: int) -> list[int]:
        return [e[2] for e in self.log if e[0] == "gap" and e[1] == direction]


class RecorderPlugin(Plugin):
    name = "recorder"
    transports = frozenset({"tcp", "udp"})
    default_ports: ClassVar[tuple[int, ...]] = (7777,)

    def __init__(self, config: ProtocolConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.handlers: list[RecordingHandler] = []
        self.datagrams: list[tuple[ConnInfo, int, bytes]] = []

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return RecordingHandler(self, conn)

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        self.datagrams.append((conn, direction, data))
        return []

    def to_event(self, txn: Any) -> dict[str, Any]:
        return {"type": "recorder", "txn": txn}


def recorder(ports: tuple[int, ...] = (7777,), **tcp: Any) -> tuple[Decoder, RecorderPlugin]:
    plugin = RecorderPlugin(ProtocolConfig(ports=list(ports), transaction_timeout=10.0), Counters())
    limits = DecoderLimits(tcp=TcpLimits(**tcp)) if tcp else None
    return Decoder([plugin], limits), plugin
