"""Coverage-guided fuzzing with atheris (libFuzzer for Python), one target at a time
(``--target``, default ``decoders``):

``decoders``: the protocol decoders (HTTP, MySQL, PgSQL, Redis, Thrift). The first byte of an
input picks the protocol, the rest is a script of operations on one connection handler, so
the fuzzer can also learn gaps, FINs and the interleaving of both directions:

    [proto] ([op] [len lo] [len hi] [payload])*
    op & 1: direction (0 client, 1 server); op >> 1: 0-5 data, 6 gap of len bytes, 7 FIN

Every transaction is turned into an event. Seeds: the sample conversations of the property
tests (``tests/protocols/conversations.py``), cut and chunked.

``capture``: the capture file readers. An input is a whole pcap or pcapng file. A crash is an
exception out of the reader (a refused file is a ``CaptureError`` from the constructor), a
time outside 1970..2262, or a reader that stops before the end without saying why. Seeds: the
beginnings of the shared captures as pcap and as pcapng (EPB, SPB, PB), and a pcapng file with
every block type.

``packets``: the link, IP (fragments), TCP and UDP layers and every decoder behind them: the
whole ``Decoder`` with every protocol on its default ports and flows on. An input is a script
of frames:

    ([link type index] [len lo] [len hi] [frame])*     (link types: LINKTYPES below)

A crash is an exception out of ``feed``/``flush``, a ``*.handler_errors``/``*.event_errors``
counter (an exception caught inside), or state beyond its bounds. Seeds: runs of frames of the
shared captures.

For all targets, libFuzzer's ``-timeout`` catches an input that takes seconds: a quadratic path.

    python benchmarks/fuzz_decoders.py [--target T] -max_total_time=1800 -timeout=10 out/fuzz-T
    python benchmarks/fuzz_decoders.py [--target T] --seeds out/fuzz-T   # write the seed corpus only
    python benchmarks/fuzz_decoders.py [--target T] crash-<sha1>          # replay one input

Without atheris installed, ``--random N [SEED]`` runs N random mutations of the seeds instead
(no coverage guidance). Every run ends with a line of figures (inputs tried, crashes).
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capture import CaptureError, CaptureFile
from capture.pcapfile import MAX_TS_NS
from protocols.decoder import Decoder
from protocols.flows import FlowConfig
from protocols.handler import ConnInfo
from protocols.registry import available, build_plugins, default_config, plugin_class
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


# -- target: capture readers ---------------------------------------------------------------


def run_capture(data: bytes) -> None:
    try:
        reader = CaptureFile("fuzz-input", io.BytesIO(data))
    except CaptureError:
        return
    for ts, _lt, frame, _wl in reader:
        if not 0 <= ts <= MAX_TS_NS or type(frame) is not bytes:
            raise AssertionError(f"packet time {ts} or frame {type(frame)}")
    st = reader.stats
    if st.bytes_read < len(data) and not (st.truncated or st.corrupt):
        raise AssertionError(f"stopped at {st.bytes_read} of {len(data)} bytes without saying why")
    if st.problems() and not reader.error:
        raise AssertionError(f"problems counted, none reported: {st.as_dict()}")


def capture_seeds() -> list[bytes]:
    from tests.capture import pcapng_blocks as ng
    from tests.helpers import SHARED_PCAPS

    out = []
    for path in sorted(SHARED_PCAPS.glob("*.pcap")):
        pkts = list(CaptureFile(str(path)))[:12]
        if not pkts:
            continue
        raw = path.read_bytes()
        out.append(raw[: 24 + sum(16 + len(p[2]) for p in pkts)])
        out.append(ng.pcapng(pkts, kind=random.Random(len(out)).choice(["epb", "spb", "pb"])))
    every = bytearray(ng.shb() + ng.idb(1, tsresol=9) + ng.idb(113, tsresol=0x80 | 20, tsoffset=-5))
    every += (
        ng.epb(0, 1_700_000_000_000_000_000, b"\x00" * 60)
        + ng.spb(b"\x01" * 40)
        + ng.pb(1, 123456, b"\x02" * 30)
    )
    every += ng.nrb() + ng.isb(1) + ng.dsb() + ng.custom() + ng.custom(True) + ng.block(0x7777, b"?")
    every += ng.shb(">") + ng.idb(101, tsresol=6, endian=">") + ng.epb(0, 99, b"\x45" * 20, endian=">")
    out.append(bytes(every))
    return out


# -- target: link/IP/TCP/UDP layers and the decoders behind them -----------------------------

LINKTYPES = [1, 113, 276, 0, 108, 101, 12, 14, 228, 229, 147]
_STACK: list[Any] = []
#: Counters that mean an exception was caught inside the decoder.
_ESCAPED = ("handler_errors", "event_errors")


def packet_plugins() -> list[Any]:
    if not _STACK:
        _STACK.append(build_plugins({n: default_config(n) for n in available()}))
        _STACK.append(FlowConfig.from_seconds(30.0, 10.0))
    return _STACK[0]  # type: ignore[no-any-return]


def run_packets(data: bytes) -> None:
    plugins = packet_plugins()
    dec = Decoder(plugins, flows=_STACK[1])
    pos, n, ts = 0, len(data), 1_700_000_000_000_000_000
    while pos + 3 <= n:
        lt = LINKTYPES[data[pos] % len(LINKTYPES)]
        size = data[pos + 1] | (data[pos + 2] << 8)
        frame = data[pos + 3 : pos + 3 + size]
        pos += 3 + size
        ts += 1_000_000 * (frame[-1] if frame else 1)  # capture time moves, sometimes past timeouts
        dec.feed(ts, lt, frame)
        if dec.frags.held > dec.frags.max_bytes or len(dec.tcp.conns) > dec.tcp.limits.max_connections:
            raise AssertionError("decoder state beyond its bounds")
    dec.flush()
    bad = {k: v for k, v in dec.stats.items() if k.endswith(_ESCAPED)}
    if bad:
        raise AssertionError(f"exceptions caught inside the decoder: {bad}")


def packet_seeds() -> list[bytes]:
    from tests.helpers import SHARED_PCAPS

    out = []
    for path in sorted(SHARED_PCAPS.glob("*.pcap")):
        reader = CaptureFile(str(path))
        pkts = list(reader)
        if not pkts or pkts[0][1] not in LINKTYPES:
            continue
        for start in range(0, min(len(pkts), 60), 20):
            script = bytearray()
            for _ts, lt, frame, _wl in pkts[start : start + 20]:
                script += struct.pack("<BH", LINKTYPES.index(lt), len(frame)) + frame
            out.append(bytes(script))
    return out


# -- the campaign -----------------------------------------------------------------------------

TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]], Callable[[], Any]]] = {
    "decoders": (run_one, seeds, lambda: [plugin(p) for p in PROTOS]),
    "capture": (run_capture, capture_seeds, lambda: None),
    "packets": (run_packets, packet_seeds, packet_plugins),
}


def main() -> None:
    args = sys.argv[1:]
    target = "decoders"
    if "--target" in args:
        i = args.index("--target")
        target = args[i + 1]
        del args[i : i + 2]
    if target not in TARGETS:
        sys.exit(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    run, make_seeds, setup = TARGETS[target]
    if args[:1] == ["--seeds"]:
        corpus = Path(args[1])
        corpus.mkdir(parents=True, exist_ok=True)
        pool = make_seeds()
        for s in pool:
            (corpus / hashlib.sha1(s).hexdigest()).write_bytes(s)
        print(f"{len(pool)} seeds in {corpus}")
        return
    if args[:1] == ["--random"]:
        count = int(args[1])
        rnd = random.Random(int(args[2]) if len(args) > 2 else 0)
        pool = make_seeds()
        setup()
        t0 = time.monotonic()
        for i in range(count):
            data = mutate(rnd.choice(pool), rnd)
            try:
                run(data)
            except Exception:
                path = Path(f"crash-{hashlib.sha1(data).hexdigest()}")
                path.write_bytes(data)
                print(f"target {target}: crash after {i} inputs, written to {path}")
                raise
        print(f"target {target}: {count} inputs in {time.monotonic() - t0:.0f} s, 0 crashes")
        return
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris, or use --random N")
    setup()  # import and build everything before instrumenting
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *args], run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
