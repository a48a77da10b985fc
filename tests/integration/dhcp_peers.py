"""Real DHCP peers in network namespaces the test creates: dnsmasq serving one end of a veth
pair, BusyBox udhcpc on the other, tcpdump on the server's end.

``Lab`` makes two namespaces (``<run>s`` for the server, ``<run>c`` for the client) joined by
a veth pair (``<run>a`` / ``<run>b``); every name carries a per-run tag, and everything is
removed on exit (only the processes and namespaces this module started). dnsmasq logs every
message it receives and sends (``--log-dhcp``: xid, type, address, MAC, each option sent);
udhcpc's event script records the lease it gets (the script's environment) — the two
independent records the test checks the decoded events against.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.213.0"
SERVER_IP = f"{SUBNET}.1"
CLIENT_MAC = "02:57:42:00:00:01"

#: udhcpc runs this on every event: the event name and the lease variables, one block each.
SCRIPT = """#!/bin/sh
{
  echo "EVENT $1"
  env | grep -E '^(ip|subnet|mask|router|dns|domain|lease|serverid|broadcast|ntpsrv|hostname|message|opt53)='
  echo END
} >> "%(events)s"
case "$1" in
  deconfig|nak) ip addr flush dev "$interface" ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
"""


def tool(name: str) -> str:
    """The program's path (``/usr/sbin`` is not on every user's PATH)."""
    return shutil.which(name) or f"/usr/sbin/{name}"


IP = tool("ip")


def _run(*args: str) -> None:
    subprocess.run([tool(args[0]), *args[1:]], check=True, capture_output=True, timeout=20)


def wait_for(what: str, check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Lab:
    workdir: Path
    tag: str = field(default_factory=lambda: "wbd" + secrets.token_hex(3))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    @property
    def server_ns(self) -> str:
        return self.tag + "s"

    @property
    def client_ns(self) -> str:
        return self.tag + "c"

    @property
    def server_if(self) -> str:
        return self.tag + "a"

    @property
    def client_if(self) -> str:
        return self.tag + "b"

    # -- the network ------------------------------------------------------------------------

    def up(self) -> None:
        s, c = self.server_ns, self.client_ns
        for ns in (s, c):
            _run("ip", "netns", "add", ns)
            self.made.append(ns)
        _run("ip", "link", "add", self.server_if, "type", "veth", "peer", "name", self.client_if)
        _run("ip", "link", "set", self.server_if, "netns", s)
        _run("ip", "link", "set", self.client_if, "netns", c)
        _run("ip", "-n", c, "link", "set", self.client_if, "address", CLIENT_MAC)
        _run("ip", "-n", s, "addr", "add", f"{SERVER_IP}/24", "dev", self.server_if)
        for ns, ifname in ((s, self.server_if), (c, self.client_if)):
            _run("ip", "-n", ns, "link", "set", ifname, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        for p in reversed(self.procs):
            stop(p)
        self.procs.clear()
        for ns in self.made:  # the veth pair goes with its namespaces
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=20)
        self.made.clear()

    def add_server_address(self, addr: str) -> None:
        _run("ip", "-n", self.server_ns, "addr", "add", f"{addr}/24", "dev", self.server_if)

    def spawn(self, ns: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
        # `ip netns exec` execs the command: the process is the peer itself.
        with open(log, "ab") as out:
            p = subprocess.Popen(
                [IP, "netns", "exec", ns, tool(args[0]), *args[1:]], stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(p)
        return p

    # -- capture ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def capture(self, pcap: Path) -> Iterator[Path]:
        """tcpdump on the server's end of the link; returns once a probe datagram (UDP port 9,
        which nothing decodes) shows in the file, so no message of the peers is missed."""
        p = subprocess.Popen(
            [
                IP,
                "netns",
                "exec",
                self.server_ns,
                tool("tcpdump"),
                "-i",
                self.server_if,
                "-s",
                "0",
                "-U",
                "--immediate-mode",
                "-n",
                "-w",
                str(pcap),
                "udp port 67 or udp port 68 or udp port 9",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        probe = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); "
            f"s.sendto(b'probe', ('{SUBNET}.255', 9))"
        )
        try:
            deadline = time.monotonic() + 15
            while not (pcap.exists() and pcap.stat().st_size > 24):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("tcpdump never captured the probe datagrams")
                _run("ip", "netns", "exec", self.server_ns, sys.executable, "-c", probe)
                time.sleep(0.2)
            yield pcap
        finally:
            time.sleep(1.0)
            stop(p, signal.SIGINT)
            self.procs.remove(p)


def stop(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- dnsmasq ------------------------------------------------------------------------------------


class Dnsmasq:
    """dnsmasq as an authoritative DHCP server only (no DNS: ``--port=0``)."""

    def __init__(self, lab: Lab, name: str, first: str, last: str, *extra: str) -> None:
        self.lab = lab
        self.log = lab.workdir / f"{name}.log"
        args = [
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            f"--interface={lab.server_if}",
            "--bind-interfaces",
            f"--dhcp-range={first},{last},255.255.255.0,10m",
            "--dhcp-authoritative",
            "--no-ping",
            "--log-dhcp",
            f"--log-facility={self.log}",
            f"--dhcp-leasefile={lab.workdir / (name + '.leases')}",
            "--user=root",
            "--group=root",
            *extra,
        ]
        self.proc = lab.spawn(lab.server_ns, *args, log=lab.workdir / f"{name}.out")
        wait_for("dnsmasq to start", lambda: self.log.exists() and "DHCP, IP range" in self.log.read_text())

    def stop(self) -> None:
        stop(self.proc)
        self.lab.procs.remove(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


_LINE = re.compile(r"dnsmasq-dhcp\[\d+\]: (\d+) (.*)$")
_MSG = re.compile(r"DHCP([A-Z]+)\([^)]*\)\s*(.*)$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SENT = re.compile(r"sent size:\s*(\d+) option:\s*(\d+) (\S+)\s*(.*)$")
_RECEIVED = {"DISCOVER", "REQUEST", "DECLINE", "RELEASE", "INFORM"}


@dataclass
class Logged:
    """One message in dnsmasq's log."""

    xid: int
    type: str  # discover, offer, ...
    received: bool
    ip: str | None
    mac: str | None
    text: str  # what follows the address and MAC (the NAK reason, the host name)
    sent: dict[int, str] = field(default_factory=dict)  # option code → dnsmasq's rendering
    vendor_class: str | None = None
    client_name: str | None = None
    requested: list[int] = field(default_factory=list)
    next_server: str | None = None


def parse_log(text: str) -> list[Logged]:
    out: list[Logged] = []
    pending: dict[int, dict[str, str]] = {}
    last_received: dict[int, Logged] = {}
    last_sent: dict[int, Logged] = {}
    for line in text.splitlines():
        m = _LINE.search(line)
        if m is None:
            continue
        xid, rest = int(m.group(1)), m.group(2)
        msg = _MSG.match(rest)
        if msg:
            kind = msg.group(1)
            words = msg.group(2).split()
            ip = next((w for w in words[:2] if _IP.match(w)), None)
            mac = next((w for w in words[:2] if _MAC.match(w)), None)
            tail = " ".join(w for w in words if w not in (ip, mac))
            rec = Logged(xid, kind.lower(), kind in _RECEIVED, ip, mac, tail)
            if rec.received:
                info = pending.pop(xid, {})
                rec.vendor_class = info.get("vendor")
                rec.client_name = info.get("name")
                last_received[xid] = rec
            else:
                last_sent[xid] = rec
            out.append(rec)
        elif rest.startswith("vendor class: "):
            pending.setdefault(xid, {})["vendor"] = rest.removeprefix("vendor class: ")
        elif rest.startswith("client provides name: "):
            pending.setdefault(xid, {})["name"] = rest.removeprefix("client provides name: ")
        elif rest.startswith("requested options: ") and xid in last_received:
            codes = rest.removeprefix("requested options: ").strip().rstrip(",").split(",")
            last_received[xid].requested += [int(c.split(":")[0]) for c in codes if c.strip()]
        elif rest.startswith("next server: ") and xid in last_sent:
            last_sent[xid].next_server = rest.removeprefix("next server: ")
        elif (s := _SENT.search(rest)) and xid in last_sent:
            last_sent[xid].sent[int(s.group(2))] = s.group(4).strip()
    return out


def seconds(text: str) -> int:
    """dnsmasq's durations: ``10m``, ``8m45s``, ``1h``, ``2d``."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([dhms])", text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    return sum(int(n) * units[u] for n, u in parts)


# -- udhcpc -------------------------------------------------------------------------------------


class Udhcpc:
    """BusyBox udhcpc in the foreground; ``events()`` are its script's calls."""

    def __init__(self, lab: Lab, name: str, *extra: str) -> None:
        self.lab = lab
        self.events_path = lab.workdir / f"{name}.events"
        script = lab.workdir / f"{name}.sh"
        script.write_text(SCRIPT % {"events": self.events_path})
        script.chmod(0o755)
        args = [
            "udhcpc",
            "-f",
            "-i",
            lab.client_if,
            "-s",
            str(script),
            "-t",
            "5",
            "-T",
            "1",
            "-A",
            "1",
            *extra,
        ]
        self.proc = lab.spawn(lab.client_ns, *args, log=lab.workdir / f"{name}.out")

    def events(self) -> list[tuple[str, dict[str, str]]]:
        if not self.events_path.exists():
            return []
        out: list[tuple[str, dict[str, str]]] = []
        for block in self.events_path.read_text().split("END\n"):
            lines = block.strip().splitlines()
            if lines and lines[0].startswith("EVENT "):
                env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
                out.append((lines[0].removeprefix("EVENT "), env))
        return out

    def names(self) -> list[str]:
        return [n for n, _ in self.events()]

    def wait_event(self, name: str, count: int = 1) -> dict[str, str]:
        wait_for(f"udhcpc event {name} #{count}", lambda: self.names().count(name) >= count)
        return [env for n, env in self.events() if n == name][count - 1]

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        stop(self.proc)
        self.lab.procs.remove(self.proc)
