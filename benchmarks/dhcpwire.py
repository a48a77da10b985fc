"""Build DHCPv4 messages and frames (RFC 2131 header, RFC 2132 options) for tests, the
generated captures of tests/data/dhcpv4 and the benchmark."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

from benchmarks.synth import ip_frame, udp_datagram

COOKIE = b"\x63\x82\x53\x63"
_HEADER = struct.Struct(">BBBBIHH4s4s4s4s16s64s128s")

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
BOOTREQUEST, BOOTREPLY = 1, 2
BROADCAST = 0x8000


def ip(text: str) -> bytes:
    return socket.inet_aton(text)


def opt(code: int, value: bytes | str | int = b"") -> bytes:
    """One option: code, length, value (a str is ASCII, an int one byte)."""
    if isinstance(value, str):
        value = value.encode()
    elif isinstance(value, int):
        value = bytes([value])
    return bytes([code, len(value)]) + value


def ips(*addrs: str) -> bytes:
    return b"".join(ip(a) for a in addrs)


def u32(n: int) -> bytes:
    return struct.pack(">I", n & 0xFFFFFFFF)


def options(*opts: bytes, end: bool = True) -> bytes:
    return b"".join(opts) + (b"\xff" if end else b"")


def message(
    op: int = BOOTREQUEST,
    xid: int = 0x1234,
    opts: bytes = b"\x35\x01\x01\xff",
    *,
    htype: int = 1,
    hlen: int = 6,
    hops: int = 0,
    secs: int = 0,
    flags: int = 0,
    ciaddr: str = "0.0.0.0",
    yiaddr: str = "0.0.0.0",
    siaddr: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    chaddr: bytes = b"\x02\x00\x5e\x10\x00\x01",
    sname: bytes = b"",
    file: bytes = b"",
    cookie: bytes = COOKIE,
    pad_to: int = 0,
) -> bytes:
    """A BOOTP/DHCP message; ``pad_to`` pads with zeros to that size (300 for BOOTP's minimum)."""
    body = _HEADER.pack(
        op,
        htype,
        hlen,
        hops,
        xid,
        secs,
        flags,
        ip(ciaddr),
        ip(yiaddr),
        ip(siaddr),
        ip(giaddr),
        chaddr.ljust(16, b"\0")[:16],
        sname.ljust(64, b"\0")[:64],
        file.ljust(128, b"\0")[:128],
    )
    out = body + cookie + opts
    return out.ljust(pad_to, b"\0")


def frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame."""
    return ip_frame(src[0], dst[0], 17, udp_datagram(src[1], dst[1], payload))


def exchange(
    client_mac: bytes,
    xid: int,
    assigned: str,
    server: str = "10.9.0.1",
    hostname: str = "host",
) -> Iterable[tuple[tuple[str, int], tuple[str, int], bytes]]:
    """DISCOVER, OFFER, REQUEST, ACK of one client as (src, dst, payload), the way dnsmasq and
    udhcpc send them (broadcast from 0.0.0.0, replies unicast to the new address)."""
    prl = opt(55, bytes([1, 3, 6, 12, 15, 28, 42, 51, 54, 58, 59, 119]))
    cid = opt(61, b"\x01" + client_mac)
    c0, bc, srv, new = ("0.0.0.0", 68), ("255.255.255.255", 67), (server, 67), (assigned, 68)
    server_opts = [
        opt(54, ip(server)),
        opt(51, u32(3600)),
        opt(58, u32(1800)),
        opt(59, u32(3150)),
        opt(1, ip("255.255.255.0")),
        opt(28, ip("10.9.0.255")),
        opt(3, ip(server)),
        opt(6, ips(server, "10.9.0.2")),
        opt(15, "example.test"),
        opt(42, ip("10.9.0.3")),
    ]
    mac = client_mac
    yield (
        c0,
        bc,
        message(
            BOOTREQUEST,
            xid,
            options(opt(53, DISCOVER), cid, opt(57, b"\x02\x40"), opt(12, hostname), prl),
            chaddr=mac,
        ),
    )
    yield (
        srv,
        new,
        message(
            BOOTREPLY, xid, options(opt(53, OFFER), *server_opts), yiaddr=assigned, siaddr=server, chaddr=mac
        ),
    )
    yield (
        c0,
        bc,
        message(
            BOOTREQUEST,
            xid,
            options(
                opt(53, REQUEST), cid, opt(50, ip(assigned)), opt(54, ip(server)), opt(12, hostname), prl
            ),
            secs=1,
            chaddr=mac,
        ),
    )
    yield (
        srv,
        new,
        message(
            BOOTREPLY, xid, options(opt(53, ACK), *server_opts), yiaddr=assigned, siaddr=server, chaddr=mac
        ),
    )
