"""Run a command and measure its CPU time and peak RSS as ``/usr/bin/time`` does.

Linux carries a process's peak resident size over ``fork`` and ``execve``: a tool this
process starts directly reports at least this process's own peak as its ``ru_maxrss``
(a benchmark that generated a large capture in memory would pass its peak on to every
tool it measures). The command runs as the child of a small launcher instead, a fresh
interpreter that forks it and ``wait4``s it, so the figure is the tool's own (and its
waited-for children's, e.g. wirebeat's workers), above a floor of the launcher's ~10 MB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import attrs

_LAUNCHER = r"""
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{ru.ru_utime} {ru.ru_stime} {ru.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@attrs.frozen
class Measured:
    returncode: int
    wall: float  # seconds
    cpu: float  # user + system seconds
    maxrss_mb: float


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | str | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run ``cmd`` to its end (killed, with its process group, after ``timeout``, or when
    waiting for it is interrupted: it runs in a session of its own, out of reach of the
    terminal's Ctrl-C)."""
    with tempfile.NamedTemporaryFile("r", prefix="measure-", suffix=".txt") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, out.name, *cmd],
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        wall = time.perf_counter() - t0
        fields = out.read().split()
    if len(fields) != 3:  # the launcher itself was killed
        return Measured(proc.returncode, wall, 0.0, 0.0)
    utime, stime, maxrss = float(fields[0]), float(fields[1]), int(fields[2])
    return Measured(proc.returncode, wall, utime + stime, maxrss / 1024)
