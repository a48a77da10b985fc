"""Live Thrift: an in-process thriftpy2 server and client over socket/framed transports
with the binary/compact protocols, traffic captured on lo, every call checked."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from tests.helpers import free_port, make_decoder, need, tcpdump
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

try:
    import thriftpy2
    from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
    from thriftpy2.rpc import make_client
    from thriftpy2.server import TThreadedServer
    from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory, TServerSocket
except ImportError:  # pragma: no cover
    thriftpy2 = None

IDL = Path(__file__).resolve().parent.parent / "data" / "thrift" / "live.thrift"
CALLS_PER_RUN = 70


class Handler:
    def __init__(self, live: Any) -> None:
        self.live = live
        self.notes: list[str] = []

    def add(self, a: int, b: int) -> int:
        return a + b

    def divide(self, a: float, b: float) -> float:
        if b == 0:
            raise self.live.DivideByZero(why="cannot divide by zero")
        return a / b

    def echo(self, s: str) -> str:
        return s

    def rows(self, n: int) -> list[Any]:
        return [self.live.Row(id=i, name=f"row {i}") for i in range(n)]

    def counts(self, words: list[str]) -> dict[str, int]:
        return {w: len(w) for w in words}

    def ping(self) -> None:
        return None

    def notify(self, msg: str) -> None:
        self.notes.append(msg)


def quote(s: str) -> str:
    return '"' + (s[:200] + "..." if len(s) > 200 else s) + '"'


def workload(live: Any, port: int, proto: Any, trans: Any) -> list[tuple[str, str, str | None, str]]:
    """Calls as (method, expected params, expected return value or None, expected exceptions)."""
    c = make_client(live.Live, "127.0.0.1", port, proto_factory=proto, trans_factory=trans, timeout=10000)
    log: list[tuple[str, str, str | None, str]] = []
    for i in range(20):
        a, b = i * 7 - 50, -(i**3)
        assert c.add(a, b) == a + b
        log.append(("add", f"(a: {a}, b: {b})", str(a + b), ""))
    for i in range(10):
        assert c.divide(float(i), 4.0) == i / 4
        log.append(("divide", f"(a: {i}, b: 4)", repr(i / 4).removesuffix(".0"), ""))
    for i in range(5):
        with pytest.raises(live.DivideByZero):
            c.divide(float(i), 0.0)
        log.append(("divide", f"(a: {i}, b: 0)", "", '(err: (1: "cannot divide by zero"))'))
    for s in ["hello", "", "héllo wörld", "x" * 300, "tab-free text"]:
        assert c.echo(s) == s
        q = quote(s) if s else '""'
        log.append(("echo", f"(s: {q})", q, ""))
    for n in (0, 3, 10_000):
        time.sleep(0.1)
        rows = c.rows(n)
        assert len(rows) == n and (n == 0 or rows[-1].name == f"row {n - 1}")
        shown = [f'(1: {i}, 2: "row {i}")' for i in range(min(n, 15))] + (["..."] if n > 15 else [])
        log.append(("rows", f"(n: {n})", "[" + ", ".join(shown) + "]" if shown else "", ""))
        time.sleep(0.1)
    words = [f"w{i}" for i in range(20)]
    assert c.counts(words) == {w: len(w) for w in words}
    log.append(("counts", "(words: [" + ", ".join(f'"{w}"' for w in words[:15]) + ", ...])", None, ""))
    for _ in range(CALLS_PER_RUN - len(log) - 6):
        c.ping()
        log.append(("ping", "()", "", ""))
    for i in range(3):
        c.notify(f"note {i}")
        log.append(("notify", f'(msg: "note {i}")', None, ""))
        c.ping()
        log.append(("ping", "()", "", ""))
    c.close()
    return log


COMBOS = [("socket", "binary"), ("framed", "binary"), ("socket", "compact"), ("framed", "compact")]


def test_thrift_live_all_transports_and_protocols(tmp_path: Path) -> None:
    if thriftpy2 is None:
        need("python package thriftpy2")
    live = thriftpy2.load(str(IDL), module_name="live_thrift")
    ports: list[int] = []
    while len(ports) < len(COMBOS):
        p = free_port()
        if p not in ports:
            ports.append(p)
    pcap = tmp_path / "thrift.pcap"
    logs = []
    with tcpdump(pcap, " or ".join(f"tcp port {p}" for p in ports), settle=2.5):
        for port, (transport, protocol) in zip(ports, COMBOS, strict=True):
            proto = TBinaryProtocolFactory() if protocol == "binary" else TCompactProtocolFactory()
            trans = TBufferedTransportFactory() if transport == "socket" else TFramedTransportFactory()
            handler = Handler(live)
            server = TThreadedServer(
                thriftpy2.thrift.TProcessor(live.Live, handler),
                TServerSocket(host="127.0.0.1", port=port),
                iprot_factory=proto,
                itrans_factory=trans,
            )
            th = threading.Thread(target=server.serve, daemon=True)
            th.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    logs.append(workload(live, port, proto, trans))
                    break
                except thriftpy2.transport.TTransportException:
                    time.sleep(0.05)  # not listening yet
            else:
                raise AssertionError("thrift server did not start")
            assert handler.notes == ["note 0", "note 1", "note 2"]
            server.close()
            th.join(timeout=5)
            time.sleep(0.2)
    # Packetbeat decodes one transport per config and no compact protocol: compare twice.
    for transport in ("socket", "framed"):
        thrift = {"type": "thrift", "ports": ports, "transport_type": transport, "idl_files": [str(IDL)]}
        record_for_oracle(pcap, [thrift], label=f"thrift-live-{transport}")
    dec = make_decoder({"thrift": {"ports": ports, "idl_files": [str(IDL)]}})
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _ in CaptureFile(str(pcap)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    assert dec.stats.get("thrift.parse_errors", 0) == 0
    assert dec.stats.get("tcp.gaps", 0) == 0
    assert dec.stats.get("thrift.unmatched_responses", 0) == 0

    by_conn: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        by_conn.setdefault(e["source"]["port"], []).append(e)
    conns = sorted(by_conn.values(), key=lambda evs: evs[0]["event"]["start"])
    assert len(conns) == len(COMBOS)
    total = 0
    for evs, log, port in zip(conns, logs, ports, strict=True):
        assert len(evs) == len(log)
        for evt, (method, params, ret, exc) in zip(evs, log, strict=True):
            total += 1
            assert evt["method"] == method
            assert evt["thrift"]["service"] == "Live" and evt["path"] == "Live"
            assert evt["thrift"]["params"] == params, (evt["thrift"]["params"][:80], params[:80])
            assert evt["query"] == method + params
            assert evt["source"]["bytes"] > 0
            assert evt["destination"]["port"] == port
            if method == "notify":
                assert "return_value" not in evt["thrift"] and "end" not in evt["event"]
                assert evt["status"] == "OK"
                continue
            assert evt["event"]["end"] > evt["event"]["start"]
            assert evt["destination"]["bytes"] > 0
            if exc:
                assert evt["status"] == "Error"
                assert evt["thrift"]["exceptions"] == exc
                assert evt["thrift"]["return_value"] == ""
            else:
                assert evt["status"] == "OK"
                assert "exceptions" not in evt["thrift"]
                if ret is not None:
                    assert evt["thrift"]["return_value"] == ret
                else:
                    assert evt["thrift"]["return_value"].startswith("{")
    assert total == len(COMBOS) * CALLS_PER_RUN >= 200
