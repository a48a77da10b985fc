"""A veth pair into a network namespace, IPv4 and IPv6, for ICMP and flow tests.

Static neighbours on both ends (no ARP or neighbour discovery in the captures), no ICMP
rate limits inside the namespace (every port unreachable is sent), and helpers to run
commands and nftables rules in the namespace. The test captures on the host end.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from tests.helpers import need_tool
from tests.live_helpers import veth_namespace


@attrs.frozen
class Peer:
    ns: str
    host_if: str
    host4: str
    peer4: str
    host6: str
    peer6: str

    def inside(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *cmd]

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.inside(*cmd), capture_output=True, text=True, check=True)


def _sh(*cmd: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {r.stderr}")


@contextlib.contextmanager
def dual_stack_peer() -> Iterator[Peer]:
    ip = need_tool("ip")
    with veth_namespace() as (ns, host_if, host4, peer4):
        tag = os.getpid() % 0xFFFF
        host6, peer6 = f"fd42:{tag:x}::1", f"fd42:{tag:x}::2"
        peer_if = host_if.replace("wbh", "wbp")
        _sh(ip, "-6", "addr", "add", f"{host6}/64", "dev", host_if, "nodad")
        _sh(ip, "-n", ns, "-6", "addr", "add", f"{peer6}/64", "dev", peer_if, "nodad")
        mac = Path(f"/sys/class/net/{host_if}/address").read_text().strip()
        out = subprocess.run([ip, "-n", ns, "-o", "link", "show", peer_if], capture_output=True, text=True)
        m = re.search(r"link/ether (\S+)", out.stdout)
        assert m, out
        _sh(ip, "-6", "neigh", "replace", peer6, "lladdr", m.group(1), "dev", host_if)
        _sh(ip, "-n", ns, "-6", "neigh", "replace", host6, "lladdr", mac, "dev", peer_if)
        for key in ("net.ipv4.icmp_ratelimit", "net.ipv6.icmp.ratelimit"):
            _sh(ip, "netns", "exec", ns, "sysctl", "-qw", f"{key}=0")
        yield Peer(ns, host_if, host4, peer4, host6, peer6)


@contextlib.contextmanager
def drop_echo_replies(peer: Peer) -> Iterator[None]:
    """nftables in the namespace: the peer's echo replies are dropped on their way out."""
    nft = need_tool("nft")
    rules = (
        "table inet wbdrop {\n  chain out {\n    type filter hook output priority 0;\n"
        "    icmp type echo-reply drop\n    icmpv6 type echo-reply drop\n  }\n}\n"
    )
    subprocess.run([*peer.inside(nft, "-f", "-")], input=rules, text=True, check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(peer.inside(nft, "delete", "table", "inet", "wbdrop"), capture_output=True)


_SINK = (
    "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "s.bind((sys.argv[1], int(sys.argv[2]))); print('ready', flush=True); "
    "[s.recv(2048) for _ in iter(int, 1)]"
)


@contextlib.contextmanager
def _tcpdump(path: Path, bpf: str, iface: str) -> Iterator[None]:
    """tcpdump in immediate mode (each packet written as it comes, not a ring block later)."""
    exe = need_tool("tcpdump")
    proc = subprocess.Popen(
        [exe, "-i", iface, "-s", "0", "--immediate-mode", "-U", "-n", "-w", str(path), bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def capture(peer: Peer, path: Path, bpf: str, probe_port: int) -> Iterator[Path]:
    """tcpdump on the host end for the duration of the block, fenced by UDP probes to a
    sink in the namespace (``udp port probe_port``, added to the filter): probes until the
    file shows one before the block, and after it until the file shows the trailing probe
    (libpcap hands packets over in blocks, late; packets arrive in order)."""
    sink = subprocess.Popen(
        peer.inside(sys.executable, "-c", _SINK, peer.peer4, str(probe_port)),
        stdout=subprocess.PIPE,
        text=True,
    )

    def fence(s: socket.socket, marker: bytes) -> None:
        deadline = time.monotonic() + 15
        while True:
            s.sendto(marker, (peer.peer4, probe_port))
            time.sleep(0.1)
            if path.exists() and marker in path.read_bytes():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump never captured the probe {marker!r}")

    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        with (
            _tcpdump(path, f"({bpf}) or udp port {probe_port}", peer.host_if),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
        ):
            fence(s, b"wirebeat-capture-start")
            yield path
            fence(s, b"wirebeat-capture-end")
    finally:
        sink.terminate()
        sink.wait(timeout=10)
