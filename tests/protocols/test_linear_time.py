"""Linear time and bounded memory on pathological input, for every decoder (issue 11, 7).

Every case of ``benchmarks/bench_pathological.py`` (a header block that never ends, an
obs-fold header continued forever, a RESP line without CRLF, huge declared lengths and
collections, deep nesting, floods against full pairing queues ...) is fed in 1460-byte
segments at two sizes through the protocol's connection handler, with the work counted
structurally (``workmeter``: Python lines run + bytes searched), not timed:

* work grows linearly: 4x the input costs at most ~4x the work;
* work per input byte is bounded by a small constant (a bounded-but-huge rescan, e.g.
  1024 queued calls searched per reply, fails this);
* no exception reaches the handler's caller (``<proto>.handler_errors`` stays 0).
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.bench_pathological import CASES, MSS, PORTS
from protocols.handler import ConnInfo
from protocols.http import parser as http_parser
from protocols.redis import parser as redis_parser
from protocols.registry import default_config, plugin_class
from protocols.stats import Counters
from tests.protocols.workmeter import CountingBytes, WorkExceeded, metered

SMALL = 16 * 1024
LARGE = 4 * SMALL
#: Python lines per input byte (valid traffic costs about 1; the worst pathological case,
#: a reply of 4-byte RESP integers, about 12).
PER_BYTE = 25


def _feed(name: str, size: int, budget: int) -> tuple[int, int, Counters]:
    proto, opts, stream = CASES[name](size)
    stats = Counters()
    plugin = plugin_class(proto)(default_config(proto, ports=[PORTS[proto]], **opts), stats)
    conn = ConnInfo("10.0.0.1", 40000, "10.0.0.2", PORTS[proto])
    segments = [(d, CountingBytes(data[i : i + MSS])) for d, data in stream for i in range(0, len(data), MSS)]
    total = sum(len(s) for _, s in segments)
    handler: Any = plugin.new_handler(conn)
    ts = 1_000_000
    with metered([http_parser, redis_parser], budget=budget) as meter:
        for d, seg in segments:
            ts += 1000
            if handler is None:
                handler = plugin.new_handler(conn)
            try:
                for t in handler.on_data(d, seg, ts):
                    plugin.to_event(t)
            except Exception:
                stats.incr(f"{proto}.handler_errors")
                handler = None
        if handler is not None:
            for t in handler.on_close("fin"):
                plugin.to_event(t)
    return meter.work, total, stats


@pytest.mark.parametrize("name", sorted(CASES))
def test_pathological_input_costs_linear_work(name: str) -> None:
    try:
        small, n_small, stats = _feed(name, SMALL, budget=PER_BYTE * 2 * SMALL + 200_000)
        large, n_large, stats = _feed(name, LARGE, budget=PER_BYTE * 2 * LARGE + 200_000)
    except WorkExceeded as exc:
        pytest.fail(f"{name}: {exc} (quadratic or a rescan per message)")
    proto = name.split(".")[0]
    assert stats.get(f"{proto}.handler_errors", 0) == 0, stats
    # The prologue of some cases (queued requests) is a constant: compare the increments.
    grow = (large - small) / max(1, n_large - n_small)
    assert grow <= PER_BYTE, f"{name}: {grow:.1f} units of work per byte"
    assert large <= 4 * small * 1.3 + 50_000, f"{name}: work {small} -> {large} for 4x the input"
