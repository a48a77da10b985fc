"""Pathological inputs for every decoder: time must grow linearly with the input.

Each case is a stream a broken or hostile peer could send (a header block that never
ends, an obs-fold header continued forever, a RESP line without CRLF, a huge declared
bulk or collection, deep nesting, oversized MySQL/PostgreSQL packets, floods that make a
pairing queue rescan itself ...). It is cut into 1460-byte segments (one Ethernet MSS)
and fed to a fresh connection handler of the protocol, with the plugin's default
configuration, the way the TCP layer feeds it (a handler that raises is counted and
replaced, as ``protocols/tcp.py`` does).

For 1, 2, 4 and 8 MB of pathological bytes it prints the seconds taken, the handler
errors (must be 0) and the counters the plugin raised. A case that takes longer than
``--budget`` seconds is interrupted and its larger sizes skipped.

    python benchmarks/bench_pathological.py [--sizes 1,2,4,8] [--budget 60] [--only http]
"""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import dbwire as w
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.registry import default_config, plugin_class
from protocols.stats import Counters

C, S = FROM_CLIENT, FROM_SERVER
MSS = 1460
MB = 1 << 20
PORTS = {"http": 80, "redis": 6379, "mysql": 3306, "pgsql": 5432, "thrift": 9090}

#: A case: size in bytes → (protocol, config options, [(direction, bytes)]).
Case = Callable[[int], tuple[str, dict[str, Any], list[tuple[int, bytes]]]]


def fill(unit: bytes, size: int) -> bytes:
    return unit * max(1, size // len(unit))


# -- HTTP ----------------------------------------------------------------------------------


def http_header_block(size: int) -> Any:
    head = b"GET / HTTP/1.1\r\nHost: example.com\r\n"
    return "http", {}, [(C, head + fill(b"X-Filler: " + b"a" * 48 + b"\r\n", size))]


def http_obs_fold(size: int) -> Any:
    # One header folded over 1 KB continuation lines (under the header-line cap).
    head = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Fold: a\r\n"
    return "http", {}, [(C, head + fill(b" " + b"b" * 1021 + b"\r\n", size) + b"\r\n")]


def http_repeated_header(size: int) -> Any:
    head = b"GET / HTTP/1.1\r\nHost: example.com\r\n"
    line = b"X-R: " + b"y" * 1017 + b"\r\n"
    return "http", {"send_all_headers": True}, [(C, head + fill(line, size) + b"\r\n")]


def http_trailer_line(size: int) -> Any:
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: "
    return (
        "http",
        {},
        [(C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), (S, resp + fill(b"t", size))],
    )


def http_bare_lf_auth(size: int) -> Any:
    head = b"GET / HTTP/1.1\nHost: x\n"
    return (
        "http",
        {"redact_authorization": True},
        [(C, head + fill(b"Authorization: Basic " + b"eA" * 500 + b"\n", size) + b"\n")],
    )


# -- Redis ---------------------------------------------------------------------------------


def redis_no_crlf(size: int) -> Any:
    return "redis", {}, [(C, b"*1\r\n$4\r\nPING\r\n"), (S, b"+" + fill(b"a", size))]


def redis_inline_no_lf(size: int) -> Any:
    return "redis", {}, [(C, b"PING " + fill(b"a", size))]


def redis_huge_bulk(size: int) -> Any:
    return "redis", {}, [(C, b"*1\r\n$3\r\nGET\r\n"), (S, b"$2000000000\r\n" + fill(b"x", size))]


def redis_deep_nesting(size: int) -> Any:
    return "redis", {}, [(C, fill(b"*1\r\n", size))]


def redis_many_small_values(size: int) -> Any:
    # One reply holding millions of small values, all within max_message_size.
    return "redis", {}, [(C, b"*1\r\n$4\r\nKEYS\r\n"), (S, b"*2000000000\r\n" + fill(b":1\r\n", size))]


def redis_many_elements(size: int) -> Any:
    return "redis", {}, [(C, b"*1\r\n$4\r\nKEYS\r\n"), (S, b"*2000000000\r\n" + fill(b"$0\r\n\r\n", size))]


# -- MySQL ---------------------------------------------------------------------------------


def mysql_oversized_packet(size: int) -> Any:
    # One COM_QUERY declaring the largest payload, then its bytes.
    return "mysql", {}, [(C, b"\xff\xff\xff\x00\x03" + fill(b"x", size))]


def mysql_endless_columns(size: int) -> Any:
    # A result set announcing 2**24-1 columns, then column definitions (distinct tables).
    defs = bytearray()
    i = 0
    while len(defs) < size:
        defs += w.my_coldef(2 + i % 250, "db", f"t{i}", "c")
        i += 1
    return "mysql", {}, [(C, w.my_query("SELECT *")), (S, w.my_packet(1, w.lenenc(0xFFFFFF)) + bytes(defs))]


# -- PostgreSQL ----------------------------------------------------------------------------


def pgsql_oversized_message(size: int) -> Any:
    return "pgsql", {}, [(C, b"Q" + struct.pack(">i", 0x3FFFFFFF) + fill(b"x", size))]


def pgsql_huge_row(size: int) -> Any:
    rows = w.pg_row_description(["a"]) + b"D" + struct.pack(">iHi", 0x7FFFFFF0, 1, 0x7FFFFF00)
    return "pgsql", {}, [(C, w.pg_query("SELECT a")), (S, rows + fill(b"r", size))]


def pgsql_error_flood(size: int) -> Any:
    # 4000 pipelined Binds waiting, then ErrorResponses and ReadyForQuery without a Sync.
    binds = w.pg_bind("", "s") * 4000
    flood = fill(w.pg_msg(b"E", b"\0") + w.pg_ready(), size)
    return "pgsql", {}, [(C, binds), (S, flood)]


# -- Thrift --------------------------------------------------------------------------------

_CALL = b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x01"


def thrift_huge_list_i32(size: int) -> Any:
    # 25 million i32 (100 MB, just within Thrift's message limit).
    head = _CALL + b"\x0f\x00\x01\x08" + struct.pack(">i", 25_000_000)
    return "thrift", {}, [(C, head + fill(b"\x00\x00\x00\x07", size))]


def thrift_huge_list_string(size: int) -> Any:
    head = _CALL + b"\x0f\x00\x01\x0b" + struct.pack(">i", 20_000_000)
    return "thrift", {}, [(C, head + fill(b"\x00\x00\x00\x01a", size))]


def thrift_lying_list(size: int) -> Any:
    # 2**31-1 strings claimed (8 GB at least), then bytes that never make them.
    head = _CALL + b"\x0f\x00\x01\x0b" + struct.pack(">i", 0x7FFFFFFF)
    return "thrift", {}, [(C, head + fill(b"\x00\x00\x00\x01a", size))]


def thrift_compact_huge_list(size: int) -> Any:
    # Field 1: a compact list<i32> of 2**24-1 elements (16 MB: within Thrift's limits).
    head = b"\x82\x21\x01\x04ping" + b"\x19\xf5\xff\xff\xff\x07"
    return "thrift", {}, [(C, head + fill(b"\x0e", size))]


def thrift_deep_nesting(size: int) -> Any:
    return "thrift", {}, [(C, _CALL + fill(b"\x0c\x00\x01", size))]


def thrift_wide_render(size: int) -> Any:
    # Lists of lists of lists of 200-byte strings, 15 wide at every level: all within the
    # per-container limits, so everything is rendered and the text grows with the input.
    level = b"\x0b" + struct.pack(">i", 15) + (struct.pack(">i", 200) + b"s" * 200) * 15
    for _ in range(2):
        level = b"\x0f" + struct.pack(">i", 15) + level * 15
    head = _CALL + b"\x0f\x00\x01\x0f" + struct.pack(">i", 1_000_000)
    return "thrift", {}, [(C, head + fill(level, size))]


def thrift_unmatched_replies(size: int) -> Any:
    calls = b"".join(
        b"\x80\x01\x00\x01\x00\x00\x00\x01m" + struct.pack(">i", i) + b"\x00" for i in range(1024)
    )
    reply = b"\x80\x01\x00\x02\x00\x00\x00\x01z\x00\x00\x00\x00\x00"
    return "thrift", {}, [(C, calls), (S, fill(reply, size))]


CASES: dict[str, Case] = {
    "http.header_block": http_header_block,
    "http.obs_fold": http_obs_fold,
    "http.repeated_header": http_repeated_header,
    "http.trailer_line": http_trailer_line,
    "http.bare_lf_auth": http_bare_lf_auth,
    "redis.no_crlf_line": redis_no_crlf,
    "redis.inline_no_lf": redis_inline_no_lf,
    "redis.huge_bulk": redis_huge_bulk,
    "redis.deep_nesting": redis_deep_nesting,
    "redis.many_elements": redis_many_elements,
    "redis.many_small_values": redis_many_small_values,
    "mysql.oversized_packet": mysql_oversized_packet,
    "mysql.endless_columns": mysql_endless_columns,
    "pgsql.oversized_message": pgsql_oversized_message,
    "pgsql.huge_row": pgsql_huge_row,
    "pgsql.error_flood": pgsql_error_flood,
    "thrift.huge_list_i32": thrift_huge_list_i32,
    "thrift.huge_list_string": thrift_huge_list_string,
    "thrift.lying_list": thrift_lying_list,
    "thrift.compact_huge_list": thrift_compact_huge_list,
    "thrift.deep_nesting": thrift_deep_nesting,
    "thrift.wide_render": thrift_wide_render,
    "thrift.unmatched_replies": thrift_unmatched_replies,
}


class Timeout(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


def run(case: Case, size: int, budget: float, memory: bool = False) -> tuple[float | None, Counters, int]:
    proto, opts, stream = case(size)
    stats = Counters()
    plugin = plugin_class(proto)(default_config(proto, ports=[PORTS[proto]], **opts), stats)
    conn = ConnInfo("10.0.0.1", 40000, "10.0.0.2", PORTS[proto])
    handler: Any = None
    ts = 1_700_000_000_000_000_000
    segments = [(d, data[i : i + MSS]) for d, data in stream for i in range(0, len(data), MSS)]
    if memory:
        tracemalloc.start()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    start = time.perf_counter()
    try:
        for d, seg in segments:
            ts += 10_000
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
        elapsed: float | None = time.perf_counter() - start
    except Timeout:
        elapsed = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    peak = 0
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return elapsed, stats, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,2,4,8", help="MB, comma-separated")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per run before giving up")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    ap.add_argument("--json", default="", help="also write the figures to this file")
    ap.add_argument(
        "--memory", action="store_true", help="report peak traced memory (MB) instead of seconds (slower)"
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, dict[str, Any]] = {}
    print(f"{'case':28}" + "".join(f"{str(s) + ' MB':>10}" for s in sizes) + "  counters (largest run)")
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        row: dict[str, Any] = {}
        cells = []
        last: Counters = Counters()
        skipped = False
        for s in sizes:
            if skipped:
                cells.append(f"{'-':>10}")
                continue
            elapsed, stats, peak = run(case, s * MB, args.budget, args.memory)
            if elapsed is not None and args.memory:
                cells.append(f"{peak / MB:>8.1f}MB")
                row[str(s)] = round(peak / MB, 1)
            elif elapsed is None:
                cells.append(f"{'>' + format(args.budget, 'g') + 's':>10}")
                row[str(s)] = None
                skipped = True
            else:
                cells.append(f"{elapsed:>9.2f}s")
                row[str(s)] = round(elapsed, 3)
            last = stats
        counters = {k: v for k, v in sorted(last.items())}
        row["counters"] = counters
        results[name] = row
        print(f"{name:28}" + "".join(cells) + "  " + json.dumps(counters), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
