"""Helpers for the live-capture tests: ``wirebeat`` as a subprocess capturing on ``lo``,
a keep-alive HTTP/1.1 file server in a subprocess, and checks for privileges."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import ROOT, free_port, need, need_tool

WIREBEAT = [sys.executable, "-c", "from shipper.agent.cli import main; main()"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def need_capture(kind: str = "af_packet") -> None:
    """Live capture needs root or CAP_NET_RAW (and libpcap for ``pcap``)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except OSError as exc:
        need(f"AF_PACKET sockets (root or CAP_NET_RAW): {exc}")
    if kind == "pcap":
        from capture import libpcap
        from capture.errors import CaptureError

        try:
            libpcap.lib()
        except CaptureError as exc:
            need(str(exc))


def run_wirebeat(
    args: list[str], cwd: Path, timeout: float = 60, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), *WIREBEAT, *args],
        cwd=str(cwd),
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def live_config(
    workdir: Path,
    *,
    kind: str,
    ports: list[int],
    device: str = "lo",
    extra_iface: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A config capturing on ``device`` with HTTP on ``ports``, events to ``workdir/out``."""
    iface = {"device": device, "type": kind, **(extra_iface or {})}
    cfg: dict[str, Any] = {
        "packetbeat.interfaces": [iface],
        "packetbeat.protocols": [{"type": "http", "ports": ports}],
        "output.file": {"path": str(workdir / "out"), "filename": "events"},
        "path.data": str(workdir / "data"),
        "path.logs": str(workdir / "logs"),
        "logging.metrics.period": "1s",
    }
    cfg.update(top)
    return cfg


class LiveBeat:
    """``wirebeat -c CONFIG -e`` in a subprocess; stderr (JSON log lines) collected."""

    def __init__(
        self,
        workdir: Path,
        cfg: dict[str, Any],
        args: list[str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.workdir = workdir
        #: A command wirebeat runs under (setpriv ... --).
        self.prefix = prefix or []
        self.config = write_config(workdir / "wirebeat.yml", cfg)
        self.cfg = cfg
        self.args = args or []
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.returncode: int | None = None

    def start(self, ready_timeout: float = 30) -> LiveBeat:
        self.proc = subprocess.Popen(
            [*self.prefix, *WIREBEAT, "-c", str(self.config), "-e", *self.args],
            cwd=str(self.workdir),
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if any("is capturing on" in line for line in self.lines):
                return self
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"wirebeat exited {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"wirebeat did not start capturing: {self.stderr()}")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"wirebeat did not stop within {timeout}s: {self.stderr()}") from None
        if self._reader is not None:
            self._reader.join(5)
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for f in sorted((self.workdir / "out").glob("*.ndjson")):
            out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        return out

    def __enter__(self) -> LiveBeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


_SERVER = r"""
import http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
def handler(*a, **kw):
    return H(*a, directory=sys.argv[2], **kw)
host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
srv = http.server.ThreadingHTTPServer((host, int(sys.argv[1])), handler)
print("ready", flush=True)
srv.serve_forever()
"""


@contextlib.contextmanager
def http_server(
    docroot: Path, files: int = 5, host: str = "127.0.0.1", prefix: list[str] | None = None, port: int = 0
) -> Iterator[int]:
    """A keep-alive HTTP/1.1 file server on ``host`` serving ``f0.txt`` … ``f{files-1}.txt``
    (``prefix`` runs it inside something, e.g. ``ip netns exec NS``)."""
    docroot.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (docroot / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    port = port or free_port()
    proc = subprocess.Popen(
        [*(prefix or []), sys.executable, "-c", _SERVER, str(port), str(docroot), host],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def keepalive_requests(port: int, paths: list[str], host: str = "127.0.0.1") -> list[int]:
    """GET each path over one keep-alive connection; the status codes."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=10)
    codes = []
    try:
        for p in paths:
            conn.request("GET", p)
            resp = conn.getresponse()
            resp.read()
            codes.append(resp.status)
    finally:
        conn.close()
    return codes


def urllib_requests(port: int, paths: list[str]) -> list[int]:
    import urllib.error
    import urllib.request

    codes = []
    for p in paths:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{p}", timeout=10) as r:
                r.read()
                codes.append(r.status)
        except urllib.error.HTTPError as exc:
            exc.read()
            codes.append(exc.code)
    return codes


def http_events(events: list[dict[str, Any]], port: int | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e.get("type") == "http" and (port is None or e.get("destination", {}).get("port") == port)
    ]


def settle(seconds: float = 0.5) -> None:
    """Let the last ring block retire (the ring hands over partly filled blocks after 50 ms)."""
    time.sleep(seconds)


@contextlib.contextmanager
def veth_namespace() -> Iterator[tuple[str, str, str, str]]:
    """veth pair: the host end (10.201.x.1) here, the peer (10.201.x.2) in a new netns."""
    ip = need_tool("ip")
    tag = f"{os.getpid() % 10000}"
    ns, host_if, peer_if = f"wbt{tag}", f"wbh{tag}", f"wbp{tag}"
    octet = os.getpid() % 250 + 1
    host_ip, peer_ip = f"10.201.{octet}.1", f"10.201.{octet}.2"
    cmds = [
        [ip, "netns", "add", ns],
        [ip, "link", "add", host_if, "type", "veth", "peer", "name", peer_if],
        [ip, "link", "set", peer_if, "netns", ns],
        [ip, "addr", "add", f"{host_ip}/30", "dev", host_if],
        [ip, "link", "set", host_if, "up"],
        [ip, "-n", ns, "addr", "add", f"{peer_ip}/30", "dev", peer_if],
        [ip, "-n", ns, "link", "set", peer_if, "up"],
        [ip, "-n", ns, "link", "set", "lo", "up"],
    ]
    try:
        for c in cmds:
            r = subprocess.run(c, capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError(f"{' '.join(c)}: {r.stderr}")
        # Static neighbours: no ARP traffic to wait for.
        mac = Path(f"/sys/class/net/{host_if}/address").read_text().strip()
        peer_mac = (
            subprocess.run(
                [ip, "-n", ns, "-o", "link", "show", peer_if], capture_output=True, text=True, check=True
            )
            .stdout.split("link/ether ")[1]
            .split()[0]
        )
        subprocess.run([ip, "neigh", "replace", peer_ip, "lladdr", peer_mac, "dev", host_if], check=True)
        subprocess.run([ip, "-n", ns, "neigh", "replace", host_ip, "lladdr", mac, "dev", peer_if], check=True)
        yield ns, host_if, host_ip, peer_ip
    finally:
        subprocess.run([ip, "link", "del", host_if], capture_output=True)
        subprocess.run([ip, "netns", "del", ns], capture_output=True)
