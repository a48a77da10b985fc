"""Live HTTP traffic on 127.0.0.1, captured with tcpdump (shared by the live and reorder tests).

A real server (``http_server.py``, a subprocess) and real clients: ``http.client`` on
keep-alive connections (four at once), requests pipelined over raw sockets, uploads with
``Expect: 100-continue``, and multi-megabyte bodies both ways. Every request carries a
unique ``?id=``; the client records what it sent and what it decoded, the server logs
what it read and wrote, and the capture holds what went over the wire.
"""

from __future__ import annotations

import gzip
import http.client
import json
import random
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.capture import live_capture
from tests.integration.http_server import PACE_S, PIECE, binary_body

SERVER = Path(__file__).with_name("http_server.py")

KEEPALIVE_CONNECTIONS = 4
REQUESTS_PER_CONNECTION = 40
PIPELINES = 2
PIPELINE_DEPTH = 25
EXPECT_CONTINUE = 4
LARGE_UPLOAD = 3 * 1024 * 1024
LARGE_DOWNLOAD = 5 * 1024 * 1024
SIZES = (0, 1, 100, 1460, 5000, 20000, 70000)


@dataclass
class LiveCapture:
    pcap: Path
    port: int
    #: The server's log: one record per request (see http_server.py).
    log: list[dict[str, Any]]
    #: id → bytes the client wrote for the request.
    sent: dict[str, int] = field(default_factory=dict)
    #: id → how the request was made (keep-alive, pipelined, expect-100, large).
    how: dict[str, str] = field(default_factory=dict)
    #: id → the text of a gzip response, as the client decompressed it.
    texts: dict[str, bytes] = field(default_factory=dict)
    elapsed: float = 0.0


class _Recorder:
    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.next = 0
        self.sent: dict[str, int] = {}
        self.how: dict[str, str] = {}
        self.texts: dict[str, bytes] = {}

    def new_id(self, how: str) -> str:
        with self.lock:
            self.next += 1
            ident = str(self.next)
            self.how[ident] = how
            return ident


class _CountingConnection(http.client.HTTPConnection):
    sent_now = 0

    def send(self, data: Any) -> None:
        self.sent_now += len(data)
        super().send(data)


class _SharedFile:
    """One buffered reader for a socket carrying several responses (pipelining):
    ``HTTPResponse`` closes its file when done, which must not lose read-ahead bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.f = sock.makefile("rb")

    def makefile(self, *_a: Any, **_k: Any) -> Any:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)

    def close(self) -> None:
        pass


def _read_response(shared: _SharedFile, method: str) -> tuple[int, bytes]:
    resp = http.client.HTTPResponse(shared, method=method)  # type: ignore[arg-type]
    resp.begin()
    return resp.status, resp.read()


KINDS = ("bytes", "chunked", "gzip", "gzipchunked", "404", "500", "head", "post", "204", "304", "chunkedpost")


def _request(rng: random.Random, k: int) -> tuple[str, str, Any, int, str]:
    """(method, path, body, expected status, kind) for the k-th request of a connection."""
    size = rng.choice(SIZES)
    kind = KINDS[k % len(KINDS)]
    if kind in ("404", "500", "204", "304"):
        return "GET", f"/status/{kind}", None, int(kind), kind
    if kind == "head":
        return "HEAD", f"/bytes/{size}", None, 200, kind
    if kind == "post":
        return "POST", "/upload", binary_body("upload", size), 200, kind
    if kind == "chunkedpost":
        # An iterable body: http.client sends it with Transfer-Encoding: chunked.
        body = binary_body("upload", size)
        return "POST", "/upload", iter([body[i : i + 700] for i in range(0, len(body), 700)]), 200, kind
    if kind.startswith("gzip"):
        return "GET", f"/{kind}/{1 + size // 200}", None, 200, kind
    return "GET", f"/{kind}/{size}", None, 200, kind


def _keep_alive(rec: _Recorder, seed: int) -> None:
    rng = random.Random(seed)
    conn = _CountingConnection("127.0.0.1", rec.port, timeout=20)
    for k in range(REQUESTS_PER_CONNECTION):
        method, path, body, status, kind = _request(rng, k + seed)
        ident = rec.new_id("keep-alive")
        conn.sent_now = 0
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        conn.request(method, f"{path}?id={ident}", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == status, (ident, path, resp.status)
        if kind.startswith("gzip"):
            rec.texts[ident] = gzip.decompress(data)
        rec.sent[ident] = conn.sent_now
    conn.close()


def _pipelined(rec: _Recorder, seed: int) -> None:
    """All requests written at once, then all responses read: pipelining."""
    rng = random.Random(seed)
    plan = []
    for k in range(PIPELINE_DEPTH):
        ident = rec.new_id("pipelined")
        method, path, status = [
            ("GET", f"/bytes/{rng.choice(SIZES)}", 200),
            ("GET", f"/chunked/{rng.choice(SIZES)}", 200),
            ("HEAD", f"/bytes/{rng.choice(SIZES)}", 200),
            ("GET", "/status/404", 404),
        ][k % 4]
        close = "Connection: close\r\n" if k == PIPELINE_DEPTH - 1 else ""
        host = f"Host: 127.0.0.1:{rec.port}\r\nUser-Agent: pipeline/1\r\n"
        raw = f"{method} {path}?id={ident} HTTP/1.1\r\n{host}{close}\r\n"
        rec.sent[ident] = len(raw)
        plan.append((ident, method, status, raw.encode()))
    with socket.create_connection(("127.0.0.1", rec.port), timeout=20) as sock:
        sock.sendall(b"".join(raw for *_x, raw in plan))
        shared = _SharedFile(sock)
        for ident, method, status, _raw in plan:
            got, _body = _read_response(shared, method)
            assert got == status, (ident, got)


def _expect_continue(rec: _Recorder) -> None:
    """POSTs that wait for ``100 Continue`` before sending their body (one connection)."""
    with socket.create_connection(("127.0.0.1", rec.port), timeout=20) as sock:
        shared = _SharedFile(sock)
        for k in range(EXPECT_CONTINUE):
            ident = rec.new_id("expect-100")
            body = binary_body(ident, 1000 + 30000 * k)
            head = (
                f"POST /upload?id={ident} HTTP/1.1\r\nHost: 127.0.0.1:{rec.port}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
                "Expect: 100-continue\r\n\r\n"
            ).encode()
            sock.sendall(head)
            assert shared.f.readline().startswith(b"HTTP/1.1 100 ")
            assert shared.f.readline() == b"\r\n"
            sock.sendall(body)
            status, data = _read_response(shared, "POST")
            assert status == 200 and json.loads(data) == {"received": len(body)}
            rec.sent[ident] = len(head) + len(body)


def _large(rec: _Recorder) -> None:
    conn = _CountingConnection("127.0.0.1", rec.port, timeout=30)
    ident = rec.new_id("large")
    body = binary_body(ident, LARGE_UPLOAD)
    conn.putrequest("POST", f"/upload?id={ident}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    for i in range(0, len(body), PIECE):  # paced, like the server's large responses
        conn.send(body[i : i + PIECE])
        time.sleep(PACE_S)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read()) == {"received": LARGE_UPLOAD}
    rec.sent[ident] = conn.sent_now
    ident = rec.new_id("large")
    conn.sent_now = 0
    conn.request("GET", f"/bytes/{LARGE_DOWNLOAD}?id={ident}")
    resp = conn.getresponse()
    assert resp.read() == binary_body(ident, LARGE_DOWNLOAD)
    rec.sent[ident] = conn.sent_now
    conn.close()


def _closing(rec: _Recorder) -> None:
    """Responses without a length, ended by the server closing the connection."""
    for size in (0, 1000, 70000):
        ident = rec.new_id("close")
        conn = _CountingConnection("127.0.0.1", rec.port, timeout=20)
        conn.request("GET", f"/close/{size}?id={ident}")
        resp = conn.getresponse()
        assert resp.read() == binary_body(ident, size)
        rec.sent[ident] = conn.sent_now
        conn.close()
    for size in (0, 5000):
        ident = rec.new_id("close")
        raw = f"GET /close10/{size}?id={ident} HTTP/1.0\r\nHost: 127.0.0.1:{rec.port}\r\n\r\n".encode()
        data = b""
        with socket.create_connection(("127.0.0.1", rec.port), timeout=20) as sock:
            sock.sendall(raw)
            while piece := sock.recv(65536):
                data += piece
        assert data.startswith(b"HTTP/1.0 200 ") and data.endswith(b"\r\n\r\n" + binary_body(ident, size))
        rec.sent[ident] = len(raw)


def run_workload(port: int) -> _Recorder:
    rec = _Recorder(port)
    with ThreadPoolExecutor(KEEPALIVE_CONNECTIONS + PIPELINES) as pool:
        jobs = [pool.submit(_keep_alive, rec, seed) for seed in range(KEEPALIVE_CONNECTIONS)]
        jobs += [pool.submit(_pipelined, rec, 100 + p) for p in range(PIPELINES)]
        for job in jobs:
            job.result(timeout=60)
    _expect_continue(rec)
    _closing(rec)
    _large(rec)
    return rec


@contextmanager
def http_server(log: Path) -> Iterator[int]:
    """Start ``http_server.py``; yields its port; stops it (this process only) afterwards."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"HTTP server did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_CACHE: dict[str, LiveCapture] = {}


def capture_live_http(tmp: Path) -> LiveCapture:
    """Run the workload once per test session under tcpdump; later calls reuse it."""
    if "capture" not in _CACHE:
        log = tmp / "server.jsonl"
        pcap = tmp / "live-http.pcap"
        with http_server(log) as port, live_capture(pcap, port, protocol="http"):
            t0 = time.monotonic()
            rec = run_workload(port)
            elapsed = time.monotonic() - t0
        records = [json.loads(line) for line in log.read_text().splitlines()]
        _CACHE["capture"] = LiveCapture(pcap, port, records, rec.sent, rec.how, rec.texts, elapsed)
    return _CACHE["capture"]


@pytest.fixture(scope="session")
def live_http_capture(tmp_path_factory: pytest.TempPathFactory) -> LiveCapture:
    return capture_live_http(tmp_path_factory.mktemp("live-http"))
