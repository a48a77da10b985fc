"""``hosts`` entries as libbeat writes them: ``host``, ``host:port``, ``[v6]:port``, ``scheme://``."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def parse_host(entry: str, default_port: int) -> tuple[str, int]:
    """(host, port); raises ValueError with the offending entry."""
    s = entry.strip()
    if not s:
        raise ValueError("empty host")
    if "://" in s:
        u = urlsplit(s)
        if not u.hostname:
            raise ValueError(f"invalid host {entry!r}")
        try:
            return u.hostname, u.port or default_port
        except ValueError:
            raise ValueError(f"invalid port in {entry!r}") from None
    try:
        ipaddress.IPv6Address(s)
        return s, default_port  # a bare IPv6 address
    except ValueError:
        pass
    if s.startswith("["):
        host, sep, rest = s[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid host {entry!r}")
        port_s = rest[1:]
    else:
        host, _, port_s = s.partition(":")
    if not host:
        raise ValueError(f"invalid host {entry!r}")
    if not port_s:
        return host, default_port
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"invalid port in {entry!r}")
    return host, int(port_s)


def format_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
