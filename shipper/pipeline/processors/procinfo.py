"""Processes and sockets from ``/proc`` (Linux): what ``add_process_metadata`` and
``packetbeat.procs`` read. Everything here tolerates processes that vanish mid-read (None)."""

from __future__ import annotations

import datetime
import grp
import os
import pwd
import socket
import struct
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def boot_time(root: str = "/") -> float:
    try:
        with open(os.path.join(root, "proc/stat"), encoding="ascii") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0.0


class ProcessInfo:
    """One process, as go-sysinfo's ``ProcessInfo`` describes it."""

    __slots__ = ("args", "cwd", "env", "exe", "gid", "name", "pid", "ppid", "start", "uid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ppid = 0
        self.name = ""
        self.args: list[str] = []
        self.exe = ""
        self.cwd = ""
        self.start: datetime.datetime | None = None
        self.uid = ""
        self.gid = ""
        self.env: dict[str, str] = {}

    @property
    def start_text(self) -> str:
        """The start time as libbeat's JSON encoder writes a ``time.Time`` (UTC, ms)."""
        if self.start is None:
            return ""
        return self.start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.start.microsecond // 1000:03d}Z"

    def owner_name(self) -> str:
        try:
            return pwd.getpwuid(int(self.uid)).pw_name
        except (KeyError, ValueError):
            return ""

    def group_name(self) -> str:
        try:
            return grp.getgrgid(int(self.gid)).gr_name
        except (KeyError, ValueError):
            return ""


def read_process(pid: int, root: str = "/", *, env: bool = False) -> ProcessInfo | None:
    base = os.path.join(root, "proc", str(pid))
    p = ProcessInfo(pid)
    try:
        with open(os.path.join(base, "stat"), "rb") as fh:
            stat = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm is in parentheses and may itself contain spaces or parentheses.
    lpar, rpar = stat.find("("), stat.rfind(")")
    if lpar < 0 or rpar < lpar:
        return None
    p.name = stat[lpar + 1 : rpar]
    rest = stat[rpar + 2 :].split()
    try:
        p.ppid = int(rest[1])
        start_ticks = int(rest[19])
        bt = boot_time(root)
        if bt:
            p.start = datetime.datetime.fromtimestamp(bt + start_ticks / _CLK_TCK, datetime.UTC).replace(
                tzinfo=None
            )
    except (IndexError, ValueError):
        pass
    try:
        with open(os.path.join(base, "cmdline"), "rb") as fh:
            raw = fh.read()
        p.args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a] if raw else []
    except OSError:
        pass
    for attr, link in (("exe", "exe"), ("cwd", "cwd")):
        try:
            setattr(p, attr, os.readlink(os.path.join(base, link)))
        except OSError:
            pass
    try:
        with open(os.path.join(base, "status"), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Uid:"):
                    p.uid = line.split()[2]  # effective
                elif line.startswith("Gid:"):
                    p.gid = line.split()[2]
    except OSError:
        pass
    if env:
        try:
            with open(os.path.join(base, "environ"), "rb") as fh:
                for item in fh.read().split(b"\0"):
                    k, sep, v = item.decode("utf-8", "replace").partition("=")
                    if sep:
                        p.env[k] = v
        except OSError:
            pass
    return p


def list_pids(root: str = "/") -> list[int]:
    try:
        return [int(n) for n in os.listdir(os.path.join(root, "proc")) if n.isdigit()]
    except OSError:
        return []


def socket_inodes(pid: int, root: str = "/") -> list[int]:
    """The inodes of the sockets a process holds open (``/proc/<pid>/fd``)."""
    d = os.path.join(root, "proc", str(pid), "fd")
    out: list[int] = []
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            link = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if link.startswith("socket:["):
            try:
                out.append(int(link[8:-1]))
            except ValueError:
                continue
    return out


def _hex_ip(text: str, v6: bool) -> str:
    raw = bytes.fromhex(text)
    if v6:
        # /proc writes the address as four host-order 32-bit words.
        words = struct.unpack("<4I", raw)
        packed = struct.pack(">4I", *words)
        a = socket.inet_ntop(socket.AF_INET6, packed)
        if packed[:12] == b"\x00" * 10 + b"\xff\xff":
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        return a
    return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(text, 16)))


def socket_table(transport: str, root: str = "/") -> dict[int, tuple[str, int]]:
    """inode → (local address, local port) of the TCP or UDP sockets (v4 and v6)."""
    out: dict[int, tuple[str, int]] = {}
    for name, v6 in ((transport, False), (transport + "6", True)):
        try:
            with open(os.path.join(root, "proc/net", name), encoding="ascii") as fh:
                lines = fh.readlines()
        except OSError:
            continue
        for line in lines[1:]:
            words = line.split()
            if len(words) < 10:
                continue
            try:
                ip_hex, port_hex = words[1].split(":")
                inode = int(words[9])
                out[inode] = (_hex_ip(ip_hex, v6), int(port_hex, 16))
            except (ValueError, OSError):
                continue
    return out


def local_port_owners(transport: str, root: str = "/") -> dict[tuple[str, int], int]:
    """(local address, port) → pid, for every socket of every process we may read."""
    table = socket_table(transport, root)
    owners: dict[tuple[str, int], int] = {}
    if not table:
        return owners
    for pid in list_pids(root):
        for inode in socket_inodes(pid, root):
            ep = table.get(inode)
            if ep is not None:
                owners[ep] = pid
    return owners


def container_id(pid: int, root: str = "/") -> str:
    """The container id from the process's cgroup paths (64 hex digits), or ""."""
    try:
        with open(os.path.join(root, "proc", str(pid), "cgroup"), encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return ""
    import re

    m = re.search(r"[0-9a-f]{64}", text)
    return m.group(0) if m else ""


def as_fields(p: ProcessInfo) -> dict[str, Any]:
    return {"name": p.name, "pid": p.pid, "args": list(p.args), "executable": p.exe}
