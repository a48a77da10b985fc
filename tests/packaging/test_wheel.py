"""The one command install works with and without a C compiler: the wheel carries the
optional record skipper (``shipper/agent/_walk.c``) and the hot path compiled by mypyc
(``protocols/compiled.py``) when one is there, and builds without them (wirebeat then runs
the same code in pure Python) when none is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from protocols.compiled import GROUP_LIBRARY, SOURCES_FILE
from tests.helpers import ROOT


def _wheel(tmp: Path, env: dict[str, str]) -> list[str]:
    src = tmp / "src"
    # A copy of the tracked files: the checkout's own build/ and in-place .so stay out.
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    for name in filter(None, files):
        p = src / name.decode()
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name.decode(), p)
    out = tmp / "wheels"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(out),
            ".",
        ],
        cwd=src,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = out.glob("wirebeat-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


@pytest.mark.timeout(900)
def test_wheel_with_and_without_a_compiler(tmp_path: Path) -> None:
    with_cc = _wheel(tmp_path / "cc", dict(os.environ))
    assert any(n.startswith("shipper/agent/_walk.") and n.endswith(".so") for n in with_cc)
    with zipfile.ZipFile(next((tmp_path / "cc" / "wheels").glob("wirebeat-*.whl"))) as z:
        hot = json.loads(z.read(SOURCES_FILE))
    assert {"protocols.tcp", "protocols.http.parser", "shipper.pipeline.envelope"} <= set(hot)
    for name in (*hot, GROUP_LIBRARY):
        assert any(n.startswith(name.replace(".", "/") + ".") and n.endswith(".so") for n in with_cc), name
    without = _wheel(tmp_path / "nocc", {**os.environ, "CC": "/nonexistent/cc"})
    assert not any(n.endswith(".so") for n in without)
    assert "shipper/agent/workers.py" in without
