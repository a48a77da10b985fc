"""A scripted cassandra-driver workload and a recorder of every frame the driver exchanges.

``FrameRecorder`` wraps ``cassandra.connection.Connection.send_msg`` and ``process_msg``: for
each request it keeps the connection's local port, the stream id, the message object, the
encoded frame's length and its header flags; for each response (pushed EVENTs included) the
stream id, header, wire length and the message decoded again with the driver's own decoder
(``ProtocolHandler.decode_message``, with the result metadata the request registered). The
live test pairs these records with the decoder's transactions on (client port, stream id).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.cluster import Cluster, ExecutionProfile, ResponseFuture
from cassandra.connection import Connection
from cassandra.policies import RoundRobinPolicy
from cassandra.protocol import ProtocolHandler, SyntaxException
from cassandra.query import BatchStatement, BatchType, SimpleStatement

HEADER = 9


class Sent:
    __slots__ = ("flags", "msg", "op", "port", "size", "stream", "ts", "version")

    def __init__(self, port: int, stream: int, msg: Any, size: int, flags: int, version: int) -> None:
        self.port = port
        self.stream = stream
        self.msg = msg
        self.op = msg.opcode
        self.size = size
        self.flags = flags
        self.version = version
        self.ts = time.time_ns()


class Received:
    __slots__ = ("flags", "msg", "op", "port", "size", "stream", "version")

    def __init__(self, port: int, header: Any, size: int, msg: Any) -> None:
        self.port = port
        self.stream = header.stream
        self.op = header.opcode
        self.flags = header.flags
        self.version = header.version
        self.size = size
        self.msg = msg


class FrameRecorder:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[FrameRecorder]:
        orig_send = Connection.send_msg
        orig_process = Connection.process_msg
        rec = self

        def send_msg(conn: Any, msg: Any, request_id: int, cb: Any, encoder: Any = None, **kw: Any) -> Any:
            enc = encoder or ProtocolHandler.encode_message

            def recording_encoder(m: Any, stream: int, version: int, *a: Any, **k: Any) -> Any:
                buf = enc(m, stream, version, *a, **k)
                with rec.lock:
                    rec.sent.append(Sent(_port(conn), stream, m, len(buf), buf[1], buf[0]))
                return buf

            return orig_send(conn, msg, request_id, cb, encoder=recording_encoder, **kw)

        def process_msg(conn: Any, header: Any, body: Any) -> Any:
            meta = None
            entry = conn._requests.get(header.stream) if header.stream >= 0 else None
            if entry is not None:
                meta = entry[2]
            try:
                msg = ProtocolHandler.decode_message(
                    header.version,
                    conn.user_type_map,
                    header.stream,
                    header.flags,
                    header.opcode,
                    body,
                    conn.decompressor,
                    meta,
                )
            except Exception as exc:  # recorded as it is: the test reports it
                msg = exc
            with rec.lock:
                rec.received.append(Received(_port(conn), header, HEADER + len(body), msg))
            return orig_process(conn, header, body)

        Connection.send_msg = send_msg  # type: ignore[method-assign]
        Connection.process_msg = process_msg  # type: ignore[method-assign]
        try:
            yield self
        finally:
            Connection.send_msg = orig_send  # type: ignore[method-assign]
            Connection.process_msg = orig_process  # type: ignore[method-assign]


def _port(conn: Any) -> int:
    try:
        return int(conn._socket.getsockname()[1])
    except (OSError, AttributeError):
        return -1


def cluster(port: int, protocol_version: int, compression: Any) -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=RoundRobinPolicy(), consistency_level=ConsistencyLevel.ONE, request_timeout=30
    )
    return Cluster(
        ["127.0.0.1"],
        port=port,
        protocol_version=protocol_version,
        compression=compression,
        execution_profiles={"default": profile},  # type: ignore[dict-item]
        connect_timeout=30,
        control_connection_timeout=30,
        idle_heartbeat_interval=0,
        schema_metadata_enabled=True,
        token_metadata_enabled=False,
    )


class Counts:
    def __init__(self) -> None:
        self.ops = 0
        self.errors = 0
        self.traced: list[uuid.UUID] = []
        self.pages = 0


def full_workload(session: Any, ks: str, n: Counts, size: int = 1) -> None:
    """Schema changes, prepared statements, batches, paging, tracing, errors, async bursts.
    ``size`` scales the loops (1: the full >= 200 operation run)."""

    def ex(q: Any, *args: Any, **kw: Any) -> Any:
        n.ops += 1
        return session.execute(q, *args, **kw)

    def err(exc: type[BaseException], q: Any, *args: Any) -> None:
        n.ops += 1
        n.errors += 1
        try:
            session.execute(q, *args)
        except exc:
            return
        raise AssertionError(f"{q!r} did not fail")

    ex(f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    ex(f"USE {ks}")
    ex("CREATE TYPE addr (street text, zip int)")
    ex(
        "CREATE TABLE users (id int PRIMARY KEY, name text, email text, age int, "
        "tags set<text>, prefs map<text, int>, home frozen<addr>, pos tuple<int, text>)"
    )
    ex("CREATE TABLE events (day text, ts timeuuid, v double, PRIMARY KEY (day, ts))")
    ex("CREATE INDEX ON users (email)")
    ins = session.prepare(
        "INSERT INTO users (id, name, email, age, tags, prefs, pos) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    n.ops += 1
    sel = session.prepare("SELECT id, name, email FROM users WHERE id = ?")
    n.ops += 1
    for i in range(80 * size):
        ex(ins, (i, f"user{i}", f"u{i}@example.org", 20 + i % 50, {"a", f"t{i % 3}"}, {"k": i}, (i, "p")))
    for i in range(40 * size):
        rows = list(ex(sel, (i,)))
        assert rows and rows[0].id == i
    ev = session.prepare("INSERT INTO events (day, ts, v) VALUES (?, now(), ?)")
    n.ops += 1
    for b in range(8 * size):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED if b % 2 else BatchType.LOGGED)
        for j in range(10):
            batch.add(ev, (f"d{b % 3}", float(j)))
        ex(batch)
    # A batch over the 5 KiB warning threshold: the response carries warnings.
    big = BatchStatement(batch_type=BatchType.LOGGED)
    for j in range(40):
        big.add(ins, (1000 + j, "x" * 200, f"big{j}@example.org", j, set(), {}, (j, "b")))
    ex(big)
    # Simple statements with literals, a counting query, a paged read of every row.
    for i in range(20 * size):
        ex(f"UPDATE users SET age = {i} WHERE id = {i}")
    ex("SELECT count(*) FROM users")
    stmt = SimpleStatement("SELECT * FROM events", fetch_size=25)
    rows = list(ex(stmt))
    assert len(rows) == 80 * size
    n.pages += len(rows) // 25 + 1
    n.ops += len(rows) // 25  # the extra page requests
    ex("SELECT * FROM users WHERE email = 'u3@example.org'")
    # Tracing: the response carries the trace id; the driver reads the trace back.
    res = ex("SELECT name FROM users WHERE id = 7", trace=True)
    trace = res.get_query_trace(max_wait_sec=10)
    n.traced.append(trace.trace_id)
    # An async burst: many requests in flight on one connection, answered in any order.
    futures: list[ResponseFuture] = []
    for i in range(30 * size):
        n.ops += 1
        futures.append(session.execute_async(sel, (i % 60,)))
    for f in futures:
        f.result()
    # Errors: syntax, unknown table, invalid request, already exists.
    err(SyntaxException, "SELEKT * FROM users")
    err(InvalidRequest, "SELECT * FROM no_such_table")
    err(InvalidRequest, "INSERT INTO users (id, age) VALUES (1, 'not a number')")
    from cassandra import AlreadyExists

    err(AlreadyExists, "CREATE TABLE users (id int PRIMARY KEY)")
    ex("ALTER TABLE users ADD nick text")
    ex("TRUNCATE events")
    ex("DROP TABLE events")
    ex(f"DROP KEYSPACE {ks}")


def small_workload(session: Any, ks: str, n: Counts) -> None:
    """A shorter run for the compressed and v5 connections."""

    def ex(q: Any, *args: Any, **kw: Any) -> Any:
        n.ops += 1
        return session.execute(q, *args, **kw)

    ex(f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    ex(f"CREATE TABLE {ks}.kv (k int PRIMARY KEY, v text)")
    ins = session.prepare(f"INSERT INTO {ks}.kv (k, v) VALUES (?, ?)")
    n.ops += 1
    for i in range(30):
        ex(ins, (i, "value-" * (i % 7 + 1)))
    batch = BatchStatement()
    for i in range(30, 40):
        batch.add(ins, (i, "b"))
    ex(batch)
    rows = list(ex(SimpleStatement(f"SELECT * FROM {ks}.kv", fetch_size=15)))
    assert len(rows) == 40
    n.ops += 2
    for i in range(10):
        ex(f"SELECT v FROM {ks}.kv WHERE k = {i}")
    res = ex(f"SELECT v FROM {ks}.kv WHERE k = 3", trace=True)
    n.traced.append(res.get_query_trace(max_wait_sec=10).trace_id)
    futures = [session.execute_async(f"SELECT k FROM {ks}.kv WHERE k = {i}") for i in range(15)]
    n.ops += len(futures)
    for f in futures:
        f.result()
    n.ops += 2
    n.errors += 2
    try:
        session.execute("SELEKT 1")
    except SyntaxException:
        pass
    try:
        session.execute(f"SELECT * FROM {ks}.nope")
    except InvalidRequest:
        pass
    ex(f"DROP KEYSPACE {ks}")
