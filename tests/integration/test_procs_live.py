"""``packetbeat.procs`` live: wirebeat captures on ``lo`` while a real server process
(``python3 -m http.server``, HTTP/1.1 keep-alive) answers a real client process; every
transaction names both processes (pid, name, args, executable, start) as /proc shows them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.live_helpers import LiveBeat, http_events, live_config, need_capture, settle

pytestmark = pytest.mark.integration

#: The client: keep-alive GETs, then it keeps the connection open a moment so the socket
#: is still there when the transactions are published (Packetbeat looks up at packet time).
CLIENT = r"""
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(n):
    conn.request("GET", "/f%d.txt" % i)
    r = conn.getresponse(); r.read()
    print(r.status, flush=True)
time.sleep(2.5)
conn.close()
"""


def proc_view(pid: int) -> tuple[str, list[str], str]:
    with open(f"/proc/{pid}/comm") as fh:
        comm = fh.read().strip()
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        args = [a.decode() for a in fh.read().split(b"\0") if a]
    return comm, args, os.readlink(f"/proc/{pid}/exe")


@pytest.mark.parametrize("monitored", [False, True])
def test_procs_names_server_and_client_processes(tmp_path: Path, monitored: bool) -> None:
    need_capture("af_packet")
    www = tmp_path / "www"
    www.mkdir()
    for i in range(3):
        (www / f"f{i}.txt").write_text(f"file {i}\n")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(www),
            "-p",
            "HTTP/1.1",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        procs: dict[str, object] = {"enabled": True}
        if monitored:
            procs["monitored"] = [
                {"process": "webserver", "cmdline_grep": "http.server"},
                {"process": "myclient", "cmdline_grep": "HTTPConnection"},
            ]
        cfg = live_config(tmp_path, kind="af_packet", ports=[port], **{"packetbeat.procs": procs})
        with LiveBeat(tmp_path, cfg) as beat:
            client = subprocess.Popen(
                [sys.executable, "-c", CLIENT, str(port), "3"], stdout=subprocess.PIPE, text=True
            )
            assert client.stdout is not None
            statuses = [client.stdout.readline().strip() for _ in range(3)]
            client_view = proc_view(client.pid)
            server_view = proc_view(server.pid)
            assert client.wait(timeout=20) == 0
            settle(1.0)
            assert beat.stop() == 0, beat.stderr()
        events = http_events(beat.events(), port)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert statuses == ["200"] * 3
    assert len(events) == 3, events
    for e in events:
        srv, cli = e["server"]["process"], e["client"]["process"]
        assert srv["pid"] == server.pid
        assert srv["name"] == ("webserver" if monitored else server_view[0])
        assert srv["args"] == server_view[1]
        assert srv["executable"] == server_view[2]
        assert srv["parent"]["pid"] == os.getpid()
        assert srv["start"].endswith("Z")
        assert cli["pid"] == client.pid
        assert cli["name"] == ("myclient" if monitored else client_view[0])
        assert cli["args"] == client_view[1]
        assert cli["executable"] == client_view[2]
        # Packetbeat's fields: source/destination.process and process (the server's).
        assert e["destination"]["process"] == srv and e["source"]["process"] == cli
        assert e["process"] == srv


def test_procs_is_a_no_op_on_a_capture_file(tmp_path: Path) -> None:
    from tests.live_helpers import run_wirebeat, write_config

    pcap = Path(__file__).resolve().parents[2].parent / "shared" / "pcaps" / "packetbeat"
    files = sorted(pcap.glob("http*.pcap"))
    assert files, f"no shared HTTP capture in {pcap}"
    cfg = write_config(
        tmp_path / "wb.yml",
        {
            "packetbeat.protocols": [{"type": "http", "ports": [80, 8000, 8080]}],
            "packetbeat.procs.enabled": True,
            "output.file": {"path": str(tmp_path / "out"), "filename": "events"},
            "path.data": str(tmp_path / "data"),
        },
    )
    out = run_wirebeat(["-c", str(cfg), "-e", "-t", "-I", str(files[0])], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "process watcher disabled when file input is used" in out.stderr
