"""What ``-d http`` costs the HTTP decoder, and what it costs when off: 60,000 synthesized
HTTP transactions over 200 keep-alive connections, decoded with no selector, with
``-d mysql`` (a selector that does not concern HTTP) and with ``-d http`` (logging to
/dev/null, so the figure is the cost of building and emitting the lines).
Run: python benchmarks/bench_debug_selectors.py"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config
from shipper.agent.logs import setup_logging

CONNECTIONS = 200
PER_CONN = 300


def packets() -> list[tuple[int, int, bytes, int]]:
    convs = []
    for c in range(CONNECTIONS):
        conv = Conversation(
            (f"10.1.0.{c % 250 + 1}", 20000 + c), ("10.9.0.1", 80), ts=1_700_000_000 * 10**9 + c
        )
        conv.handshake()
        for i in range(PER_CONN):
            conv.send(0, b"GET /item/%d HTTP/1.1\r\nHost: shop\r\n\r\n" % i)
            conv.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        conv.close()
        convs.append(conv.frames)
    return [(ts, 1, f, len(f)) for ts, f in interleave(convs)]


def run(pkts: list[tuple[int, int, bytes, int]], selectors: list[str]) -> float:
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the debug lines go nowhere)
    try:
        setup_logging(level="info", selectors=selectors, to_stderr=True)
        best = float("inf")
        for _ in range(3):
            decoder = Decoder(build_plugins({"http": default_config("http")}))
            events, _first, secs = decode_timed(decoder, pkts)
            assert events == CONNECTIONS * PER_CONN, events
            best = min(best, secs)
        return best
    finally:
        sys.stderr.close()
        sys.stderr = sys.__stderr__
        setup_logging(level="info", to_stderr=True)
        logging.getLogger().handlers.clear()


def main() -> None:
    pkts = packets()
    txns = CONNECTIONS * PER_CONN
    for label, sels in (("no selector", []), ("-d mysql", ["mysql"]), ("-d http", ["http"])):
        secs = run(pkts, sels)
        print(f"{label:12s} {txns / secs:10,.0f} transactions/s  {len(pkts) / secs:10,.0f} packets/s")


if __name__ == "__main__":
    main()
