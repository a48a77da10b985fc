"""Pairing MySQL commands with their responses on one connection (Packetbeat §1.7, §2.4).

The protocol is strictly one command, then its response. Client packets with sequence
id 0 are commands; ``COM_QUERY``, ``COM_STMT_PREPARE`` and ``COM_STMT_EXECUTE`` become
transactions, ``COM_STMT_CLOSE`` forgets a statement, everything else is skipped. Server
packets are decoded only while a transaction waits for its response; the response is
decoded packet by packet (packet framing never depends on content, so a bad payload
costs one transaction, not the stream).

Packetbeat's rule for a second command before a response is kept: the older request is
dropped and counted (``mysql.unmatched_requests``). A command arriving while a response
is still open (a result set whose terminator was ambiguous) completes that response.

Per-connection facts that must outlive an idle expiry or a gap (prepared statements,
negotiated capabilities, TLS/compression) live in a ``Session`` owned by the plugin,
keyed by the connection's 4-tuple and expired after ``statement_timeout``.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from protocols.handler import FROM_CLIENT, ConnectionHandler, ConnInfo
from protocols.mysql import parser as p
from protocols.mysql.parser import ColumnDef, PacketStream, ParseError

if TYPE_CHECKING:
    from protocols.mysql import MysqlPlugin

#: Prepared statements remembered per connection.
MAX_STATEMENTS = 4096
#: Bytes of a row payload kept for ``response`` beyond ``max_row_length``.
ROW_SLACK = 256
#: Rows that start past this many bytes of the response are counted, not kept.
MAX_RESPONSE_BYTES = 100 * 1024
#: Columns of a result set: MySQL's and MariaDB's hard limit (a select list or table
#: with more fails with ER_TOO_MANY_FIELDS). A response announcing more is malformed:
#: it is closed with a note and counted (``mysql.too_many_columns``).
MAX_COLUMNS = 4096

COM_CHANGE_USER = 0x11
COM_RESET_CONNECTION = 0x1F

PH_CMD, PH_GREETED, PH_AUTH = range(3)
R_START, R_COLS, R_COLS_EOF, R_ROWS, R_PREP_DEFS, R_PREP_EOF = range(6)
MODE_PLAIN, MODE_TLS, MODE_COMPRESSED = "plain", "tls", "compressed"

UNKNOWN_EXECUTE = "Request Execute Statement"
UNKNOWN_NOTE = "The actual query being used is unknown"
LOSS_NOTE = "Packet loss while capturing the response"
CLOSED_NOTE = "Response incomplete at end of stream"

_DECODE_ERRORS = (ParseError, IndexError, struct.error)


def packetbeat_params(values: list[str], types: list[tuple[int, bool]] | None) -> list[str]:
    """Execute parameters in Packetbeat's renderings where they are a convention, not an error:
    dates as ``year/month/day hour:minute:second`` without padding or fraction
    (``2017/7/28 0:0:0``), a value of type NULL as ``TYPE_NULL``."""
    if not types:
        return values
    out = list(values)
    for i, (type_, _unsigned) in enumerate(types[: len(out)]):
        if type_ == p.T_NULL:
            out[i] = "TYPE_NULL"
        elif type_ in p.DATE_TYPES and out[i] != "NULL":
            out[i] = _packetbeat_date(out[i])
    return out


def _packetbeat_date(value: str) -> str:
    day, _, clock = value.partition(" ")
    y, m, d = (int(x) for x in day.split("-"))
    text = f"{y}/{m}/{d}"
    if clock:
        h, mi, sec = (int(float(x)) for x in clock.split(":"))
        text += f" {h}:{mi}:{sec}"
    return text


class Statement:
    __slots__ = ("nparams", "query", "types")

    def __init__(self, query: str, nparams: int) -> None:
        self.query = query
        self.nparams = nparams
        self.types: list[tuple[int, bool]] | None = None


class Session:
    """What is known about one connection beyond its current handler."""

    __slots__ = ("client_caps", "last_stmt", "last_ts", "mode", "server_caps", "stmts")

    def __init__(self, ts: int) -> None:
        self.stmts: dict[int, Statement] = {}
        self.last_stmt = 0
        self.server_caps: int | None = None
        self.client_caps: int | None = None
        self.mode = MODE_PLAIN
        self.last_ts = ts

    def query_attributes(self) -> bool:
        """CLIENT_QUERY_ATTRIBUTES (MySQL 8): COM_QUERY and COM_STMT_EXECUTE carry attributes."""
        if self.server_caps is None or self.client_caps is None:
            return False
        return bool(self.server_caps & self.client_caps & p.CLIENT_QUERY_ATTRIBUTES)

    def deprecate_eof(self) -> bool | None:
        """Whether result sets omit EOF packets; None when the handshake was not seen."""
        if self.server_caps is None or self.client_caps is None:
            return None
        return bool(self.server_caps & self.client_caps & p.CLIENT_DEPRECATE_EOF)


class MysqlTransaction:
    """One command and its response."""

    __slots__ = (
        "affected_rows",
        "binary",
        "cmd",
        "columns",
        "conn",
        "end_ts",
        "error_code",
        "error_message",
        "fields",
        "insert_id",
        "is_error",
        "notes",
        "num_fields",
        "num_rows",
        "params",
        "query",
        "req_size",
        "resp_size",
        "responded",
        "rows",
        "tables",
        "ts",
    )

    def __init__(self, conn: ConnInfo, ts: int, cmd: int, query: str, req_size: int) -> None:
        self.conn = conn
        self.ts = ts
        self.end_ts = ts
        self.cmd = cmd
        self.query = query
        self.req_size = req_size
        self.resp_size = 0
        self.responded = False
        self.params: list[str] | None = None
        self.notes: list[str] = []
        self.is_error = False
        self.error_code = 0
        self.error_message = ""
        self.affected_rows = 0
        self.insert_id = 0
        self.num_rows = 0
        self.num_fields = 0
        #: ``schema.table`` of the columns, in order (a dict: a set that keeps order).
        self.tables: dict[str, None] = {}
        self.fields: list[str] = []
        self.columns: list[ColumnDef] = []
        self.rows: list[bytes] = []
        self.binary = cmd == p.COM_STMT_EXECUTE


class MysqlHandler(ConnectionHandler):
    __slots__ = (
        "capped",
        "client_synced",
        "deferred",
        "first_result",
        "groups",
        "left",
        "out",
        "pending",
        "phase",
        "rstate",
        "server_synced",
        "session",
        "streams",
    )

    plugin: MysqlPlugin

    def __init__(self, plugin: MysqlPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.session = plugin.session(conn)
        self.streams = (PacketStream(), PacketStream())
        self.phase = PH_CMD
        self.pending: MysqlTransaction | None = None
        self.rstate = R_START
        self.left = 0
        self.groups: list[tuple[int, bool]] = []
        self.first_result = True
        self.capped = False
        self.client_synced = False
        self.server_synced = False
        self.out: list[Any] = []
        self.deferred: list[Any] = []

    # -- seam ----------------------------------------------------------------------------

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        session = self.session
        session.last_ts = ts
        if session.mode != MODE_PLAIN:
            return self._take()
        stream = self.streams[direction]
        if direction == FROM_CLIENT:
            if not self.client_synced and not stream.pending and not self._plausible_client(data):
                self.plugin.stats.incr("mysql.parse_errors")
                return self._take()
            self.client_synced = True
            for seq, payload, n, cont in stream.feed(data):
                try:
                    self._client_packet(seq, payload, n, cont, ts)
                except _DECODE_ERRORS:
                    self.plugin.stats.incr("mysql.parse_errors")
                if session.mode != MODE_PLAIN:
                    break
        else:
            if not self.server_synced:
                if self.pending is None and not self._looks_like_greeting(data):
                    self.plugin.stats.incr("mysql.unsynced_segments")
                    return self._take()
                self.server_synced = True
            for seq, payload, n, cont in stream.feed(data):
                try:
                    self._server_packet(seq, payload, n, cont, ts)
                except _DECODE_ERRORS:
                    self._server_parse_error()
                if session.mode != MODE_PLAIN:
                    break
        if stream.oversized:
            self.plugin.stats.incr("mysql.oversized_packets", stream.oversized)
            stream.oversized = 0
        return self._take()

    def on_gap(self, direction: int, nbytes: int) -> bool:
        # Length-prefixed and binary: too few cases to resync in place (Packetbeat drops too).
        # A result set being received is worth publishing with what arrived.
        txn = self.pending
        if txn is not None and direction != FROM_CLIENT and self.rstate in (R_COLS, R_COLS_EOF, R_ROWS):
            txn.notes.append(LOSS_NOTE)
            self._finish()
            self.deferred.extend(self.out)
            self.out = []
        return True

    def on_close(self, reason: str) -> list[Any]:
        for stream in self.streams:
            if stream.pending:
                self.plugin.stats.incr("mysql.incomplete_messages")
        out = self._take()
        txn = self.pending
        if txn is not None:
            if txn.responded:
                if self.rstate not in (R_PREP_EOF, R_COLS_EOF):
                    txn.notes.append(CLOSED_NOTE)
                self._finish()
                out += self._take()
            else:
                self.plugin.stats.incr("mysql.unmatched_requests")
                self.pending = None
        if reason in ("fin", "rst"):
            self.plugin.end_session(self.conn)
        return out

    # -- helpers -------------------------------------------------------------------------

    def _take(self) -> list[Any]:
        out = self.out
        if self.deferred:
            out = self.deferred + out
            self.deferred = []
        elif not out:
            return []
        self.out = []
        return out

    @staticmethod
    def _plausible_client(data: bytes) -> bool:
        """A chunk that can start at a packet boundary: a command (seq 0) or a handshake packet."""
        if len(data) < 5:
            return True  # too short to judge
        n = data[0] | (data[1] << 8) | (data[2] << 16)
        seq = data[3]
        if seq == 0:
            return n >= 1 and data[4] <= p.MAX_COMMAND
        return seq <= 3 and n >= 4

    @staticmethod
    def _looks_like_greeting(data: bytes) -> bool:
        return len(data) >= 5 and data[3] == 0 and data[4] == 0x0A

    def _server_parse_error(self) -> None:
        self.plugin.stats.incr("mysql.parse_errors")
        txn = self.pending
        if txn is not None:
            txn.notes.append("Malformed response")
            self._finish()

    def _finish(self) -> None:
        txn = self.pending
        if txn is None:
            return
        self.pending = None
        self.rstate = R_START
        self.first_result = True
        self.capped = False
        self.out.append(txn)

    # -- client side ---------------------------------------------------------------------

    def _client_packet(self, seq: int, payload: bytes, n: int, cont: bool, ts: int) -> None:
        session = self.session
        if cont:
            txn = self.pending
            if txn is not None and not txn.responded:
                txn.req_size += 4 + n
            return
        if self.phase == PH_GREETED and seq == 1:
            self._handshake_response(payload, n)
            return
        if seq != 0 or not payload:
            return  # authentication data, LOCAL INFILE contents ...
        self.phase = PH_CMD
        cmd = payload[0]
        stats = self.plugin.stats
        txn = self.pending
        if cmd not in p.NO_RESPONSE:
            if txn is not None:
                if txn.responded:
                    self._finish()  # the server must be done with it
                else:
                    stats.incr("mysql.unmatched_requests")
                    self.pending = None
            server = self.streams[1]
            if server.pending:
                stats.incr("mysql.resyncs")
                server.reset()
            self.server_synced = True
        if cmd == p.COM_QUERY:
            try:
                sql = p.query_text(payload, session.query_attributes())
            except _DECODE_ERRORS:
                stats.incr("mysql.parse_errors")
                sql = payload[1:]
            self.pending = MysqlTransaction(self.conn, ts, cmd, p.text(sql), 4 + n)
            self.rstate = R_START
        elif cmd == p.COM_STMT_PREPARE:
            self.pending = MysqlTransaction(self.conn, ts, cmd, p.text(payload[1:]), 4 + n)
            self.rstate = R_START
        elif cmd == p.COM_STMT_EXECUTE:
            self._execute(payload, n, ts)
        elif cmd == p.COM_STMT_CLOSE:
            if len(payload) >= 5:
                session.stmts.pop(struct.unpack_from("<I", payload, 1)[0], None)
        elif cmd in (COM_CHANGE_USER, COM_RESET_CONNECTION):
            session.stmts.clear()  # the server drops the connection's prepared statements
            stats.incr("mysql.skipped_commands")
        else:
            stats.incr("mysql.skipped_commands")

    def _execute(self, payload: bytes, n: int, ts: int) -> None:
        session = self.session
        stats = self.plugin.stats
        if len(payload) < 5:
            stats.incr("mysql.parse_errors")
            return
        stmt_id = struct.unpack_from("<I", payload, 1)[0]
        if stmt_id == 0xFFFFFFFF:  # MariaDB: the statement prepared last
            stmt_id = session.last_stmt
        stmt = session.stmts.get(stmt_id)
        if stmt is None:
            txn = MysqlTransaction(self.conn, ts, p.COM_STMT_EXECUTE, UNKNOWN_EXECUTE, 4 + n)
            txn.notes.append(UNKNOWN_NOTE)
            stats.incr("mysql.unknown_statements")
        else:
            txn = MysqlTransaction(self.conn, ts, p.COM_STMT_EXECUTE, stmt.query, 4 + n)
            if stmt.nparams:
                try:
                    params, stmt.types = p.execute_params(
                        payload, stmt.nparams, stmt.types, session.query_attributes()
                    )
                    txn.params = packetbeat_params(params, stmt.types)
                except _DECODE_ERRORS:
                    stats.incr("mysql.param_errors")
        self.pending = txn
        self.rstate = R_START

    def _handshake_response(self, payload: bytes, n: int) -> None:
        session = self.session
        caps = 0
        if len(payload) >= 4:
            caps = struct.unpack_from("<I", payload, 0)[0]
            if not caps & p.CLIENT_PROTOCOL_41:
                caps &= 0xFFFF
        if caps & p.CLIENT_SSL and n <= 36:
            # SSLRequest: the rest of the connection is TLS records.
            session.mode = MODE_TLS
            self.plugin.stats.incr("mysql.tls_connections")
            return
        session.client_caps = caps
        self.phase = PH_AUTH

    # -- server side ---------------------------------------------------------------------

    def _greeting(self, payload: bytes) -> None:
        nul = payload.find(b"\0", 1)
        off = nul + 1 + 4 + 8 + 1
        if nul < 0 or off + 2 > len(payload):
            return
        caps = struct.unpack_from("<H", payload, off)[0]
        if off + 7 <= len(payload):
            caps |= struct.unpack_from("<H", payload, off + 5)[0] << 16
        # A greeting starts a connection: nothing from an earlier one on this 4-tuple holds.
        self.session.stmts.clear()
        self.session.client_caps = None
        self.session.server_caps = caps
        self.phase = PH_GREETED

    def _after_auth(self) -> None:
        session = self.session
        if session.server_caps is None or session.client_caps is None:
            return
        if session.server_caps & session.client_caps & (p.CLIENT_COMPRESS | p.CLIENT_ZSTD):
            # Compressed protocol from here on: recognised, counted, not decoded.
            session.mode = MODE_COMPRESSED
            self.plugin.stats.incr("mysql.compressed_connections")

    def _server_packet(self, seq: int, payload: bytes, n: int, cont: bool, ts: int) -> None:
        txn = self.pending
        if txn is None:
            if seq == 0 and payload[:1] == b"\x0a" and self.phase == PH_CMD:
                self._greeting(payload)
            elif self.phase == PH_AUTH and payload:
                first = payload[0]
                if first == 0x00:
                    self.phase = PH_CMD
                    self._after_auth()
                elif first == 0xFF:
                    self.phase = PH_CMD
            elif seq == 1:
                self.plugin.stats.incr("mysql.unmatched_responses")
            return
        txn.resp_size += 4 + n
        if not txn.responded:
            txn.end_ts = ts  # Packetbeat's response time: the response's first packet
        txn.responded = True
        if cont or not payload:
            return
        state = self.rstate
        first = payload[0]
        if state == R_ROWS:
            self._row(txn, payload, n, first)
        elif state == R_START:
            self._response_start(txn, payload, n, first)
        elif state == R_COLS:
            if p.is_eof(payload, n):
                self.rstate = R_ROWS
                return
            col = p.column_def(payload)
            if self.first_result:
                txn.columns.append(col)
                txn.fields.append(col.name)
            txn.tables[col.path] = None
            self.left -= 1
            if self.left <= 0:
                self.rstate = R_ROWS if self.session.deprecate_eof() else R_COLS_EOF
        elif state == R_COLS_EOF:
            self.rstate = R_ROWS
            if first == 0xFE and n < 7:
                return  # the EOF after the column definitions
            self._row(txn, payload, n, first)
        elif state == R_PREP_DEFS:
            if p.is_eof(payload, n):
                self._next_group()
                return
            self.left -= 1
            if self.left <= 0:
                if self.session.deprecate_eof():
                    self._next_group()
                else:
                    self.rstate = R_PREP_EOF
        elif state == R_PREP_EOF:
            if p.is_eof(payload, n):
                self._next_group()
            else:
                # No EOF after all (CLIENT_DEPRECATE_EOF): this starts the next group.
                self._next_group()
                if self.pending is txn and self.rstate == R_PREP_DEFS:
                    self._server_packet_defs_continue()

    def _server_packet_defs_continue(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self._next_group()

    def _next_group(self) -> None:
        if self.groups:
            self.left, _ = self.groups.pop(0)
            self.rstate = R_PREP_DEFS
        else:
            self._finish()

    def _response_start(self, txn: MysqlTransaction, payload: bytes, n: int, first: int) -> None:
        if first == 0x00:
            if txn.cmd == p.COM_STMT_PREPARE and n >= 12:
                self._prepare_ok(txn, payload)
                return
            affected, insert_id, status = p.parse_ok(payload)
            txn.affected_rows += affected
            if insert_id:
                txn.insert_id = insert_id
            if not status & p.SERVER_MORE_RESULTS_EXISTS:
                self._finish()
        elif first == 0xFF:
            txn.is_error = True
            txn.error_code, txn.error_message = p.parse_err(payload)
            self._finish()
        elif first == 0xFE:
            status = p.eof_status(payload) if n < 7 else p.parse_ok(payload)[2]
            if not status & p.SERVER_MORE_RESULTS_EXISTS:
                self._finish()
        elif first == 0xFB:
            pass  # LOCAL INFILE request: the client sends the file, then the server answers
        else:
            ncols, _ = p.lenenc_int(payload, 0)
            if ncols > MAX_COLUMNS:
                self.plugin.stats.incr("mysql.too_many_columns")
                txn.notes.append("More than 4096 columns")
                self._finish()
                return
            if self.first_result:
                txn.num_fields = ncols
            self.left = ncols
            self.rstate = R_COLS if ncols else R_ROWS

    def _prepare_ok(self, txn: MysqlTransaction, payload: bytes) -> None:
        session = self.session
        stmt_id, ncols, nparams = p.parse_prepare_ok(payload)
        txn.num_fields = ncols
        stmts = session.stmts
        stmts.pop(stmt_id, None)
        if len(stmts) >= MAX_STATEMENTS:
            del stmts[next(iter(stmts))]
            self.plugin.stats.incr("mysql.statements_evicted")
        stmts[stmt_id] = Statement(txn.query, nparams)
        session.last_stmt = stmt_id
        self.groups = [(g, False) for g in (nparams, ncols) if g]
        self._next_group()

    def _row(self, txn: MysqlTransaction, payload: bytes, n: int, first: int) -> None:
        if first == 0xFE and n < p.MAX_PAYLOAD:
            status = p.eof_status(payload) if n < 7 else p.parse_ok(payload)[2]
            if status & p.SERVER_MORE_RESULTS_EXISTS:
                self.rstate = R_START
                self.first_result = False
            else:
                self._finish()
        elif first == 0xFF and n < p.MAX_PAYLOAD:
            txn.is_error = True
            txn.error_code, txn.error_message = p.parse_err(payload)
            self._finish()
        else:
            txn.num_rows += 1
            if self.first_result and len(txn.rows) < self.plugin.config.max_rows and not self.capped:
                cap = self.plugin.config.max_row_length + ROW_SLACK + 9 * len(txn.columns)
                txn.rows.append(payload[:cap] if len(payload) > cap else payload)
                # Packetbeat renders ``response`` from the first 100 KiB of the result only.
                self.capped = txn.resp_size > MAX_RESPONSE_BYTES
