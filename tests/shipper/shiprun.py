"""Running the wirebeat CLI of this checkout in a subprocess, and reading what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

#: Fields every transaction event carries (Packetbeat's TRANS_REQUIRED_FIELDS).
REQUIRED = [
    "@timestamp",
    "type",
    "status",
    "agent.type",
    "agent.name",
    "agent.version",
    "event.kind",
    "event.category",
    "event.dataset",
    "event.start",
    "source.ip",
    "destination.ip",
    "client.ip",
    "server.ip",
    "network.type",
    "network.transport",
    "network.community_id",
]

#: Fields every flow report of an IP flow carries (Packetbeat's FLOWS_REQUIRED_FIELDS).
FLOWS_REQUIRED = [
    "@timestamp",
    "type",
    "agent.type",
    "agent.name",
    "agent.version",
    "event.kind",
    "event.category",
    "event.dataset",
    "event.action",
    "event.start",
    "event.end",
    "event.duration",
    "source.ip",
    "destination.ip",
    "flow.id",
    "network.type",
    "network.transport",
    "network.community_id",
]


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], elapsed: float) -> None:
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def logs(self) -> list[dict[str, Any]]:
        """stderr as ECS JSON log lines (every line must be one)."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.strip()]

    def messages(self, level: str | None = None) -> list[str]:
        return [r["message"] for r in self.logs if level is None or r["log.level"] == level]

    def __repr__(self) -> str:
        return f"Run(rc={self.rc}, stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})"


def wirebeat(
    *args: str | Path,
    tmp: Path,
    timeout: float = 60,
    stdin: str | None = None,
    prelude: str = "",
    env: dict[str, str] | None = None,
) -> Run:
    """``python -m shipper ARGS`` from the repository root, with path.data/path.logs in ``tmp``.

    ``prelude`` is Python run in the child before the CLI (to register a test plugin)."""
    import time

    data, logs = tmp / "data", tmp / "logs"
    argv = [str(a) for a in args] + ["--path.data", str(data), "--path.logs", str(logs)]
    if prelude:
        cmd = [sys.executable, "-c", f"{prelude}\nfrom shipper.agent.cli import main\nmain({argv!r})"]
    else:
        cmd = [sys.executable, "-m", "shipper", *argv]
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = str(ROOT) + os.pathsep + child_env.get("PYTHONPATH", "")
    child_env.update(env or {})
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=child_env, input=stdin, capture_output=True, text=True, timeout=timeout
    )
    return Run(proc, time.monotonic() - t0)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def missing_required(evt: dict[str, Any], required: list[str] = REQUIRED) -> list[str]:
    flat = flatten(evt)
    return [k for k in required if k not in flat]
