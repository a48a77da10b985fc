"""Record ``samples/sample.pcap``: real HTTP and Redis traffic on loopback.

Starts a small HTTP server and a throw-away redis-server on 127.0.0.1, captures the
loopback interface with tcpdump while a few clients talk to them, and writes the
capture next to this script. Needs root (for tcpdump) and redis-server.

    sudo python samples/record_sample.py
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HTTP_PORT = 8080
REDIS_PORT = 6379


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(
        self, code: int, body: bytes, ctype: str = "text/html; charset=utf-8", gz: bool = False
    ) -> None:
        if gz:
            body = gzip.compress(body)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if gz:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/api/users"):
            self._send(200, b'[{"id": 1, "name": "ada"}, {"id": 2, "name": "linus"}]', "application/json")
        elif self.path == "/slow":
            time.sleep(0.25)
            self._send(200, b"<html>slow page</html>")
        elif self.path == "/index.html":
            self._send(200, b"<html><body>" + b"hello " * 400 + b"</body></html>", gz=True)
        elif self.path == "/boom":
            self._send(500, b"internal error")
        else:
            self._send(404, b"not found")

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self._send(201, b'{"created": true}', "application/json")


@contextlib.contextmanager
def tcpdump(path: Path) -> object:
    proc = subprocess.Popen(
        [
            "tcpdump",
            "-i",
            "lo",
            "-s",
            "0",
            "-U",
            "-w",
            str(path),
            f"tcp port {HTTP_PORT} or tcp port {REDIS_PORT}",
        ],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    proc.stderr.readline()
    time.sleep(1.0)
    try:
        yield proc
    finally:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def redis_command(sock: socket.socket, *args: str) -> bytes:
    out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    sock.sendall(out)
    time.sleep(0.02)
    return sock.recv(65536)


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp()
    redis = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    out = HERE / "sample.pcap"
    try:
        with tcpdump(out):
            conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT)
            for path in ("/index.html", "/api/users?active=true&page=2", "/missing.png", "/boom", "/slow"):
                conn.request(
                    "GET", path, headers={"User-Agent": "wirebeat-sample/1.0", "Accept-Encoding": "gzip"}
                )
                conn.getresponse().read()
            conn.request(
                "POST",
                "/api/users",
                body="name=grace&password=hunter2",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "wirebeat-sample/1.0",
                },
            )
            conn.getresponse().read()
            conn.close()
            with socket.create_connection(("127.0.0.1", REDIS_PORT)) as s:
                redis_command(s, "SET", "session:42", "ada")
                redis_command(s, "GET", "session:42")
                redis_command(s, "INCR", "hits")
                redis_command(s, "LPUSH", "queue", "job1", "job2")
                redis_command(s, "HGET", "session:42", "x")  # WRONGTYPE error
                redis_command(s, "DEL", "session:42", "queue")
    finally:
        server.shutdown()
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    os.chmod(out, 0o644)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
