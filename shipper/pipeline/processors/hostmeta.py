"""``add_host_metadata`` and ``add_observer_metadata`` (this machine's ``host.*`` /
``observer.*``: name, OS, id, addresses), plus the cloud/container processors wirebeat
accepts but does not implement (a start-up warning names them; they do nothing).

The machine is looked up once at start-up and again when ``cache.ttl`` has passed (on the
event path, at most once per TTL); events get a deep copy of the cached mapping.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import threading
import time
from typing import Any

from capture.devices import interface_addresses
from shipper.pipeline.fieldpath import deep_update
from shipper.pipeline.processors.base import Context, Event, Opts, Processor, clone, register, unsupported

unsupported("add_cloud_metadata", "wirebeat does not query cloud provider metadata services")
unsupported("add_docker_metadata", "wirebeat does not talk to the Docker daemon")
unsupported("add_kubernetes_metadata", "wirebeat does not talk to the Kubernetes API")

_FAMILIES = {
    "debian": "debian",
    "ubuntu": "debian",
    "raspbian": "debian",
    "linuxmint": "debian",
    "rhel": "redhat",
    "centos": "redhat",
    "fedora": "redhat",
    "rocky": "redhat",
    "almalinux": "redhat",
    "amzn": "redhat",
    "ol": "redhat",
    "sles": "suse",
    "opensuse": "suse",
    "opensuse-leap": "suse",
    "arch": "arch",
    "archarm": "arch",
    "alpine": "alpine",
    "gentoo": "gentoo",
}


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                k, sep, v = line.strip().partition("=")
                if sep:
                    out[k] = v.strip().strip('"')
    except OSError:
        pass
    return out


def _containerized() -> bool:
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    try:
        with open("/proc/1/cgroup", encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return False
    return bool(re.search(r"docker|lxc|kubepods|containerd", text))


def machine_id() -> str:
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(p, encoding="utf-8") as fh:
                mid = fh.read().strip()
            if mid:
                return mid
        except OSError:
            continue
    return ""


def _interfaces() -> list[tuple[str, int, bool, str]]:
    """(name, index, loopback, MAC) of every interface, in index order."""
    out: list[tuple[str, int, bool, str]] = []
    base = "/sys/class/net"
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for name in names:
        try:
            with open(f"{base}/{name}/ifindex") as fh:
                index = int(fh.read().strip())
            with open(f"{base}/{name}/flags") as fh:
                flags = int(fh.read().strip(), 16)
        except (OSError, ValueError):
            continue
        mac = ""
        try:
            with open(f"{base}/{name}/address") as fh:
                raw = fh.read().strip()
            if raw and len(raw.split(":")) >= 6:
                mac = raw.upper().replace(":", "-")
        except OSError:
            pass
        out.append((name, index, bool(flags & 0x8), mac))
    return sorted(out, key=lambda t: t[1])


def net_info() -> tuple[list[str], list[str]]:
    """libbeat's ``util.GetNetInfo``: addresses and MACs of the non-loopback interfaces."""
    addrs = interface_addresses()
    ips: list[str] = []
    macs: set[str] = set()
    for _name, index, loopback, mac in _interfaces():
        if loopback:
            continue
        if mac:
            macs.add(mac)
        ips.extend(addrs.get(index, []))
    return ips, sorted(macs)


def host_info(fqdn: str = "") -> dict[str, Any]:
    """go-sysinfo's host info as libbeat's ``MapHostInfo`` writes it (``host.*``)."""
    rel = os_release()
    hostname = socket.gethostname()
    ident = rel.get("ID", "")
    family = _FAMILIES.get(ident, "")
    if not family:
        for like in rel.get("ID_LIKE", "").split():
            family = _FAMILIES.get(like, "")
            if family:
                break
    osinfo: dict[str, Any] = {
        "platform": ident,
        "version": rel.get("VERSION", ""),
        "family": family,
        "name": rel.get("NAME", ""),
        "kernel": platform.release(),
    }
    host: dict[str, Any] = {
        "name": (fqdn or hostname).lower(),
        "hostname": hostname,
        "architecture": platform.machine(),
        "os": osinfo,
    }
    mid = machine_id()
    if mid:
        host["id"] = mid
    host["containerized"] = _containerized()
    if rel.get("VERSION_CODENAME"):
        osinfo["codename"] = rel["VERSION_CODENAME"]
    osinfo["type"] = platform.system().lower()
    return host


def fqdn_of(hostname: str) -> str:
    """The canonical name of this host (``features.fqdn``); the hostname when unknown."""
    try:
        info = socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME)
    except OSError:
        return hostname
    for entry in info:
        if entry[3]:
            return entry[3]
    return hostname


_LOCATION = re.compile(r"^\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*$")
_GEO_KEYS = (
    "name",
    "location",
    "continent_name",
    "country_name",
    "country_iso_code",
    "region_name",
    "region_iso_code",
    "city_name",
)


def geo_fields(o: Opts, what: str) -> dict[str, Any]:
    geo = o.mapping("geo")
    for k in geo:
        if k not in _GEO_KEYS:
            raise o.error(f"geo.{k}", f"unknown geo setting (use {', '.join(_GEO_KEYS)})")
    loc = geo.get("location")
    if loc and not _LOCATION.match(str(loc)):
        raise o.error("geo.location", f"Invalid lat,lon  string for {what}: {loc}")
    return {k: str(v) for k, v in geo.items() if v is not None and str(v).strip()}


class Cached:
    """A value recomputed when ``ttl`` seconds have passed (``ttl`` <= 0: every time)."""

    def __init__(self, load: Any, ttl: float) -> None:
        self.load = load
        self.ttl = ttl
        self.lock = threading.Lock()
        self.value = load()
        self.at = time.monotonic()

    def get(self) -> Any:
        now = time.monotonic()
        if self.ttl <= 0 or now - self.at >= self.ttl:
            with self.lock:
                if self.ttl <= 0 or now - self.at >= self.ttl:
                    try:
                        self.value = self.load()
                    finally:
                        self.at = now  # like libbeat: a failed refresh keeps the old data
        return self.value


@register("add_host_metadata")
def add_host_metadata(o: Opts, ctx: Context) -> Processor:
    netinfo = o.bool("netinfo.enabled", os.environ.get("ELASTIC_NETINFO") != "false")
    ttl = o.duration("cache.ttl", 300.0)
    o.duration("expire_update_timeout", 10.0)
    name = o.str("name")
    replace = o.bool("replace_fields", True)
    geo = geo_fields(o, "add_host_metadata")
    use_fqdn = o.bool("fqdn", False)  # libbeat: the features.fqdn.enabled flag
    o.writes("host")

    def load() -> dict[str, Any]:
        host = host_info(fqdn_of(socket.gethostname()) if use_fqdn else "")
        if netinfo:
            ips, macs = net_info()
            if ips:
                host["ip"] = ips
            if macs:
                host["mac"] = macs
        if name:
            host["name"] = name
        if geo:
            host["geo"] = dict(geo)
        return {"host": host}

    if ctx.check_only:
        return lambda evt: evt
    cache = Cached(load, ttl)

    def run(evt: Event) -> Event:
        host = evt.get("host")
        bare = host is None or (type(host) is dict and (not host or (len(host) == 1 and "name" in host)))
        if bare:
            # The usual case (host.name alone): the result of the deep update is the data.
            evt["host"] = clone(cache.get()["host"])
            return evt
        if not replace and isinstance(host, dict):
            return evt
        deep_update(evt, clone(cache.get()))
        return evt

    return run


@register("add_observer_metadata")
def add_observer_metadata(o: Opts, ctx: Context) -> Processor:
    overwrite = o.bool("overwrite", False)
    netinfo = o.bool("netinfo.enabled", True)
    ttl = o.duration("cache.ttl", 300.0)
    geo = geo_fields(o, "add_observer_metadata")
    o.writes("observer")

    def load() -> dict[str, Any]:
        obs: dict[str, Any] = {"hostname": socket.gethostname()}
        if netinfo:
            ips, macs = net_info()
            if ips:
                obs["ip"] = ips
            if macs:
                obs["mac"] = macs
        if geo:
            obs["geo"] = dict(geo)
        return {"observer": obs}

    if ctx.check_only:
        return lambda evt: evt
    cache = Cached(load, ttl)

    def run(evt: Event) -> Event:
        exists = "observer" in evt
        if overwrite or not exists:
            if overwrite:
                evt.pop("observer", None)
            deep_update(evt, clone(cache.get()))
        return evt

    return run
