"""DNS decoder throughput.

1. A synthesized capture of 200,000+ UDP packets: stub resolvers on 500 hosts asking a
   resolver for a realistic mix (A with CNAME chains, AAAA, HTTPS, MX, TXT, PTR, SRV,
   NXDOMAIN with SOA authority, DNSSEC answers with RRSIG; EDNS on most queries),
   decoded through ``Decoder.feed_many`` as the other benchmarks do.
2. The full CLI replay (``python -m shipper -I capture.pcap -t`` with a discarding output).
3. With ``--parsers``: this parser against ``dns.message.from_wire`` (dnspython) on the
   same response messages.

    python benchmarks/bench_dns.py [--transactions 100000] [--parsers] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clirun import run_replay
from benchmarks.synth import decode_timed, ip_frame, udp_datagram
from capture import CaptureFile, PcapWriter
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

OUT = Path(__file__).resolve().parent / "out"
RESOLVER = "10.53.0.1"


def name(text: str) -> bytes:
    return b"".join(bytes([len(x)]) + x.encode() for x in text.split(".") if x) + b"\x00"


PTR_QN = b"\xc0\x0c"  # compression pointer to the question name


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def opt(do: bool = False) -> bytes:
    return b"\x00" + struct.pack(">HHIH", 41, 1232, 0x8000 if do else 0, 0)


def msg(
    ident: int,
    flags: int,
    qname: str,
    qtype: int,
    an: list[bytes],
    ns: list[bytes],
    ar: list[bytes],
    rcode: int = 0,
) -> bytes:
    hdr = struct.pack(">HHHHHH", ident, flags | rcode, 1, len(an), len(ns), len(ar))
    return hdr + name(qname) + struct.pack(">HH", qtype, 1) + b"".join(an) + b"".join(ns) + b"".join(ar)


def txt(s: bytes) -> bytes:
    return bytes([len(s)]) + s


def ip4(rnd: random.Random) -> bytes:
    return bytes([rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)])


def exchange(rnd: random.Random, ident: int) -> tuple[bytes, bytes]:
    """One query and its response, by a rough mix of real resolver traffic."""
    site = f"www.site{rnd.randrange(2000)}.example.com"
    k = rnd.random()
    edns = rnd.random() < 0.8
    do = edns and rnd.random() < 0.2
    qflags, rflags = 0x0100, 0x8180
    ar = [opt(do)] if edns else []
    if k < 0.45:  # A, often behind a CNAME
        qt = 1
        an = []
        owner = PTR_QN
        if rnd.random() < 0.4:
            an.append(rr(PTR_QN, 5, name(f"cdn{rnd.randrange(50)}.edge.example.net")))
            target = 12 + len(name(site)) + 4 + 12  # the CNAME's target, for the A records
            owner = struct.pack(">H", 0xC000 | target)
        an += [rr(owner, 1, ip4(rnd)) for _ in range(rnd.randint(1, 4))]
        if do:
            an.append(
                rr(
                    PTR_QN,
                    46,
                    struct.pack(">HBBIIIH", 1, 13, 3, 300, 1800000000, 1700000000, 1234)
                    + name("example.com")
                    + rnd.randbytes(64),
                )
            )
        resp = msg(ident, rflags, site, qt, an, [], ar)
    elif k < 0.70:  # AAAA
        qt = 28
        an = [rr(PTR_QN, 28, b"\x20\x01\x0d\xb8" + rnd.randbytes(12)) for _ in range(rnd.randint(1, 2))]
        resp = msg(ident, rflags, site, qt, an, [], ar)
    elif k < 0.75:  # HTTPS
        qt = 65
        an = [
            rr(PTR_QN, 65, b"\x00\x01\x00" + b"\x00\x01\x00\x06\x02h2\x02h3" + b"\x00\x04\x00\x04" + ip4(rnd))
        ]
        resp = msg(ident, rflags, site, qt, an, [], ar)
    elif k < 0.82:  # NXDOMAIN with the zone's SOA
        qt = 1
        soa = (
            name("ns1.example.com")
            + name("hostmaster.example.com")
            + struct.pack(">IIIII", 2024, 3600, 600, 86400, 300)
        )
        resp = msg(
            ident,
            rflags,
            f"nope{rnd.randrange(10**6)}.example.com",
            qt,
            [],
            [rr(name("example.com"), 6, soa)],
            ar,
            rcode=3,
        )
        return msg(ident, qflags, f"nope{ident}.example.com", qt, [], [], ar), resp
    elif k < 0.86:  # PTR
        qt = 12
        an = [rr(PTR_QN, 12, name(f"host{rnd.randrange(1000)}.example.com"))]
        resp = msg(ident, rflags, "10.2.0.192.in-addr.arpa", qt, an, [], ar)
        return msg(ident, qflags, "10.2.0.192.in-addr.arpa", qt, [], [], ar), resp
    elif k < 0.90:  # MX with glue
        qt = 15
        an = [rr(PTR_QN, 15, struct.pack(">H", 10 * i) + name(f"mx{i}.example.com")) for i in range(1, 3)]
        add = [rr(name(f"mx{i}.example.com"), 1, ip4(rnd)) for i in range(1, 3)]
        resp = msg(ident, rflags, site, qt, an, [], add + ar)
    elif k < 0.95:  # TXT
        qt = 16
        an = [
            rr(PTR_QN, 16, txt(b"v=spf1 include:_spf.example.com ~all")),
            rr(PTR_QN, 16, txt(b"google-site-verification=abcdef")),
        ]
        resp = msg(ident, rflags, site, qt, an, [], ar)
    else:  # SRV
        qt = 33
        an = [rr(PTR_QN, 33, struct.pack(">HHH", 10, 60, 5060) + name("sip.example.com"))]
        resp = msg(ident, rflags, "_sip._udp.example.com", qt, an, [], ar)
        return msg(ident, qflags, "_sip._udp.example.com", qt, [], [], ar), resp
    return msg(ident, qflags, site, qt, [], [], ar), resp


def generate(path: Path, transactions: int, seed: int = 1) -> tuple[int, list[bytes]]:
    rnd = random.Random(seed)
    ts = 1_700_000_000_000_000_000
    samples: list[bytes] = []
    with PcapWriter(str(path), 1) as w:
        for i in range(transactions):
            host = f"10.1.{(i % 500) // 250}.{i % 250 + 1}"
            port = 1024 + rnd.randrange(60000)
            q, r = exchange(rnd, i & 0xFFFF)
            w.write(ts, ip_frame(host, RESOLVER, 17, udp_datagram(port, 53, q)))
            w.write(ts + 300_000, ip_frame(RESOLVER, host, 17, udp_datagram(53, port, r)))
            ts += 20_000
            if len(samples) < 20000:
                samples.append(r)
    return transactions * 2, samples


def run_cli(pcap: Path) -> dict[str, float]:
    return run_replay(
        pcap,
        "packetbeat.protocols:\n  - type: dns\n    ports: [53]\n"
        "    include_authorities: true\n    include_additionals: true\n"
        "output.discard.enabled: true\n",
    )


def compare_parsers(samples: list[bytes], runs: int) -> None:
    from protocols.dns.parser import parse

    try:
        import dns.message
    except ImportError:
        print("parsers: dnspython not installed")
        return
    for label, fn in (("wirebeat parser", parse), ("dnspython from_wire", dns.message.from_wire)):
        best = float("inf")
        for _ in range(runs):
            t0 = time.process_time()
            for s in samples:
                fn(s)
            best = min(best, time.process_time() - t0)
        print(f"{label}: {len(samples) / best:,.0f} messages per CPU-second")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transactions", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parsers", action="store_true")
    ap.add_argument("--no-cli", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"dns-{args.transactions}.pcap"
    t0 = time.perf_counter()
    packets, samples = generate(pcap, args.transactions)
    print(f"generated {pcap.name}: {packets:,} packets in {time.perf_counter() - t0:.1f}s")
    frames = list(CaptureFile(str(pcap)))
    best = cpu_best = None
    for _ in range(args.runs):
        dec = Decoder(
            build_plugins({"dns": default_config("dns", include_authorities=True, include_additionals=True)})
        )
        cpu0 = time.process_time()
        n, _first, dt = decode_timed(dec, frames)
        cpu = time.process_time() - cpu0
        assert n == args.transactions, (n, dict(dec.stats))
        assert not any(k.startswith("dns.") for k in dec.stats), dict(dec.stats)
        best = dt if best is None else min(best, dt)
        cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
    assert best is not None and cpu_best is not None
    print(
        f"decoder: {args.transactions:,} transactions, {packets:,} packets in {best:.2f}s ({cpu_best:.2f}s CPU)"
    )
    print(f"decoder: {args.transactions / best:,.0f} transactions/s, {packets / best:,.0f} packets/s")
    print(
        f"decoder per CPU-second: {args.transactions / cpu_best:,.0f} transactions, "
        f"{packets / cpu_best:,.0f} packets"
    )
    if not args.no_cli:
        cli = min((run_cli(pcap) for _ in range(args.runs)), key=lambda r: r["wall"])
        assert cli["events"] == args.transactions, cli
        print(
            f"cli replay: {cli['wall']:.2f}s wall ({cli['cpu']:.2f}s CPU), "
            f"{args.transactions / cli['wall']:,.0f} transactions/s, {packets / cli['wall']:,.0f} packets/s, "
            f"per CPU-second {args.transactions / cli['cpu']:,.0f} transactions; peak RSS {cli['maxrss_mb']:.0f} MB"
        )
    if args.parsers:
        compare_parsers(samples, args.runs)


if __name__ == "__main__":
    main()
