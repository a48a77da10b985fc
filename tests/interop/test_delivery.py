"""At-least-once against real receivers, with **default output settings**.

For each network output — Logstash (the go-lumber receiver), Elasticsearch (OpenSearch),
Redis (redis-server) — wirebeat replays a capture of unique HTTP transactions while the
receiver starts late (``WIREBEAT_LATE_START`` seconds, default 10, as in the report that
lost 2,048 events) and is then killed with SIGKILL twice mid-stream and restarted. Every
event must arrive (checked by its unique ``url.path``), and the duplicates a reconnect can
cause must not exceed what wirebeat counted as sent-but-unacknowledged
(``output.unacked``). Nothing may be dropped (``queue.dropped_*``).

Before libbeat's retry rules were the output contract, a connection failure cost a batch
one of its 3 retries, so a receiver down for ~15 s (or killed twice) lost thousands.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile, PcapWriter
from shipper.agent.version import VERSION
from tests.helpers import free_port, need_tool
from tests.interop.ljpeer import Receiver, http_capture, wirebeat_popen
from tests.interop.opensearch_node import KillableNode

pytestmark = pytest.mark.integration

LATE_START = float(os.environ.get("WIREBEAT_LATE_START", "10"))
NS = 1_000_000_000


def paced_capture(path: Path, n: int, seconds: float) -> Path:
    """``n`` unique HTTP transactions spread evenly over ``seconds`` of capture time:
    replayed without ``-t`` they arrive as a stream, not a burst."""
    raw = http_capture(path.with_suffix(".raw.pcap"), n)
    packets = list(CaptureFile(str(raw)))
    step = int(seconds * NS / max(1, len(packets)))
    t0 = packets[0][0]
    with PcapWriter(str(path), packets[0][1]) as w:
        for i, (_ts, _lt, frame, wire) in enumerate(packets):
            w.write(t0 + i * step, frame, wire)
    raw.unlink()
    return path


class Wirebeat:
    """``wirebeat -e -I capture`` in the background; its log records are collected."""

    def __init__(self, tmp: Path, pcap: Path, *args: str) -> None:
        self.records: list[dict[str, Any]] = []
        self.proc = wirebeat_popen(
            "-e",
            "-I",
            str(pcap),
            "-E",
            "packetbeat.protocols=[{type: http, ports: [80]}]",
            "-E",
            "logging.metrics.period=1s",
            "--path.data",
            str(tmp / "data"),
            "--path.logs",
            str(tmp / "logs"),
            *args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                self.records.append({"message": line.rstrip(), "log.level": "raw"})

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"wirebeat did not finish: {self.tail()}") from None
        self._reader.join(10)
        return rc

    def totals(self) -> dict[str, int]:
        for rec in reversed(self.records):
            if rec.get("message") == "Total metrics":
                from shipper.agent.monitor import flatten

                metrics: dict[str, int] = flatten(rec["monitoring"]["metrics"])
                return metrics
        raise AssertionError(f"no final metrics: {self.tail()}")

    def tail(self) -> str:
        return "\n".join(str(r.get("message")) for r in self.records[-30:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def wirebeats() -> Iterator[Callable[..., Wirebeat]]:
    made: list[Wirebeat] = []

    def start(*args: Any) -> Wirebeat:
        w = Wirebeat(*args)
        made.append(w)
        return w

    yield start
    for w in made:
        w.stop()


def wait_for(what: str, cond: Callable[[], bool], timeout: float, wb: Wirebeat, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert wb.proc.poll() is None, f"wirebeat ended while waiting for {what}: {wb.tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {wb.tail()}"
        time.sleep(poll)


def check_delivery(name: str, paths: list[str], n: int, wb: Wirebeat, kills: list[int]) -> None:
    seen = Tally(paths)
    missing = {f"/item/{i}" for i in range(n)} - set(seen)
    totals = wb.totals()
    dups = len(paths) - len(seen)
    print(
        f"\n{name}: {n} published, {len(seen)} distinct received, {dups} duplicates, "
        f"kills at {kills} received; output.unacked={totals.get('pipeline.output.unacked', 0)}, "
        f"cancelled batches={totals.get('pipeline.output.cancelled_batches', 0)}, "
        f"failed batches={totals.get('pipeline.output.failed_batches', 0)}"
    )
    if os.environ.get("WIREBEAT_DELIVERY_DEBUG"):
        for rec in wb.records:
            if "metrics" not in str(rec.get("message")):
                print(rec.get("@timestamp"), rec.get("log.level"), rec.get("message"))
    assert not missing, f"{name}: lost {len(missing)} events; totals {totals}"
    assert set(seen) == {f"/item/{i}" for i in range(n)}
    assert not [k for k, v in totals.items() if "dropped" in k and v], totals
    assert totals["pipeline.output.acked"] == n == totals["pipeline.publisher.published"]
    # Duplicates come only from batches that were sent and never acknowledged: counted.
    assert dups <= totals.get("pipeline.output.unacked", 0), totals
    # The receiver really was away: batches were cancelled (no retry charged) meanwhile.
    if LATE_START >= 5:
        assert totals.get("pipeline.output.cancelled_batches", 0) >= 2, totals


def run_with_kills(
    received: Callable[[], int],
    kill: Callable[[], object],
    restart: Callable[[], object],
    n: int,
    wb: Wirebeat,
    timeout: float,
    poll: float = 0.005,
) -> list[int]:
    """Kill the receiver when a third and two thirds of the events have arrived."""
    kills = []
    for k in (1, 2):
        target = k * n // 3
        wait_for(f"{target} events", lambda t=target: received() >= t, timeout, wb, poll)  # type: ignore[misc]
        got = received()
        assert got < n, "everything arrived before the kill: nothing tested"
        kill()
        if os.environ.get("WIREBEAT_DELIVERY_DEBUG"):
            print("kill at", time.strftime("%H:%M:%S"), f"{time.time() % 1:.3f}", got)
        kills.append(got)
        time.sleep(0.3)
        restart()
    return kills


# -- Logstash: the go-lumber receiver ------------------------------------------------------


def test_logstash_receiver_late_and_killed_twice_loses_nothing(
    wirebeats: Callable[..., Wirebeat], tmp_path: Path
) -> None:
    n = 30_000
    pcap = paced_capture(tmp_path / "cap.pcap", n, LATE_START + 14)
    # Each window is written to the file, then acknowledged 300 ms later: a kill right
    # after a window shows up catches it in flight (sent, not acknowledged).
    r = Receiver(tmp_path, "-ack-delay", "300ms")  # not started: late
    wb = wirebeats(tmp_path, pcap, "-E", f"output.logstash.hosts=['{r.address}']")
    time.sleep(LATE_START)
    assert wb.proc.poll() is None
    r.start()
    try:
        counted: dict[Path, tuple[int, int]] = {}  # file -> (bytes read, lines)

        def received() -> int:
            for f in r.files:
                done, lines = counted.get(f, (0, 0))
                if f.exists():
                    with open(f, "rb") as fh:
                        fh.seek(done)
                        chunk = fh.read()
                    counted[f] = (done + len(chunk), lines + chunk.count(b"\n"))
            return sum(lines for _, lines in counted.values())

        kills = run_with_kills(received, r.kill, r.start, n, wb, 60)
        assert wb.wait(60) == 0, wb.tail()
    finally:
        r.stop()
    check_delivery("logstash", [e["url"]["path"] for e in r.events()], n, wb, kills)


# -- Redis: redis-server, list ------------------------------------------------------------


class RedisProcess:
    """A redis-server whose acknowledged writes survive SIGKILL (AOF, fsync always)."""

    def __init__(self, directory: Path) -> None:
        self.exe = need_tool("redis-server")
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def length(self) -> int:
        import redis

        try:
            return int(redis.Redis(port=self.port, socket_timeout=1).llen("packetbeat"))
        except redis.exceptions.RedisError:
            return 0


def test_redis_server_late_and_killed_twice_loses_nothing(
    wirebeats: Callable[..., Wirebeat], tmp_path: Path
) -> None:
    import redis

    n = 20_000
    pcap = paced_capture(tmp_path / "cap.pcap", n, LATE_START + 14)
    srv = RedisProcess(tmp_path)
    wb = wirebeats(tmp_path, pcap, "-E", f"output.redis.hosts=['127.0.0.1:{srv.port}']")
    time.sleep(LATE_START)
    assert wb.proc.poll() is None
    srv.start()
    try:
        kills = run_with_kills(srv.length, srv.kill, srv.start, n, wb, 60)
        assert wb.wait(60) == 0, wb.tail()
        items = redis.Redis(port=srv.port).lrange("packetbeat", 0, -1)
    finally:
        srv.stop()
    check_delivery("redis", [json.loads(x)["url"]["path"] for x in items], n, wb, kills)


# -- Elasticsearch: an OpenSearch node of its own -------------------------------------------


def test_elasticsearch_node_late_and_killed_twice_loses_nothing(
    wirebeats: Callable[..., Wirebeat], tmp_path: Path
) -> None:
    n = 6_000
    node = KillableNode(tmp_path / "os")
    node.base.mkdir()
    pcap = http_capture(tmp_path / "cap.pcap", n)
    index = f"packetbeat-{VERSION}"  # the default; the template could not be loaded (node down)
    # Small bulk requests: with the default size the node took all 6,000 events between two
    # polls once it was up, and no kill fell inside the stream.
    wb = wirebeats(
        tmp_path, pcap, "-t", "-E", f"output.elasticsearch.hosts=['{node.host}']",
        "-E", "output.elasticsearch.bulk_max_size=50",
    )  # fmt: skip
    t0 = time.monotonic()
    # The node takes several seconds to start by itself; start it so that it is ready no
    # sooner than LATE_START after wirebeat.
    time.sleep(max(0.0, LATE_START - 6))
    node.start()
    try:
        node.wait_ready()
        assert time.monotonic() - t0 >= min(LATE_START, 6), "the node was not late"

        def received() -> int:
            try:
                node.request("POST", f"/{index}/_refresh", ok=(200, 404))
                got = node.request("GET", f"/{index}/_count", ok=(200, 404))
            except (OSError, AssertionError, RuntimeError):
                return 0
            return int(got.get("count", 0)) if isinstance(got, dict) else 0

        def restart() -> None:
            node.start()
            node.wait_ready()

        kills = run_with_kills(received, node.kill, restart, n, wb, 120, poll=0.2)
        assert wb.wait(120) == 0, wb.tail()
        node.request("POST", f"/{index}/_refresh")
        paths = []
        page = node.request(
            "POST", f"/{index}/_search?scroll=1m", {"size": 10000, "_source": ["url.path"], "sort": ["_doc"]}
        )
        while page["hits"]["hits"]:
            paths += [h["_source"]["url"]["path"] for h in page["hits"]["hits"]]
            page = node.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
    finally:
        node.stop()
    check_delivery("elasticsearch", paths, n, wb, kills)
