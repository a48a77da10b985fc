"""Network devices and their addresses (Linux netlink; no external tools)."""

from __future__ import annotations

import os
import socket
import struct

import attrs

NETLINK_ROUTE = 0
RTM_GETADDR = 22
RTM_NEWADDR = 20
NLMSG_DONE = 3
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFA_ADDRESS = 1
IFA_LOCAL = 2


@attrs.frozen
class Device:
    index: int
    name: str
    description: str
    addresses: tuple[str, ...]
    up: bool = True
    loopback: bool = False

    def line(self) -> str:
        """As ``packetbeat devices`` prints it: ``0: eth0 (No description available) (10.0.0.2)``."""
        ips = " ".join(self.addresses) if self.addresses else "Not assigned ip address"
        return f"{self.index}: {self.name} ({self.description}) ({ips})"


def interface_addresses() -> dict[int, list[str]]:
    """Interface index → addresses (IPv4 first), read with one netlink dump."""
    out: dict[int, list[str]] = {}
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    except (OSError, AttributeError):
        return out
    with sock:
        sock.bind((0, 0))
        req = struct.pack("=IHHII", 16 + 8, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        req += struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0)
        sock.send(req)
        done = False
        while not done:
            data = sock.recv(65536)
            if not data:
                break
            pos = 0
            while pos + 16 <= len(data):
                length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, pos)
                if length < 16:
                    done = True
                    break
                if mtype in (NLMSG_DONE, NLMSG_ERROR):
                    done = True
                    break
                if mtype == RTM_NEWADDR:
                    family, _plen, _f, _scope, index = struct.unpack_from("=BBBBI", data, pos + 16)
                    attrs_pos = pos + 16 + 8
                    end = pos + length
                    local = address = None
                    while attrs_pos + 4 <= end:
                        alen, atype = struct.unpack_from("=HH", data, attrs_pos)
                        if alen < 4:
                            break
                        val = data[attrs_pos + 4 : attrs_pos + alen]
                        if atype == IFA_LOCAL:
                            local = val
                        elif atype == IFA_ADDRESS:
                            address = val
                        attrs_pos += (alen + 3) & ~3
                    raw = local or address
                    if raw is not None and family in (socket.AF_INET, socket.AF_INET6):
                        out.setdefault(index, []).append(socket.inet_ntop(family, raw))
                pos += (length + 3) & ~3
    for ips in out.values():
        ips.sort(key=lambda ip: ":" in ip)
    return out


def _flags(name: str) -> int:
    try:
        with open(f"/sys/class/net/{name}/flags") as fh:
            return int(fh.read().strip(), 16)
    except (OSError, ValueError):
        return 0


def list_devices() -> list[Device]:
    """Devices in a stable order: interfaces by kernel index, then ``any``."""
    addrs = interface_addresses()
    devices = []
    try:
        names = sorted(socket.if_nameindex())
    except OSError:
        names = []
    for i, (ifindex, name) in enumerate(names):
        flags = _flags(name)
        devices.append(
            Device(
                index=i,
                name=name,
                description="No description available",
                addresses=tuple(addrs.get(ifindex, [])),
                up=bool(flags & 0x1),
                loopback=bool(flags & 0x8),
            )
        )
    if os.path.exists("/proc/net/dev"):
        devices.append(
            Device(len(devices), "any", "Pseudo-device that captures on all interfaces", (), True, False)
        )
    return devices


def local_addresses() -> list[str]:
    """Every address of this host (for ``network.direction``)."""
    out: list[str] = []
    for ips in interface_addresses().values():
        out.extend(ips)
    return out


def resolve_device(spec: str) -> str:
    """``any``, a name, the index ``wirebeat devices`` prints, or ``default_route``."""
    devices = list_devices()
    if spec.isdigit():
        idx = int(spec)
        if idx >= len(devices):
            raise ValueError(f"device index {idx} out of range (have {len(devices)} devices)")
        return devices[idx].name
    if spec.startswith("default_route"):
        return default_route_device(spec)
    names = {d.name for d in devices}
    if spec not in names:
        raise ValueError(f"no such device {spec!r} (known: {', '.join(sorted(names))})")
    return spec


def default_route_device(spec: str = "default_route") -> str:
    want6 = spec.endswith("ipv6")
    if not want6:
        try:
            with open("/proc/net/route") as fh:
                for line in fh.readlines()[1:]:
                    parts = line.split()
                    if len(parts) > 2 and parts[1] == "00000000":
                        return parts[0]
        except OSError:
            pass
    if want6 or spec == "default_route":
        try:
            with open("/proc/net/ipv6_route") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 10 and parts[0] == "0" * 32 and parts[1] == "00" and parts[9] != "lo":
                        return parts[9]
        except OSError:
            pass
    raise ValueError("no default route found")
