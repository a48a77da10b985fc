"""Pairing NFS calls with replies, over TCP and UDP, by capture time.

As Packetbeat (``protos/nfs/request_handler.go``) does it, the message decides what it is
(an RPC call or a reply, whichever side sends it) and a reply completes the call that
waits under the same xid from the same client, on any connection (a client that
reconnects may get its reply on the new one). Calls to other RPC programs (portmapper,
mount, NLM, NFSv4 callbacks) are not NFS transactions: they are counted
(``nfs.other_program_calls``) and so are their replies.

A retransmitted call (same client, same xid) replaces the one waiting, as in Packetbeat
(``nfs.retransmitted_calls``). A call left waiting ``transaction_timeout`` (capture time,
1 minute by default) is published with ``status: NO_REPLY``, as Packetbeat publishes its
expired calls; so is every call still waiting at the end of the input, and the oldest one
past ``max_pending`` (``nfs.evicted_calls``). A reply nobody waits for is counted
(``nfs.unmatched_replies``), as Packetbeat drops it.

Going beyond Packetbeat: replies the server *denied* (RPC_MISMATCH, AUTH_ERROR) complete
their call too (Packetbeat ignores them and the call expires unanswered), and records of
several fragments are decoded (Packetbeat stops decoding the direction at the first
fragment that is not the last).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.handler import ConnectionHandler, ConnInfo
from protocols.nfs.parser import Call, OtherCall, RecordStream, Reply, RpcError, decode
from protocols.stats import Counters

if TYPE_CHECKING:
    from protocols.nfs import NfsPlugin

#: Calls to other programs remembered so that their replies are told from strays.
MAX_OTHER_CALLS = 4096

Key = tuple[str, str, int]


class NfsTransaction:
    __slots__ = ("call", "deadline", "dst", "reply", "reply_ts", "src", "transport", "ts")

    def __init__(
        self, call: Call, ts: int, src: tuple[str, int], dst: tuple[str, int], transport: str
    ) -> None:
        self.call = call
        self.ts = ts
        #: The caller and the callee (the sender of the call first).
        self.src = src
        self.dst = dst
        self.transport = transport
        self.reply: Reply | None = None
        self.reply_ts = 0
        self.deadline = 0


class Pairing:
    """Calls waiting for their reply, all flows of one plugin, in capture-time order."""

    def __init__(self, plugin: NfsPlugin) -> None:
        self.plugin = plugin
        self.timeout = plugin.timeout_ns
        self.max_pending = plugin.config.max_pending
        self.pending: dict[Key, NfsTransaction] = {}
        self.other: dict[Key, int] = {}

    @property
    def stats(self) -> Counters:
        # Read through the plugin: the decoder hands it its counters after construction.
        return self.plugin.stats

    def message(
        self,
        data: bytes,
        size: int,
        truncated: bool,
        ts: int,
        src: tuple[str, int],
        dst: tuple[str, int],
        transport: str,
        out: list[NfsTransaction],
    ) -> None:
        """One RPC message (a record, or a datagram) sent from ``src`` to ``dst``."""
        try:
            msg = decode(data, size, truncated)
        except RpcError as exc:
            self.stats.incr("nfs.malformed_messages")
            self.stats.incr("nfs.malformed." + exc.reason)
            return
        if self.pending:
            self.expire(ts, out)
        if isinstance(msg, Call):
            self.call(NfsTransaction(msg, ts, src, dst, transport), out)
        elif isinstance(msg, Reply):
            self.reply(msg, ts, (dst[0], src[0], msg.xid), out)
        else:
            self._other(msg, (src[0], dst[0], msg.xid))

    def call(self, t: NfsTransaction, out: list[NfsTransaction]) -> None:
        key = (t.src[0], t.dst[0], t.call.xid)
        pending = self.pending
        if pending.pop(key, None) is not None:
            self.stats.incr("nfs.retransmitted_calls")
        if t.call.flavor not in (0, 1, 6):
            self.stats.incr("nfs.other_auth_flavors")
        t.deadline = t.ts + self.timeout
        pending[key] = t
        if self.max_pending and len(pending) > self.max_pending:
            victim = pending.pop(next(iter(pending)))
            self.stats.incr("nfs.evicted_calls")
            self._unanswered(victim, out)

    def reply(self, r: Reply, ts: int, key: Key, out: list[NfsTransaction]) -> None:
        t = self.pending.pop(key, None)
        if t is None:
            if self.other.pop(key, None) is not None:
                self.stats.incr("nfs.other_program_replies")
            else:
                self.stats.incr("nfs.unmatched_replies")
            return
        t.reply = r
        t.reply_ts = ts
        if r.reject is not None:
            self.stats.incr("nfs.denied_replies")
        out.append(t)

    def _other(self, msg: OtherCall, key: Key) -> None:
        self.stats.incr("nfs.other_program_calls")
        other = self.other
        other.pop(key, None)
        other[key] = msg.prog
        if len(other) > MAX_OTHER_CALLS:
            del other[next(iter(other))]

    def expire(self, ts: int, out: list[NfsTransaction]) -> None:
        pending = self.pending
        while pending:
            key = next(iter(pending))
            t = pending[key]
            if t.deadline >= ts:
                break
            del pending[key]
            self.stats.incr("nfs.expired_calls")
            self._unanswered(t, out)

    def flush(self, out: list[NfsTransaction]) -> None:
        waiting = list(self.pending.values())
        self.pending.clear()
        self.other.clear()
        for t in waiting:
            self._unanswered(t, out)

    def _unanswered(self, t: NfsTransaction, out: list[NfsTransaction]) -> None:
        self.stats.incr("nfs.unmatched_requests")
        out.append(t)


class NfsTcpHandler(ConnectionHandler):
    """One TCP connection: record marking in both directions, messages to the pairing."""

    __slots__ = ("streams",)

    plugin: NfsPlugin

    def __init__(self, plugin: NfsPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        cfg = plugin.config
        self.streams = (
            RecordStream(plugin.stats, cfg.max_record_head, cfg.max_record_size),
            RecordStream(plugin.stats, cfg.max_record_head, cfg.max_record_size),
        )

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        records = self.streams[direction].feed(data)
        if not records:
            return []
        out: list[Any] = []
        src_ip, sport, dst_ip, dport = self.conn.endpoints(direction)
        src, dst = (src_ip, sport), (dst_ip, dport)
        message = self.plugin.pairing.message
        for r in records:
            message(r.data, r.size, r.truncated, ts, src, dst, "tcp", out)
        return out

    def on_gap(self, direction: int, nbytes: int) -> bool:
        self.streams[direction].gap(nbytes)
        return False

    def on_close(self, reason: str) -> list[Any]:
        for s in self.streams:
            if s.in_record:
                self.plugin.stats.incr("nfs.incomplete_records")
        return []
