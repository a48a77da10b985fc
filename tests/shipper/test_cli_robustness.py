"""The process as a Unix tool: a reader that goes away (``| head -1``), an internal error in
the packet loop or in an output, and a YAML alias bomb. Each ends promptly with at most one
clear line and the right exit status; nothing published before an error is lost."""

from __future__ import annotations

import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from shipper.agent import walk
from shipper.agent.config import MAX_ALIAS_NODES, ConfigError, safe_yaml
from tests.helpers import ROOT, make_decoder
from tests.interop.ljpeer import http_capture
from tests.shipper.shiprun import wirebeat

HTTP = "packetbeat.protocols=[{type: http, ports: [80]}]"


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 HTTP transactions (~4 MB of console output: far more than a pipe holds)."""
    return http_capture(tmp_path_factory.mktemp("cap") / "http3k.pcap", 3000)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _shell(cmd: str, tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {cmd}"],
        capture_output=True,
        timeout=timeout,
        env=_env(),
        cwd=tmp,
    )


# -- | head -1 ---------------------------------------------------------------------------


@pytest.mark.parametrize("logs", ["files", "stderr", "stderr-into-the-pipe"])
def test_a_reader_that_goes_away_ends_the_run_promptly_and_quietly(
    capture: Path, tmp_path: Path, logs: str
) -> None:
    flags = {"files": "", "stderr": "-e", "stderr-into-the-pipe": "-e"}[logs]
    redirect = "2>&1" if logs == "stderr-into-the-pipe" else ""
    wb = f"{sys.executable} -m shipper -I {capture} -t {flags} -E '{HTTP}' --path.data d --path.logs l"
    # Before: the console output retried EPIPE for ever and this never returned.
    run = _shell(f"{wb} {redirect} | head -1", tmp_path, timeout=60)
    # Like `yes | head -1` under pipefail: the writer ends as if killed by SIGPIPE.
    assert run.returncode == 141, run
    (line,) = run.stdout.splitlines()
    json.loads(line)
    err = run.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err, err
    if logs == "files":
        assert err == ""
    elif logs == "stderr":
        for rec in map(json.loads, err.splitlines()):  # only log records, each one JSON
            assert rec["log.level"] in ("info", "warning"), rec


# -- internal errors ------------------------------------------------------------------------

BOOM_DECODER = """
import protocols.decoder as d
_calls = [0]
def _boom(orig):
    def feed(self, packets):
        _calls[0] += 1
        if _calls[0] > 3:
            raise RuntimeError("injected decoder failure")
        return orig(self, packets)
    return feed
# The packet loop's chunks go to one of the two (feed_parsed: the C walk, flows off).
d.Decoder.feed_many = _boom(d.Decoder.feed_many)
d.Decoder.feed_parsed = _boom(d.Decoder.feed_parsed)
"""

BOOM_OUTPUT = """
import shipper.outputs.file as f
_orig = f.FileOutput.publish
_calls = [0]
async def _boom(self, events):
    _calls[0] += 1
    if _calls[0] > 2:
        raise TypeError("injected output failure")
    return await _orig(self, events)
f.FileOutput.publish = _boom
"""


def _published_before_the_failure(pcap: Path, chunks: int) -> list[str]:
    """What the packet loop publishes from its first ``chunks`` chunks of 256 packets (cut
    by the C walker where it is built, which leaves out pure ACKs; by iteration otherwise)."""
    dec = make_decoder({"http": {"ports": [80]}})
    reader = CaptureFile(str(pcap))
    m = walk.walkable(reader)
    source: Iterator[list[Any]]
    feed = dec.feed_many
    if m is not None:
        source = walk.chunks(m, dec, threading.Event(), 256)
        feed = walk.feeder(dec)
    else:
        it = iter(reader)
        source = iter(lambda: list(itertools.islice(it, 256)), [])
    paths: list[str] = []
    for _ in range(chunks):
        paths += [e["url"]["path"] for e in feed(next(source))]
    reader.close()
    return paths


def _written(out: Path) -> list[str]:
    return [json.loads(line)["url"]["path"] for f in sorted(out.glob("*.ndjson")) for line in f.open()]


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_in_the_packet_loop_flushes_what_was_published_and_exits_1(
    capture: Path, tmp_path: Path, debug: bool
) -> None:
    out = tmp_path / "out"
    # One process: the injected failure counts the packet loop's chunks (worker processes:
    # tests/shipper/test_workers.py).
    args = ["-t", "-I", capture, "-E", HTTP, "-E", f"output.file.path={out}", "--workers", "1"]
    t0 = time.monotonic()
    # Before: a traceback, ~10 s at exit, "cannot schedule new futures after interpreter
    # shutdown", and the queued events lost.
    run = wirebeat(*args, *(["-d", "*"] if debug else []), tmp=tmp_path, prelude=BOOM_DECODER, timeout=30)
    elapsed = time.monotonic() - t0
    assert run.rc == 1, run
    assert elapsed < 8, f"took {elapsed:.1f}s to exit"
    assert "cannot schedule new futures" not in run.stderr
    if debug:
        assert "Traceback" in run.stderr and "injected decoder failure" in run.stderr
    else:
        assert run.stderr == (
            "Exiting: internal error: RuntimeError: injected decoder failure"
            " (run with -d '*' for the traceback)\n"
        ), run
    expected = _published_before_the_failure(capture, 3)
    assert len(expected) > 100
    assert _written(out) == expected


def test_an_output_failing_with_an_unexpected_exception_stops_cleanly(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["-t", "-I", capture, "-E", HTTP, "-E", f"output.file.path={out}"]
    args += ["-E", "output.file.bulk_max_size=100"]
    t0 = time.monotonic()
    run = wirebeat(*args, tmp=tmp_path, prelude=BOOM_OUTPUT, timeout=30)
    assert run.rc == 1, run
    assert time.monotonic() - t0 < 8
    assert run.stderr == (
        "Exiting: output file failed with an internal error: TypeError: injected output failure"
        " (run with -d '*' for the traceback)\n"
    ), run
    # The two batches acknowledged before the failure are in the file, nothing else.
    assert len(_written(out)) == 200


# -- YAML alias bombs ---------------------------------------------------------------------


def billion_laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _limits() -> None:
    # A structural bound, not a stopwatch: half a GiB of address space and 10 s of CPU.
    # Expanding even the 7-level bomb (4.8 million strings) exceeds it; refusing it
    # before expansion costs a few kB and milliseconds.
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (10, 10))


@pytest.mark.parametrize("levels", [7, 9])
def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path, levels: int) -> None:
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(billion_laughs(levels))
    for argv in (["test", "config", "-c", str(bomb)], ["-t", "-I", "/dev/null", "-c", str(bomb)]):
        run = subprocess.run(
            [sys.executable, "-m", "shipper", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
            cwd=tmp_path,
            preexec_fn=_limits,
        )
        assert run.returncode == 1, run
        assert run.stderr.splitlines() == [
            f"Exiting: error loading config file {bomb}: YAML aliases expand to more than "
            f"{MAX_ALIAS_NODES} extra nodes (refused: an alias bomb?)"
        ], run.stderr[-2000:]


def test_alias_bombs_in_overrides_and_variables_recursive_aliases_and_deep_nesting() -> None:
    with pytest.raises(ConfigError, match="alias bomb"):
        safe_yaml(billion_laughs(9), "-E x")
    with pytest.raises(ConfigError, match="refers to a node that contains it"):
        safe_yaml("a: &a [1, *a]\n", "config")
    with pytest.raises(ConfigError, match="nested more than"):
        safe_yaml("x: " + "[" * 500 + "]" * 500 + "\n", "config")
    # Aliases used the ordinary way are fine.
    assert safe_yaml("a: &p [80, 8080]\nb: *p\nc: {<<: {x: 1}, y: 2}\n", "config") == {
        "a": [80, 8080],
        "b": [80, 8080],
        "c": {"x": 1, "y": 2},
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_a_signal_stops_a_replay_whose_output_is_unreachable(
    capture: Path, tmp_path: Path, workers: int
) -> None:
    """The output cannot be reached, the queue is full and the replay waits for room: SIGTERM
    ends the run within the shutdown timeout, and what it could not deliver is counted and
    said (exit status 3). It used to wait for room forever."""
    cmd = [
        sys.executable, "-m", "shipper", "-e", "-t", "-I", str(capture), "-E", HTTP,
        "-E", "output.logstash.hosts=['127.0.0.1:1']", "-E", "queue.mem.events=64", "-E", "queue.mem.flush.min_events=16",
        "-E", "packetbeat.flows.enabled=false", "--workers", str(workers),
        "--path.data", str(tmp_path / "data"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(4)  # the queue is full long before: the replay waits for room
        assert proc.poll() is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err[-3000:]
    assert elapsed < 10, f"took {elapsed:.1f}s after SIGTERM"
    assert "Traceback" not in err
    assert "events were dropped for good" in err, err[-3000:]
    assert '"dropped_stopping":' in err.replace(" ", ""), err[-3000:]
