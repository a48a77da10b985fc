"""``packetbeat.workers``: several decoding processes give what one process gives.

Every capture in samples/ and the shared captures is replayed with 1 and with 2 workers
(the stock protocols and ports, flows on and off, ``output.file``): the same events, each
connection's events in the same order (the global order differs at most in how the events of
one expiry tick or of the final flush interleave across workers). A worker that
dies ends the run with one ``Exiting:`` line and a non-zero status, without hanging.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.synth import exchange, interleave, ip_frame, udp_datagram
from capture import PcapWriter
from shipper.agent.walk import PURE_PYTHON_ENV
from shipper.agent.workers import TEST_EXIT_ENV, ConnectionHash
from tests.helpers import ROOT, SHARED_PCAPS, need

DATA = ROOT / "tests" / "data"


def _stock_config(tmp: Path, extra: str = "") -> Path:
    """The stock packetbeat.yml's flows and protocols, nothing else."""
    text = (DATA / "packetbeat.yml").read_text()
    start = text.index("packetbeat.flows:")
    end = text.index("# ======================= Elasticsearch template setting")
    cfg = tmp / "packetbeat.yml"
    cfg.write_text(text[start:end] + "\n" + extra)
    return cfg


def _run(
    cfg: Path, pcap: Path, workers: int, out: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    cmd = [
        sys.executable, "-c", "from shipper.agent.cli import main; main()", "run", "-c", str(cfg),
        "-I", str(pcap), "-t", "--workers", str(workers), "-E", f"output.file.path={out}",
        "-E", "output.file.filename=ev", "--path.data", str(out.parent / "data"), *args,
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    events: list[dict[str, Any]] = []
    # Oldest file first: once output.file rotates, names are not in write order.
    for p in sorted(out.glob("ev*"), key=lambda f: f.stat().st_mtime_ns):
        events += [json.loads(line) for line in p.read_text().splitlines()]
    for e in events:
        e["agent"].pop("ephemeral_id", None)  # one per run
    return r, events


def _connection(e: dict[str, Any]) -> tuple[Any, ...]:
    s, d = e.get("source", {}), e.get("destination", {})
    ends = sorted([(s.get("ip"), s.get("port")), (d.get("ip"), d.get("port"))], key=str)
    return (e.get("type"), *ends)


def _same(one: list[dict[str, Any]], many: list[dict[str, Any]]) -> None:
    canon_one = [json.dumps(e, sort_keys=True) for e in one]
    canon_many = [json.dumps(e, sort_keys=True) for e in many]
    assert sorted(canon_one) == sorted(canon_many)
    per_conn: dict[str, dict[tuple[Any, ...], list[str]]] = {"one": {}, "many": {}}
    for name, evs, canon in (("one", one, canon_one), ("many", many, canon_many)):
        groups: dict[tuple[Any, ...], list[str]] = collections.defaultdict(list)
        for e, c in zip(evs, canon, strict=True):
            groups[_connection(e)].append(c)
        per_conn[name] = dict(groups)
    assert per_conn["one"] == per_conn["many"]


def _captures() -> list[Any]:
    caps = sorted((ROOT / "samples").glob("*.pcap*"))
    if SHARED_PCAPS.is_dir():
        caps += sorted(p for p in SHARED_PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))
    return [pytest.param(p, id=p.name) for p in caps]


def test_shared_captures_present() -> None:
    if not SHARED_PCAPS.is_dir():
        need(f"the shared captures in {SHARED_PCAPS}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("flows", [True, False], ids=["flows", "no-flows"])
@pytest.mark.parametrize("pcap", _captures())
def test_two_workers_equal_one(pcap: Path, flows: bool, tmp_path: Path) -> None:
    """With flows off, a worker reading the file itself does not even hand pure ACKs to
    its decoder: the events must not change. Without the C record walker
    (``WIREBEAT_PURE_PYTHON``), one process and two workers each give exactly what they
    give with it, in the same order."""
    cfg = _stock_config(tmp_path)
    args = () if flows else ("-E", "packetbeat.flows.enabled=false")
    pure_env = {**os.environ, PURE_PYTHON_ENV: "1"}
    runs = {
        name: _run(cfg, pcap, workers, tmp_path / name, *args, env=env)
        for name, workers, env in (
            ("one", 1, None),
            ("many", 2, None),
            ("one-pure", 1, pure_env),
            ("many-pure", 2, pure_env),
        )
    }
    for name, (r, _events) in runs.items():
        assert r.returncode == 0, f"{name}: {r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, name
    _same(runs["one"][1], runs["many"][1])
    assert runs["one-pure"][1] == runs["one"][1]
    assert runs["many-pure"][1] == runs["many"][1]


def _synthetic(path: Path, conns: int = 40, requests: int = 3) -> None:
    """HTTP keep-alive connections (40, 3 requests each), interleaved (both workers busy)."""
    req = b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    convs = [
        exchange(
            (f"10.{c >> 8}.{c & 255}.2", 40000 + c % 20000),
            ("10.0.0.1", 80),
            [m for r in range(requests) for m in ((0, req % r), (1, resp))],
            ts=1_700_000_000_000_000_000 + c * 7_000_000,
        )
        for c in range(conns)
    ]
    w = PcapWriter(str(path), 1)
    for ts, frame in interleave(convs):
        w.write(ts, frame, len(frame))
    w.close()


@pytest.mark.timeout(300)
def test_processors_and_loops(tmp_path: Path) -> None:
    """Processors run in the parent (events cross the pipes unencoded); ``-l 2`` renews the
    workers' decoders between loops."""
    pcap = tmp_path / "http.pcap"
    _synthetic(pcap)
    cfg = _stock_config(tmp_path, "processors:\n  - add_fields: {target: '', fields: {lab: x}}\n")
    r1, one = _run(cfg, pcap, 1, tmp_path / "one", "-l", "2")
    r2, many = _run(cfg, pcap, 2, tmp_path / "many", "-l", "2")
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert one and all(e.get("lab") == "x" for e in one)
    assert sum(e["type"] == "http" for e in one) == 2 * 40 * 3
    _same(one, many)


@pytest.mark.timeout(120)
def test_dead_worker_ends_the_run(tmp_path: Path) -> None:
    pcap = tmp_path / "http.pcap"
    _synthetic(pcap)
    cfg = _stock_config(tmp_path)
    env = dict(os.environ, **{TEST_EXIT_ENV: "1"})
    r, _ = _run(cfg, pcap, 2, tmp_path / "out", env=env)
    assert r.returncode == 1
    exiting = [line for line in r.stderr.splitlines() if line.startswith("Exiting:")]
    assert exiting == [exiting[0]]
    assert "worker 1" in exiting[0] and "exit code 3" in exiting[0], r.stderr[-2000:]


def test_hash_is_symmetric_and_fragments_follow_their_first() -> None:
    h = ConnectionHash(8)
    seen = set()
    for c in range(64):
        a = ip_frame(f"10.0.0.{c}", "10.9.9.9", 17, udp_datagram(1000 + c, 53, b"q"))
        b = ip_frame("10.9.9.9", f"10.0.0.{c}", 17, udp_datagram(53, 1000 + c, b"r"))
        assert h(1, a) == h(1, b)
        seen.add(h(1, a))
    assert len(seen) > 4  # spread over the workers
    # A datagram in three fragments: the later ones go where the first went.
    base = ip_frame("10.0.0.7", "10.9.9.9", 17, udp_datagram(1234, 53, b"x" * 64))
    first = _fragment(base, offset=0, more=True, ident=77)
    later = _fragment(base, offset=3, more=True, ident=77)
    last = _fragment(base, offset=6, more=False, ident=77)
    w = h(1, first)
    assert w == h(1, base)
    assert h(1, later) == w and h(1, last) == w
    assert h.orphan_fragments == 0
    assert h(1, b"\x00" * 14) == 0  # not IP: worker 0


def _fragment(frame: bytes, offset: int, more: bool, ident: int) -> bytes:
    b = bytearray(frame)
    b[18:20] = ident.to_bytes(2, "big")
    b[20:22] = ((0x2000 if more else 0) | offset).to_bytes(2, "big")
    return bytes(b)


BOOM = """
import protocols.decoder as d
_orig = d.Decoder.feed_many
_calls = [0]
def _boom(self, packets):
    def counted():
        for p in packets:
            _calls[0] += 1
            if _calls[0] > 300:
                raise RuntimeError("injected decoder failure")
            yield p
    return _orig(self, counted())
d.Decoder.feed_many = _boom
"""


@pytest.mark.timeout(120)
def test_internal_error_in_a_worker_ends_the_run(tmp_path: Path) -> None:
    """A bug in a worker (an exception out of the decoder) is one line naming the worker
    and the error, exit status 1; what was published before it is written."""
    pcap = tmp_path / "http.pcap"
    _synthetic(pcap)
    cfg = _stock_config(tmp_path)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-c", BOOM + "from shipper.agent.cli import main; main()", "run", "-c", str(cfg),
        "-I", str(pcap), "-t", "--workers", "2", "-E", f"output.file.path={out}", "-E", "output.file.filename=ev",
        "--path.data", str(tmp_path / "data"),
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("Exiting:")]
    assert len(lines) == 1, r.stderr[-2000:]
    assert "worker" in lines[0] and "RuntimeError: injected decoder failure" in lines[0], lines[0]


@pytest.mark.timeout(120)
def test_paced_replay_dispatches_from_the_parent(tmp_path: Path) -> None:
    """Without ``-t`` the parent reads and paces the capture and sends each worker its
    packets (with ``-t`` every worker reads the file itself): the same events either way."""
    pcap = tmp_path / "http.pcap"
    _synthetic(pcap)
    cfg = _stock_config(tmp_path)
    r1, one = _run(cfg, pcap, 1, tmp_path / "one")
    r2, many = _run_paced(cfg, pcap, 2, tmp_path / "many")
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert sum(e["type"] == "http" for e in one) == 40 * 3
    _same(one, many)


def _run_paced(
    cfg: Path, pcap: Path, workers: int, out: Path
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    cmd = [
        sys.executable, "-c", "from shipper.agent.cli import main; main()", "run", "-c", str(cfg),
        "-I", str(pcap), "--workers", str(workers), "-E", f"output.file.path={out}",
        "-E", "output.file.filename=ev", "--path.data", str(out.parent / "data"),
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for p in sorted(out.glob("ev*")) for line in p.read_text().splitlines()]
    for e in events:
        e["agent"].pop("ephemeral_id", None)
    return r, events


@pytest.mark.timeout(120)
def test_fractions_out_of_range_tick_as_in_one_process(tmp_path: Path) -> None:
    """A record whose fraction of a second is out of range (a microsecond count of 100 s)
    carries into the seconds: one process runs expiry at that record (the connections
    then idle for 100 s end, and what follows of them is picked up mid-stream); a worker
    walking the file must do the same."""
    import struct

    whole = tmp_path / "whole.pcap"
    _synthetic(whole)
    data = bytearray(whole.read_bytes())
    assert data[:4] == bytes.fromhex("4d3cb2a1")  # little-endian, nanoseconds: made microseconds
    data[:4] = bytes.fromhex("d4c3b2a1")
    off, n = 24, 0
    while off + 16 <= len(data):
        frac, incl = struct.unpack_from("<II", data, off + 4)
        frac //= 1000
        if n in (94, 130, 202):  # (the ACK of a request, before its response: 18 records a connection)
            frac += 100_000_000
        struct.pack_into("<I", data, off + 4, frac)
        off += 16 + incl
        n += 1
    pcap = tmp_path / "fractions.pcap"
    pcap.write_bytes(bytes(data))
    cfg = _stock_config(tmp_path)
    r1, one = _run(cfg, pcap, 1, tmp_path / "one", "-E", "packetbeat.flows.enabled=false")
    r2, many = _run(cfg, pcap, 2, tmp_path / "many", "-E", "packetbeat.flows.enabled=false")
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr[-2000:]
    assert sum(e["type"] == "http" for e in one) > 40 * 3  # a request expired unanswered
    _same(one, many)


@pytest.mark.timeout(120)
def test_damaged_capture_with_workers(tmp_path: Path) -> None:
    """A capture cut inside a record: every worker reads what is before the cut, the
    problem is reported once, and the events are those of one process."""
    whole = tmp_path / "whole.pcap"
    _synthetic(whole)
    data = whole.read_bytes()
    pcap = tmp_path / "cut.pcap"
    pcap.write_bytes(data[: len(data) - 37])
    cfg = _stock_config(tmp_path)
    r1, one = _run(cfg, pcap, 1, tmp_path / "one", "-e")
    r2, many = _run(cfg, pcap, 2, tmp_path / "many", "-e")
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr[-2000:]
    for r in (r1, r2):
        problems = [line for line in r.stderr.splitlines() if "capture file problem" in line]
        assert len(problems) == 1, r.stderr[-3000:]
        assert "file ends inside a packet record" in problems[0]
        assert '"damaged_files":1' in r.stderr.replace(" ", ""), r.stderr[-3000:]
    _same(one, many)


@pytest.mark.timeout(300)
def test_capture_truncated_during_a_replay_with_workers(tmp_path: Path) -> None:
    """Another process truncates the capture while two workers walk it in memory: they stop
    at the new end (a page of the mapping past it would kill them with SIGBUS), the cut is
    reported once, and the events are those one process gives for the file as cut. The
    workers are held back by the output (console into a pipe nobody reads yet) until the
    file has been cut; a run that got past the cut first would report no problem."""
    whole = tmp_path / "whole.pcap"
    _synthetic(whole, conns=2000, requests=25)  # 200,000+ packets
    data = whole.read_bytes()
    cut = len(data) * 3 // 4
    pcap = tmp_path / "live.pcap"
    pcap.write_bytes(data)
    cfg = _stock_config(tmp_path, "output.console.enabled: true\n")
    cmd = [
        sys.executable, "-c", "from shipper.agent.cli import main; main()", "run", "-c", str(cfg),
        "-I", str(pcap), "-t", "--workers", "2", "-E", "packetbeat.flows.enabled=false",
        "--path.data", str(tmp_path / "data"), "-e",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(4)  # the workers fill the window of unmerged replies and wait
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        os.truncate(pcap, cut)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = err.decode()
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    problems = [line for line in stderr.splitlines() if "capture file problem" in line]
    assert len(problems) == 1, stderr[-3000:]
    assert "file ends inside a packet record" in problems[0]
    many = [json.loads(line) for line in out.decode().splitlines()]
    for e in many:
        e["agent"].pop("ephemeral_id", None)
    prefix = tmp_path / "prefix.pcap"
    prefix.write_bytes(data[:cut])
    r1, one = _run(cfg, prefix, 1, tmp_path / "one", "-E", "packetbeat.flows.enabled=false",
                   "-E", "output.console.enabled=false")  # fmt: skip
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert 0 < len(one) < 50_000
    _same(one, many)


@pytest.mark.timeout(180)
def test_interrupted_replay_with_workers_ends_cleanly(tmp_path: Path) -> None:
    """SIGINT while every worker is reading a large capture: the run stops within seconds,
    exits 0, and what it wrote is whole events, fewer than the capture holds."""
    import signal
    import time

    from benchmarks.bench_pipeline import generate

    pcap = tmp_path / "big.pcap"
    _packets, txns = generate(pcap, 300_000, 500)
    cfg = _stock_config(tmp_path)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-c", "from shipper.agent.cli import main; main()", "run", "-c", str(cfg),
        "-I", str(pcap), "-t", "--workers", "2", "-E", f"output.file.path={out}",
        "-E", "output.file.filename=ev", "--path.data", str(tmp_path / "data"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.stat().st_size for p in out.glob("ev*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for p in sorted(out.glob("ev*")) for line in p.read_text().splitlines()]
    http = [e for e in events if e["type"] == "http"]
    assert 0 < len(http) < txns
