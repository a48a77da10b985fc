"""A throw-away NFSv3 server (tests/nfs/server, on go-nfs) on 127.0.0.1: free port, temporary
export tree, and the log of every RPC message it received and sent (its ground truth).
Built with the libnfs test client by scripts/setup.d/60-nfs.sh."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import free_port, need

GO_NFS_VERSION = "v0.0.4"


def build_dir() -> Path:
    cache = os.environ.get("WIREBEAT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wirebeat"
    )
    return Path(cache) / f"nfs-{GO_NFS_VERSION}"


def nfs_op_binary() -> Path:
    exe = build_dir() / "nfs-op"
    if not exe.is_file():
        need(f"the libnfs test client at {exe} (scripts/setup.d/60-nfs.sh builds it)")
    return exe


class NfsServer:
    def __init__(self, port: int, root: Path, log: Path) -> None:
        self.port = port
        self.root = root
        self.log = log

    def url(self, path: str, version: int = 3) -> str:
        return f"nfs://127.0.0.1{path}?nfsport={self.port}&mountport={self.port}&version={version}"

    def messages(self) -> list[dict[str, Any]]:
        """The server's log: one dict per RPC message (``dir`` call or reply)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def nfs_server() -> Iterator[NfsServer]:
    exe = build_dir() / "nfsd-test"
    if not exe.is_file():
        need(f"the NFS test server at {exe} (scripts/setup.d/60-nfs.sh builds it)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wirebeat-nfs-") as tmp:
        root = Path(tmp) / "export"
        (root / "data" / "sub").mkdir(parents=True)
        (root / "ro").mkdir()
        (root / "data" / "hello.txt").write_text("hello\n")
        (root / "data" / "sub" / "a.txt").write_text("a\n")
        (root / "data" / "big.bin").write_bytes(bytes(range(256)) * 800)  # 204,800 bytes
        (root / "ro" / "r.txt").write_text("read only\n")
        log = Path(tmp) / "rpc.log"
        proc = subprocess.Popen(
            [str(exe), "-dir", str(root), "-port", str(port), "-log", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"nfsd-test exited: {err[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("nfsd-test did not start")
                time.sleep(0.05)
            yield NfsServer(port, root, log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
