"""Live capture benchmark: how many packets/s the AF_PACKET ring and libpcap keep up with.

For each capture type a ``wirebeat`` subprocess captures on ``lo`` with the full pipeline
(HTTP decoder on, events to ``output.discard``, filter ``udp port P``) while a blaster
process sends small UDP datagrams (18-byte payload, 60-byte frames) to 127.0.0.1:P at
rising rates, each step bounded (``--seconds``, at most 10). The kernel's counters come
from the stats endpoint (``/inputs/``), CPU (user + system time of the capturing process
over the sending window; the kernel's copy into the ring runs in the sender) from
``/proc/PID/stat``. ``--types ring`` measures the bare AF_PACKET reader without decoders.
One blaster process sends up to ~180k datagrams/s; faster steps start more of them, which
on a 2-core machine compete with the capture for CPU.

    python benchmarks/bench_live.py [--types af_packet,pcap] [--rates 50000,100000,...]
        [--seconds 5] [--json out.json]

Needs root (or CAP_NET_RAW). Only loopback traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RATES = [50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- blaster (runs in its own process) ---------------------------------------------------------


def blast(port: int, rate: int, seconds: float) -> None:
    """Send ``rate`` datagrams/s for ``seconds`` to 127.0.0.1:port; print how many were sent."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sink.bind(("127.0.0.1", port))  # a bound socket, so no ICMP port-unreachable replies
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    send = s.send
    payload = b"x" * 18
    burst = max(1, rate // 1000)  # one burst per millisecond
    start = time.perf_counter()
    end = start + seconds
    sent = 0
    errors = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * rate)
        todo = min(due - sent, burst * 4)
        if todo <= 0:
            time.sleep(0.0005)
            continue
        for _ in range(todo):
            try:
                send(payload)
            except OSError:
                errors += 1
        sent += todo
    elapsed = time.perf_counter() - start
    print(json.dumps({"sent": sent - errors, "seconds": elapsed, "errors": errors}))


# -- bare ring reader (``--types ring``): the AF_PACKET source alone, no decoder ---------------


def bare_reader(port: int) -> None:
    """Read the ring and count; print the counters on each line read from stdin."""
    import threading

    sys.path.insert(0, str(ROOT))
    from capture.afpacket import AfPacketSource

    src = AfPacketSource("lo", bpf_filter=f"udp port {port}")
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            src.read_batch(0.2)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    print("ready", flush=True)
    for _line in sys.stdin:
        st = src.stats()
        print(
            json.dumps(
                {
                    "received_events_total": st["packets"],
                    "kernel_received": st["kernel.received"],
                    "kernel_dropped": st["kernel.dropped"],
                }
            ),
            flush=True,
        )
    stop.set()
    t.join()


class BareReader:
    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--bare-reader", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid

    def inputs(self) -> list[dict[str, int]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return [json.loads(self.proc.stdout.readline())]

    def terminate(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()


# -- driver ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])  # utime + stime


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def start_wirebeat(kind: str, udp_port: int, http_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    cfg = workdir / f"bench-{kind}.yml"
    cfg.write_text(
        json.dumps(
            {
                "packetbeat.interfaces": [
                    {"device": "lo", "type": kind, "bpf_filter": f"udp port {udp_port}", "buffer_size_mb": 24}
                ],
                "packetbeat.protocols": [{"type": "http", "ports": [80, 8080]}],
                "output.discard": {"enabled": True},
                "http": {"enabled": True, "host": "127.0.0.1", "port": http_port},
                "path.data": str(workdir / "data"),
                "path.logs": str(workdir / "logs"),
                "logging.metrics.period": "30s",
            }
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from shipper.agent.cli import main; main()", "-c", str(cfg)],
        cwd=str(workdir),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"wirebeat ({kind}) exited: {err}")
        try:
            get_json(f"http://127.0.0.1:{http_port}/inputs/")
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("wirebeat did not start its stats endpoint")


def counters(http_port: int, bare: BareReader | None = None) -> dict[str, int]:
    inp = bare.inputs()[0] if bare is not None else get_json(f"http://127.0.0.1:{http_port}/inputs/")[0]
    return {
        "packets": inp["received_events_total"],
        "kernel_received": inp["kernel_received"],
        "kernel_dropped": inp["kernel_dropped"],
    }


def pin(pid: int, cpu: int) -> None:
    """Pin a process (all its threads) to one CPU."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


def run_type(
    kind: str, rates: list[int], seconds: float, workdir: Path, pinned: bool = False
) -> list[dict[str, Any]]:
    udp_port, http_port = free_port(), free_port()
    bare = BareReader(udp_port) if kind == "ring" else None
    proc: Any = bare if bare is not None else start_wirebeat(kind, udp_port, http_port, workdir)
    if pinned:
        pin(proc.pid, 0)
    rows = []
    try:
        time.sleep(1.0)
        for rate in rates:
            before = counters(http_port, bare)
            t0, c0 = time.monotonic(), cpu_ticks(proc.pid)
            # One blaster process manages about 180k datagrams/s on this machine.
            n = max(1, -(-rate // 180_000))
            blasters = [
                subprocess.Popen(
                    [sys.executable, __file__, "--blast", str(udp_port), str(rate // n), str(seconds)],
                    stdout=subprocess.PIPE,
                )
                for _ in range(n)
            ]
            if pinned:
                for b in blasters:
                    pin(b.pid, 1)
            results = []
            for b in blasters:
                stdout, _ = b.communicate(timeout=seconds + 30)
                results.append(json.loads(stdout))
            # Let the last ring block retire and the reader catch up (bounded).
            settle_end = time.monotonic() + 5
            last = counters(http_port, bare)
            while time.monotonic() < settle_end:
                time.sleep(0.3)
                cur = counters(http_port, bare)
                if cur == last:
                    break
                last = cur
            t1, c1 = time.monotonic(), cpu_ticks(proc.pid)
            sent = {
                "sent": sum(r["sent"] for r in results),
                "seconds": max(r["seconds"] for r in results),
            }
            d = {k: last[k] - before[k] for k in last}
            offered = sent["sent"] / sent["seconds"]
            row = {
                "type": kind,
                "target_pps": rate,
                "offered_pps": round(offered),
                "sent": sent["sent"],
                "captured": d["packets"],
                "kernel_received": d["kernel_received"],
                "kernel_dropped": d["kernel_dropped"],
                "drop_rate": round(d["kernel_dropped"] / max(1, d["kernel_received"]), 4),
                "cpu_percent": round(100 * (c1 - c0) / CLK_TCK / (t1 - t0), 1),
                "cpu_percent_of_send_window": round(100 * (c1 - c0) / CLK_TCK / sent["seconds"], 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in sorted({r["type"] for r in rows}):
        mine = [r for r in rows if r["type"] == kind]
        clean = [r for r in mine if r["kernel_dropped"] == 0]
        best = max(clean, key=lambda r: r["offered_pps"]) if clean else None
        above = [r for r in mine if r["kernel_dropped"] > 0]
        out[kind] = {
            "max_pps_zero_kernel_drops": best["offered_pps"] if best else 0,
            "cpu_percent_there": best["cpu_percent_of_send_window"] if best else None,
            "above": [{"offered_pps": r["offered_pps"], "drop_rate": r["drop_rate"]} for r in above],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blast", nargs=3, metavar=("PORT", "RATE", "SECONDS"), help=argparse.SUPPRESS)
    ap.add_argument("--bare-reader", type=int, help=argparse.SUPPRESS)
    ap.add_argument(
        "--types", default="af_packet,pcap", help="af_packet, pcap (full pipeline) and/or ring (bare reader)"
    )
    ap.add_argument("--rates", default=",".join(str(r) for r in DEFAULT_RATES))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", default="")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin the capture to CPU 0 and the blasters to CPU 1 (steadier figures on a busy box)",
    )
    args = ap.parse_args()
    if args.bare_reader:
        bare_reader(args.bare_reader)
        return
    if args.blast:
        blast(int(args.blast[0]), int(args.blast[1]), min(10.0, float(args.blast[2])))
        return
    seconds = min(10.0, args.seconds)
    if args.pin and (os.cpu_count() or 1) < 2:
        ap.error("--pin needs two CPUs")
    rates = [int(r) for r in args.rates.split(",") if r]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        for kind in args.types.split(","):
            rows += run_type(kind, rates, seconds, Path(tmp), args.pin)
    summary = summarize(rows)
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
