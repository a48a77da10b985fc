"""Memory per tracked TCP connection (issue 11, point 13).

Synthesizes captures (streamed to a temporary pcap) of many distinct connections that
stay open until the end of the capture, replays each with ``wirebeat -I file -t`` (output
``discard``) in a subprocess, and reports its peak RSS, the peak RSS of the same run on
a capture of ``--baseline`` connections of the same kind, the bytes each further
connection costs — (peak - baseline peak) / (N - baseline N), so that fixed costs such
as the event queue's capacity are not spread over the connections — and the connection
evictions the run counted. Scenarios:

* ``pending``: N connections (handshake, then one HTTP request that is never answered);
  run once with ``tcp.max_connections`` raised above N, once with the default cap.
* ``syn``: N connections of which only the SYN was seen.
* ``million``: 1,000,000 distinct pending-request connections under the default
  ``tcp.max_connections`` (the cap must bound memory and count what it evicts).

wirebeat runs as one process (``packetbeat.workers: 1``) unless ``--workers`` says
otherwise: with worker processes the peak is the largest process's, and the parent holds
the events of the end-of-input flush, which is not what a connection costs.

``--packetbeat`` replays the same captures with the real Packetbeat 9.3
(``queue.mem.flush.timeout: 0s``, ``output.discard``) for comparison. ``--top`` decodes
the pending capture in-process under tracemalloc instead and prints the biggest
allocation sites just before the end of input (what a connection costs, by line).

    python benchmarks/bench_conn_memory.py [--scenario pending,syn,million] [--connections 200000]
        [--workers 1] [--packetbeat] [--flows] [--top]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import measure

ROOT = Path(__file__).resolve().parent.parent
PACKETBEAT = Path("/root/.cache/wirebeat/packetbeat-9.3.0/packetbeat")
T0 = 1_700_000_000_000_000_000
SERVER = socket.inet_aton("10.0.0.1")
#: Ethernet header (destination, source, type) of each direction: client→server, server→client.
MACS = (
    b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00",
    b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00",
)
SYN, ACK, PSH = 0x02, 0x10, 0x08
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_REC = struct.Struct("<IIII")


def client(i: int) -> tuple[bytes, int]:
    """A distinct (address, port) per connection number."""
    return struct.pack("!BBH", 10, 1 + (i >> 16) % 250, i & 0xFFFF), 1024 + i % 60_000


def frame(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes
) -> bytes:
    tcp = _TCP.pack(sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = _IP.pack(0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return MACS[src == SERVER] + ip + tcp + payload


def request(i: int) -> bytes:
    return (
        f"GET /catalog/item/{i}?ref=home HTTP/1.1\r\nHost: shop.example.com\r\n"
        f"User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0\r\nAccept: */*\r\n\r\n"
    ).encode()


def connection_frames(kind: str, i: int, spacing_ns: int = 1_000) -> list[tuple[int, bytes]]:
    """Connection ``i`` of ``kind`` (``pending``: handshake and one request never
    answered; ``syn``: its SYN alone), starting at ``T0 + i * spacing_ns``."""
    ts = T0 + i * spacing_ns
    ip, port = client(i)
    isn_c, isn_s = (i * 7919) & 0xFFFFFFFF, (i * 104729 + 1) & 0xFFFFFFFF
    frames = [frame(ip, SERVER, port, 80, isn_c, 0, SYN, b"")]
    if kind == "pending":
        frames.append(frame(SERVER, ip, 80, port, isn_s, isn_c + 1, SYN | ACK, b""))
        frames.append(frame(ip, SERVER, port, 80, isn_c + 1, isn_s + 1, ACK, b""))
        frames.append(frame(ip, SERVER, port, 80, isn_c + 1, isn_s + 1, ACK | PSH, request(i)))
    return [(ts + k * 100, f) for k, f in enumerate(frames)]


def synthesize(path: Path, kind: str, n: int) -> int:
    """Write ``n`` connections of ``kind``; returns packets written.

    A million connections span one second of capture time, far below any timeout, so
    they are all open at the end.
    """
    packets = 0
    with open(path, "wb", buffering=1 << 20) as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        write = fh.write
        for i in range(n):
            for ts, f in connection_frames(kind, i):
                sec, ns = divmod(ts, 1_000_000_000)
                write(_REC.pack(sec, ns, len(f), len(f)))
                write(f)
                packets += 1
    return packets


def run_measured(cmd: list[str], cwd: Path, timeout: float = 3600) -> tuple[int, str, float, float]:
    """Run ``cmd``; returns (exit status, stderr, peak RSS in MB, wall seconds).

    The peak is the child's own (``benchmarks/measure.py``), not the maximum over every
    child this process ever had, nor this process's own peak passed on to it."""
    with tempfile.TemporaryFile() as err:
        run = measure.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return run.returncode, text, run.maxrss_mb, run.wall


def wirebeat_config(tmp: Path, max_connections: int | None, flows: bool, workers: int = 1) -> Path:
    cfg = tmp / "wirebeat.yml"
    text = (
        "packetbeat.protocols:\n  - type: http\n    ports: [80]\n"
        f"packetbeat.workers: {workers}\n"
        "output.discard.enabled: true\nlogging.metrics.enabled: false\n"
        f"path.data: {tmp}/data\npath.logs: {tmp}/logs\n"
    )
    if max_connections is not None:
        text += f"packetbeat.tcp.max_connections: {max_connections}\n"
    if flows:
        text += "packetbeat.flows:\n  timeout: 30s\n  period: 10s\n"
    cfg.write_text(text)
    return cfg


def packetbeat_config(tmp: Path, flows: bool) -> Path:
    cfg = tmp / "packetbeat.yml"
    text = (
        "packetbeat.protocols:\n  - type: http\n    ports: [80]\n"
        "queue.mem.flush.timeout: 0s\noutput.discard.enabled: true\n"
        "logging.metrics.enabled: false\n"
        f"path.data: {tmp}/pbdata\npath.logs: {tmp}/pblogs\n"
    )
    if flows:
        text += "packetbeat.flows:\n  timeout: 30s\n  period: 10s\n"
    cfg.write_text(text)
    os.chmod(cfg, 0o600)
    return cfg


def run_wirebeat(
    pcap: Path, tmp: Path, max_connections: int | None, flows: bool, workers: int = 1
) -> dict[str, object]:
    cfg = wirebeat_config(tmp, max_connections, flows, workers)
    cmd = [sys.executable, "-m", "shipper", "-c", str(cfg), "-e", "-I", str(pcap), "-t"]
    rc, err, rss, wall = run_measured(cmd, ROOT)
    if rc != 0:
        raise SystemExit(f"wirebeat failed ({rc}): {err[-2000:]}")
    metrics: dict[str, int] = {}
    for line in err.splitlines():
        if '"Total metrics"' in line:
            metrics = _flatten(json.loads(line)["monitoring"]["metrics"])
    return {"rss": rss, "wall": wall, "metrics": metrics}


def _flatten(tree: dict[str, object], prefix: str = "") -> dict[str, int]:
    """Nested metrics ({"tcp": {"connections": 3}}) as dotted keys ({"tcp.connections": 3})."""
    flat: dict[str, int] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, int):
            flat[prefix + k] = v
    return flat


def run_packetbeat(pcap: Path, tmp: Path, flows: bool) -> dict[str, object]:
    cfg = packetbeat_config(tmp, flows)
    cmd = [str(PACKETBEAT), "-c", str(cfg), "-e", "-I", str(pcap), "-t", "--strict.perms=false"]
    rc, err, rss, wall = run_measured(cmd, tmp)
    if rc != 0:
        raise SystemExit(f"packetbeat failed ({rc}): {err[-2000:]}")
    return {"rss": rss, "wall": wall, "metrics": {}}


def evictions(metrics: dict[str, int]) -> str:
    keys = (
        "tcp.connections_evicted",
        "tcp.connections_expired",
        "tcp.budget_evictions",
        "http.unmatched_requests",
    )
    return ", ".join(f"{k.split('.', 1)[1]} {metrics[k]:,}" for k in keys if metrics.get(k))


def top_allocations(kind: str, n: int, limit: int = 15) -> None:
    """Decode ``n`` connections of ``kind`` in-process under tracemalloc; print the biggest sites."""
    import tracemalloc

    from capture import CaptureFile
    from protocols.decoder import Decoder, DecoderLimits
    from protocols.registry import build_plugins, default_config
    from protocols.tcp import TcpLimits

    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / f"{kind}.pcap"
        synthesize(pcap, kind, n)
        dec = Decoder(
            build_plugins({"http": default_config("http", ports=[80])}),
            DecoderLimits(tcp=TcpLimits(max_connections=max(n + 1, 100_000))),
        )
        reader = CaptureFile(str(pcap))
        tracemalloc.start(1)
        base = tracemalloc.get_traced_memory()[0]
        chunk = []
        for pkt in reader:
            chunk.append(pkt)
            if len(chunk) == 256:
                dec.feed_many(chunk)
                chunk = []
        dec.feed_many(chunk)
        snap = tracemalloc.take_snapshot()
        used = tracemalloc.get_traced_memory()[0] - base
        tracked = len(dec.tcp.conns) + len(getattr(dec.tcp, "half_open", ()))
        print(f"{tracked:,} connections tracked: {used / 1e6:.1f} MB traced, {used / n:,.0f} B each")
        for stat in snap.statistics("lineno")[:limit]:
            frame = stat.traceback[0]
            print(
                f"  {stat.size / n:8.1f} B/conn  {stat.count / n:5.2f} obj/conn  {frame.filename}:{frame.lineno}"
            )
        tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="pending,syn,million")
    ap.add_argument("--connections", type=int, default=200_000, help="for pending (and syn: 2.5x)")
    ap.add_argument("--syn-connections", type=int, default=500_000)
    ap.add_argument("--million", type=int, default=1_000_000)
    ap.add_argument("--baseline", type=int, default=10_000, help="connections of the baseline run")
    ap.add_argument("--packetbeat", action="store_true", help="also run the real Packetbeat 9.3")
    ap.add_argument("--tools", default="", help="instead: wirebeat, packetbeat or both (comma-separated)")
    ap.add_argument("--flows", action="store_true", help="enable packetbeat.flows as well")
    ap.add_argument(
        "--workers", type=int, default=1, help="wirebeat's packetbeat.workers (default 1: one process)"
    )
    ap.add_argument(
        "--top",
        action="store_true",
        help="tracemalloc: biggest allocation sites, in-process (pending, or syn)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the captures (in benchmarks/out/)")
    args = ap.parse_args()
    if args.top:
        top_allocations("syn" if args.scenario == "syn" else "pending", args.connections)
        return
    if (args.packetbeat or "packetbeat" in args.tools) and not PACKETBEAT.exists():
        raise SystemExit(f"{PACKETBEAT} is not built yet (setup has not finished)")
    out_dir = ROOT / "benchmarks" / "out" if args.keep else None
    if out_dir is not None:
        out_dir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        where = out_dir or tmp

        def capture(kind: str, n: int) -> Path:
            path = where / f"conn-{kind}-{n}.pcap"
            if not path.exists():
                t0 = time.perf_counter()
                pk = synthesize(path, kind, n)
                print(
                    f"  synthesized {path.name}: {pk:,} packets, "
                    f"{path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f}s",
                    flush=True,
                )
            return path

        base_cache: dict[tuple[str, str, int | None], float] = {}

        def baseline(tool: str, kind: str, cap: int | None) -> float:
            key = (tool, kind, cap)
            if key not in base_cache:
                pcap = capture(kind, args.baseline)
                r = (
                    run_packetbeat(pcap, tmp, args.flows)
                    if tool == "packetbeat"
                    else (run_wirebeat(pcap, tmp, cap, args.flows, args.workers))
                )
                base_cache[key] = float(r["rss"])  # type: ignore[arg-type]
            return base_cache[key]

        def measure(tool: str, kind: str, n: int, cap: int | None, label: str) -> None:
            pcap = capture(kind, n)
            base = baseline(tool, kind, cap)
            r = (
                run_packetbeat(pcap, tmp, args.flows)
                if tool == "packetbeat"
                else (run_wirebeat(pcap, tmp, cap, args.flows, args.workers))
            )
            rss = float(r["rss"])  # type: ignore[arg-type]
            per = (rss - base) * 1024 * 1024 / (n - args.baseline)
            ev = evictions(r["metrics"])  # type: ignore[arg-type]
            print(
                f"{tool:10} {label:34} peak {rss:7.0f} MB, baseline {base:4.0f} MB, "
                f"{per / 1024:5.2f} KB/conn, {r['wall']:6.1f}s" + (f"; {ev}" if ev else ""),
                flush=True,
            )

        scenarios = args.scenario.split(",")
        tools = (
            args.tools.split(",")
            if args.tools
            else ["wirebeat"] + (["packetbeat"] if args.packetbeat else [])
        )
        n = args.connections
        for tool in tools:
            if "pending" in scenarios:
                if tool == "wirebeat":
                    measure(tool, "pending", n, max(n, 1_000_000), f"{n:,} pending, cap 1,000,000")
                    measure(tool, "pending", n, None, f"{n:,} pending, default cap")
                else:
                    measure(tool, "pending", n, None, f"{n:,} pending")
            if "syn" in scenarios:
                m = args.syn_connections
                if tool == "wirebeat":
                    measure(tool, "syn", m, max(m, 1_000_000), f"{m:,} SYN-only, cap 1,000,000")
                else:
                    measure(tool, "syn", m, None, f"{m:,} SYN-only")
            if "million" in scenarios:
                m = args.million
                measure(tool, "pending", m, None, f"{m:,} pending, default cap")


if __name__ == "__main__":
    main()
