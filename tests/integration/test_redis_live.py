"""Live Redis: a real redis-server, redis-py as the client, traffic captured on lo.

Every transaction the decoder reports is checked against what the client sent and what
it got back (method, query, status, return value or error, timing, sizes)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from tests.helpers import make_decoder, need, tcpdump
from tests.integration.redis_server import redis_server
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

try:
    import redis
except ImportError:  # pragma: no cover
    redis = None

HANDSHAKE = {"HELLO", "CLIENT SETINFO", "CLIENT MAINT_NOTIFICATIONS"}

if redis is not None:

    class SmallBufferConnection(redis.Connection):
        """Small socket buffers keep segments small: libpcap on lo can silently miss
        64 KiB loopback super-segments in a burst, which would leave gaps in the capture."""

        def _connect(self) -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(10)
            sock.connect((self.host, self.port))
            return sock


def client(port: int, **kw: Any) -> Any:
    pool = redis.ConnectionPool(host="127.0.0.1", port=port, connection_class=SmallBufferConnection, **kw)
    return redis.Redis(connection_pool=pool, single_connection_client=True)


CONTAINERS = {"CLIENT", "CONFIG"}


def render(v: Any) -> str:
    """A redis-py reply (response callbacks off) as Packetbeat renders it on the wire."""
    if v is None:
        return "nil"
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, Exception):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{render(k)}: {render(x)}" for k, x in v.items()) + "}"
    if isinstance(v, set):
        assert len(v) <= 1, "multi-element sets have no order to compare"
        v = list(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(render(x) for x in v) + "]" if v else "[]"
    raise TypeError(type(v))


def method_of(args: tuple[Any, ...]) -> str:
    words = [a if isinstance(a, str) else a.decode() for a in args[:2]]
    if words[0].upper() in CONTAINERS:
        return f"{words[0]} {words[1]}".upper()
    return words[0].upper()


class Recorder:
    """One client connection and the transactions it made: (args, ok, rendered value)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        client.response_callbacks.clear()
        self.log: list[tuple[tuple[Any, ...], bool, str]] = []
        self.do("PING")
        self.port = client.connection._sock.getsockname()[1]

    def do(self, *args: Any) -> Any:
        try:
            value = self.client.execute_command(*args)
        except redis.ResponseError as exc:
            self.log.append((args, False, str(exc)))
            return exc
        self.log.append((args, True, render(value)))
        return value

    def expect(self, args: tuple[Any, ...], ok: bool, value: str) -> None:
        self.log.append((args, ok, value))


def query_of(args: tuple[Any, ...]) -> str:
    return " ".join(a if isinstance(a, str) else a.decode() if isinstance(a, bytes) else str(a) for a in args)


def check(events: list[dict[str, Any]], port: int, log: list[tuple[tuple[Any, ...], bool, str]]) -> int:
    mine = [e for e in events if e["source"]["port"] == port]
    while mine and mine[0]["method"] in HANDSHAKE:  # redis-py's connection set-up
        mine.pop(0)
    assert len(mine) == len(log), [e["query"][:40] for e in mine[-5:]]
    for evt, (args, ok, value) in zip(mine, log, strict=True):
        assert evt["type"] == "redis"
        assert evt["query"] == query_of(args)
        assert evt["method"] == method_of(args)
        assert evt["event"]["action"] == "redis." + method_of(args).lower()
        assert evt["event"]["end"] > evt["event"]["start"] == evt["@timestamp"]
        assert evt["source"]["bytes"] > 0 and evt["destination"]["bytes"] > 0
        assert evt["destination"]["ip"] == "127.0.0.1"
        if ok:
            assert evt["status"] == "OK", evt
            assert evt["redis"] == {"return_value": value}, (evt["query"][:60], evt["redis"], value[:60])
        else:
            assert evt["status"] == "Error"
            assert evt["event"]["outcome"] == "failure"
            # redis-py strips the ERR prefix from the messages it raises
            assert evt["redis"]["error"].endswith(value), (evt["redis"], value)
    return len(mine)


def read_messages(sub: Any, n: int, kind: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        m = sub.get_message(timeout=1.0)
        if m is not None and m["type"] == kind:
            got.append(m)
    assert len(got) == n
    return got


def workload(port: int) -> tuple[list[Recorder], int]:
    a = Recorder(client(port, protocol=2))
    # Plain commands.
    for i in range(80):
        a.do("SET", f"key:{i}", f"value {i} é")
    for i in range(80):
        a.do("GET", f"key:{i}")
    for _ in range(20):
        a.do("INCR", "counter")
    a.do("GET", "missing")
    a.do("MGET", "key:1", "missing", "key:2")
    a.do("RPUSH", "small", "a", "b", "c")
    a.do("LRANGE", "small", "0", "-1")
    a.do("HSET", "hash", "f1", "v1", "f2", "v2")
    a.do("HGETALL", "hash")
    a.do("SADD", "set", "m")
    a.do("SMEMBERS", "set")
    a.do("ZADD", "zset", "1.5", "one", "2", "two")
    a.do("ZRANGE", "zset", "0", "-1", "WITHSCORES")
    a.do("EXPIRE", "key:1", "100")
    a.do("TTL", "key:1")
    a.do("TYPE", "hash")
    a.do("ECHO", "hello world")
    a.do("CONFIG", "GET", "maxmemory")
    a.do("DEL", "key:79", "nothing")
    # Errors.
    a.do("LPUSH", "key:0", "x")  # WRONGTYPE
    a.do("INCR", "key:0")  # not an integer
    a.do("HGET", "small", "f")  # WRONGTYPE
    a.do("NOSUCHCOMMAND", "arg")
    # Large results: 10,000 elements both ways, and a 200 kB value. The pauses let
    # tcpdump drain its ring: a capture that loses bytes would test nothing.
    time.sleep(0.2)
    a.do("RPUSH", "big", *[f"element-{i}" for i in range(10_000)])
    time.sleep(0.2)
    a.do("LRANGE", "big", "0", "-1")
    time.sleep(0.2)
    a.do("SET", "bigval", "x" * 200_000)
    time.sleep(0.2)
    a.do("STRLEN", "bigval")
    a.do("GET", "bigval")
    time.sleep(0.2)

    # Pipelining: 100 commands written before any reply is read (redis-py runs
    # pipelines on another connection of the pool).
    pl = Recorder.__new__(Recorder)
    pl.log = []
    pipe = a.client.pipeline(transaction=False)
    pipe.response_callbacks.clear()
    cmds = []
    for i in range(100):
        c = (
            ("SET", f"p:{i}", str(i))
            if i % 3 == 0
            else ("INCR", f"p:{i - i % 3}")
            if i % 3 == 1
            else ("GET", f"p:{i}")
        )
        if i == 50:
            c = ("LPUSH", "key:0", "x")
        cmds.append(c)
        pipe.execute_command(*c)
    for c, res in zip(cmds, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(res, Exception):
            pl.expect(c, False, str(res))
        else:
            pl.expect(c, True, render(res))

    # MULTI/EXEC with an error inside.
    tx = a.client.pipeline(transaction=True)
    tx.response_callbacks.clear()
    tcmds = [("SET", "t:1", "1"), ("INCR", "t:1"), ("LPUSH", "t:1", "x"), ("GET", "t:1")]
    for c in tcmds:
        tx.execute_command(*c)
    results = tx.execute(raise_on_error=False)
    pl.expect(("MULTI",), True, "OK")
    for c in tcmds:
        pl.expect(c, True, "QUEUED")
    pl.expect(("EXEC",), True, render(results))
    used = [c for c in a.client.connection_pool._available_connections if c._sock is not None]
    assert len(used) == 1
    pl.port = used[0]._sock.getsockname()[1]

    # RESP3 (HELLO 3), maps, doubles, nulls, booleans, client-side caching.
    b = Recorder(client(port, protocol=3))
    b.do("HSET", "h3", "a", "1", "b", "2")
    b.do("HGETALL", "h3")
    b.do("ZADD", "z3", "2.5", "m")
    b.do("ZSCORE", "z3", "m")
    b.do("ZSCORE", "z3", "absent")
    b.do("SMEMBERS", "set")
    b.do("GET", "missing")
    b.do("HGET", "h3", "a")
    b.do("LPUSH", "h3", "x")  # WRONGTYPE over RESP3
    for _ in range(20):
        b.do("INCRBYFLOAT", "f3", "0.5")
    b.do("CLIENT", "TRACKING", "ON")
    b.do("GET", "tracked")
    a.do("SET", "tracked", "changed")  # invalidation push to b
    time.sleep(0.1)
    b.do("PING")
    b.do("GET", "tracked")

    # Pub/sub over RESP2 and RESP3: deliveries must not become transactions.
    pushes = 0
    for proto, n in ((2, 50), (3, 20)):
        sub_client = redis.Redis(
            connection_pool=redis.ConnectionPool(
                host="127.0.0.1", port=port, protocol=proto, connection_class=SmallBufferConnection
            )
        )
        sub = sub_client.pubsub()
        sub.subscribe("news", "sport")
        read_messages(sub, 2, "subscribe")
        for i in range(n):
            a.do("PUBLISH", "news" if i % 2 else "sport", f"message {i}")
        got = read_messages(sub, n, "message")
        assert [m["data"] for m in got] == [f"message {i}".encode() for i in range(n)]
        sub.unsubscribe()
        read_messages(sub, 2, "unsubscribe")
        sub.close()
        sub_client.close()
        pushes += n
    a.client.close()
    b.client.close()
    return [a, b, pl], pushes


def test_redis_live_workload(tmp_path: Path) -> None:
    if redis is None:
        need("python package redis (redis-py)")
    with redis_server() as port:
        pcap = tmp_path / "redis.pcap"
        with tcpdump(pcap, f"tcp port {port}", settle=2.5):
            recorders, pushes = workload(port)
        record_for_oracle(pcap, [{"type": "redis", "ports": [port]}])
        dec = make_decoder({"redis": {"ports": [port]}})
        events: list[dict[str, Any]] = []
        for ts, lt, frame, _ in CaptureFile(str(pcap)):
            events += dec.feed(ts, lt, frame)
        events += dec.flush()
    stats = dec.stats
    assert stats.get("redis.parse_errors", 0) == 0
    assert stats.get("redis.unmatched_responses", 0) == 0
    assert stats.get("redis.unmatched_requests", 0) == 0
    assert stats.get("tcp.gaps", 0) == 0
    # every pub/sub delivery and the one invalidation push were recognised as pushes
    assert stats["redis.push_messages"] == pushes + 1
    a, b, pl = recorders
    total = sum(check(events, r.port, r.log) for r in recorders)
    assert total >= 400
    # RESP3 hello: a map reply
    hello = [e for e in events if e["source"]["port"] == b.port and e["method"] == "HELLO"]
    assert len(hello) == 1 and hello[0]["redis"]["return_value"].startswith("{server: redis")
    # Pub/sub connections: one SUBSCRIBE and one UNSUBSCRIBE each, nothing for deliveries.
    ports = {e["source"]["port"] for e in events} - {a.port, b.port, pl.port}
    assert len(ports) == 2
    for p in ports:
        subs = [e for e in events if e["source"]["port"] == p and e["method"] not in HANDSHAKE]
        assert [e["method"] for e in subs] == ["SUBSCRIBE", "UNSUBSCRIBE"]
        assert subs[0]["redis"]["return_value"] == "[subscribe, news, 1], [subscribe, sport, 2]"
        unsub = subs[1]["redis"]["return_value"]
        assert unsub in (
            "[unsubscribe, news, 1], [unsubscribe, sport, 0]",
            "[unsubscribe, sport, 1], [unsubscribe, news, 0]",
        )
        assert all(e["status"] == "OK" for e in subs)
