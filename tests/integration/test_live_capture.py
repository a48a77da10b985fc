"""Live capture on ``lo`` end to end: wirebeat in a subprocess, real HTTP servers and clients."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from shipper.agent.monitor import flatten
from tests.helpers import free_port, need_tool
from tests.live_helpers import (
    LiveBeat,
    env,
    http_events,
    http_server,
    keepalive_requests,
    live_config,
    need_capture,
    run_wirebeat,
    settle,
    urllib_requests,
    veth_namespace,
    write_config,
)

pytestmark = pytest.mark.integration

KINDS = ["af_packet", "pcap"]


def lo_index(tmp_path: Path) -> str:
    out = run_wirebeat(["devices"], tmp_path)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        m = re.match(r"(\d+): lo \(", line)
        if m:
            return m.group(1)
    raise AssertionError(f"lo not listed: {out.stdout}")


def test_devices_lists_lo_with_its_address(tmp_path: Path) -> None:
    out = run_wirebeat(["devices"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    lo = [line for line in lines if re.match(r"\d+: lo \(", line)]
    assert len(lo) == 1, out.stdout
    assert "127.0.0.1" in lo[0]
    assert any(re.match(r"\d+: any \(", line) for line in lines)
    # Indexes are 0..n-1 in order, as `packetbeat devices` prints them.
    assert [int(line.split(":")[0]) for line in lines] == list(range(len(lines)))


@pytest.mark.parametrize("kind", KINDS)
def test_http_transactions_match_what_the_clients_did(tmp_path: Path, kind: str) -> None:
    """Keep-alive and one-shot clients on a configured port are reported one event per
    request; a server on a port no protocol claims is filtered out by the generated BPF."""
    need_capture(kind)
    with http_server(tmp_path / "www") as port, http_server(tmp_path / "www2") as other:
        # pcap is addressed by the index `wirebeat devices` prints, af_packet by name.
        device = lo_index(tmp_path) if kind == "pcap" else "lo"
        cfg = live_config(tmp_path, kind=kind, ports=[port], device=device)
        with LiveBeat(tmp_path, cfg, ["-dump", str(tmp_path / "dump")]) as beat:
            keep = [f"/f{i}.txt" for i in range(5)] + ["/f1.txt?x=1"]
            assert keepalive_requests(port, keep) == [200] * 6
            assert urllib_requests(port, ["/f2.txt", "/missing.txt"]) == [200, 404]
            assert urllib_requests(other, ["/f0.txt", "/f1.txt"]) == [200, 200]
            settle()
            assert beat.stop() == 0, beat.stderr()
        events = beat.events()
    assert http_events(events, other) == []
    mine = http_events(events, port)
    assert len(mine) == 8, [e.get("url") for e in events]
    got = sorted(
        (e["url"]["path"], e["url"].get("query", ""), e["http"]["response"]["status_code"]) for e in mine
    )
    want = sorted(
        [(p.split("?")[0], "x=1" if "?" in p else "", 200) for p in keep]
        + [("/f2.txt", "", 200), ("/missing.txt", "", 404)]
    )
    assert got == want
    for e in mine:
        assert e["method"] == "GET" and e["status"] in ("OK", "Error")
        assert e["source"]["ip"] == "127.0.0.1" and e["destination"]["port"] == port
        assert e["network"]["direction"] == "ingress"  # 127.0.0.1 is this host
        assert e["@metadata"]["beat"] == "packetbeat"
    body = {
        e["url"]["path"]: e["http"]["response"]["body"]["bytes"]
        for e in mine
        if e["url"]["path"] != "/missing.txt"
    }
    assert body["/f3.txt"] == len("file 3\n" * 4)
    # One TCP connection carried the six keep-alive requests.
    keep_ports = {e["source"]["port"] for e in mine if e["url"]["path"] != "/missing.txt"}
    assert len(keep_ports) == 1 + 1  # the keep-alive one and urllib's /f2.txt
    # -dump wrote what was captured: only the configured port's packets.
    dumps = list(tmp_path.glob("dump-*.pcap"))
    assert len(dumps) == 1
    frames = list(CaptureFile(str(dumps[0])))
    assert frames and all(lt == 1 for _ts, lt, _f, _wl in frames)
    ports = {int.from_bytes(f[34:36], "big") for _ts, _lt, f, _wl in frames} | {
        int.from_bytes(f[36:38], "big") for _ts, _lt, f, _wl in frames
    }
    assert port in ports and other not in ports


@pytest.mark.parametrize("kind", KINDS)
def test_custom_bpf_filter_replaces_the_generated_one(tmp_path: Path, kind: str) -> None:
    need_capture(kind)
    with http_server(tmp_path / "a") as pa, http_server(tmp_path / "b") as pb:
        cfg = live_config(tmp_path, kind=kind, ports=[pa, pb], extra_iface={"bpf_filter": f"tcp port {pb}"})
        with LiveBeat(tmp_path, cfg) as beat:
            assert keepalive_requests(pa, ["/f0.txt", "/f1.txt"]) == [200, 200]
            assert keepalive_requests(pb, ["/f2.txt", "/f3.txt", "/f4.txt"]) == [200, 200, 200]
            settle()
            assert beat.stop(signal.SIGINT) == 0, beat.stderr()
        events = beat.events()
    assert http_events(events, pa) == []
    assert sorted(e["url"]["path"] for e in http_events(events, pb)) == ["/f2.txt", "/f3.txt", "/f4.txt"]
    assert any(f"tcp port {pb}" in line and "capturing on lo" in line for line in beat.lines)


_CLIENT = r"""
import http.client, sys, time
port, n, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(log, "w", buffering=1) as out:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(n):
        conn.request("GET", f"/f{i % 5}.txt?n={i}")
        r = conn.getresponse()
        r.read()
        out.write(f"{i} {r.status} {time.time_ns()}\n")
        time.sleep(0.002)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_mid_workload_loses_no_completed_transaction(tmp_path: Path, kind: str) -> None:
    need_capture(kind)
    log = tmp_path / "client.log"
    with http_server(tmp_path / "www") as port:
        cfg = live_config(tmp_path, kind=kind, ports=[port])
        with LiveBeat(tmp_path, cfg) as beat:
            client = subprocess.Popen([sys.executable, "-c", _CLIENT, str(port), "3000", str(log)])
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    done = log.read_text().count("\n") if log.exists() else 0
                    if done >= 200:
                        break
                    time.sleep(0.05)
                sent_at = time.time_ns()
                beat.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                code = beat.stop()
            finally:
                client.kill()
                client.wait()
        events = beat.events()
    assert code == 0, beat.stderr()
    completed = []
    for line in log.read_text().splitlines():
        i, status, ts = line.split()
        if int(ts) < sent_at:
            assert status == "200"
            completed.append(int(i))
    assert len(completed) >= 200
    seen = set()
    for e in http_events(events, port):
        m = re.search(r"n=(\d+)", e["url"].get("query", ""))
        if m:
            seen.add(int(m.group(1)))
    missing = sorted(set(completed) - seen)
    assert not missing, f"{len(missing)} completed transactions lost, e.g. {missing[:10]}"
    assert any(line for line in beat.lines if "received signal 15" in line)


@pytest.mark.parametrize("kind", KINDS)
def test_metrics_line_and_stats_endpoint(tmp_path: Path, kind: str) -> None:
    need_capture(kind)
    api = free_port()
    with http_server(tmp_path / "www") as port:
        cfg = live_config(
            tmp_path, kind=kind, ports=[port], http={"enabled": True, "host": "127.0.0.1", "port": api}
        )
        with LiveBeat(tmp_path, cfg) as beat:
            assert keepalive_requests(port, ["/f0.txt"] * 4) == [200] * 4
            settle(0.5)
            base = f"http://127.0.0.1:{api}"
            with urllib.request.urlopen(base + "/", timeout=5) as r:
                info = json.loads(r.read())
            deadline = time.monotonic() + 10
            while True:
                with urllib.request.urlopen(base + "/stats?pretty", timeout=5) as r:
                    stats = json.loads(r.read())
                if stats["libbeat"]["pipeline"]["events"]["published"] >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            with urllib.request.urlopen(base + "/inputs/", timeout=5) as r:
                inputs = json.loads(r.read())
            time.sleep(1.5)  # one metrics period
            assert beat.stop() == 0, beat.stderr()
    assert info["beat"] == "packetbeat" and info["uid"] == "0" and info["uuid"]
    assert stats["libbeat"]["pipeline"]["events"]["published"] == 4
    assert stats["libbeat"]["output"]["type"] == "file"
    lo = stats["capture"]["lo"]
    assert lo["packets"] > 0 and lo["kernel"]["received"] >= lo["packets"] and lo["kernel"]["dropped"] == 0
    assert inputs[0]["device"] == "lo" and inputs[0]["received_events_total"] == lo["packets"]
    periodic = [e for e in beat.logs() if e.get("message", "").startswith("Non-zero metrics in the last")]
    assert periodic, beat.stderr()
    keys = {k for e in periodic for k in flatten(e["monitoring"]["metrics"])}
    assert "capture.lo.packets" in keys and "capture.lo.kernel.received" in keys
    final = [e for e in beat.logs() if e.get("message") == "Total metrics"]
    assert final and flatten(final[-1]["monitoring"]["metrics"])["capture.lo.kernel.dropped"] == 0


def test_queue_full_drops_are_counted_and_logged(tmp_path: Path) -> None:
    """Live capture never blocks: with the output failing and a tiny queue, events are
    dropped, counted and reported."""
    need_capture()
    # A "Logstash" that accepts the connection (the kernel does, into the backlog) but never
    # reads or acknowledges: the output holds its batch, the queue stays full.
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(1)
    with stalled, http_server(tmp_path / "www") as port:
        cfg = live_config(
            tmp_path,
            kind="af_packet",
            ports=[port],
            # 32 is the smallest queue libbeat (and wirebeat) accepts.
            **{"queue.mem": {"events": 32, "flush.min_events": 1, "flush.timeout": "10ms"}},
        )
        del cfg["output.file"]
        cfg["output.logstash"] = {"hosts": [f"127.0.0.1:{stalled.getsockname()[1]}"], "timeout": "60s"}
        cfg["packetbeat.interfaces"][0]["metrics_interval"] = "1s"
        with LiveBeat(tmp_path, cfg) as beat:
            assert keepalive_requests(port, [f"/f{i % 5}.txt" for i in range(100)]) == [200] * 100
            settle(1.5)
            beat.stop()
    logs = beat.logs()
    warn = [e for e in logs if "queue full: dropped" in e.get("message", "")]
    assert warn, beat.stderr()
    total = flatten([e for e in logs if e.get("message") == "Total metrics"][-1]["monitoring"]["metrics"])
    # At most one batch (<= 32 events) is held by the stalled output and 32 wait in the queue.
    assert total["pipeline.queue.dropped_full"] >= 100 - 2 * 32
    assert total["pipeline.queue.dropped_full"] + total["pipeline.queue.published"] == 100


# -- errors: one clear line, non-zero exit ------------------------------------------------------


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Exiting: "), stderr
    return lines[0]


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_device_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    cfg = write_config(tmp_path / "c.yml", live_config(tmp_path, kind=kind, ports=[8080], device="nosuch0"))
    for args in (["-c", str(cfg)], ["test", "config", "-c", str(cfg)]):
        out = run_wirebeat(args, tmp_path)
        assert out.returncode != 0
        line = _one_error_line(out.stderr)
        assert "packetbeat.interfaces.0.device" in line and "no such device 'nosuch0'" in line


@pytest.mark.parametrize("kind", KINDS)
def test_bad_bpf_filter_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    need_capture(kind)
    cfg = write_config(
        tmp_path / "c.yml",
        live_config(tmp_path, kind=kind, ports=[8080], extra_iface={"bpf_filter": "tcp port"}),
    )
    out = run_wirebeat(["test", "config", "-c", str(cfg)], tmp_path)
    assert out.returncode == 1
    line = _one_error_line(out.stderr)
    assert "packetbeat.interfaces.0.bpf_filter" in line and "invalid BPF filter 'tcp port'" in line
    out = run_wirebeat(["-c", str(cfg)], tmp_path)
    assert out.returncode == 1
    assert "invalid BPF filter 'tcp port'" in _one_error_line(out.stderr)
    good = write_config(tmp_path / "ok.yml", live_config(tmp_path, kind=kind, ports=[8080]))
    out = run_wirebeat(["test", "config", "-c", str(good)], tmp_path)
    assert out.returncode == 0 and "Config OK" in out.stdout, out.stderr


def _unprivileged_dir(tmp_path: Path) -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="wirebeat-nobody-"))
    d.chmod(0o777)
    return d


@pytest.mark.parametrize("kind", KINDS)
def test_missing_privilege_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    from tests.helpers import need_tool

    need_capture(kind)
    setpriv = need_tool("setpriv")
    capsh = need_tool("capsh")
    work = _unprivileged_dir(tmp_path)
    try:
        cfg = write_config(work / "c.yml", live_config(work, kind=kind, ports=[8080]))
        (work / "c.yml").chmod(0o644)
        # nobody, keeping only the right to read the interpreter's files (they may live
        # under /root): no CAP_NET_RAW.
        nobody = [
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            "--",
        ]
        out = run_wirebeat(["-c", str(cfg)], work, prefix=nobody)
        assert out.returncode == 1
        line = _one_error_line(out.stderr)
        assert "cannot" in line and "lo" in line and "CAP_NET_RAW" in line, line
        # Root without CAP_NET_RAW fails the same way.
        code = " ".join(
            ["exec", sys.executable, "-c", "'from shipper.agent.cli import main; main()'", "-c", str(cfg)]
        )
        out = subprocess.run(
            [capsh, "--drop=cap_net_raw", "--", "-c", code],
            cwd=str(work),
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 1
        assert "CAP_NET_RAW" in _one_error_line(out.stderr)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def test_run_as_drops_privileges_after_opening_the_socket(tmp_path: Path) -> None:
    need_capture()
    work = _unprivileged_dir(tmp_path)
    try:
        with http_server(work / "www") as port:
            cfg = live_config(work, kind="af_packet", ports=[port], **{"packetbeat.run_as": "nobody"})
            with LiveBeat(work, cfg) as beat:
                status = Path(f"/proc/{beat.pid}/status").read_text()
                uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
                caps = re.search(r"^CapEff:\s+([0-9a-f]+)", status, re.M)
                assert keepalive_requests(port, ["/f0.txt", "/f1.txt"]) == [200, 200]
                settle()
                assert beat.stop() == 0, beat.stderr()
            events = beat.events()
        assert uids is not None and uids.groups() == ("65534", "65534", "65534")
        assert caps is not None and int(caps.group(1), 16) == 0
        assert sorted(e["url"]["path"] for e in http_events(events, port)) == ["/f0.txt", "/f1.txt"]
        assert any("dropped privileges to user nobody" in line for line in beat.lines)
        assert all(p.stat().st_uid == 65534 for p in (work / "out").glob("*.ndjson"))
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def test_unknown_run_as_user_is_one_clear_error(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.yml",
        live_config(tmp_path, kind="af_packet", ports=[8080], **{"packetbeat.run_as": "no-such-user-x"}),
    )
    for args in (["test", "config", "-c", str(cfg)], ["-c", str(cfg)]):
        out = run_wirebeat(args, tmp_path)
        assert out.returncode == 1
        line = _one_error_line(out.stderr)
        assert "packetbeat.run_as" in line and "no such user 'no-such-user-x'" in line


# -- idle expiry on the wall clock ----------------------------------------------------------------


def test_idle_link_expires_transactions_on_live_time(tmp_path: Path) -> None:
    """A request that is never answered comes out once its transaction times out, while
    the beat is still running and no packet arrives: the capture loop ticks the decoder."""
    need_capture()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cfg = live_config(
        tmp_path,
        kind="af_packet",
        ports=[port],
        **{"queue.mem": {"events": 64, "flush.min_events": 1, "flush.timeout": "50ms"}},
    )
    cfg["packetbeat.protocols"][0]["transaction_timeout"] = "1s"
    with LiveBeat(tmp_path, cfg) as beat:
        cli = socket.create_connection(("127.0.0.1", port))
        conn, _ = srv.accept()
        cli.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.recv(1024)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while not found and time.monotonic() < deadline:
            time.sleep(0.2)
            found = [e for e in http_events(beat.events(), port) if e["url"]["path"] == "/hang"]
        still_running = beat.proc is not None and beat.proc.poll() is None
        cli.close()
        conn.close()
        srv.close()
        assert beat.stop() == 0, beat.stderr()
    assert found and still_running, beat.stderr()
    assert found[0]["status"] == "Error" or "response" not in found[0].get("http", {})


# -- network.direction and ignore_outgoing in live mode --------------------------------------


_GET = (
    "import urllib.request,sys; "
    "[urllib.request.urlopen(f'http://{sys.argv[1]}:{sys.argv[2]}/f{i}.txt', timeout=10).read() "
    "for i in range(2)]"
)


@pytest.mark.parametrize("ignore_outgoing", [False, True])
def test_direction_from_host_addresses_and_ignore_outgoing(tmp_path: Path, ignore_outgoing: bool) -> None:
    """On a veth into a namespace: a client in the namespace calling this host is ingress
    (the destination is one of the host's addresses), this host calling a server in the
    namespace is egress; ``packetbeat.ignore_outgoing`` drops the latter and keeps the
    ingress transactions whole (responses included)."""
    need_capture()
    ip = need_tool("ip")
    with veth_namespace() as (ns, host_if, host_ip, peer_ip):
        in_port, out_port = free_port(), free_port()
        inside = [ip, "netns", "exec", ns]
        with (
            http_server(tmp_path / "host", host=host_ip, port=in_port),
            http_server(tmp_path / "ns", host=peer_ip, prefix=inside, port=out_port),
        ):
            cfg = live_config(
                tmp_path,
                kind="af_packet",
                ports=[in_port, out_port],
                device=host_if,
                **{"packetbeat.ignore_outgoing": ignore_outgoing},
            )
            with LiveBeat(tmp_path, cfg) as beat:
                subprocess.run([*inside, sys.executable, "-c", _GET, host_ip, str(in_port)], check=True)
                assert keepalive_requests(out_port, ["/f3.txt"], host=peer_ip) == [200]
                assert beat.stop() == 0, beat.stderr()
            events = http_events(beat.events())
    got = sorted((e["url"]["path"], e["source"]["ip"], e["network"]["direction"]) for e in events)
    assert all(e["http"]["response"]["status_code"] == 200 for e in events)
    want = [("/f0.txt", peer_ip, "ingress"), ("/f1.txt", peer_ip, "ingress")]
    if not ignore_outgoing:
        want.append(("/f3.txt", host_ip, "egress"))
    assert got == sorted(want)
