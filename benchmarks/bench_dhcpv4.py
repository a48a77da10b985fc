"""DHCPv4 decoder throughput.

1. A synthesized capture of 200,000+ packets of a busy DHCP server: clients leasing
   addresses (DISCOVER, OFFER, REQUEST, ACK with a realistic client request list, client id,
   host name, vendor class; servers' replies with a dozen options), renewals (unicast REQUEST
   and ACK), releases, INFORMs, NAKs and declines, some through a relay agent; decoded
   through ``Decoder.feed_many`` as the other benchmarks do. Every message is one event (one
   transaction, as Packetbeat publishes them).
2. The full CLI replay (``python -m shipper -I capture.pcap -t`` with a discarding output).

    python benchmarks/bench_dhcpv4.py [--clients 40000] [--runs 3] [--no-cli]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clirun import run_replay
from benchmarks.dhcpwire import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    DECLINE,
    INFORM,
    NAK,
    RELEASE,
    REQUEST,
    exchange,
    frame,
    ip,
    message,
    opt,
    options,
    u32,
)
from benchmarks.synth import decode_timed
from capture import CaptureFile, PcapWriter
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

OUT = Path(__file__).resolve().parent / "out"
SERVER = "10.9.0.1"
RELAY = "10.8.0.1"


def generate(path: Path, clients: int, seed: int = 1) -> int:
    """Returns the number of packets (= DHCP messages) written."""
    rnd = random.Random(seed)
    ts = 1_700_000_000_000_000_000
    n = 0
    with PcapWriter(str(path), 1) as w:

        def put(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> None:
            nonlocal ts, n
            w.write(ts, frame(src, dst, payload))
            ts += 25_000
            n += 1

        for i in range(clients):
            mac = bytes([0x02, 0x10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF, rnd.randrange(256)])
            addr = f"10.9.{(i // 250) % 250}.{i % 250 + 2}"
            xid = rnd.getrandbits(32)
            for src, dst, payload in exchange(mac, xid, addr, SERVER, hostname=f"host-{i}"):
                if i % 10 == 0:  # through a relay agent
                    b = bytearray(payload)
                    b[3] = 1
                    b[24:28] = ip(RELAY)
                    src = (RELAY, 67) if src[1] == 68 else src
                    dst = (RELAY, 67) if dst[1] == 68 else (SERVER, 67)
                    payload = bytes(b)
                put(src, dst, payload)
            k = rnd.random()
            me = (addr, 68)
            if k < 0.5:  # renewal
                put(
                    me,
                    (SERVER, 67),
                    message(BOOTREQUEST, xid, options(opt(53, REQUEST)), ciaddr=addr, chaddr=mac),
                )
                put(
                    (SERVER, 67),
                    me,
                    message(
                        BOOTREPLY,
                        xid,
                        options(
                            opt(53, ACK), opt(54, ip(SERVER)), opt(51, u32(3600)), opt(1, ip("255.255.0.0"))
                        ),
                        ciaddr=addr,
                        yiaddr=addr,
                        chaddr=mac,
                    ),
                )
            elif k < 0.6:
                put(
                    me,
                    (SERVER, 67),
                    message(
                        BOOTREQUEST,
                        xid + 1,
                        options(opt(53, RELEASE), opt(54, ip(SERVER))),
                        ciaddr=addr,
                        chaddr=mac,
                    ),
                )
            elif k < 0.65:
                put(
                    me,
                    ("255.255.255.255", 67),
                    message(
                        BOOTREQUEST,
                        xid + 2,
                        options(opt(53, INFORM), opt(55, b"\x01\x03\x06\x0f")),
                        ciaddr=addr,
                        chaddr=mac,
                    ),
                )
                put(
                    (SERVER, 67),
                    me,
                    message(
                        BOOTREPLY,
                        xid + 2,
                        options(opt(53, ACK), opt(54, ip(SERVER)), opt(6, ip(SERVER))),
                        ciaddr=addr,
                        chaddr=mac,
                    ),
                )
            elif k < 0.68:
                put(
                    me,
                    (SERVER, 67),
                    message(BOOTREQUEST, xid + 3, options(opt(53, REQUEST)), ciaddr=addr, chaddr=mac),
                )
                put(
                    (SERVER, 67),
                    ("255.255.255.255", 68),
                    message(
                        BOOTREPLY,
                        xid + 3,
                        options(opt(53, NAK), opt(54, ip(SERVER)), opt(56, "lease not found")),
                        flags=0x8000,
                        chaddr=mac,
                    ),
                )
            elif k < 0.69:
                put(
                    ("0.0.0.0", 68),
                    ("255.255.255.255", 67),
                    message(
                        BOOTREQUEST,
                        xid + 4,
                        options(opt(53, DECLINE), opt(50, ip(addr)), opt(54, ip(SERVER))),
                        chaddr=mac,
                    ),
                )
    return n


def run_cli(pcap: Path) -> dict[str, float]:
    return run_replay(
        pcap, "packetbeat.protocols:\n  - type: dhcpv4\n    ports: [67, 68]\noutput.discard.enabled: true\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=40_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-cli", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"dhcpv4-{args.clients}.pcap"
    t0 = time.perf_counter()
    packets = generate(pcap, args.clients)
    print(
        f"generated {pcap.name}: {packets:,} packets ({args.clients:,} clients) in {time.perf_counter() - t0:.1f}s"
    )
    frames = list(CaptureFile(str(pcap)))
    best = cpu_best = None
    for _ in range(args.runs):
        dec = Decoder(build_plugins({"dhcpv4": default_config("dhcpv4")}))
        cpu0 = time.process_time()
        n, _first, dt = decode_timed(dec, frames)
        cpu = time.process_time() - cpu0
        assert n == packets, (n, dict(dec.stats))
        assert set(dec.stats) == {"dhcpv4.total_packets"}, dict(dec.stats)
        best = dt if best is None else min(best, dt)
        cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
    assert best is not None and cpu_best is not None
    print(
        f"decoder: {packets:,} messages (one event, one transaction each) in {best:.2f}s ({cpu_best:.2f}s CPU)"
    )
    print(f"decoder: {packets / best:,.0f} transactions/s (= packets/s)")
    print(f"decoder per CPU-second: {packets / cpu_best:,.0f} transactions")
    if not args.no_cli:
        cli = min((run_cli(pcap) for _ in range(args.runs)), key=lambda r: r["wall"])
        assert cli["events"] == packets, cli
        print(
            f"cli replay: {cli['wall']:.2f}s wall ({cli['cpu']:.2f}s CPU), "
            f"{packets / cli['wall']:,.0f} transactions/s, per CPU-second {packets / cli['cpu']:,.0f}; "
            f"peak RSS {cli['maxrss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
