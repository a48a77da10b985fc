"""A real HTTP/1.1 server for the live HTTP tests (stdlib only, run as a subprocess).

``python http_server.py LOGFILE`` listens on 127.0.0.1 (a free port), prints
``READY <port>`` and serves until terminated. Keep-alive and pipelining (one handler
thread per connection reading requests in turn), ``Expect: 100-continue`` (the stdlib
answers ``100 Continue`` before the body is read), chunked and gzip responses, 404/500
without closing the connection, HEAD, large bodies both ways.

Every request is logged as one JSON line, written after its response has gone out:
``id`` (from ``?id=``), method, path, status, the client's port, and the exact bytes the
server read for the request and wrote for the final response (``interim`` counts a
``100 Continue`` separately), so the test can compare what went over the wire with what
the decoder reports.

Routes: ``/bytes/N`` (N bytes, Content-Length), ``/chunked/N`` (N bytes in chunks),
``/gzip/N`` (N text lines, gzip, Content-Length), ``/gzipchunked/N`` (the same, chunked),
``/close/N`` (N bytes without a length, then the connection closes; ``/close10/N``
answers as HTTP/1.0), ``/status/C`` (status C with a short body; none for 204 and 304),
``POST /upload`` (reads the body, by Content-Length or chunked, answers with its size).
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

#: Large bodies go out in pieces with a pause between them, so that tcpdump on a busy
#: loopback keeps every packet (a capture that drops some would fail the test).
PIECE = 256 * 1024
PACE_S = 0.002


def binary_body(ident: str, n: int) -> bytes:
    unit = (ident.encode() + b":" + bytes(range(256))) * 4
    return (unit * (n // len(unit) + 1))[:n]


def text_body(ident: str, lines: int) -> bytes:
    return "".join(f"line {i} of request {ident}: the quick brown fox\n" for i in range(lines)).encode()


class CountingReader:
    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readline(self, limit: int = -1) -> bytes:
        data = self.raw.readline(limit)
        self.count += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


class CountingWriter:
    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wirebeat-test/1.0"
    log_lock = threading.Lock()
    log_file: Any = None

    def setup(self) -> None:
        super().setup()
        self.rfile = CountingReader(self.rfile)  # type: ignore[assignment]
        self.wfile = CountingWriter(self.wfile)  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        self.req_start = self.rfile.count  # type: ignore[attr-defined]
        self.interim = 0
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        before = self.wfile.count  # type: ignore[attr-defined]
        ok = super().handle_expect_100()
        self.interim = self.wfile.count - before  # type: ignore[attr-defined]
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- routes ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        resp_start = self.wfile.count  # type: ignore[attr-defined]  (after any 100 Continue)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            got = self._read_chunked()
        else:
            got = self._read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"received": got}).encode()
        self._respond(200, body, "application/json", send_body=True)
        self._log(200, resp_start, body_bytes=len(body), request_body_bytes=got)

    def _read(self, n: int) -> int:
        got = 0
        while got < n:
            piece = self.rfile.read(min(65536, n - got))
            if not piece:
                break
            got += len(piece)
        return got

    def _read_chunked(self) -> int:
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return total
            total += self._read(size)
            self.rfile.readline(16)  # the CRLF after the chunk

    def _serve(self, send_body: bool) -> None:
        resp_start = self.wfile.count  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        ident = parse_qs(url.query).get("id", ["0"])[0]
        _, kind, arg = [*url.path.split("/"), "", ""][:3]
        body_bytes = 0
        if kind == "bytes":
            body = binary_body(ident, int(arg))
            self._respond(200, body, "application/octet-stream", send_body)
            status, body_bytes = 200, len(body)
        elif kind == "chunked":
            body = binary_body(ident, int(arg))
            self._chunked(200, body, "text/plain; charset=utf-8", {}, send_body)
            status, body_bytes = 200, len(body)
        elif kind == "gzip":
            body = gzip.compress(text_body(ident, int(arg)))
            self._respond(200, body, "text/plain; charset=utf-8", send_body, {"Content-Encoding": "gzip"})
            status, body_bytes = 200, len(body)
        elif kind == "gzipchunked":
            body = gzip.compress(text_body(ident, int(arg)))
            self._chunked(200, body, "text/plain; charset=utf-8", {"Content-Encoding": "gzip"}, send_body)
            status, body_bytes = 200, len(body)
        elif kind in ("close", "close10"):
            # No length: the body runs to the end of the connection (as HTTP/1.0 if asked).
            if kind == "close10":
                self.protocol_version = "HTTP/1.0"
            body = binary_body(ident, int(arg))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if self.protocol_version != "HTTP/1.0":
                self.send_header("Connection", "close")
            self.end_headers()
            if send_body:
                self.wfile.write(body)
            self.close_connection = True
            status, body_bytes = 200, len(body)
        elif kind == "status" and arg in ("204", "304"):
            status = int(arg)
            self.send_response(status)
            self.send_header("ETag", f'"{ident}"')
            self.end_headers()
        elif kind == "status":
            status = int(arg)
            body = f"status {status} for request {ident}\n".encode()
            self._respond(status, body, "text/plain", send_body)
            body_bytes = len(body)
        else:
            status = 404
            body = b"no such route\n"
            self._respond(status, body, "text/plain", send_body)
            body_bytes = len(body)
        self._log(status, resp_start, body_bytes=body_bytes if send_body else 0)

    def _respond(
        self, status: int, body: bytes, ctype: str, send_body: bool, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if send_body:
            for i in range(0, len(body), PIECE):
                self.wfile.write(body[i : i + PIECE])
                if len(body) > PIECE:
                    time.sleep(PACE_S)

    def _chunked(self, status: int, body: bytes, ctype: str, extra: dict[str, str], send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if not send_body:
            return
        pos, size = 0, 1000
        while pos < len(body):
            piece = body[pos : pos + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            pos += len(piece)
            size = size * 3 // 2  # chunks of growing size: 1000, 1500, 2250 ...
        self.wfile.write(b"0\r\n\r\n")

    def _log(self, status: int, resp_start: int, body_bytes: int, request_body_bytes: int = 0) -> None:
        url = urlsplit(self.path)
        rec = {
            "id": parse_qs(url.query).get("id", [""])[0],
            "method": self.command,
            "version": self.request_version,
            "path": url.path,
            "status": status,
            "client_port": self.client_address[1],
            "request_bytes": self.rfile.count - self.req_start,  # type: ignore[attr-defined]
            "request_body_bytes": request_body_bytes,
            "response_bytes": self.wfile.count - resp_start,  # type: ignore[attr-defined]
            "interim_bytes": self.interim,
            "response_body_bytes": body_bytes,
        }
        with self.log_lock:
            self.log_file.write(json.dumps(rec) + "\n")
            self.log_file.flush()


def main() -> None:
    Handler.log_file = open(sys.argv[1], "a")  # noqa: SIM115 - lives as long as the process
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
