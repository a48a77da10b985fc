"""IP fragment reassembly: memory and time under a fragment flood, and the cost for honest
fragmented traffic, for the current reassembler and (``--old REV``) the one of a git revision.

The flood (issue 11 point 14): ``--datagrams`` UDP datagrams of ``--fragments`` fragments of
976 bytes, each missing its last fragment, from distinct sources (4,000 × 67 by default:
the largest IPv4 datagram each, ~255 MB of fragment payload). The honest case: ``--complete`` datagrams of 8 fragments,
shuffled within each datagram, all completed. Frames are generated on the fly (never held),
each case runs in its own child process, and the peak RSS above the child's baseline is
reported with the time per fragment and the reassembler's counters.

    python benchmarks/bench_fragments.py                 # current code
    python benchmarks/bench_fragments.py --old 3525d63   # and the reassembler before the byte cap
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth import ip_frame, udp_datagram  # noqa: E402
from protocols.decoder import Decoder, DecoderLimits  # noqa: E402

NS = 1_000_000_000
FRAG = 976  # 67 fragments of 976 bytes: the largest IPv4 datagram (65,392 bytes)


def datagram_frames(i: int, nfrags: int, drop_last: bool, rnd: random.Random | None) -> list[bytes]:
    src = f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}"
    payload = bytes([i % 251]) * (FRAG * nfrags - 8)
    frame = ip_frame(src, "10.255.0.1", 17, udp_datagram(40000, 5353, payload), ident=i)
    eth, ip = frame[:14], frame[14:]
    hdr, body = bytearray(ip[:20]), ip[20:]
    out = []
    for off in range(0, len(body), FRAG):
        part = body[off : off + FRAG]
        more = off + FRAG < len(body)
        struct.pack_into(">HHH", hdr, 2, 20 + len(part), i & 0xFFFF, (0x2000 if more else 0) | off // 8)
        out.append(eth + bytes(hdr) + part)
    if drop_last:
        out.pop()
    if rnd is not None:
        rnd.shuffle(out)
    return out


def frames(case: str, datagrams: int, nfrags: int) -> Iterator[tuple[int, int, bytes, int]]:
    rnd = random.Random(1) if case == "complete" else None
    ts = 1_700_000_000 * NS
    for i in range(datagrams):
        for fr in datagram_frames(i, nfrags, case == "flood", rnd):
            ts += 1000  # 1 µs apart: the whole flood is far inside the timeout
            yield ts, 1, fr, len(fr)


def load_old(rev: str) -> type:
    """``FragmentReassembler`` as protocols/net.py of git revision ``rev`` has it."""
    src = subprocess.run(
        ["git", "show", f"{rev}:protocols/net.py"], cwd=ROOT, capture_output=True, check=True
    )
    path = Path(tempfile.mkdtemp()) / "old_net.py"
    path.write_bytes(src.stdout)
    spec = importlib.util.spec_from_file_location("old_net", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FragmentReassembler  # type: ignore[no-any-return]


def child(case: str, datagrams: int, nfrags: int, old: str) -> dict[str, object]:
    dec = Decoder([], DecoderLimits())
    if old:
        dec.frags = load_old(old)(dec.stats, 100_000, 4096, 30 * NS)
        if not hasattr(dec.frags, "flush"):
            dec.frags.flush = lambda: None  # it had none: pending datagrams just vanished
    gen = frames(case, datagrams, nfrags)
    first = [next(gen)]  # warm up the generator and the decoder before the baseline
    dec.feed_many(first)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 0
    t0 = time.perf_counter()
    while True:
        chunk = [p for _, p in zip(range(256), gen, strict=False)]
        if not chunk:
            break
        n += len(chunk)
        dec.feed_many(chunk)
    feed_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pending = len(dec.frags.pending)
    held = getattr(dec.frags, "held", None)
    t1 = time.perf_counter()
    dec.flush()
    flush_s = time.perf_counter() - t1
    return {
        "reassembler": old or "current",
        "case": case,
        "datagrams": datagrams,
        "fragments": n + 1,
        "feed_s": round(feed_s, 2),
        "us_per_fragment": round(feed_s / (n + 1) * 1e6, 2),
        "flush_s": round(flush_s, 3),
        "peak_rss_mb_above_baseline": round((peak - base) / 1024, 1),
        "pending_at_end": pending,
        "held_accounted_mb": None if held is None else round(held / 2**20, 1),
        "counters": {k: v for k, v in sorted(dec.stats.items()) if k.startswith("ip.")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datagrams", type=int, default=4000)
    ap.add_argument("--fragments", type=int, default=67)
    ap.add_argument("--complete", type=int, default=20_000, help="honest datagrams of 8 fragments")
    ap.add_argument("--old", default="", help="also measure the reassembler of this git revision")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        case, datagrams, nfrags, old = args.child
        print(json.dumps(child(case, int(datagrams), int(nfrags), old if old != "-" else "")))
        return
    runs = []
    for old in ([args.old] if args.old else []) + ["-"]:
        for case, dg, nf in (("flood", args.datagrams, args.fragments), ("complete", args.complete, 8)):
            out = subprocess.run(
                [sys.executable, __file__, "--child", case, str(dg), str(nf), old],
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(out.stdout)
            runs.append(res)
            print(json.dumps(res))
    print()
    print("| reassembler | case | fragments | µs/fragment | peak RSS above baseline | held (accounted) |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        held = "-" if r["held_accounted_mb"] is None else f"{r['held_accounted_mb']} MB"
        print(
            f"| {r['reassembler']} | {r['case']} ({r['datagrams']} datagrams) | {r['fragments']:,} "
            f"| {r['us_per_fragment']} | {r['peak_rss_mb_above_baseline']} MB | {held} |"
        )


if __name__ == "__main__":
    main()
