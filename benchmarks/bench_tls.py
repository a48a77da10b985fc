"""TLS decoder throughput: handshakes per second through ``Decoder.feed_many``.

The handshakes are real ones: the client and server bytes of Packetbeat's TLS captures
(tls-sample2: TLS 1.2 with a three-certificate chain; tls-version-13; http2-16-ssl),
replayed over many connections from different clients (SYN, flights segmented at the
MSS, some application data, FIN) until the capture has 200,000+ packets.

Run: python benchmarks/bench_tls.py [--distinct-certs]
  --distinct-certs  every connection's server certificate is a different one (no
                    certificate-cache hits: the worst case for x509 parsing).
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import tlswire as w
from benchmarks.synth import Conversation, decode_timed, interleave
from capture import CaptureFile
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "pcaps" / "packetbeat"
CAPTURES = ("tls-sample2", "tls-version-13", "http2-16-ssl")
TARGET_PACKETS = 200_000


def flights(name: str) -> list[tuple[int, bytes]]:
    """The payloads of the capture's TLS connection, in order: [(side, bytes)], 0 = client."""
    out: list[tuple[int, bytes]] = []
    client: tuple[bytes, int] | None = None
    for _ts, lt, frame, _wl in CaptureFile(str(SHARED / f"{name}.pcap")):
        off = {1: 14, 113: 16, 0: 4}[lt]
        ip = frame[off:]
        if ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        t = ip[ihl:]
        src, sport = ip[12:16], struct.unpack(">H", t[:2])[0]
        payload = t[(t[12] >> 4) * 4 : struct.unpack(">H", ip[2:4])[0] - ihl]
        if not payload:
            continue
        if client is None:
            client = (src, sport)
        side = 0 if (src, sport) == client else 1
        if out and out[-1][0] == side:
            out[-1] = (side, out[-1][1] + payload)
        else:
            out.append((side, bytes(payload)))
    return out[:8]


def packets(distinct: bool) -> tuple[list[tuple[int, int, bytes, int]], int]:
    templates = [flights(n) for n in CAPTURES]
    convs = []
    n = 0
    total = 0
    while total < TARGET_PACKETS:
        msgs = templates[n % len(templates)]
        if distinct and n % len(templates) == 0:
            # Swap the chain of tls-sample2 for a certificate of this connection's own.
            cert = w.record(22, w.certificate([w.make_certificate(f"host{n}.example", serial=n + 1)]))
            msgs = [msgs[0], (1, msgs[1][1] + cert), *msgs[2:]]
        conv = Conversation(
            (f"10.{n // 60000 % 250}.{n // 250 % 240}.{n % 250 + 1}", 1024 + n % 60000),
            ("192.0.2.10", 443),
            ts=1_700_000_000_000_000_000 + n * 2_000_000,
        ).handshake()
        for side, data in msgs:
            conv.send(side, data)
        conv.close()
        convs.append(conv.frames)
        total += len(conv.frames)
        n += 1
    return [(ts, 1, f, len(f)) for ts, f in interleave(convs)], n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--distinct-certs", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pkts, conns = packets(args.distinct_certs)
    print(f"synthesized {len(pkts):,} packets, {conns:,} TLS connections in {time.perf_counter() - t0:.1f}s")
    dec = Decoder(build_plugins({"tls": default_config("tls")}))
    cpu = time.process_time()
    n, first, dt = decode_timed(dec, pkts)
    cpu = time.process_time() - cpu
    assert n == conns, (n, conns, dec.stats)
    assert all(e["tls"]["established"] for e in first)
    print(f"tls: {n:,} handshakes, {len(pkts):,} packets in {dt:.2f}s")
    print(f"tls: {n / dt:,.0f} handshakes/s, {len(pkts) / dt:,.0f} packets/s")
    print(f"tls: {n / cpu:,.0f} handshakes per CPU second ({cpu:.2f}s CPU; the machine may be shared)")


if __name__ == "__main__":
    main()
