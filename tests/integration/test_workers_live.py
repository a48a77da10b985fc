"""Live capture on ``lo`` with worker processes (PACKET_FANOUT): the same transactions as
one process, for the same real HTTP workload; a dead worker ends the run clearly."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shipper.agent.monitor import flatten
from shipper.agent.workers import TEST_EXIT_ENV
from tests.live_helpers import (
    LiveBeat,
    http_events,
    http_server,
    keepalive_requests,
    live_config,
    need_capture,
    settle,
    urllib_requests,
)

pytestmark = pytest.mark.integration


def _workload(port: int) -> int:
    """Keep-alive connections and one-request connections; the number of requests."""
    n = 0
    for c in range(12):
        paths = [f"/f{(c + i) % 5}.txt" for i in range(6)] + [f"/missing{c}"]
        assert keepalive_requests(port, paths)[-1] == 404
        n += len(paths)
    codes = urllib_requests(port, [f"/f{i}.txt" for i in range(5)] * 4)
    assert set(codes) == {200}
    return n + len(codes)


def _transactions(events: list[dict[str, Any]], port: int) -> Counter[tuple[Any, ...]]:
    return Counter(
        (
            e["http"]["request"]["method"],
            e["url"]["path"],
            e["http"]["response"]["status_code"],
            e["http"]["response"].get("body", {}).get("bytes"),
            e.get("status"),
        )
        for e in http_events(events, port)
    )


def _capture(tmp: Path, workers: int, docroot: Path) -> tuple[Counter[tuple[Any, ...]], int, LiveBeat]:
    with http_server(docroot) as port:
        cfg = live_config(tmp, kind="af_packet", ports=[port])
        cfg["packetbeat.workers"] = workers
        beat = LiveBeat(tmp, cfg)
        with beat:
            settle()
            n = _workload(port)
            settle(1.0)
            assert beat.stop() == 0, beat.stderr()[-3000:]
    return _transactions(beat.events(), port), n, beat


@pytest.mark.timeout(180)
def test_two_workers_same_transactions_as_one(tmp_path: Path) -> None:
    need_capture("af_packet")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, n1, _ = _capture(tmp_path / "one", 1, tmp_path / "www")
    two, n2, beat = _capture(tmp_path / "two", 2, tmp_path / "www")
    assert n1 == n2
    assert sum(one.values()) == n1
    assert two == one
    assert "2 worker processes" in beat.stderr()


@pytest.mark.timeout(120)
def test_dead_worker_ends_live_capture(tmp_path: Path) -> None:
    need_capture("af_packet")
    with http_server(tmp_path / "www") as port:
        cfg = live_config(tmp_path, kind="af_packet", ports=[port])
        cfg["packetbeat.workers"] = 2
        beat = LiveBeat(tmp_path, cfg)
        os.environ[TEST_EXIT_ENV] = "1"
        try:
            beat.start()
        finally:
            del os.environ[TEST_EXIT_ENV]
        try:
            deadline = time.monotonic() + 30
            while beat.proc is not None and beat.proc.poll() is None and time.monotonic() < deadline:
                urllib_requests(port, ["/f1.txt"] * 5)  # some connection lands on worker 1
            code = beat.stop(signal.SIGTERM, timeout=30)
        finally:
            beat.kill()
    assert code == 1
    exiting = [line for line in beat.lines if line.startswith("Exiting:")]
    assert len(exiting) == 1 and "worker 1" in exiting[0] and "exit code 3" in exiting[0], beat.stderr()[
        -3000:
    ]


@pytest.mark.timeout(120)
def test_full_queue_blocks_instead_of_dropping_and_shutdown_does_not_hang(tmp_path: Path) -> None:
    """With workers, a full queue holds the workers back (the kernel rings absorb) instead of
    dropping decoded transactions; a stop with an output that takes nothing still ends
    within the shutdown timeout, and what was not shipped is counted."""
    need_capture("af_packet")
    stalled = socket.socket()  # a "Logstash" that never reads: the queue stays full
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(1)
    with stalled, http_server(tmp_path / "www") as port:
        cfg = live_config(tmp_path, kind="af_packet", ports=[port])
        cfg["packetbeat.workers"] = 2
        cfg["queue.mem"] = {"events": 32, "flush.min_events": 1, "flush.timeout": "10ms"}
        del cfg["output.file"]
        cfg["output.logstash"] = {"hosts": [f"127.0.0.1:{stalled.getsockname()[1]}"], "timeout": "60s"}
        with LiveBeat(tmp_path, cfg) as beat:
            assert keepalive_requests(port, [f"/f{i % 5}.txt" for i in range(100)]) == [200] * 100
            settle(1.5)
            started = time.monotonic()
            beat.stop(timeout=60)
            assert time.monotonic() - started < 30
    logs = beat.logs()
    assert not [e for e in logs if "queue full: dropped" in e.get("message", "")]
    total = flatten([e for e in logs if e.get("message") == "Total metrics"][-1]["monitoring"]["metrics"])
    assert total.get("pipeline.queue.dropped_full", 0) == 0
    published = total.get("pipeline.publisher.published", 0)
    closed = total.get("pipeline.publisher.dropped_closed", 0)
    assert published <= 2 * 32 + 2
    # Every transaction is published, or counted where it was lost: refused by the closed
    # queue at shutdown, or never decoded because the kernel dropped its packets while the
    # workers were held back (the ring was full).
    if published + closed < 100:
        assert total.get("capture.lo.kernel.dropped", 0) > 0, json.dumps(total)
    else:
        assert published + closed == 100, json.dumps(total)
