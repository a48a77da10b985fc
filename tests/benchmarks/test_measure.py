"""``benchmarks/measure.py``: the figures a benchmark prints are the measured tool's own."""

from __future__ import annotations

import subprocess
import sys

from benchmarks import measure


def test_peak_rss_is_the_tools_own_not_the_benchmarks() -> None:
    ballast = b"x" * 400_000_000  # this process's peak, which Linux passes on to a direct child
    small = measure.run([sys.executable, "-c", "pass"])
    big = measure.run([sys.executable, "-c", "b = b'y' * 200_000_000"])
    del ballast
    assert small.returncode == 0 and big.returncode == 0
    assert small.maxrss_mb < 100, small
    assert 190 < big.maxrss_mb < 300, big
    assert big.cpu > 0


def test_exit_status_and_signals_come_through() -> None:
    assert measure.run([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3
    killed = measure.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
    assert killed.returncode == 128 + 15
    assert measure.run(["/nonexistent/tool"], stderr=subprocess.DEVNULL).returncode == 127


def test_a_command_past_its_timeout_is_killed_with_its_children() -> None:
    run = measure.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)
    assert run.returncode != 0
    assert run.wall < 10
