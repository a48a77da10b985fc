"""What the replay report costs (docs/replay.md): the per-batch event counting hook, the
reader's per-record ``bytes_read``, one progress-line redraw, measured against a whole
replay (``wirebeat -t -N -I``) of the same HTTP capture.

    python benchmarks/bench_replay_report.py [--transactions 50000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capture import CaptureFile
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config
from shipper.agent.progress import ReplayReport
from tests.interop.ljpeer import http_capture


def best(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transactions", type=int, default=50_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = http_capture(Path(tmp) / "http.pcap", args.transactions)
        packets = list(CaptureFile(str(pcap)))
        decoder = Decoder(build_plugins({"http": default_config("http", ports=[80])}))
        batches = [decoder.feed_many(packets[i : i + 256]) for i in range(0, len(packets), 256)]
        batches.append(decoder.flush())
        n_events = sum(map(len, batches))

        report = ReplayReport({}, interactive=False)
        counted = report.counting(lambda evs: None)
        hook = best(lambda: [counted(b) for b in batches])
        plain = best(lambda: [(lambda evs: None)(b) for b in batches])

        def read_all() -> None:
            for _ in CaptureFile(str(pcap)):
                pass

        reader = best(read_all)
        report.reader(CaptureFile(str(pcap)).stats, pcap.stat().st_size)
        redraw = best(lambda: [report.progress_line() for _ in range(1000)]) / 1000

        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shipper",
                "-t",
                "-N",
                "-I",
                str(pcap),
                "-E",
                "packetbeat.protocols=[{type: http, ports: [80]}]",
            ],
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        replay = time.perf_counter() - t
    per_event_ns = (hook - plain) / n_events * 1e9
    print(
        json.dumps(
            {
                "packets": len(packets),
                "events": n_events,
                "counting_hook_ns_per_event": round(per_event_ns, 1),
                "reader_us_per_packet": round(reader / len(packets) * 1e6, 3),
                "progress_redraw_us": round(redraw * 1e6, 1),
                "replay_s": round(replay, 2),
                "replay_us_per_packet": round(replay / len(packets) * 1e6, 1),
                "hook_share_of_replay_pct": round((hook - plain) / replay * 100, 3),
                "redraws_share_pct": round(redraw * 4 * 100, 4),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
