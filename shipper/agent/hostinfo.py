"""``host.*`` metadata (libbeat's add_host_metadata) and the persistent agent id."""

from __future__ import annotations

import json
import os
import platform
import socket
import uuid
from pathlib import Path
from typing import Any

from capture.devices import interface_addresses, list_devices


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                k, sep, v = line.strip().partition("=")
                if sep:
                    out[k] = v.strip('"')
    except OSError:
        pass
    return out


def _macs() -> list[str]:
    macs = []
    for d in list_devices():
        if d.loopback or d.name == "any":
            continue
        try:
            with open(f"/sys/class/net/{d.name}/address") as fh:
                mac = fh.read().strip().upper().replace(":", "-")
        except OSError:
            continue
        if mac and mac != "00-00-00-00-00-00":
            macs.append(mac)
    return sorted(set(macs))


def host_metadata(name: str) -> dict[str, Any]:
    rel = _os_release()
    host: dict[str, Any] = {
        "name": name,
        "hostname": socket.gethostname(),
        "architecture": platform.machine(),
        "os": {
            "type": platform.system().lower(),
            "kernel": platform.release(),
            "family": (rel.get("ID_LIKE") or rel.get("ID") or "").split(" ")[0],
            "name": rel.get("NAME", ""),
            "platform": rel.get("ID", ""),
            "version": rel.get("VERSION", ""),
        },
    }
    if rel.get("VERSION_CODENAME"):
        host["os"]["codename"] = rel["VERSION_CODENAME"]
    host["os"] = {k: v for k, v in host["os"].items() if v}
    try:
        with open("/etc/machine-id") as fh:
            mid = fh.read().strip()
        if mid:
            host["id"] = mid
    except OSError:
        pass
    ips = [ip for ips in interface_addresses().values() for ip in ips if ip not in ("127.0.0.1", "::1")]
    if ips:
        host["ip"] = ips
    macs = _macs()
    if macs:
        host["mac"] = macs
    return host


def agent_id(data_path: Path) -> str:
    """The agent's uuid, kept in ``<path.data>/meta.json`` like libbeat does."""
    meta = data_path / "meta.json"
    try:
        with open(meta, encoding="utf-8") as fh:
            value = json.load(fh).get("uuid")
            if isinstance(value, str) and value:
                return value
    except (OSError, ValueError):
        pass
    new = str(uuid.uuid4())
    try:
        data_path.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"uuid": new}, fh)
        os.replace(tmp, meta)
    except OSError:
        pass
    return new
