"""The asyncio client against our fault-injecting receiver (lumberjack.md §1.3, §6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import pytest

from protocols.stats import Counters
from shipper.outputs.lumberjack.client import LumberjackClient, LumberjackError
from tests.shipper.fakelj import ACK, Act, FakeLumberjack, N


def payloads(n: int, start: int = 0, pad: int = 0) -> list[bytes]:
    return [orjson.dumps({"id": i, "pad": "x" * pad}) for i in range(start, start + n)]


def run(fn: Callable[[FakeLumberjack], Coroutine[Any, Any, None]], server: FakeLumberjack) -> None:
    async def main() -> None:
        await server.start()
        try:
            await asyncio.wait_for(fn(server), 60)
        finally:
            await server.stop()

    asyncio.run(main())


def client(server: FakeLumberjack, **kw: Any) -> LumberjackClient:
    kw.setdefault("timeout", 5.0)
    return LumberjackClient("127.0.0.1", server.port, **kw)


@pytest.mark.parametrize("level", [0, 3, 9])
@pytest.mark.parametrize("logstash_style", [False, True])
def test_windows_are_acknowledged(level: int, logstash_style: bool) -> None:
    server = FakeLumberjack(lambda _n: Act(logstash_style=logstash_style))

    async def go(s: FakeLumberjack) -> None:
        c = client(s, compression_level=level)
        await c.connect()
        assert await c.send(payloads(100)) == 100
        assert await c.send(payloads(3, 100)) == 3
        assert await c.send([]) == 0
        await c.close()

    run(go, server)
    assert server.window_sizes == [100, 3]  # the empty send wrote nothing
    assert server.ids() == list(range(103))
    assert server.connections == 1


def test_keepalive_acks_for_longer_than_the_timeout_are_progress() -> None:
    # Seven ACK 0 frames 0.2 s apart: 1.4 s without a real ACK, timeout 0.5 s.
    server = FakeLumberjack(lambda _n: Act(acks=(0,) * 7 + (N,), delay=0.2))
    stats = Counters()

    async def go(s: FakeLumberjack) -> None:
        c = client(s, timeout=0.5, stats=stats)
        await c.connect()
        t = time.monotonic()
        assert await c.send(payloads(5)) == 5
        assert time.monotonic() - t >= 1.4
        await c.close()

    run(go, server)
    assert stats["output.keepalive_acks"] == 7


def test_partial_acks_are_progress() -> None:
    server = FakeLumberjack(lambda _n: Act(acks=(2, 0, 5, 8, N), delay=0.3))
    stats = Counters()

    async def go(s: FakeLumberjack) -> None:
        c = client(s, timeout=0.5, stats=stats)
        await c.connect()
        assert await c.send(payloads(10)) == 10
        await c.close()

    run(go, server)
    assert stats["output.partial_acks"] == 3


def test_partial_ack_then_close_reports_the_acknowledged_prefix() -> None:
    server = FakeLumberjack(lambda _n: Act(acks=(3,), then="close"))

    async def go(s: FakeLumberjack) -> None:
        c = client(s)
        await c.connect()
        with pytest.raises(LumberjackError) as ei:
            await c.send(payloads(10))
        assert ei.value.acked == 3
        assert ei.value.written
        assert not c.connected
        await c.close()

    run(go, server)


def test_ack_beyond_the_window_is_a_protocol_error() -> None:
    server = FakeLumberjack(lambda _n: Act(acks=(2,), then="too_big"))
    stats = Counters()

    async def go(s: FakeLumberjack) -> None:
        c = client(s, stats=stats)
        await c.connect()
        with pytest.raises(LumberjackError, match="invalid sequence number") as ei:
            await c.send(payloads(4))
        assert ei.value.kind == "protocol"
        assert ei.value.acked == 2
        await c.close()

    run(go, server)
    assert stats["output.protocol_errors"] == 1


def test_garbage_frame_is_a_protocol_error() -> None:
    server = FakeLumberjack(lambda _n: Act(acks=(), then="garbage"))

    async def go(s: FakeLumberjack) -> None:
        c = client(s)
        await c.connect()
        with pytest.raises(LumberjackError, match="expected an ACK frame") as ei:
            await c.send(payloads(4))
        assert ei.value.acked == 0
        await c.close()

    run(go, server)


def test_stall_past_the_timeout() -> None:
    server = FakeLumberjack(lambda _n: Act(acks=(1,), then="stall"))
    stats = Counters()

    async def go(s: FakeLumberjack) -> None:
        c = client(s, timeout=0.4, stats=stats)
        await c.connect()
        t = time.monotonic()
        with pytest.raises(LumberjackError, match="no ACK") as ei:
            await c.send(payloads(4))
        took = time.monotonic() - t
        assert 0.35 <= took < 3
        assert ei.value.kind == "timeout"
        assert ei.value.acked == 1
        await c.close()

    run(go, server)
    assert stats["output.timeouts"] == 1


def test_close_mid_batch() -> None:
    server = FakeLumberjack(lambda _n: Act(close_on_window=True))

    async def go(s: FakeLumberjack) -> None:
        c = client(s)
        await c.connect()
        with pytest.raises(LumberjackError) as ei:
            await c.send(payloads(2000, pad=200))
        assert ei.value.acked == 0
        await c.close()

    run(go, server)


def test_close_after_part_of_the_window_arrived() -> None:
    server = FakeLumberjack(lambda n: Act(close_after_events=7) if n == 0 else ACK)

    async def go(s: FakeLumberjack) -> None:
        c = client(s, compression_level=0)
        await c.connect()
        with pytest.raises(LumberjackError, match=r"closed|reset") as ei:
            await c.send(payloads(20))
        assert ei.value.acked == 0 and ei.value.written
        await c.close()
        c2 = client(s, compression_level=0)
        await c2.connect()
        assert await c2.send(payloads(20)) == 20
        await c2.close()

    run(go, server)
    assert server.window_sizes == [20, 20]
    assert len(server.windows[0]) == 7


def test_slow_reader_back_pressure_is_not_a_timeout() -> None:
    # ~1.2 MB uncompressed through a reader taking 8 KiB every 10 ms (~0.8 MB/s): the write
    # alone takes longer than the 0.5 s timeout, but it keeps making progress.
    server = FakeLumberjack(read_chunk=8192, read_delay=0.01, rcvbuf=16384)

    async def go(s: FakeLumberjack) -> None:
        c = client(s, timeout=0.5, compression_level=0)
        await c.connect()
        t = time.monotonic()
        assert await c.send(payloads(1000, pad=1200)) == 1000
        assert time.monotonic() - t > 0.5
        await c.close()

    run(go, server)
    assert server.ids() == list(range(1000))


def test_pipelined_windows_share_one_connection() -> None:
    server = FakeLumberjack(lambda _n: Act(delay=0.1))

    async def go(s: FakeLumberjack) -> None:
        c = client(s)
        await c.connect()
        results = await asyncio.gather(*(c.send(payloads(10, 10 * i)) for i in range(4)))
        assert results == [10, 10, 10, 10]
        await c.close()

    run(go, server)
    assert server.connections == 1
    assert sorted(server.ids()) == list(range(40))


def test_failure_fails_every_window_in_flight_head_keeps_its_prefix() -> None:
    server = FakeLumberjack(lambda n: ACK if n == 0 else Act(acks=(4,), then="close"))

    async def go(s: FakeLumberjack) -> None:
        c = client(s)
        await c.connect()
        assert await c.send(payloads(3)) == 3
        r = await asyncio.gather(*(c.send(payloads(10)) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(e, LumberjackError) for e in r)
        assert [e.acked for e in r if isinstance(e, LumberjackError)] == [4, 0, 0]
        await c.close()

    run(go, server)


def test_connect_errors_are_clear() -> None:
    async def go() -> None:
        from tests.helpers import free_port

        c = LumberjackClient("127.0.0.1", free_port(), timeout=2)
        with pytest.raises(LumberjackError, match="connection refused"):
            await c.connect()

    asyncio.run(go())
