"""SIP messages as Packetbeat 9.3 publishes them: every message on its own, as soon as it
is complete (protos/sip/README.md: a request may get many responses in any order, so
Packetbeat pairs nothing; dialogs are followed by ``sip.call_id`` in Elasticsearch).
``event.start`` and ``event.end`` are both the message's time, ``event.duration`` 0.

Retransmitted UDP datagrams are published again, each one (Packetbeat does the same);
TCP retransmissions never reach the parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.handler import ConnectionHandler, ConnInfo
from protocols.sip.parser import Message, SipStream

if TYPE_CHECKING:
    from protocols.sip import SipPlugin


class SipEvent:
    """One message with the endpoints it went between (sender first)."""

    __slots__ = ("dst", "msg", "src", "transport")

    def __init__(self, msg: Message, src: tuple[str, int], dst: tuple[str, int], transport: str) -> None:
        self.msg = msg
        self.src = src
        self.dst = dst
        self.transport = transport

    def __repr__(self) -> str:
        return f"SipEvent({self.msg!r} {self.src} -> {self.dst} {self.transport})"


class SipTcpHandler(ConnectionHandler):
    """Both directions of one TCP connection, each framed by Content-Length."""

    __slots__ = ("streams",)

    plugin: SipPlugin

    def __init__(self, plugin: SipPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.streams: list[SipStream | None] = [None, None]

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        st = self.streams[direction]
        if st is None:
            cfg = self.plugin.config
            st = self.streams[direction] = SipStream(cfg.max_header_size, cfg.max_message_size)
        msgs, problems = st.feed(data, ts)
        stats = self.plugin.stats
        for p in problems:
            stats.incr("sip." + p)
        if not msgs:
            return []
        src_ip, sport, dst_ip, dport = self.conn.endpoints(direction)
        src = (src_ip, sport)
        dst = (dst_ip, dport)
        return [SipEvent(m, src, dst, "tcp") for m in msgs]

    def on_gap(self, direction: int, nbytes: int) -> bool:
        st = self.streams[direction]
        if st is None:
            return False
        if st.skip and not st.pending and nbytes < st.skip:
            st.skip -= nbytes  # lost inside a body being passed over: framing holds
            return False
        if st.pending or st.skip:
            self.plugin.stats.incr("sip.gap_dropped_messages")
        st.reset()
        return False

    def on_close(self, reason: str) -> list[Any]:
        for st in self.streams:
            if st is not None and st.pending and st.buf.strip(b"\r\n"):
                self.plugin.stats.incr("sip.incomplete_messages")
        self.streams = [None, None]
        return []
