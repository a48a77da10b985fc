"""DHCPv4 messages covering the corners of Packetbeat's DHCP decoder, one case per
transaction id, and the captures made of them.

``tests/data/dhcpv4/cases.pcap`` holds every case of ``CASES`` (1 ms apart) and
``cases.packetbeat.ndjson`` the events Packetbeat 9.3 wrote for it. Both are made by

    python -m tests.protocols.dhcpv4_cases && python -m tests.protocols.dhcpv4_cases --packetbeat

``CRASHES`` are messages that make Packetbeat panic and exit: they are not in the capture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.dhcpwire import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    BROADCAST,
    DECLINE,
    DISCOVER,
    INFORM,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    exchange,
    frame,
    ip,
    ips,
    message,
    opt,
    options,
    u32,
)
from capture import PcapWriter

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "dhcpv4"
T0 = 1_714_557_600_000_000_000  # 2024-05-01T10:00:00Z
MS = 1_000_000

Endpoint = tuple[str, int]
Datagram = tuple[Endpoint, Endpoint, bytes]

C0: Endpoint = ("0.0.0.0", 68)
BC: Endpoint = ("255.255.255.255", 67)
SRV: Endpoint = ("10.9.0.1", 67)
RELAY: Endpoint = ("10.8.0.1", 67)
MAC = b"\x02\x00\x5e\x10\x00\x01"


def to_client(addr: str = "10.9.0.50") -> Endpoint:
    return (addr, 68)


def req(xid: int, opts: bytes, **kw: object) -> Datagram:
    return C0, BC, message(BOOTREQUEST, xid, opts, **kw)  # type: ignore[arg-type]


def rep(xid: int, opts: bytes, **kw: object) -> Datagram:
    return SRV, to_client(), message(BOOTREPLY, xid, opts, **kw)  # type: ignore[arg-type]


def mt(kind: int) -> bytes:
    return opt(53, kind)


def _cases() -> dict[str, Callable[[int], list[Datagram]]]:
    c: dict[str, Callable[[int], list[Datagram]]] = {}

    c["exchange"] = lambda x: list(exchange(MAC, x, "10.9.0.50"))
    c["renew"] = lambda x: [
        (
            ("10.9.0.50", 68),
            SRV,
            message(BOOTREQUEST, x, options(mt(REQUEST), opt(61, b"\x01" + MAC)), ciaddr="10.9.0.50"),
        ),
        (
            SRV,
            ("10.9.0.50", 68),
            message(
                BOOTREPLY,
                x,
                options(mt(ACK), opt(54, ip("10.9.0.1")), opt(51, u32(3600))),
                ciaddr="10.9.0.50",
                yiaddr="10.9.0.50",
            ),
        ),
    ]
    c["release"] = lambda x: [
        (
            ("10.9.0.50", 68),
            SRV,
            message(BOOTREQUEST, x, options(mt(RELEASE), opt(54, ip("10.9.0.1"))), ciaddr="10.9.0.50"),
        )
    ]
    c["inform"] = lambda x: [
        (
            ("10.9.0.60", 68),
            BC,
            message(BOOTREQUEST, x, options(mt(INFORM), opt(55, bytes([1, 3, 6, 15]))), ciaddr="10.9.0.60"),
        ),
        (
            SRV,
            ("10.9.0.60", 68),
            message(
                BOOTREPLY,
                x,
                options(
                    mt(ACK), opt(54, ip("10.9.0.1")), opt(1, ip("255.255.255.0")), opt(3, ip("10.9.0.1"))
                ),
                ciaddr="10.9.0.60",
            ),
        ),
    ]
    c["decline"] = lambda x: [
        req(
            x,
            options(mt(DECLINE), opt(50, ip("10.9.0.51")), opt(54, ip("10.9.0.1")), opt(56, "arp conflict")),
        )
    ]
    c["nak"] = lambda x: [
        req(x, options(mt(REQUEST), opt(50, ip("10.7.0.9")))),
        (
            SRV,
            ("255.255.255.255", 68),
            message(
                BOOTREPLY,
                x,
                options(mt(NAK), opt(54, ip("10.9.0.1")), opt(56, "wrong network")),
                flags=BROADCAST,
            ),
        ),
    ]
    c["relayed"] = lambda x: [
        (
            RELAY,
            SRV,
            message(
                BOOTREQUEST, x, options(mt(DISCOVER), opt(82, b"\x01\x04eth0")), giaddr="10.8.0.1", hops=1
            ),
        ),
        (
            SRV,
            RELAY,
            message(
                BOOTREPLY,
                x,
                options(mt(OFFER), opt(54, ip("10.9.0.1")), opt(82, b"\x01\x04eth0")),
                giaddr="10.8.0.1",
                yiaddr="10.8.0.77",
                hops=1,
            ),
        ),
    ]
    c["bootp"] = lambda x: [
        req(x, b"", pad_to=300),
        rep(
            x, b"\xff", yiaddr="10.9.0.50", siaddr="10.9.0.1", sname=b"bootsrv", file=b"/tftpboot/pxelinux.0"
        ),
    ]
    c["every-option"] = lambda x: [
        rep(
            x,
            options(
                mt(ACK),
                opt(1, ip("255.255.0.0")),
                opt(2, u32(-7200)),
                opt(3, ip("10.9.0.254")),
                opt(4, ips("10.9.0.4", "10.9.0.5")),
                opt(6, ips("10.9.0.2")),
                opt(12, "client-1"),
                opt(15, "corp.example"),
                opt(28, ip("10.9.255.255")),
                opt(42, ips("10.9.0.3", "10.9.0.6", "10.9.0.7")),
                opt(43, b"\x01\x02ab"),
                opt(50, ip("10.9.0.50")),
                opt(51, u32(86400)),
                opt(54, ip("10.9.0.1")),
                opt(55, bytes([1, 2, 3, 84, 96, 121, 252, 0, 255])),
                opt(56, "welcome"),
                opt(57, b"\x05\xdc"),
                opt(58, u32(43200)),
                opt(59, u32(75600)),
                opt(60, "MSFT 5.0"),
                opt(61, b"\x01" + MAC),
                opt(66, "tftp.example"),
                opt(67, "boot/x86.efi"),
                opt(81, b"\x00\x00\x00client-1"),
                opt(119, b"\x04corp\x07example\x00"),
                opt(121, b"\x18\x0a\x0a\x0a\x0a\x09\x00\xfe"),
                opt(124, u32(3561) + b"\x05hello" + u32(9) + b"\x01\x7f"),
                end=False,  # option 124 must end the datagram for Packetbeat's library
            ),
            hops=2,
            secs=65535,
            flags=0x8000,
            ciaddr="10.9.0.50",
            yiaddr="10.9.0.50",
            siaddr="10.9.0.1",
            giaddr="10.8.0.1",
            sname=b"srv1",
            file=b"pxe/boot",
        )
    ]
    c["repeated-options"] = lambda x: [
        req(x, options(mt(DISCOVER), mt(REQUEST), opt(12, "a"), opt(12, "b"), opt(3, ip("1.2.3.4"))))
    ]
    c["empty-values"] = lambda x: [
        req(
            x,
            options(
                mt(DISCOVER), opt(60), opt(15), opt(12), opt(56), opt(67), opt(55), opt(1), opt(51, b"\0\1")
            ),
        )
    ]
    c["long-values"] = lambda x: [
        rep(
            x,
            options(
                mt(OFFER),
                opt(1, b"\0" * 10 + b"\xff\xff\xff\xff\xff\x00"),
                opt(51, u32(60) + b"xx"),
                opt(58, b"\0\0"),
                opt(59, u32(50) + b"\1"),
                opt(2, u32(3600) + b"\0"),
            ),
        ),
        rep(x, options(mt(OFFER), opt(1, bytes.fromhex("20010db8000000000000000000000001")))),
    ]
    c["unknown-values"] = lambda x: [
        (C0, BC, message(3, x, options(mt(9)), htype=0)),
        (C0, BC, message(0, x, options(mt(0)), htype=99)),
        req(x, options(mt(DISCOVER)), htype=32, hlen=16, chaddr=bytes(range(16))),
        req(x, options(mt(DISCOVER)), htype=6, hlen=1),
    ]
    c["flags"] = lambda x: [
        req(x, options(mt(DISCOVER)), flags=0x0002),
        req(x, options(mt(DISCOVER)), flags=0x8001),
        req(x, options(mt(DISCOVER)), flags=0x7F00),
        req(x, options(mt(DISCOVER)), flags=0xFFFF),
    ]
    c["text"] = lambda x: [
        req(
            x,
            options(mt(DISCOVER), opt(12, b"h\xffst\xc3"), opt(60, b"\x80\x81z"), opt(15, "d\u00e9j\u00e0")),
        ),
        rep(x, options(mt(OFFER)), sname=b"srv\x00junk\xff\xfe", file=b"pxe/\xc3\xa9boot\x00\x00x"),
    ]
    c["padding"] = lambda x: [
        req(x, b"\0" * 20 + options(mt(DISCOVER), b"\0\0", opt(12, "pads")) + b"\0" * 100),
        req(x, options(mt(REQUEST)) + b"\0\0\0" + opt(12, "after-end") + b"\xff\xff"),
        req(x, options(mt(INFORM), opt(12, "no-end"), end=False)),
        req(x, b"\xff"),
        req(x, b""),
        req(x, b"\0\0\0"),
    ]
    # Datagrams Packetbeat refuses (so does wirebeat): the next message of each shows it went on.
    c["refused"] = lambda x: [
        (C0, BC, message(BOOTREQUEST, x)[:235]),
        (C0, BC, message(BOOTREQUEST, x, b"")[:236]),
        req(x, options(mt(DISCOVER)), cookie=b"\x63\x82\x53\x64"),
        req(x, options(mt(DISCOVER), opt(12, "trailing")) + b"\x0c\x09abc"),
        req(x, options(mt(DISCOVER)) + b"\x0c\x09abc"),
        req(x, options(mt(DISCOVER), b"\x0c\x09abc", end=False)),
        req(x, b"\x35\x01"),
        req(x, b"\x35\x02\x01\x00\xff"),
        req(x, options(mt(DISCOVER), opt(57, b"\x01\x02\x03"))),
        req(x, options(mt(DISCOVER), b"\x39\x02\x05", end=False)),
        req(x, options(mt(DISCOVER), opt(50, b"\x01\x02\x03\x04\x05"))),
        req(x, options(mt(DISCOVER), opt(54, b"\x01\x02\x03"))),
        req(x, options(mt(DISCOVER), opt(28, b""))),
        req(x, options(mt(DISCOVER), b"\x32\x04\x01\x02", end=False)),
        req(x, options(mt(DISCOVER), opt(6))),
        req(x, options(mt(DISCOVER), opt(6, b"\x01\x02\x03\x04\x05\x06"))),
        req(x, options(mt(DISCOVER), opt(124, u32(3561) + b"\x05hel"), end=False)),
        req(x, options(mt(DISCOVER)) + opt(124, u32(3561) + b"\x01a") + b"\0"),
        req(x, options(mt(DECLINE), opt(12, "still-here"))),
    ]
    c["value-errors"] = lambda x: [
        rep(x, options(mt(OFFER), opt(3, ips("10.9.0.254", "10.9.0.253")), opt(54, ip("10.9.0.1")))),
        rep(x, options(mt(OFFER), opt(3, b"\x0a\x09"), opt(54, ip("10.9.0.1")))),
        rep(x, options(mt(OFFER), opt(42, b"\x01\x02\x03\x04\x05\x06"), opt(12, "x"))),
        rep(x, options(mt(OFFER), opt(4), opt(51, u32(1)))),
        rep(x, options(mt(ACK), opt(1, b"\xff\xff\xff\x00\x01"), opt(51, u32(2)))),
    ]
    c["vendor-identifying"] = lambda x: [
        req(x, options(mt(DISCOVER), opt(124, b""), end=False)),
        req(x, options(mt(DISCOVER), opt(124, u32(4491) + b"\x03abc"))),
        req(x, options(mt(DISCOVER), opt(124, u32(4491) + b"\x01a" + u32(7) + b"\x00"), end=False)),
        req(x, options(mt(REQUEST), opt(12, "vivc-done"))),
    ]
    c["overload"] = lambda x: [
        rep(
            x,
            options(mt(OFFER), opt(52, 3), opt(54, ip("10.9.0.1"))),
            sname=options(opt(15, "from-sname"), opt(12, "sname-host")),
            file=options(opt(12, "file-host"), opt(3, ip("10.9.0.254"))),
        ),
        rep(
            x,
            options(mt(OFFER), opt(52, 1)),
            sname=b"kept-name",
            file=options(opt(67, "real.efi"), opt(52, 2)),
        ),
        rep(x, options(mt(OFFER), opt(52, 2)), sname=b"\x0c\x40" + b"x" * 10, file=b"kept-file"),
        rep(x, options(mt(OFFER), opt(52, 4)), sname=b"name4", file=b"file4"),
        rep(x, options(mt(OFFER), opt(52, b"\x01\x02")), sname=b"name-bad", file=b"file-bad"),
        rep(x, options(mt(OFFER), opt(52, 2), opt(12, "main")), sname=b"\0" * 64),
    ]
    return c


CASES = _cases()
#: Transaction id of each case.
XIDS = {name: 0x0C000000 + i * 0x100 for i, name in enumerate(CASES)}

#: Messages on which Packetbeat 9.3 panics and exits (kept out of the capture).
CRASHES: dict[str, bytes] = {
    "hlen-0": message(BOOTREQUEST, 0x0D000001, options(mt(DISCOVER)), hlen=0),
    "hlen-17": message(BOOTREQUEST, 0x0D000002, options(mt(DISCOVER)), hlen=17),
    "infiniband": message(BOOTREQUEST, 0x0D000003, options(mt(DISCOVER)), htype=32, hlen=0, chaddr=b""),
    "lone-code": message(BOOTREQUEST, 0x0D000004, options(mt(DISCOVER), end=False) + b"\x0c"),
}


def datagrams() -> list[tuple[str, Datagram]]:
    out = []
    for name, make in CASES.items():
        out += [(name, d) for d in make(XIDS[name])]
    return out


def write(path: Path = DATA / "cases.pcap") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with PcapWriter(str(path), 1, nanosecond=False) as pw:
        for i, (_name, (src, dst, payload)) in enumerate(datagrams()):
            pw.write(T0 + i * MS, frame(src, dst, payload))


def packetbeat() -> None:
    """Run Packetbeat 9.3 (scripts/build-packetbeat) on cases.pcap."""
    exe = subprocess.run(
        [str(ROOT / "scripts" / "build-packetbeat")], capture_output=True, text=True, check=True
    )
    binary = exe.stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "pb.yml"
        cfg.write_text(
            "\n".join(
                [
                    "packetbeat.interfaces.device: any",
                    "packetbeat.protocols:",
                    "- type: dhcpv4",
                    "  ports: [67, 68]",
                    f"output.file: {{path: {tmp}/out, filename: pb}}",
                    "queue.mem.flush.timeout: 0s",
                    "packetbeat.shutdown_timeout: 2s",
                    f"path.data: {tmp}/data",
                    f"path.logs: {tmp}/logs",
                ]
            )
            + "\n"
        )
        subprocess.run(
            [binary, "-e", "-t", "-I", str(DATA / "cases.pcap"), "-c", str(cfg), "--strict.perms=false"],
            capture_output=True,
            check=True,
        )
        events = []
        for f in sorted((Path(tmp) / "out").glob("*.ndjson")):
            for line in f.read_text().splitlines():
                e = json.loads(line)
                for k in ("agent", "host", "ecs"):
                    e.pop(k, None)
                e.get("@metadata", {}).pop("version", None)
                events.append(json.dumps(e, sort_keys=True, ensure_ascii=False))
        (DATA / "cases.packetbeat.ndjson").write_text("\n".join(events) + "\n")
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"{len(events)} events")


if __name__ == "__main__":
    if "--packetbeat" in sys.argv:
        packetbeat()
    else:
        write()
