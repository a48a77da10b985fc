"""``benchmarks/measure.py``: the figures a benchmark prints are the measured tool's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

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


def test_an_interrupted_wait_kills_the_command(tmp_path: Path) -> None:
    """Ctrl-C on a benchmark: the tool, in a session of its own, must not run on."""
    pidfile = tmp_path / "pid"
    prog = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(1.0, signal.pthread_kill, (main, signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        measure.run([sys.executable, "-c", prog])
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"the command (pid {pid}) still runs")
