"""output.logstash: options, windows, slow start, failover, load balancing, and the
pipeline's at-least-once delivery through every fault our receiver can inject."""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from pathlib import Path
from typing import Any

import orjson
import pytest

from protocols.stats import Counters
from shipper.agent.beat import Beat
from shipper.agent.config import ConfigError, expand_dotted
from shipper.agent.settings import build_settings
from shipper.outputs.base import ConnectError, OutputContext, OutputError
from shipper.outputs.logstash import LogstashConfig, LogstashOutput, WindowSize
from shipper.pipeline.envelope import Envelope
from shipper.pipeline.publisher import Pipeline
from shipper.pipeline.queue import MemQueue
from tests.helpers import free_port
from tests.shipper.fakelj import ACK, Act, FakeLumberjack, N

FAST = {"backoff.init": "10ms", "backoff.max": "100ms"}


def settings_for(output: dict[str, Any]) -> Any:
    s, _w = build_settings(expand_dotted({"output": {"logstash": output}}))
    return s


def make_output(stats: Counters | None = None, **opts: Any) -> LogstashOutput:
    s = settings_for({**FAST, **opts})
    return LogstashOutput(
        s.output_config(), OutputContext("t", "1", stats if stats is not None else Counters(), Path("/tmp"))
    )


def event(i: int) -> dict[str, Any]:
    return {"@timestamp": 1_700_000_000_000_000_000 + i * 1000, "type": "http", "id": i}


def ship(
    out: LogstashOutput, n: int, stats: Counters, *, events: int = 4000, timeout: float = 60
) -> Pipeline:
    q = MemQueue(events, 0, 0.05, stats)
    p = Pipeline(out, q, Envelope(beat_name="t"), stats, backoff=out.backoff)
    p.start()
    for i in range(n):
        assert p.publish(event(i))
    assert p.close(timeout), f"not drained: {q.pending()} pending, stats {dict(stats)}"
    return p


# -- configuration -------------------------------------------------------------------------


def test_defaults_are_libbeats() -> None:
    cfg = settings_for({"hosts": ["ls1", "ls2:5045", "[::1]"]}).output_config()
    assert isinstance(cfg, LogstashConfig)
    out = LogstashOutput(cfg, OutputContext("t", "1", Counters(), Path("/tmp")))
    assert out.hosts == [("ls1", 5044), ("ls2", 5045), ("::1", 5044)]
    assert (cfg.loadbalance, cfg.worker, cfg.pipelining, cfg.bulk_max_size) == (False, 1, 2, 2048)
    assert (cfg.slow_start, cfg.compression_level, cfg.timeout, cfg.ttl) == (False, 3, 30.0, 0.0)
    assert (cfg.max_retries, cfg.backoff.init, cfg.backoff.max, cfg.escape_html) == (3, 1.0, 60.0, False)
    assert out.ssl_context is None
    assert out.max_retries == 3 and out.batch_size == 2048
    assert out.backoff is not None and out.backoff.init == 1.0 and out.backoff.maximum == 60.0
    # failover: one active host; worker × pipelining in flight
    assert out.concurrency == 2


def test_concurrency_is_workers_times_hosts_times_pipelining() -> None:
    out = make_output(hosts=["a", "b", "c"], loadbalance=True, worker=2, pipelining=3)
    assert out.concurrency == 18
    assert make_output(hosts=["a"], pipelining=0).concurrency == 1


def test_dotted_keys_and_durations() -> None:
    cfg = settings_for(
        {"hosts": "a", "backoff.init": "2s", "backoff.max": "2m", "timeout": "500ms"}
    ).output_config()
    assert (cfg.backoff.init, cfg.backoff.max, cfg.timeout) == (2.0, 120.0, 0.5)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({}, "at least one host"),
        ({"hosts": ["a"], "compression_level": 10}, "compression_level"),
        ({"hosts": ["a:99999"]}, "invalid port"),
        ({"hosts": ["a"], "worker": 0}, "worker"),
        ({"hosts": ["a"], "ssl.verification_mode": "maybe"}, "must be one of"),
        ({"hosts": ["a"], "ssl.supported_protocols": ["SSLv3"]}, "unsupported TLS version"),
        ({"hosts": ["a"], "proxy_url": "socks5://p:1080"}, "not supported"),
    ],
)
def test_invalid_settings_name_the_key(opts: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as ei:
        settings_for(opts)
    assert "output.logstash" in str(ei.value)


def test_index_becomes_metadata_beat() -> None:
    s, _ = build_settings({"output": {"logstash": {"hosts": ["a"], "index": "netmon"}}})
    env = Beat(s).build_envelope()
    assert env.apply(event(1))["@metadata"] == {
        "beat": "netmon",
        "type": "_doc",
        "version": env.agent["version"],
    }


def test_slow_start_window() -> None:
    w = WindowSize(100, True)
    sizes = []
    for _ in range(8):
        sizes.append(w.take(1000))
        w.success(sizes[-1])
    assert sizes == [10, 15, 23, 35, 53, 80, 100, 100]
    w.failure()
    assert w.take(1000) == 50
    for _ in range(10):
        w.failure()
    assert w.take(1000) == 1
    assert WindowSize(100, False).take(1000) == 100
    assert WindowSize(0, False).take(1000) == 1000


# -- against the fake receiver ---------------------------------------------------------------


def test_batches_are_split_into_bulk_max_size_windows_numbered_from_one() -> None:
    with FakeLumberjack() as srv:
        out = make_output(hosts=[f"127.0.0.1:{srv.port}"], bulk_max_size=40)

        async def go() -> int:
            try:
                return await out.publish([event(i) for i in range(100)])
            finally:
                await out.close()

        assert asyncio.run(go()) == 100
    assert srv.window_sizes == [40, 40, 20]
    assert [orjson.loads(p)["id"] for p in srv.payloads] == list(range(100))


def test_slow_start_on_the_wire() -> None:
    with FakeLumberjack() as srv:
        out = make_output(hosts=[f"127.0.0.1:{srv.port}"], bulk_max_size=100, slow_start=True)

        async def go() -> int:
            try:
                return await out.publish([event(i) for i in range(300)])
            finally:
                await out.close()

        assert asyncio.run(go()) == 300
    assert srv.window_sizes == [10, 15, 23, 35, 53, 80, 84]


def test_partial_ack_then_close_reports_the_prefix_and_resends_only_the_tail() -> None:
    with FakeLumberjack(lambda n: Act(acks=(30,), then="close") if n == 0 else ACK) as srv:
        stats = Counters()
        out = make_output(stats, hosts=[f"127.0.0.1:{srv.port}"])

        async def go() -> tuple[int, int, int]:
            evs = [event(i) for i in range(100)]
            try:
                with pytest.raises(OutputError) as ei:
                    await out.publish(evs)
                # In flight when the connection broke: the acknowledged prefix is done,
                # the written rest may have arrived (a resend may duplicate it).
                first, unacked = ei.value.acked, ei.value.unacked
                assert not isinstance(ei.value, ConnectError)
                second = await out.publish(evs[first:])
                return first, unacked, second
            finally:
                await out.close()

        assert asyncio.run(go()) == (30, 70, 70)
    assert srv.window_sizes == [100, 70]
    assert [orjson.loads(p)["id"] for p in srv.windows[1]] == list(range(30, 100))
    assert srv.connections == 2


def test_nothing_acknowledged_is_a_retriable_error() -> None:
    with FakeLumberjack(lambda _n: Act(acks=(), then="close")) as srv:
        out = make_output(hosts=[f"127.0.0.1:{srv.port}"])

        async def go() -> None:
            try:
                with pytest.raises(OutputError) as ei:
                    await out.publish([event(1)])
                assert ei.value.retriable
            finally:
                await out.close()

        asyncio.run(go())


def test_ttl_reconnects_the_sync_client() -> None:
    with FakeLumberjack() as srv:
        out = make_output(hosts=[f"127.0.0.1:{srv.port}"], pipelining=0, ttl="200ms")

        async def go() -> None:
            try:
                await out.publish([event(1)])
                await out.publish([event(2)])
                await asyncio.sleep(0.3)
                await out.publish([event(3)])
            finally:
                await out.close()

        asyncio.run(go())
    assert srv.connections == 2


def test_failover_moves_to_the_next_host() -> None:
    dead = free_port()
    with FakeLumberjack() as srv:
        stats = Counters()
        out = make_output(stats, hosts=[f"127.0.0.1:{dead}", f"127.0.0.1:{srv.port}"], max_retries=-1)
        ship(out, 500, stats)
    assert sorted(srv.ids()) == list(range(500))


def test_loadbalance_spreads_windows_over_every_host() -> None:
    with FakeLumberjack(lambda _n: Act(delay=0.01)) as a, FakeLumberjack(lambda _n: Act(delay=0.01)) as b:
        stats = Counters()
        out = make_output(
            stats,
            hosts=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
            loadbalance=True,
            bulk_max_size=50,
            pipelining=1,
        )
        ship(out, 3000, stats)
    assert a.windows and b.windows
    assert sorted(a.ids() + b.ids()) == list(range(3000))


FAULTS: dict[int, Act] = {
    1: Act(acks=(30,), then="close"),  # partial ACK, then the connection drops
    3: Act(acks=(), then="too_big"),  # ACK > N
    5: Act(acks=(), then="garbage"),  # a foreign frame
    7: Act(close_on_window=True),  # closed mid-batch
    9: Act(acks=(10,), then="stall"),  # a stall past the timeout
    11: Act(acks=(0, 0, 0, 0, N), delay=0.2),  # keep-alives longer than the timeout
    13: Act(acks=(20, 0, 60, N), delay=0.2),  # partial ACKs as progress
    15: Act(acks=(N,), then="close"),  # acknowledged, then closed: nothing to resend
    17: Act(close_after_events=40),  # closed after part of the window arrived
}
FULLY_ACKED = {
    n
    for n, a in FAULTS.items()
    if a.acks and a.acks[-1] == N and not (a.close_on_window or a.close_after_events)
}


@pytest.mark.parametrize("level", [0, 3])
def test_pipeline_delivers_everything_through_faults(level: int) -> None:
    with FakeLumberjack(lambda n: FAULTS.get(n, ACK)) as srv:
        stats = Counters()
        out = make_output(
            stats,
            hosts=[f"127.0.0.1:{srv.port}"],
            bulk_max_size=100,
            timeout="500ms",
            compression_level=level,
            max_retries=-1,
        )
        ship(out, 3000, stats)
    seen = Tally(srv.ids())
    assert set(seen) == set(range(3000)), "events lost"
    # Every extra copy comes from a window that was not fully acknowledged...
    acked_windows = [w for n, w in enumerate(srv.windows) if n not in FAULTS or n in FULLY_ACKED]
    acked_ids = Tally(orjson.loads(p)["id"] for w in acked_windows for p in w)
    again = {i for i, c in acked_ids.items() if c > 1}
    where = [n for n, w in enumerate(srv.windows) if any(orjson.loads(p)["id"] in again for p in w)]
    assert not again, f"acknowledged events sent again: {len(again)}, in windows {where}"
    dups = sum(seen.values()) - 3000
    assert dups > 0
    # ...and is counted: sent but not acknowledged.
    assert dups <= stats["output.unacked"]
    # The acknowledged prefix of a partially acknowledged window is never resent.
    prefix = [orjson.loads(p)["id"] for p in srv.windows[1][:30]]
    assert all(seen[i] == 1 for i in prefix)
    assert stats["output.protocol_errors"] == 2
    assert stats["output.timeouts"] == 1
    assert stats["output.keepalive_acks"] >= 4
    assert stats["queue.acked"] == 3000 == stats["output.acked"]
    assert stats["queue.retried"] > 0
    assert not any(k.startswith("queue.dropped") for k in stats)


def test_max_retries_drops_and_counts() -> None:
    with FakeLumberjack(lambda _n: Act(acks=(), then="close")) as srv:
        stats = Counters()
        out = make_output(stats, hosts=[f"127.0.0.1:{srv.port}"], max_retries=2)
        t = time.monotonic()
        ship(out, 10, stats)
        assert time.monotonic() - t < 30
    assert stats["queue.dropped_max_retries"] == 10
    assert len(srv.windows) == 3  # the first attempt and two retries


@pytest.mark.parametrize("live", [False, True])
def test_slow_receiver_back_pressure_blocks_a_replay_and_drops_counted_when_live(live: bool) -> None:
    # A receiver reading ~400 KB/s through a 16 KiB socket buffer; ~1.7 MB of events.
    with FakeLumberjack(read_chunk=4096, read_delay=0.01, rcvbuf=16384) as srv:
        stats = Counters()
        out = make_output(stats, hosts=[f"127.0.0.1:{srv.port}"], compression_level=0, bulk_max_size=100)
        q = MemQueue(300, 0, 0.05, stats)
        p = Pipeline(out, q, Envelope(beat_name="t"), stats, live=live, backoff=out.backoff)
        p.start()
        most = 0
        accepted = 0
        t = time.monotonic()
        for i in range(1500):
            e = event(i)
            e["pad"] = "x" * 1000
            accepted += p.publish(e)
            most = max(most, q.pending())
        blocked_for = time.monotonic() - t
        assert p.close(120)
    assert most <= 300
    got = srv.ids()
    assert len(got) == len(set(got)) == accepted
    if live:
        assert stats["queue.dropped_full"] == 1500 - accepted > 0
    else:
        assert accepted == 1500 and "queue.dropped_full" not in stats
        assert blocked_for > 1.0  # the producer waited for the receiver


def test_unusable_tls_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"output\.logstash\.ssl\.certificate_authorities\.0: file '.*missing.crt' does not exist",
    ):
        make_output(hosts=["a"], **{"ssl.certificate_authorities": [str(tmp_path / "missing.crt")]})
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"output\.logstash: ssl\.certificate_authorities: cannot load"):
        make_output(hosts=["a"], **{"ssl.certificate_authorities": [str(garbage)]})
