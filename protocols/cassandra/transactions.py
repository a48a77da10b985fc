"""Pairing Cassandra requests with responses on one connection.

Responses pair with the request of the same stream id, whatever their order (the protocol
multiplexes up to 32768 requests on a connection and the server answers them as they
finish; native_protocol_v4.spec §2.3). Packetbeat pairs in arrival order instead, which
gives a request another request's response as soon as two are in flight (see
docs/differences.md, ``cassandra/pairing-by-stream-id``). An EVENT (server push, stream -1)
is a transaction of its own, as in Packetbeat.

Whether a frame is a request or a response is its version byte's direction bit, as in
Packetbeat. A request never answered is published flagged ``Unmatched request`` when it is
older than ``transaction_timeout`` (capture time), when its stream id is reused, when the
pending queue is full (``max_pending_requests``) and when the connection ends; responses
without a request are counted (``cassandra.unmatched_responses``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.cassandra.parser import OP_EVENT, ConnState, Frame, FrameStream
from protocols.handler import ConnectionHandler, ConnInfo

if TYPE_CHECKING:
    from protocols.cassandra import CassandraPlugin


class CassandraTransaction:
    __slots__ = ("conn", "request", "response", "unmatched")

    def __init__(
        self, conn: ConnInfo, request: Frame | None, response: Frame | None, unmatched: bool = False
    ) -> None:
        self.conn = conn
        self.request = request
        self.response = response
        self.unmatched = unmatched


class CassandraHandler(ConnectionHandler):
    __slots__ = ("pending", "state", "streams")

    plugin: CassandraPlugin

    def __init__(self, plugin: CassandraPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        cfg = plugin.config
        self.state = ConnState()
        self.streams = (
            FrameStream(plugin.stats, self.state, cfg.max_frame_size, cfg.compressor),
            FrameStream(plugin.stats, self.state, cfg.max_frame_size, cfg.compressor),
        )
        self.pending: dict[int, Frame] = {}

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        frames = self.streams[direction].feed(data, ts)
        out: list[Any] = []
        if self.pending:
            self._expire(ts, out)
        for f in frames:
            if f.is_response:
                self._response(f, out)
            else:
                self._request(f, out)
        return out

    def on_gap(self, direction: int, nbytes: int) -> bool:
        self.plugin.stats.incr("cassandra.gaps")
        self.streams[direction].reset()
        return False

    def on_close(self, reason: str) -> list[Any]:
        for s in self.streams:
            if s.pending:
                self.plugin.stats.incr("cassandra.incomplete_messages")
        out: list[Any] = []
        for f in self.pending.values():
            self._unmatched(f, out)
        self.pending.clear()
        return out

    def _unmatched(self, req: Frame, out: list[Any]) -> None:
        self.plugin.stats.incr("cassandra.unmatched_requests")
        if req.op not in self.plugin.ignored:
            out.append(CassandraTransaction(self.conn, req, None, unmatched=True))

    def _request(self, f: Frame, out: list[Any]) -> None:
        pending = self.pending
        old = pending.pop(f.stream, None)
        if old is not None:
            self._unmatched(old, out)
        pending[f.stream] = f
        cap = self.plugin.config.max_pending_requests
        while len(pending) > cap:
            self.plugin.stats.incr("cassandra.pending_evictions")
            self._unmatched(pending.pop(next(iter(pending))), out)

    def _response(self, f: Frame, out: list[Any]) -> None:
        ignored = self.plugin.ignored
        if f.op == OP_EVENT:
            if f.op not in ignored:
                out.append(CassandraTransaction(self.conn, None, f))
            return
        req = self.pending.pop(f.stream, None)
        if req is None:
            self.plugin.stats.incr("cassandra.unmatched_responses")
            return
        if req.op in ignored or f.op in ignored:
            return
        out.append(CassandraTransaction(self.conn, req, f))

    def _expire(self, ts: int, out: list[Any]) -> None:
        limit = ts - self.plugin.timeout_ns
        pending = self.pending
        while pending:
            sid = next(iter(pending))
            if pending[sid].ts >= limit:
                break
            self.plugin.stats.incr("cassandra.expired_requests")
            self._unmatched(pending.pop(sid), out)
