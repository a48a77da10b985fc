"""Run ``wirebeat -I capture -t`` in a child process and measure it, for the benchmarks.

One place for what every replay benchmark needs: a throw-away config and data path, wall time,
the child's CPU seconds and peak RSS, and the end-of-run metrics ("Total metrics" log line).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipper.agent.monitor import flatten

ROOT = Path(__file__).resolve().parent.parent

#: Metric names for events published, old and libbeat-style, first found wins.
PUBLISHED = ("libbeat.pipeline.events.published", "pipeline.publisher.published")


def run_replay(pcap: Path, config: str, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Replay ``pcap`` with ``config`` (YAML text; logging and path.data are added) and measure.

    Returns wall and CPU seconds, peak RSS in MB (the largest of any child so far), events
    published and every end-of-run metric under ``metrics`` (dotted keys).
    """
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "wirebeat.yml"
        cfg.write_text(f"{config.rstrip()}\nlogging.metrics.enabled: false\npath.data: {tmp}/data\n")
        cfg.chmod(0o600)
        cmd = [sys.executable, "-m", "shipper", "-c", str(cfg), "-e", "-I", str(pcap), "-t", *extra_args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"wirebeat failed: {proc.stderr[-2000:]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    metrics: dict[str, Any] = {}
    for line in proc.stderr.splitlines():
        if '"Total metrics"' in line:
            metrics = flatten(json.loads(line)["monitoring"]["metrics"])
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime - (before.ru_utime + before.ru_stime),
        "maxrss_mb": usage.ru_maxrss / 1024,
        "events": next((metrics[k] for k in PUBLISHED if k in metrics), 0),
        "metrics": metrics,
    }
