"""What a replay (``-I``) says: the progress line on a terminal (a real pty), the summary
line at the end, hints for traffic on ports no protocol claims, and the exit status when
events were dropped for good (docs/replay.md)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.synth import Conversation
from capture import PcapWriter
from shipper.agent.progress import EXIT_DROPPED, REFRESH, guess_protocol
from tests.helpers import ROOT, shared_pcap
from tests.shipper.shiprun import wirebeat

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
HTTP_PG = "packetbeat.protocols=[{type: http, ports: [8080]}, {type: pgsql, ports: [5432]}]"
HTTP_ONLY = "packetbeat.protocols=[{type: http, ports: [8080]}]"
PROGRESS = re.compile(
    r"^(?P<pk>[\d,]+) packets  [\d.]+ [KMG]?B  (?P<pct>\d+)%  [\d,]+ pkt/s  [\d,]+ ev/s  (ETA [\dhms.]+  )?drops 0$"
)


def http_exchanges(conv: Conversation, n: int, gap_ns: int = 0) -> Conversation:
    for i in range(n):
        conv.send(0, f"GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        conv.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conv.ts += gap_ns
    return conv


def paced_capture(path: Path, seconds: float, n: int = 40) -> Path:
    """``n`` HTTP transactions on 8080 spread over ``seconds`` of capture time."""
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 8080), ts=T0).handshake()
    http_exchanges(conv, n, int(seconds * NS / n)).close()
    with PcapWriter(str(path), 1) as w:
        w.write_all(conv.frames)
    return path


def mixed_capture(path: Path) -> Path:
    """HTTP on 8080 (configured); PostgreSQL sessions on 5433 and opaque bytes on 7777
    (not configured)."""
    frames = []
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 8080), ts=T0).handshake()
    frames += http_exchanges(conv, 3).close().frames
    ts = conv.ts
    startup = b"\x00\x03\x00\x00user\x00app\x00database\x00app\x00\x00"
    startup = struct.pack(">I", len(startup) + 4) + startup
    for i in range(30):
        conv = Conversation(("10.0.0.3", 50000 + i), ("10.0.0.4", 5433), ts=ts).handshake()
        conv.send(0, startup).send(1, b"R\x00\x00\x00\x08\x00\x00\x00\x00Z\x00\x00\x00\x05I").close()
        frames += conv.frames
        ts = conv.ts
    conv = Conversation(("10.0.0.5", 41000), ("10.0.0.6", 7777), ts=ts).handshake()
    for i in range(20):
        conv.send(0, bytes([0xA5, i]) * 20)
    frames += conv.close().frames
    with PcapWriter(str(path), 1) as w:
        w.write_all(frames)
    return path


# -- the progress line on a terminal ---------------------------------------------------------


def run_on_pty(args: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str, float]:
    """Run wirebeat with stderr on a pseudo-terminal; return (status, what the terminal got,
    seconds)."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm")
    cmd = [sys.executable, "-c", "from shipper.agent.cli import main; main()", *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    out = b""
    deadline = t0 + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, out.decode(), time.monotonic() - t0


def frames_of(terminal: str) -> list[str]:
    """The progress frames drawn (``\\r<line>\\x1b[K``)."""
    return re.findall(r"\r([^\r\n\x1b]+)\x1b\[K", terminal)


def test_progress_line_on_a_terminal_is_redrawn_a_few_times_a_second(tmp_path: Path) -> None:
    pcap = paced_capture(tmp_path / "paced.pcap", seconds=2.0)
    args = ["-I", str(pcap), "-N", "-E", HTTP_ONLY, "--path.data", "d", "--path.logs", "l"]
    rc, term, took = run_on_pty(args, tmp_path)
    assert rc == 0, term
    frames = frames_of(term)
    # Paced at the capture's rate: two seconds of replay, a redraw every 1/REFRESH s.
    assert 3 <= len(frames) <= took * REFRESH + 2, (len(frames), took, term)
    parsed = [PROGRESS.match(f) for f in frames]
    assert all(parsed), frames
    packets = [int(m["pk"].replace(",", "")) for m in parsed if m]
    assert packets == sorted(packets) and packets[-1] > packets[0]
    assert any("ETA" in f for f in frames)
    # The line is wiped before the summary, which is the last thing on the terminal.
    lines = [line for line in term.replace("\r\x1b[K", "\n").splitlines() if line.strip()]
    assert lines[-1].startswith("wirebeat: replayed 166 packets"), lines[-3:]
    assert "40 transactions (http 40)" in lines[-1]


def test_log_records_on_the_same_terminal_wipe_the_progress_line_first(tmp_path: Path) -> None:
    pcap = paced_capture(tmp_path / "paced.pcap", seconds=1.5)
    args = [
        "-e",
        "-d",
        "publish",
        "-I",
        str(pcap),
        "-N",
        "-E",
        HTTP_ONLY,
        "--path.data",
        "d",
        "--path.logs",
        "l",
    ]
    rc, term, _ = run_on_pty(args, tmp_path)
    assert rc == 0, term
    assert frames_of(term)
    records = []
    for line in term.split("\n"):
        # What follows the last wipe on a line is a whole log record (or nothing).
        rest = line.rsplit("\x1b[K", 1)[-1].strip("\r")
        if rest:
            records.append(json.loads(rest))
    assert sum(r["message"].startswith("Publish event") for r in records) == 40
    assert records[-1]["message"].startswith("wirebeat: replayed 166 packets"), records[-1]
    assert records[-1]["replay"]["transactions"] == {"http": 40}


def test_no_progress_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    pcap = paced_capture(tmp_path / "paced.pcap", seconds=0.6)
    run = wirebeat("-I", pcap, "-N", "-E", HTTP_ONLY, tmp=tmp_path)
    assert run.rc == 0, run
    assert "\r" not in run.stderr and "\x1b" not in run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith("wirebeat: replayed 166 packets"), line


# -- the summary line ------------------------------------------------------------------------


def test_summary_on_a_shared_capture(tmp_path: Path) -> None:
    run = wirebeat("-t", "-N", "-I", shared_pcap("http_minitwit"), tmp=tmp_path)
    assert run.rc == 0, run
    (line,) = run.stderr.splitlines()
    m = re.fullmatch(
        r"wirebeat: replayed 104 packets \(17\.\d KB\) in [\d.]+s \([\d,]+ packets/s\): "
        r"6 transactions \(http 6\); 6 events published \(6 acked\), 0 failed; memory peak [\d.]+ MB",
        line,
    )
    assert m, line


def test_summary_counts_every_pass_and_every_protocol(tmp_path: Path) -> None:
    run = wirebeat("-t", "-N", "-l", "3", "-I", ROOT / "samples" / "sample.pcap", tmp=tmp_path)
    assert run.rc == 0, run
    (line,) = run.stderr.splitlines()
    assert line.startswith("wirebeat: replayed 183 packets (21.7 KB)"), line
    assert "36 transactions (http 18, redis 18); 36 events published (36 acked), 0 failed" in line


def test_summary_goes_to_the_log_as_structured_fields(tmp_path: Path) -> None:
    run = wirebeat("-t", "-N", "-e", "-I", ROOT / "samples" / "sample.pcap", tmp=tmp_path)
    assert run.rc == 0, run
    (rec,) = [r for r in run.logs if "replay" in r]
    assert rec["replay"]["packets"] == 61
    assert rec["replay"]["bytes"] == (ROOT / "samples" / "sample.pcap").stat().st_size
    assert rec["replay"]["transactions"] == {"http": 6, "redis": 6}
    assert rec["replay"]["events"] == {"published": 12, "acked": 12, "failed": 0, "filtered": 0}
    assert rec["replay"]["memory_peak_bytes"] > 10_000_000


def test_memory_peak_is_the_agents_own_not_the_parents_it_was_started_from(tmp_path: Path) -> None:
    """Linux carries ``ru_maxrss`` over ``execve``: a wirebeat started by a process that
    once held 600 MB must not report 600 MB as its own peak."""
    prog = (
        "import os, sys\n"
        "ballast = b'x' * 600_000_000\n"
        "del ballast\n"
        "os.execv(sys.executable, [sys.executable, '-c', 'from shipper.agent.cli import main; main()',"
        " 'run', '-t', '-N', '-e', '-I', sys.argv[1], '--path.data', sys.argv[2]])\n"
    )
    sample = str(ROOT / "samples" / "sample.pcap")
    r = subprocess.run(
        [sys.executable, "-c", prog, sample, str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(line) for line in r.stderr.splitlines() if '"replay"' in line]
    assert 10_000_000 < rec["replay"]["memory_peak_bytes"] < 400_000_000, rec["replay"]


def test_flows_are_counted_apart_from_transactions(tmp_path: Path) -> None:
    run = wirebeat(
        "-t", "-N", "-I", shared_pcap("http_minitwit"), "-E", "packetbeat.flows.period=-1", tmp=tmp_path
    )
    assert run.rc == 0, run
    m = re.search(r"6 transactions \(http 6\), (\d+) flow reports; (\d+) events published", run.stderr)
    assert m and int(m[2]) == 6 + int(m[1]) > 6, run.stderr


# -- hints for unclaimed ports ---------------------------------------------------------------


def test_hint_names_the_protocol_the_content_looks_like(tmp_path: Path) -> None:
    pcap = mixed_capture(tmp_path / "mixed.pcap")
    run = wirebeat("-t", "-N", "-I", pcap, "-E", HTTP_PG, tmp=tmp_path)
    assert run.rc == 0, run
    summary, *hints = run.stderr.splitlines()
    assert "3 transactions (http 3)" in summary
    assert hints == [
        "wirebeat: 120 packets to TCP 5433 — not configured; add it to pgsql ports?",
        "wirebeat: 22 packets to TCP 7777 — not configured; add port 7777 to the ports of the protocol it carries?",
    ]


def test_hint_suggests_enabling_a_protocol_that_is_off(tmp_path: Path) -> None:
    pcap = mixed_capture(tmp_path / "mixed.pcap")
    run = wirebeat("-t", "-N", "-I", pcap, "-E", HTTP_ONLY, tmp=tmp_path)
    assert run.rc == 0, run
    assert "wirebeat: 120 packets to TCP 5433 — not configured; enable pgsql with ports [5433]?" in run.stderr


def test_hint_on_shared_captures(tmp_path: Path) -> None:
    mongo = wirebeat(
        "-t",
        "-N",
        "-I",
        shared_pcap("mongodb_op_msg_opcode"),
        "-E",
        "packetbeat.protocols=[{type: mongodb, ports: [27017]}]",
        tmp=tmp_path,
    )
    assert "wirebeat: 202 packets to TCP 9991 — not configured; add it to mongodb ports?" in mongo.stderr
    # The content is HTTP, and 5000 is one of HTTP's default ports.
    twit = wirebeat(
        "-t",
        "-N",
        "-I",
        shared_pcap("http_minitwit"),
        "-E",
        "packetbeat.protocols.http.enabled=false",
        tmp=tmp_path,
    )
    assert "wirebeat: 31 packets to TCP 5000 — not configured; enable http with ports [5000]?" in twit.stderr
    # Configured as shipped: nothing to say.
    plain = wirebeat("-t", "-N", "-I", shared_pcap("http_minitwit"), tmp=tmp_path)
    assert len(plain.stderr.splitlines()) == 1, plain


@pytest.mark.parametrize(
    ("transport", "port", "to_server", "from_server", "expected"),
    [
        ("tcp", 9000, b"GET / HTTP/1.1\r\n", b"", "http"),
        ("tcp", 9000, b"", b"HTTP/1.1 200 OK\r\n", "http"),
        ("tcp", 9000, b"\x00\x00\x00\x08\x04\xd2\x16\x2f", b"", "pgsql"),  # SSLRequest
        ("tcp", 9000, b"", b"\x4a\x00\x00\x00\x0a8.0.36\x00", "mysql"),
        ("tcp", 9000, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n", "redis"),
        ("tcp", 9000, b"AMQP\x00\x00\x09\x01", b"", "amqp"),
        ("tcp", 9000, b"\x16\x03\x01\x02\x00\x01", b"", "tls"),
        ("udp", 9000, b"INVITE sip:bob@example.com SIP/2.0\r\n", b"", "sip"),
        ("tcp", 3306, b"", b"", "mysql"),  # nothing to go by but the port
        ("udp", 53, b"", b"", "dns"),
        ("tcp", 9000, b"\x01\x02\x03\x04\x05\x06\x07\x08", b"", None),
    ],
)
def test_guess_protocol(
    transport: str, port: int, to_server: bytes, from_server: bytes, expected: str | None
) -> None:
    assert guess_protocol(transport, port, to_server, from_server) == expected


# -- exit status -----------------------------------------------------------------------------


def test_exit_status_when_events_were_dropped_for_good(tmp_path: Path) -> None:
    # The console's format string needs a field no HTTP event has: the output drops each
    # event it cannot write (libbeat does the same), so they are lost for good.
    pcap = paced_capture(tmp_path / "http.pcap", 1.0, n=4)
    fmt = "output.console.codec.format.string=%{[no.such.field]}"
    run = wirebeat("-t", "-I", pcap, "-E", HTTP_ONLY, "-E", fmt, tmp=tmp_path)
    assert run.rc == EXIT_DROPPED == 3, run
    assert run.stdout == ""
    summary, last = run.stderr.splitlines()[-2:]
    assert "4 transactions (http 4)" in summary and "4 failed" in summary, summary
    assert last == "wirebeat: 4 events were dropped for good (exit status 3)"


def test_times_out_of_range_are_not_events_lost(tmp_path: Path) -> None:
    """Packets stamped outside 1970..2262 are refused by the reader (counted as
    ``pcap.bad_timestamps``); no event was made of them, so the exit status stays 0."""
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 8080), ts=0).handshake()
    http_exchanges(conv, 4).close()

    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 65535))
    base_us = 10**19  # ~300,000 years from now, in microseconds (the default resolution)
    for ts, frame in conv.frames:
        t = base_us + ts // 1000
        out += block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    pcap = tmp_path / "future.pcapng"
    pcap.write_bytes(out)
    run = wirebeat("-t", "-N", "-I", pcap, "-E", HTTP_ONLY, tmp=tmp_path)
    assert run.rc == 0, run
    assert "replayed 0 packets" in run.stderr, run.stderr
    # Filtered on purpose is not a failure.
    run = wirebeat(
        "-t", "-N", "-I", shared_pcap("http_minitwit"), "-E", "processors=[{drop_event: {}}]", tmp=tmp_path
    )
    assert run.rc == 0, run
    assert "0 events published (0 acked), 0 failed, 6 filtered" in run.stderr
