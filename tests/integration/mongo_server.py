"""A throw-away FerretDB (MongoDB wire protocol over SQLite) on 127.0.0.1: free port,
temporary data and state directories. Built by scripts/setup.d/50-mongodb.sh."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port, need

FERRETDB_VERSION = "v1.24.2"


def ferretdb_binary() -> Path:
    cache = os.environ.get("WIREBEAT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wirebeat"
    )
    return Path(cache) / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"


def _ping(port: int) -> bool:
    """An OP_MSG ``ping`` on admin; True once the server answers it."""
    import bson

    body = struct.pack("<I", 0) + b"\0" + bson.encode({"ping": 1, "$db": "admin"})
    msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(msg)
        return len(s.recv(1024)) >= 16
    return False


@contextlib.contextmanager
def ferretdb_server() -> Iterator[int]:
    exe = ferretdb_binary()
    if not exe.is_file():
        need(f"FerretDB at {exe} (scripts/setup.d/50-mongodb.sh builds it)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wirebeat-ferretdb-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        proc = subprocess.Popen(
            [
                str(exe),
                "--handler=sqlite",
                f"--sqlite-url=file:{data}/",
                f"--state-dir={tmp}",
                f"--listen-addr=127.0.0.1:{port}",
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while not _ping(port):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"ferretdb exited: {err[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("ferretdb did not start")
                time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
