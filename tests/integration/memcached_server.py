"""A throw-away memcached (Debian's package) on 127.0.0.1, TCP and UDP on free ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator

from tests.helpers import free_port, need_tool


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def memcached_server() -> Iterator[tuple[int, int]]:
    """Yields (tcp port, udp port)."""
    exe = need_tool("memcached")
    tcp_port, udp_port = free_port(), free_udp_port()
    args = [exe, "-l", "127.0.0.1", "-p", str(tcp_port), "-U", str(udp_port), "-m", "64", "-t", "2"]
    if os.geteuid() == 0:
        args += ["-u", "root"]  # memcached refuses to run as root without naming a user
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"memcached exited: {err}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", tcp_port), timeout=0.5) as s,
            ):
                s.sendall(b"version\r\n")
                if s.recv(64).startswith(b"VERSION"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("memcached did not start")
            time.sleep(0.05)
        yield tcp_port, udp_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
