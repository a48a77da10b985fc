"""output.redis against a real redis-server (list and channel; db, password, key defaults)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from protocols.stats import Counters
from shipper.agent.config import ConfigError, expand_dotted
from shipper.agent.settings import build_settings
from shipper.outputs.base import OutputContext, OutputError
from shipper.outputs.redis import RedisConfig, RedisOutput
from shipper.pipeline.envelope import Envelope
from shipper.pipeline.publisher import Pipeline
from shipper.pipeline.queue import MemQueue
from tests.helpers import free_port, shared_pcap
from tests.interop.ljpeer import redis_server, wirebeat


def cfg(**opts: Any) -> RedisConfig:
    s, _ = build_settings(expand_dotted({"output": {"redis": opts}}))
    c = s.output_config()
    assert isinstance(c, RedisConfig)
    return c


def ctx(stats: Counters | None = None) -> OutputContext:
    return OutputContext("rb", "1", stats if stats is not None else Counters(), Path("/tmp"))


def test_defaults() -> None:
    c = cfg(hosts=["r1"])
    out = RedisOutput(c, ctx())
    assert out.hosts == [("r1", 6379)]
    assert (c.datatype, c.db, c.timeout, c.worker, c.loadbalance) == ("list", 0, 5.0, 1, True)
    assert (c.bulk_max_size, c.max_retries, c.backoff.init, c.backoff.max) == (2048, 3, 1.0, 60.0)
    assert out.key == "packetbeat"  # the index, itself the beat name
    assert RedisOutput(cfg(hosts=["r1"], index="netmon"), ctx()).key == "netmon"
    assert RedisOutput(cfg(hosts=["r1"], index="netmon", key="q"), ctx()).key == "q"
    with pytest.raises(ConfigError, match="must be one of list, channel"):
        cfg(hosts=["r1"], datatype="stream")


def test_list_through_the_pipeline_with_db_and_password(tmp_path: Path) -> None:
    with redis_server(tmp_path, password="s3cret") as port:
        stats = Counters()
        out = RedisOutput(
            cfg(hosts=[f"127.0.0.1:{port}"], password="s3cret", db=3, key="events", bulk_max_size=100),
            ctx(stats),
        )
        q = MemQueue(1000, 0, 0.05, stats)
        p = Pipeline(out, q, Envelope(beat_name="rb"), stats, backoff=out.backoff)
        p.start()
        for i in range(1000):
            p.publish({"@timestamp": 1_700_000_000_000_000_000 + i, "type": "http", "id": i})
        assert p.close(60)
        r = redis.Redis(port=port, password="s3cret", db=3)
        items = [orjson.loads(x) for x in r.lrange("events", 0, -1)]
        assert [e["id"] for e in items] == list(range(1000))
        assert items[0]["@metadata"]["beat"] == "packetbeat"
        assert r.dbsize() == 1 and redis.Redis(port=port, password="s3cret", db=0).dbsize() == 0
        assert stats["output.acked"] == 1000


def test_channel(tmp_path: Path) -> None:
    with redis_server(tmp_path) as port:
        r = redis.Redis(port=port)
        sub = r.pubsub()
        sub.subscribe("beats")
        assert sub.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
        out = RedisOutput(cfg(hosts=[f"127.0.0.1:{port}"], datatype="channel", key="beats"), ctx())

        async def go() -> int:
            try:
                return await out.publish([{"id": i} for i in range(50)])
            finally:
                await out.close()

        assert asyncio.run(go()) == 50
        got = []
        for _ in range(200):
            m = sub.get_message(timeout=1)
            if m and m["type"] == "message":
                got.append(orjson.loads(m["data"])["id"])
            if len(got) == 50:
                break
        assert got == list(range(50))
        sub.close()


def test_errors_are_output_errors(tmp_path: Path) -> None:
    out = RedisOutput(cfg(hosts=[f"127.0.0.1:{free_port()}"], timeout="1s"), ctx())

    async def refused() -> None:
        with pytest.raises(OutputError) as ei:
            await out.publish([{"id": 1}])
        assert ei.value.retriable

    asyncio.run(refused())
    with redis_server(tmp_path, password="pw") as port:
        bad = RedisOutput(cfg(hosts=[f"127.0.0.1:{port}"], password="nope"), ctx())

        async def auth() -> None:
            with pytest.raises(OutputError) as ei:
                await bad.publish([{"id": 1}])
            assert not ei.value.retriable
            await bad.close()

        asyncio.run(auth())
        redis.Redis(port=port, password="pw").set("packetbeat", "a string")
        wrong = RedisOutput(cfg(hosts=[f"127.0.0.1:{port}"], password="pw"), ctx())

        async def wrongtype() -> None:
            with pytest.raises(OutputError, match="WRONGTYPE"):
                await wrong.publish([{"id": 1}])
            await wrong.close()

        asyncio.run(wrongtype())


def test_failover_without_loadbalance(tmp_path: Path) -> None:
    with redis_server(tmp_path) as port:
        stats = Counters()
        out = RedisOutput(
            cfg(
                hosts=[f"127.0.0.1:{free_port()}", f"127.0.0.1:{port}"],
                loadbalance=False,
                max_retries=-1,
                **{"backoff.init": "10ms", "backoff.max": "50ms"},
            ),
            ctx(stats),
        )
        p = Pipeline(out, MemQueue(100, 0, 0.05, stats), Envelope(beat_name="rb"), stats, backoff=out.backoff)
        p.start()
        for i in range(20):
            p.publish({"@timestamp": 1_700_000_000_000_000_000 + i, "type": "http", "id": i})
        assert p.close(30)
        assert redis.Redis(port=port).llen("packetbeat") == 20


def test_replay_to_redis_equals_console(tmp_path: Path) -> None:
    pcap = shared_pcap("http_minitwit")
    console = wirebeat("-I", str(pcap), "-t", "-E", f"path.home={tmp_path}").stdout.splitlines()
    with redis_server(tmp_path) as port:
        wirebeat(
            "-I",
            str(pcap),
            "-t",
            "-E",
            f"path.home={tmp_path}",
            "-E",
            f"output.redis.hosts=['127.0.0.1:{port}']",
        )
        items = redis.Redis(port=port).lrange("packetbeat", 0, -1)

        def strip(raw: bytes) -> dict[str, Any]:
            e = orjson.loads(raw)
            e["agent"].pop("ephemeral_id", None)
            return e

        assert [strip(x) for x in items] == [strip(x) for x in console]
        res = wirebeat(
            "test", "output", "-E", f"path.home={tmp_path}", "-E", f"output.redis.hosts=['127.0.0.1:{port}']"
        )
        assert "talk to server... OK" in res.stdout.decode()
