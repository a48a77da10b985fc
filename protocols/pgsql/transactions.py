"""Pairing PostgreSQL requests with responses on one connection (Packetbeat §1.7, §2.5).

The server answers client messages strictly in order, so every client message that
expects an answer is queued as an *op*, and backend messages are matched against the
head of the queue (PostgreSQL docs, "Message Flow"):

* a simple ``Query`` queues one op per statement (each becomes a transaction) and a
  sync point answered by ``ReadyForQuery``;
* the extended protocol queues ``Parse`` (→ ParseComplete), ``Bind`` (→ BindComplete),
  ``Describe`` (→ [ParameterDescription] RowDescription|NoData), ``Execute`` (→ rows
  and CommandComplete|EmptyQueryResponse|PortalSuspended, a transaction whose query is
  the statement bound to the portal), ``Close`` (→ CloseComplete) and ``Sync``;
* after an ``ErrorResponse`` the server skips everything up to the next sync point
  (the rest of a simple query, or up to ``Sync``), so the error belongs to the first
  transaction before that point and the others were never executed.

Every backend message costs O(1) whatever is queued (the number of sync points queued is
counted, not searched for), so a flood of errors or ReadyForQuery against a full queue
stays linear.

Pipelined executes therefore pair correctly, and asynchronous messages (notices,
parameter status, notifications) never disturb the pairing. Named prepared statements
and TLS state outlive the handler (idle expiry, gaps) in a plugin-owned ``Session``.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from protocols.common.realign import REQUEST_LOSS, Realign
from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.pgsql import parser as p
from protocols.pgsql.parser import MessageStream, ParseError

if TYPE_CHECKING:
    from protocols.pgsql import PgsqlPlugin

#: Ops waiting for the server; beyond this the oldest is dropped (and counted).
MAX_PENDING = 4096
MAX_STATEMENTS = 4096
MAX_PORTALS = 1024
#: Bytes of a DataRow kept for ``response`` beyond ``max_row_length``.
ROW_SLACK = 256

OP_STMT, OP_EXECUTE, OP_PARSE, OP_BIND, OP_DESCRIBE, OP_CLOSE, OP_SYNC, OP_FUNC = range(8)
MODE_PLAIN, MODE_ENCRYPTED = "plain", "encrypted"

LOSS_NOTE = "Packet loss while capturing the response"
#: The shortest message that expects an answer (a Sync, or an empty Query).
MIN_REQUEST = 5
CLOSED_NOTE = "Response incomplete at end of stream"
UNKNOWN_NOTE = "The actual query being used is unknown"

_DECODE_ERRORS = (ParseError, IndexError, struct.error)
_WS = " \r\n\t"


class Session:
    __slots__ = ("last_ts", "mode", "stmts")

    def __init__(self) -> None:
        self.stmts: dict[str, str] = {}
        self.mode = MODE_PLAIN
        self.last_ts = 0


class PgsqlTransaction:
    __slots__ = (
        "conn",
        "end_ts",
        "error_code",
        "error_message",
        "error_severity",
        "fields",
        "formats",
        "hidden",
        "is_error",
        "notes",
        "num_fields",
        "num_rows",
        "query",
        "req_size",
        "resp_size",
        "responded",
        "rows",
        "ts",
    )

    def __init__(self, conn: ConnInfo, ts: int, query: str, req_size: int) -> None:
        self.conn = conn
        self.ts = ts
        self.end_ts = ts
        self.query = query
        self.req_size = req_size
        self.resp_size = 0
        self.responded = False
        self.fields: list[str] = []
        self.formats: list[int] = []
        self.num_fields = 0
        self.num_rows = 0
        self.rows: list[bytes] = []
        self.is_error = False
        self.error_code = ""
        self.error_message = ""
        self.error_severity = ""
        self.notes: list[str] = []
        #: Paired but not published (Packetbeat ignores SET statements sent with Parse).
        self.hidden = False


class Op:
    __slots__ = ("kind", "query", "ts", "txn")

    def __init__(self, kind: int, txn: PgsqlTransaction | None = None, query: str = "", ts: int = 0) -> None:
        self.kind = kind
        self.txn = txn
        self.query = query
        self.ts = ts


class PgsqlHandler(ConnectionHandler):
    __slots__ = (
        "acc_bytes",
        "acc_ts",
        "batch_txn",
        "deferred",
        "hidden",
        "ops",
        "out",
        "portals",
        "realign",
        "session",
        "streams",
        "synced",
        "syncs",
    )

    plugin: PgsqlPlugin

    def __init__(self, plugin: PgsqlPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.session = plugin.session(conn)
        self.streams = (MessageStream(p.FRONTEND_TYPES, True), MessageStream(p.BACKEND_TYPES, False))
        self.ops: deque[Op] = deque()
        #: OP_SYNC entries in ``ops``.
        self.syncs = 0
        self.portals: dict[str, str | None] = {}
        #: Extended-protocol bytes and first timestamp since the last Execute/Sync.
        self.acc_bytes = 0
        self.acc_ts = -1
        #: The last Execute's transaction before the next Sync (which it pays for).
        self.batch_txn: PgsqlTransaction | None = None
        self.synced = [False, False]
        self.out: list[Any] = []
        self.deferred: list[Any] = []
        self.hidden = 0
        self.realign = Realign(MIN_REQUEST)

    # -- seam ----------------------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        session = self.session
        session.last_ts = ts
        if session.mode != MODE_PLAIN:
            return self._take()
        stream = self.streams[direction]
        if not self.synced[direction] and not stream.pending:
            if not self._plausible(direction, data):
                # The middle of a message (a handler created mid-stream): skipped, counted.
                self.plugin.stats.incr("pgsql.unsynced_segments")
                return self._take()
            self.synced[direction] = True
        try:
            msgs = stream.feed(data)
        except ParseError:
            msgs = []
            self._stream_error(direction)
        handle = self._client_message if direction == FROM_CLIENT else self._server_message
        if stream.oversized:
            self.plugin.stats.incr("pgsql.oversized_messages", stream.oversized)
            stream.oversized = 0
        for typ, body, size in msgs:
            try:
                handle(typ, body, size, ts)
            except _DECODE_ERRORS:
                self.plugin.stats.incr("pgsql.parse_errors")
            if session.mode != MODE_PLAIN:
                break
        return self._take()

    def resync(self, direction: int, after_loss: bool) -> None:
        self.synced[direction] = False
        if after_loss and direction == FROM_CLIENT:
            self.realign.lost(REQUEST_LOSS)

    def on_gap(self, direction: int, nbytes: int) -> bool:
        if direction == FROM_CLIENT and self.session.mode == MODE_PLAIN:
            # Lost requests: what is queued is answered first; the answers of the lost
            # ones are surplus, and pairs are flagged until they have come.
            stream = self.streams[direction]
            waiting = sum(1 for op in self.ops if op.txn is not None)
            self.realign.lost(REQUEST_LOSS, waiting, nbytes, bool(stream.pending))
            stream.reset()
            stream.startup = False
            self.synced[direction] = False
            self.acc_bytes = 0
            self.acc_ts = -1
            self.batch_txn = None
            return False
        op = self._head_txn_op()
        if direction != FROM_CLIENT and op is not None:
            txn = op.txn
            assert txn is not None
            if txn.rows or txn.num_rows:
                txn.notes.append(LOSS_NOTE)
                self._complete(op)
                self.deferred.extend(self.out)
                self.out = []
        return True

    def on_close(self, reason: str) -> list[Any]:
        stats = self.plugin.stats
        for stream in self.streams:
            if stream.pending:
                stats.incr("pgsql.incomplete_messages")
        self.syncs = 0
        while self.ops:
            op = self.ops.popleft()
            txn = op.txn
            if txn is None:
                continue
            if txn.responded:
                txn.notes.append(CLOSED_NOTE)
                self.out.append(txn)
            else:
                stats.incr("pgsql.unmatched_requests")
        if reason in ("fin", "rst"):
            self.plugin.end_session(self.conn)
        return self._take()

    # -- helpers -------------------------------------------------------------------------

    def _take(self) -> list[Any]:
        out = self.out
        if self.deferred:
            out = self.deferred + out
            self.deferred = []
        elif not out:
            return []
        self.out = []
        if self.hidden:
            kept = [t for t in out if not t.hidden]
            # Hidden transactions dropped unpublished keep the count high: that only
            # costs this filter, never a scan of the queue.
            self.hidden = max(0, self.hidden - (len(out) - len(kept)))
            out = kept
        return out

    def _plausible(self, direction: int, data: bytes) -> bool:
        """Can a message start here? (a fresh handler may see a stream mid-message)."""
        if direction != FROM_CLIENT and self.streams[1].expect_answer:
            return True
        if direction == FROM_CLIENT and self.streams[0].startup:
            if len(data) < 8:
                if not data[:2].strip(b"\0"):
                    return True  # too short to judge: a startup length starts with two zeros
                return data[0] in p.FRONTEND_TYPES and (len(data) < 2 or not data[1])
            code = struct.unpack_from(">i", data, 4)[0]
            if code in (p.CODE_SSL, p.CODE_GSSENC, p.CODE_CANCEL) or code >> 16 == 3:
                return True
        if len(data) < 5:
            return True  # too short to judge
        valid = p.FRONTEND_TYPES if direction == FROM_CLIENT else p.BACKEND_TYPES
        n = struct.unpack_from(">i", data, 1)[0]
        return data[0] in valid and 4 <= n < (1 << 30)

    def _stream_error(self, direction: int) -> None:
        self.plugin.stats.incr("pgsql.parse_errors")
        self.streams[direction].reset()
        self.streams[direction].startup = False
        self.synced[direction] = False

    def _push(self, op: Op) -> None:
        ops = self.ops
        ops.append(op)
        if op.kind == OP_SYNC:
            self.syncs += 1
        if len(ops) > MAX_PENDING:
            old = ops.popleft()
            if old.kind == OP_SYNC:
                self.syncs -= 1
            self.plugin.stats.incr("pgsql.pending_overflow")
            if old.txn is not None:
                self.plugin.stats.incr("pgsql.unmatched_requests")

    def _head_txn_op(self) -> Op | None:
        for op in self.ops:
            if op.txn is not None:
                return op
            if op.kind == OP_SYNC:
                return None
        return None

    def _paired(self, txn: PgsqlTransaction) -> None:
        note = self.realign.pair()
        if note:
            txn.notes.append(note)
        self.out.append(txn)

    def _complete(self, op: Op) -> None:
        """Publish ``op``'s transaction; it is the first transaction op in the queue."""
        ops = self.ops
        while ops:
            head = ops.popleft()
            if head is op:
                break
        assert op.txn is not None
        self.out.append(op.txn)

    # -- client side ---------------------------------------------------------------------

    def _client_message(self, typ: int, body: bytes, size: int, ts: int) -> None:
        if typ == 0x51:  # Q
            self.realign.request(size)
            query, _ = p.cstring(body, 0)
            for stmt in p.split_statements(query):
                self._push(Op(OP_STMT, PgsqlTransaction(self.conn, ts, stmt, size)))
            self._push(Op(OP_SYNC))
            return
        if typ == p.UNTYPED:
            kind = p.startup_kind(body)
            if kind == p.SSL_REQUEST or kind == p.GSSENC_REQUEST:
                self.streams[1].expect_answer = True
            elif kind == p.STARTUP:
                self.session.stmts.clear()  # a new connection on a reused 4-tuple
            return
        if self.acc_ts < 0 and typ in b"PBDECH":
            self.acc_ts = ts
        if typ == 0x50:  # P
            name, query = p.parse_parse(body)
            stmts = self.session.stmts
            if name:
                stmts.pop(name, None)
                if len(stmts) >= MAX_STATEMENTS:
                    del stmts[next(iter(stmts))]
                    self.plugin.stats.incr("pgsql.statements_evicted")
            stmts[name] = query
            self.acc_bytes += size
            self._push(Op(OP_PARSE, query=query, ts=self.acc_ts))
        elif typ == 0x42:  # B
            portal, stmt = p.parse_bind(body)
            portals = self.portals
            portals.pop(portal, None)
            if len(portals) >= MAX_PORTALS:
                del portals[next(iter(portals))]
            portals[portal] = self.session.stmts.get(stmt)
            self.acc_bytes += size
            self._push(Op(OP_BIND))
        elif typ == 0x44:  # D
            self.acc_bytes += size
            self._push(Op(OP_DESCRIBE))
        elif typ == 0x45:  # E
            portal, _ = p.cstring(body, 0)
            bound = self.portals.get(portal)
            txn = PgsqlTransaction(self.conn, self.acc_ts, bound or "", self.acc_bytes + size)
            if bound is None:
                txn.notes.append(UNKNOWN_NOTE)
                self.plugin.stats.incr("pgsql.unknown_statements")
            self.acc_bytes = 0
            self.acc_ts = -1
            self.batch_txn = txn
            if bound is not None and bound.startswith("SET "):
                txn.hidden = True
                self.hidden += 1
                self.plugin.stats.incr("pgsql.ignored_set_statements")
            self._push(Op(OP_EXECUTE, txn))
        elif typ == 0x53:  # S
            if self.batch_txn is not None:
                self.batch_txn.req_size += size
                self.batch_txn = None
            self.acc_bytes = 0
            self.acc_ts = -1
            self._push(Op(OP_SYNC))
        elif typ == 0x43:  # C (Close)
            if body[:1] == b"S":
                name, _ = p.cstring(body, 1)
                if name:
                    self.session.stmts.pop(name, None)
            self.acc_bytes += size
            self._push(Op(OP_CLOSE))
        elif typ == 0x48:  # H (Flush)
            self.acc_bytes += size
        elif typ == 0x46:  # F (FunctionCall): answered like a simple query
            self._push(Op(OP_FUNC))
            self._push(Op(OP_SYNC))
        # X, copy data, password/SASL messages: nothing to pair

    # -- server side ---------------------------------------------------------------------

    def _server_message(self, typ: int, body: bytes, size: int, ts: int) -> None:
        ops = self.ops
        if typ == 0x44:  # D
            op = ops[0] if ops else None
            if op is not None and op.txn is not None:
                txn = op.txn
                txn.num_rows += 1
                txn.resp_size += size
                if not txn.responded:
                    txn.end_ts = ts
                txn.responded = True
                if len(txn.rows) < self.plugin.config.max_rows:
                    cap = self.plugin.config.max_row_length + ROW_SLACK + 4 * txn.num_fields
                    txn.rows.append(body[:cap] if len(body) > cap else body)
            return
        if typ == 0x43 or typ == 0x49 or typ == 0x73:  # C, I, s: the statement is done
            op = ops[0] if ops else None
            if op is not None and op.txn is not None:
                txn = op.txn
                txn.resp_size += size
                if not txn.responded:
                    txn.end_ts = ts
                txn.responded = True
                ops.popleft()
                self._paired(txn)
            else:
                self.plugin.stats.incr("pgsql.unmatched_responses")
                self.realign.surplus()
            return
        if typ == 0x54:  # T
            self._row_description(body, size, ts)
            return
        if typ == 0x5A:  # Z
            self._ready(ts)
            return
        if typ == 0x45:  # E
            self._error(body, size, ts)
            return
        if typ == p.SSL_ANSWER:
            if body in (b"S", b"G"):
                # The rest of the connection is TLS or GSSAPI-encrypted.
                self.session.mode = MODE_ENCRYPTED
                self.plugin.stats.incr("pgsql.encrypted_connections")
            return
        expect = _ANSWERS.get(typ)
        if expect is not None:
            if ops and ops[0].kind == expect:
                if typ != 0x74:  # ParameterDescription: RowDescription or NoData follows
                    ops.popleft()
            else:
                self.plugin.stats.incr("pgsql.unexpected_messages")
            return
        if typ == 0x64:  # d: COPY OUT data, one row per message
            op = ops[0] if ops else None
            if op is not None and op.txn is not None:
                op.txn.num_rows += 1
                op.txn.resp_size += size
                if not op.txn.responded:
                    op.txn.end_ts = ts
                op.txn.responded = True
        # N, S, A, K, R, v, G, H, W, c: asynchronous or informational

    def _row_description(self, body: bytes, size: int, ts: int) -> None:
        ops = self.ops
        if not ops:
            return
        head = ops[0]
        target = head.txn
        if head.kind == OP_DESCRIBE:
            ops.popleft()
            # Describe (portal) comes before the Execute it describes.
            target = None
            for op in ops:
                if op.kind == OP_EXECUTE:
                    target = op.txn
                    break
                if op.kind == OP_SYNC or op.kind == OP_DESCRIBE:
                    break
        if target is None:
            return
        names, formats = p.parse_row_description(body)
        target.fields = names
        target.formats = formats
        target.num_fields = len(names)
        target.resp_size += size
        if not target.responded:
            target.end_ts = ts  # Packetbeat's response time: the response's first message
        target.responded = True

    def _ready(self, ts: int) -> None:
        ops = self.ops
        if not self.syncs:
            return  # end of the startup phase, or pairing state was lost
        while ops:
            op = ops.popleft()
            if op.kind == OP_SYNC:
                self.syncs -= 1
                break
            if op.txn is not None:
                self.plugin.stats.incr("pgsql.unanswered_statements")

    def _error(self, body: bytes, size: int, ts: int) -> None:
        ops = self.ops
        fields = p.parse_error_fields(body)
        target: PgsqlTransaction | None = None
        parse_op: Op | None = None
        for op in ops:
            if op.kind == OP_SYNC:
                break
            if op.txn is not None:
                target = op.txn
                break
            if op.kind == OP_PARSE and parse_op is None:
                parse_op = op
        if target is None and parse_op is not None:
            # A statement that failed to prepare and was never executed.
            target = PgsqlTransaction(self.conn, parse_op.ts, parse_op.query, self.acc_bytes)
        if target is None:
            self.plugin.stats.incr("pgsql.unmatched_responses")
            self.realign.surplus()
            # The server still skips what is queued before the next sync point.
            while ops and ops[0].kind != OP_SYNC:
                ops.popleft()
            return
        target.is_error = True
        target.error_code = fields.get("C", "")
        target.error_message = fields.get("M", "")
        target.error_severity = fields.get("S", "")
        target.resp_size += size
        if not target.responded:
            target.end_ts = ts
        target.responded = True
        self._paired(target)
        # The server skips the rest of the query string, or everything up to Sync.
        while ops and ops[0].kind != OP_SYNC:
            op = ops.popleft()
            if op.txn is not None and op.txn is not target:
                self.plugin.stats.incr("pgsql.skipped_statements")


_ANSWERS = {
    0x31: OP_PARSE,  # 1 ParseComplete
    0x32: OP_BIND,  # 2 BindComplete
    0x33: OP_CLOSE,  # 3 CloseComplete
    0x74: OP_DESCRIBE,  # t ParameterDescription
    0x6E: OP_DESCRIBE,  # n NoData
    0x56: OP_FUNC,  # V FunctionCallResponse
}
