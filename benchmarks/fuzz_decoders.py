"""Coverage-guided fuzzing of the protocol decoders (HTTP, MySQL, PgSQL, Redis, Thrift)
with atheris (libFuzzer for Python).

One target for all five: the first byte of an input picks the protocol, the rest is a
script of operations on one connection handler, so the fuzzer can also learn gaps, FINs
and the interleaving of both directions:

    [proto] ([op] [len lo] [len hi] [payload])*
    op & 1: direction (0 client, 1 server); op >> 1: 0-5 data, 6 gap of len bytes, 7 FIN

Every transaction is turned into an event. A crash is any exception out of a handler or
the event builder, a buffer beyond its bound, or (libFuzzer's ``-timeout``) an input
that takes seconds: a quadratic path. Seeds are the sample conversations of the property
tests (``tests/protocols/conversations.py``), cut and chunked.

    python benchmarks/fuzz_decoders.py -max_total_time=1800 -timeout=10 out/fuzz-corpus
    python benchmarks/fuzz_decoders.py --seeds out/fuzz-corpus   # write the seed corpus only
    python benchmarks/fuzz_decoders.py crash-<sha1>               # replay one input

Without atheris installed, ``--random N`` runs N random mutations of the seeds instead
(no coverage guidance).
"""

from __future__ import annotations

import hashlib
import random
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.handler import ConnInfo
from protocols.registry import default_config, plugin_class
from protocols.stats import Counters

PROTOS = ["http", "mysql", "pgsql", "redis", "thrift"]
PORTS = {"http": 80, "mysql": 3306, "pgsql": 5432, "redis": 6379, "thrift": 9090}
#: Small caps so that short inputs reach them; options that reach more code.
OPTS: dict[str, dict[str, Any]] = {
    "http": {"send_all_headers": True, "include_body_for": ["text/html"], "max_message_size": 4096},
    "mysql": {"send_request": True, "send_response": True},
    "pgsql": {"send_request": True, "send_response": True},
    "redis": {"send_request": True, "send_response": True, "max_message_size": 2048},
    "thrift": {"collection_max_size": 4, "string_max_size": 16},
}
#: Bytes a handler may hold for incomplete messages (the largest built-in cap is the
#: 4 MiB MySQL/PostgreSQL packet; inputs are far shorter).
MAX_BUFFERED = 5 << 20
CONN = ConnInfo("10.0.0.1", 40000, "10.0.0.2", 1)

_PLUGINS: dict[str, Any] = {}


def plugin(proto: str) -> Any:
    p = _PLUGINS.get(proto)
    if p is None:
        cfg = default_config(proto, ports=[PORTS[proto]], **OPTS[proto])
        p = _PLUGINS[proto] = plugin_class(proto)(cfg, Counters())
    return p


def buffered(handler: Any) -> int:
    total = 0
    for p in getattr(handler, "parsers", ()):
        total += len(getattr(p, "buf", b"")) + len(getattr(p, "rest", b""))
    for s in getattr(handler, "streams", ()):
        total += len(s.buf)
    return total


def run_one(data: bytes) -> None:
    """Decode one fuzz input; raises on any defect."""
    if not data:
        return
    proto = PROTOS[data[0] % len(PROTOS)]
    p = plugin(proto)
    handler = p.new_handler(CONN)
    pos = 1
    ts = 1_000_000
    n = len(data)
    while pos < n:
        op = data[pos]
        size = data[pos + 1] | (data[pos + 2] << 8) if pos + 2 < n else 0
        pos += 3
        direction = op & 1
        kind = (op >> 1) & 7
        ts += 1000
        if kind == 6:
            if handler.on_gap(direction, max(1, size)):
                txns = handler.on_close("gap")
                handler = p.new_handler(CONN)
            else:
                txns = []
        elif kind == 7:
            txns = handler.on_fin(direction, ts)
        else:
            chunk = data[pos : pos + size]
            pos += size
            if not chunk:
                continue
            txns = handler.on_data(direction, chunk, ts)
        for t in txns:
            p.to_event(t)
        if buffered(handler) > MAX_BUFFERED:
            raise AssertionError(f"{proto}: {buffered(handler)} bytes buffered")
    for t in handler.on_close("fin"):
        p.to_event(t)


def encode(proto: str, pieces: list[tuple[int, bytes]]) -> bytes:
    out = bytearray([PROTOS.index(proto)])
    for direction, chunk in pieces:
        out += struct.pack("<BH", direction, len(chunk)) + chunk
    return bytes(out)


def seeds() -> list[bytes]:
    """The sample conversations: whole, cut in the middle, in random chunks, with a gap."""
    from tests.protocols.conversations import SAMPLES

    rnd = random.Random(1)
    out = []
    for proto, convs in SAMPLES.items():
        for conv in convs:
            pieces = [(d, m) for d, m, _ in conv]
            out.append(encode(proto, pieces))
            chunks = []
            for d, m in pieces:
                i = 0
                while i < len(m):
                    k = rnd.randint(1, 200)
                    chunks.append((d, m[i : i + k]))
                    i += k
            out.append(encode(proto, chunks))
            half = len(pieces) // 2
            out.append(
                encode(proto, pieces[:half]) + bytes([(6 << 1) | 1, 10, 0]) + encode(proto, pieces[half:])[1:]
            )
            for d, m in pieces:
                out.append(encode(proto, [(d, m)]))
    return out


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        i = rnd.randrange(1, len(b) + 1)
        r = rnd.random()
        if r < 0.5 and len(b) > 1:
            b[min(i, len(b) - 1)] = rnd.randrange(256)
        elif r < 0.75:
            b[i:i] = rnd.randbytes(rnd.randint(1, 16))
        else:
            del b[i : i + rnd.randint(1, 16)]
    return bytes(b)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--seeds"]:
        corpus = Path(args[1])
        corpus.mkdir(parents=True, exist_ok=True)
        for s in seeds():
            (corpus / hashlib.sha1(s).hexdigest()).write_bytes(s)
        print(f"{len(seeds())} seeds in {corpus}")
        return
    if args[:1] == ["--random"]:
        count = int(args[1])
        rnd = random.Random(int(args[2]) if len(args) > 2 else 0)
        pool = seeds()
        for i in range(count):
            data = mutate(rnd.choice(pool), rnd)
            try:
                run_one(data)
            except Exception:
                path = Path(f"crash-{hashlib.sha1(data).hexdigest()}")
                path.write_bytes(data)
                print(f"crash after {i} inputs, written to {path}")
                raise
        print(f"{count} inputs, no crash")
        return
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris, or use --random N")
    for proto in PROTOS:
        plugin(proto)  # import every decoder before instrumenting
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *args], run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
