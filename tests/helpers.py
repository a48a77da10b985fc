"""Shared test helpers: decoding captures, live capture on loopback, tool checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_PCAPS = SHARED / "pcaps" / "packetbeat"
IN_CI = os.environ.get("CI", "").lower() == "true"


#: The beats module scripts/build-packetbeat downloads (Packetbeat 9.3.0's sources and test data).
BEATS_VERSION = "v7.0.0-alpha2.0.20251031181001-be9871f5dab9"


def beats_dir() -> Path | None:
    """Packetbeat 9.3.0's source tree in the Go module cache, if downloaded."""
    roots = []
    if os.environ.get("GOMODCACHE"):
        roots.append(Path(os.environ["GOMODCACHE"]))
    if os.environ.get("GOPATH"):
        roots.append(Path(os.environ["GOPATH"].split(os.pathsep)[0]) / "pkg" / "mod")
    roots.append(Path.home() / "go" / "pkg" / "mod")
    for r in roots:
        d = r / "github.com" / "elastic" / "beats" / f"v7@{BEATS_VERSION}"
        if d.is_dir():
            return d
    return None


def beats_pcap(name: str) -> Path:
    """A capture of Packetbeat's own system tests, read from the beats module (never copied
    into this repository); fails under CI=true when the module is missing."""
    fname = name if name.endswith(".pcap") else name + ".pcap"
    d = beats_dir()
    if d is not None:
        for p in sorted((d / "packetbeat" / "tests" / "system" / "pcaps").rglob(fname)):
            return p
    need(f"Packetbeat's test capture {fname} (scripts/build-packetbeat downloads the beats module)")
    raise AssertionError  # unreachable: need() fails or skips


def shared_pcap(name: str) -> Path:
    p = SHARED_PCAPS / (name if name.endswith(".pcap") else name + ".pcap")
    if not p.exists():
        need(f"shared capture {p}")
    return p


def need(what: str) -> None:
    """A prerequisite is missing: fail under CI=true, skip otherwise."""
    if IN_CI:
        pytest.fail(f"missing prerequisite: {what}")
    pytest.skip(f"missing prerequisite: {what}")  # never under CI=true: need() fails there


def need_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        need(f"tool {name}")
    assert path is not None
    return path


def make_decoder(protocols: dict[str, dict[str, Any]], **limits: Any) -> Decoder:
    configs = {name: default_config(name, **opts) for name, opts in protocols.items()}
    return Decoder(build_plugins(configs))


def decode_file(path: str | Path, protocols: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Run a capture through a fresh decoder (protocol-level event dicts, before the envelope)."""
    dec = make_decoder(protocols)
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(path)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return events


def decode_packets(
    packets: list[tuple[int, int, bytes]], protocols: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], Decoder]:
    dec = make_decoder(protocols)
    events: list[dict[str, Any]] = []
    for ts, lt, frame in packets:
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return events, dec


@contextlib.contextmanager
def tcpdump(path: str | Path, bpf: str, iface: str = "lo", settle: float = 0.5) -> Iterator[Path]:
    """Capture live traffic on ``iface`` into ``path`` while the block runs."""
    exe = need_tool("tcpdump")
    proc = subprocess.Popen(
        [exe, "-i", iface, "-s", "0", "-B", "32768", "-U", "-n", "-w", str(path), bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 10
    line = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if b"listening on" in line or not line:
            break
    if proc.poll() is not None:
        raise RuntimeError(f"tcpdump failed: {line.decode(errors='replace')}")
    try:
        yield Path(path)
    finally:
        time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
