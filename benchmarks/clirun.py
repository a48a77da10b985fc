"""Run ``wirebeat -I capture -t`` in a child process and measure it, for the benchmarks.

One place for what every replay benchmark needs: a throw-away config and data path, wall time,
the child's CPU seconds and peak RSS, and the end-of-run metrics ("Total metrics" log line).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import measure
from shipper.agent.monitor import flatten

ROOT = Path(__file__).resolve().parent.parent

#: Metric names for events published, old and libbeat-style, first found wins.
PUBLISHED = ("libbeat.pipeline.events.published", "pipeline.publisher.published")


def run_replay(pcap: Path, config: str, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Replay ``pcap`` with ``config`` (YAML text; logging and path.data are added) and measure.

    Returns wall and CPU seconds, peak RSS in MB (its own, ``benchmarks/measure.py``),
    events published and every end-of-run metric under ``metrics`` (dotted keys).
    """
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "wirebeat.yml"
        cfg.write_text(f"{config.rstrip()}\nlogging.metrics.enabled: false\npath.data: {tmp}/data\n")
        cfg.chmod(0o600)
        cmd = [sys.executable, "-m", "shipper", "-c", str(cfg), "-e", "-I", str(pcap), "-t", *extra_args]
        with tempfile.TemporaryFile("w+") as err:
            run = measure.run(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
            err.seek(0)
            stderr = err.read()
        if run.returncode != 0:
            raise SystemExit(f"wirebeat failed: {stderr[-2000:]}")
    metrics: dict[str, Any] = {}
    for line in stderr.splitlines():
        if '"Total metrics"' in line:
            metrics = flatten(json.loads(line)["monitoring"]["metrics"])
    return {
        "wall": run.wall,
        "cpu": run.cpu,
        "maxrss_mb": run.maxrss_mb,
        "events": next((metrics[k] for k in PUBLISHED if k in metrics), 0),
        "metrics": metrics,
    }
