"""libbeat's monitoring names: the periodic "Non-zero metrics" line, "Total metrics" and
``GET /stats`` carry libbeat's keys in libbeat's nested layout, so Metricbeat's ``beat``
module and dashboards built on it read wirebeat like Packetbeat (docs/monitoring.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from shipper.agent.monitor import GAUGES, Monitor, flatten, nest
from tests.helpers import ROOT, free_port, shared_pcap

#: What Metricbeat's beat/stats metricset maps from /stats (metricbeat/module/beat/stats/
#: data.go, beats 9.x): key -> type. Left out: ``beat.cgroup`` (Linux cgroup accounting,
#: not reported), ``apm-server``/``output`` (APM Server only), ``metricbeat.beat.state``
#: (Metricbeat only) and ``libbeat.output.write.latency`` (not measured).
METRICBEAT_READS = {
    "beat.cpu.user.ticks": int,
    "beat.cpu.system.ticks": int,
    "beat.cpu.total.ticks": int,
    "beat.cpu.total.value": int,
    "beat.info.uptime.ms": int,
    "beat.info.ephemeral_id": str,
    "beat.runtime.goroutines": int,
    "beat.handles.limit.hard": int,
    "beat.handles.limit.soft": int,
    "beat.handles.open": int,
    "libbeat.output.type": str,
    **{
        f"libbeat.output.events.{k}": int
        for k in ("acked", "active", "batches", "dropped", "duplicates", "failed", "toomany", "total")
    },
    "libbeat.output.read.bytes": int,
    "libbeat.output.read.errors": int,
    "libbeat.output.write.bytes": int,
    "libbeat.output.write.errors": int,
    "libbeat.pipeline.clients": int,
    "libbeat.pipeline.queue.max_events": int,
    **{
        f"libbeat.pipeline.queue.{k}.{u}": int
        for k in ("added", "consumed", "removed")
        for u in ("events", "bytes")
    },
    "libbeat.pipeline.queue.filled.events": int,
    "libbeat.pipeline.queue.filled.bytes": int,
    "libbeat.pipeline.queue.filled.pct": float,
    "libbeat.pipeline.queue.acked": int,
    **{
        f"libbeat.pipeline.events.{k}": int
        for k in ("active", "dropped", "failed", "filtered", "published", "retry", "total")
    },
    "libbeat.config.module.running": int,
    "libbeat.config.module.starts": int,
    "libbeat.config.module.stops": int,
    "libbeat.config.reloads": int,
    "beat.memstats.gc_next": int,
    "beat.memstats.memory_alloc": int,
    "beat.memstats.memory_total": int,
    "beat.memstats.rss": int,
    "system.cpu.cores": int,
    "system.load.1": float,
    "system.load.5": float,
    "system.load.15": float,
    "system.load.norm.1": float,
    "system.load.norm.5": float,
    "system.load.norm.15": float,
}

#: Packetbeat 9.3.0's own /stats, recorded: every key it has, wirebeat has too, except
#: the output latency histograms (not measured) and the protocol counters, which wirebeat
#: reports once they are non-zero.
RECORDED = json.loads((ROOT / "tests" / "data" / "packetbeat-9.3.0-stats-keys.json").read_text())["keys"]
PROTOCOLS = (
    "amqp",
    "dhcpv4",
    "dns",
    "http",
    "icmp",
    "memcache",
    "mongodb",
    "mysql",
    "nfs",
    "pgsql",
    "redis",
    "thrift",
)


def _typed(value: Any, want: type) -> bool:
    if want is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, want) and not isinstance(value, bool)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_stats_endpoint_has_what_metricbeat_reads_during_a_replay(tmp_path: Path) -> None:
    port = free_port()
    pcap = shared_pcap("http_minitwit")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "shipper", "-t", "-l", "0", "-e", "-I", str(pcap)]
    cmd += ["-E", f"output.file.path={out}", "-E", "http.enabled=true", "-E", f"http.port={port}"]
    cmd += [
        "-E",
        "logging.metrics.period=1s",
        "--path.data",
        str(tmp_path / "d"),
        "--path.logs",
        str(tmp_path / "l"),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                stats = _get(base + "/stats")
                if stats["libbeat"]["output"]["events"]["acked"] > 0:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.stderr else ""
            )
            time.sleep(0.2)
        time.sleep(1.5)  # a periodic metrics line
        later = _get(base + "/stats?pretty")
        info, state = _get(base + "/"), _get(base + "/state")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]

    for doc in (stats, later):
        flat = flatten(doc)
        wrong = {k: flat.get(k) for k, t in METRICBEAT_READS.items() if not _typed(flat.get(k), t)}
        assert not wrong, wrong
        missing = [
            k for k in RECORDED if k not in flat and "latency" not in k and not k.startswith(PROTOCOLS)
        ]
        assert not missing, missing
        assert flat["beat.memstats.rss"] <= flat["beat.memstats.rss_max"]
        assert flat["libbeat.output.type"] == "file"
        assert flat["libbeat.pipeline.events.published"] >= flat["libbeat.output.events.acked"] > 0
        assert flat["libbeat.output.write.bytes"] > 0  # the file output counts what it writes
        # The reader of the pass under way (0 when caught between two passes).
        assert isinstance(flat["pcap.packets"], int) and isinstance(flat["pcap.bytes_read"], int)
    a, b = flatten(stats), flatten(later)
    # The file output writes whole batches: its bytes move in steps, the pipeline steadily.
    assert b["libbeat.output.write.bytes"] >= a["libbeat.output.write.bytes"]
    assert b["libbeat.pipeline.events.published"] > a["libbeat.pipeline.events.published"]
    assert b["beat.info.uptime.ms"] > a["beat.info.uptime.ms"] >= 0
    assert (
        info["beat"] == "packetbeat" and info["uuid"] and info["ephemeral_id"] == b["beat.info.ephemeral_id"]
    )
    assert state["output"]["name"] == "file" and state["queue"]["name"] == "mem"
    assert state["outputs"]["elasticsearch"]["cluster_uuid"] == ""  # what Metricbeat reads there

    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    periodic = [r for r in records if r["message"] == "Non-zero metrics in the last 1s"]
    assert periodic, err[-3000:]
    for r in periodic:
        m = flatten(r["monitoring"]["metrics"])
        # Gauges are logged as they are, counters as what changed, strings constant.
        assert m["beat.info.uptime.ms"] > 1000 and m["beat.info.ephemeral_id"] == info["ephemeral_id"]
        assert m["beat.memstats.rss"] <= m["beat.memstats.rss_max"]
        assert "libbeat.pipeline.queue.max_events" in m
    moved = [
        flatten(r["monitoring"]["metrics"]).get("libbeat.pipeline.events.published", 0) for r in periodic
    ]
    (total,) = [r for r in records if r["message"] == "Total metrics"]
    t = flatten(total["monitoring"]["metrics"])
    assert 0 < sum(moved) <= t["libbeat.pipeline.events.published"]
    assert (
        t["libbeat.output.events.acked"]
        == t["libbeat.pipeline.events.published"]
        == t["pipeline.queue.acked"]
    )
    assert t["libbeat.pipeline.events.active"] == 0 == t["libbeat.output.events.active"]
    # Every byte the file output wrote, counted.
    assert t["libbeat.output.write.bytes"] == sum(f.stat().st_size for f in out.glob("*"))


def test_replay_bytes_read_count_the_whole_file(tmp_path: Path) -> None:
    from tests.shipper.shiprun import wirebeat

    pcap = shared_pcap("http_minitwit")
    run = wirebeat("-t", "-N", "-e", "-l", "2", "-I", pcap, tmp=tmp_path)
    assert run.rc == 0, run
    (total,) = [r for r in run.logs if r["message"] == "Total metrics"]
    m = flatten(total["monitoring"]["metrics"])
    # The last pass's reader: its packets and bytes (the summary line has every pass's).
    assert m["pcap.bytes_read"] == pcap.stat().st_size and m["pcap.packets"] == 104
    assert m["libbeat.pipeline.events.published"] == 12 == m["libbeat.output.events.acked"]
    assert m["libbeat.output.type"] == "discard"


def test_deltas_follow_libbeat_counters_gauges_and_strings() -> None:
    counters = {"publisher.published": 0, "queue.published": 0, "queue.acked": 0}
    mon = Monitor(30)
    mon.configure(name="n", version="v", ephemeral_id="e", output_type="file", queue_max=100)
    mon.add("pipeline", lambda: dict(counters))
    mon._last = mon.metrics()
    counters.update({"publisher.published": 10, "queue.published": 10, "queue.acked": 4})
    d = mon.deltas()
    assert d["libbeat.pipeline.events.published"] == 10 and d["pipeline.publisher.published"] == 10
    assert d["libbeat.pipeline.events.active"] == 6  # a gauge: its value
    assert d["libbeat.pipeline.queue.filled.pct"] == 0.06
    assert d["beat.info.ephemeral_id"] == "e" and "libbeat.output.type" not in d  # unchanged string
    assert all(k in d for k in ("beat.memstats.rss", "system.cpu.cores", "beat.info.uptime.ms"))
    counters["queue.acked"] = 10
    d = mon.deltas()
    assert "libbeat.pipeline.events.published" not in d  # no change, no entry
    assert d["libbeat.pipeline.queue.acked"] == 6 and d["libbeat.pipeline.events.active"] == 0
    assert {k for k in d if k.startswith(("beat.memstats", "system.load"))} <= GAUGES
    assert nest({"a.b": 1, "a.c.d": 2}) == {"a": {"b": 1, "c": {"d": 2}}}
    assert flatten(nest({"a.b": 1, "a.c.d": 2})) == {"a.b": 1, "a.c.d": 2}


def test_state_names_the_elasticsearch_cluster_metricbeat_files_the_stats_under(tmp_path: Path) -> None:
    """With the Elasticsearch output, Metricbeat's beat module skips a Beat whose /state has
    no cluster UUID: wirebeat asks the cluster (``GET /``) for it."""
    from tests.setup.fakehttp import Request, fake_server

    def es(req: Request) -> tuple[int, dict[str, str], bytes]:
        if req.method == "GET" and req.route == "/":
            body = {"cluster_name": "fake", "cluster_uuid": "Xq3-fake-uuid", "version": {"number": "8.17.0"}}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if req.route.endswith("/_bulk"):
            n = len([line for line in req.body.splitlines() if line.strip()]) // 2
            items = [{"create": {"status": 201, "_index": "x"}}] * n
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"errors": False, "items": items}).encode(),
            )
        return 404, {"Content-Type": "application/json"}, b"{}"

    port = free_port()
    with fake_server(es) as server:
        cmd = [sys.executable, "-m", "shipper", "-t", "-l", "0", "-I", str(shared_pcap("http_minitwit"))]
        cmd += [
            "-E",
            f"output.elasticsearch.hosts=['http://{server.host}']",
            "-E",
            "setup.template.enabled=false",
        ]
        cmd += ["-E", "setup.ilm.enabled=false", "-E", "http.enabled=true", "-E", f"http.port={port}"]
        cmd += ["--path.data", str(tmp_path / "d"), "--path.logs", str(tmp_path / "l")]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    state = _get(f"http://127.0.0.1:{port}/state")
                    stats = _get(f"http://127.0.0.1:{port}/stats")
                    if stats["libbeat"]["output"]["events"]["acked"] > 0:
                        break
                except OSError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert state["output"]["name"] == "elasticsearch"
    assert state["outputs"]["elasticsearch"]["cluster_uuid"] == "Xq3-fake-uuid"
    assert stats["libbeat"]["output"]["type"] == "elasticsearch"
    assert (
        stats["libbeat"]["output"]["write"]["bytes"] > 0 and stats["libbeat"]["output"]["read"]["bytes"] > 0
    )
