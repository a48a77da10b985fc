"""The command line, run as a subprocess the way Packetbeat's own tests run it
(``-t -e -I pcap -c cfg``): subcommands, flags, capture-file replay, logs, outputs, and one
clear ``Exiting:`` line for every bad config or capture file."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.synth import Conversation
from capture import CaptureFile, PcapWriter
from protocols.registry import available
from shipper.agent.version import VERSION
from tests.helpers import ROOT, shared_pcap
from tests.shipper.shiprun import FLOWS_REQUIRED, REQUIRED, Run, missing_required, wirebeat

DATA = ROOT / "tests" / "data"
PB8 = DATA / "packetbeat.yml"
PB6 = DATA / "packetbeat6.yml"
NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # 2023-11-14T22:13:20Z
HTTP_8080 = "packetbeat.protocols=[{type: http, ports: [8080]}]"


def write_config(tmp_path: Path, text: str, name: str = "packetbeat.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def http_exchange(
    path: Path, gap_s: float = 0.0, client_port: int = 41000, ts: int = T0, respond: bool = True
) -> Path:
    """One HTTP request on 127.0.0.1:8080, the response ``gap_s`` later."""
    conv = Conversation(("127.0.0.1", client_port), ("127.0.0.1", 8080), ts=ts).handshake()
    conv.send(0, b"GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\n\r\n")
    if respond:
        conv.ts += int(gap_s * NS)
        conv.send(1, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
        conv.close()
    with PcapWriter(str(path), 1) as w:
        w.write_all(conv.frames)
    return path


def assert_one_exiting_line(run: Run, *fragments: str) -> str:
    assert run.rc == 1, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run
    (line,) = lines
    assert line.startswith("Exiting: "), line
    assert "Traceback" not in run.stderr
    for f in fragments:
        assert f in line, line
    return line


# -- version, devices, test config, export config ------------------------------------------------


def test_version(tmp_path: Path) -> None:
    run = wirebeat("version", tmp=tmp_path)
    assert run.rc == 0, run
    assert re.fullmatch(
        rf"wirebeat version {re.escape(VERSION)} \(\w+\), Packetbeat-compatible 8\.\d+, Python 3\.\d+\.\d+\n",
        run.stdout,
    ), run.stdout
    legacy = wirebeat("-version", tmp=tmp_path)
    assert legacy.stdout == run.stdout


def test_devices_lists_lo_with_its_address(tmp_path: Path) -> None:
    run = wirebeat("devices", tmp=tmp_path)
    assert run.rc == 0, run
    lines = run.stdout.splitlines()
    assert [int(line.split(":", 1)[0]) for line in lines] == list(range(len(lines)))
    lo = [line for line in lines if re.match(r"\d+: lo \(", line)]
    assert len(lo) == 1, lines
    assert re.search(r"\(([^()]* )?127\.0\.0\.1( [^()]*)?\)$", lo[0]), lo[0]
    assert any(re.match(r"\d+: any \(", line) for line in lines)


def test_test_config_accepts_the_shipped_8x_yml_and_logs_the_warnings(tmp_path: Path) -> None:
    run = wirebeat("test", "config", "-c", PB8, tmp=tmp_path)
    assert run.rc == 0, run
    assert run.stdout == "Config OK\n"
    warnings = run.messages("warning")
    assert not [m for m in warnings if "flows" in m or "icmp" in m]
    # Packetbeat's stock add_cloud_metadata/add_docker_metadata: accepted, said once.
    assert any("processor 'add_cloud_metadata' is not supported by wirebeat" in w for w in warnings)
    assert sum("add_docker_metadata" in w for w in warnings) == 1
    skipped = {m.split("'")[1] for m in warnings if m.startswith("protocol ")}
    assert skipped == {
        "icmp",
        "amqp",
        "cassandra",
        "dhcpv4",
        "dns",
        "memcache",
        "mongodb",
        "nfs",
        "tls",
        "sip",
    } - set(available())
    assert len(warnings) == 2 + len(skipped)  # add_cloud_metadata, add_docker_metadata
    assert all(r["log.logger"] == "config" for r in run.logs)


def test_test_config_accepts_the_6x_dict_form_yml(tmp_path: Path) -> None:
    run = wirebeat("test", "config", "-c", PB6, tmp=tmp_path)
    assert run.rc == 0, run
    assert run.stdout == "Config OK\n"
    assert "config section 'xpack' is not supported by wirebeat (ignored)" in run.messages("warning")
    assert not [m for m in run.messages() if "unknown config setting" in m]


def test_legacy_configtest_flag(tmp_path: Path) -> None:
    run = wirebeat("-configtest", "-c", PB8, tmp=tmp_path)
    assert run.rc == 0, run
    assert run.stdout == "Config OK\n"


def test_export_config_prints_the_effective_config_as_yaml(tmp_path: Path) -> None:
    run = wirebeat("export", "config", "-c", PB8, "-E", "output.file.path=/tmp/pb-out", tmp=tmp_path)
    assert run.rc == 0, run
    doc = yaml.safe_load(run.stdout)
    protocols = {p["type"]: p for p in doc["packetbeat"]["protocols"]}
    assert protocols["http"]["ports"] == [80, 8080, 8000, 5000, 8002]
    assert protocols["tls"]["ports"] == [443, 993, 995, 5223, 8443, 8883, 9243]
    assert doc["packetbeat"]["interfaces"]["device"] == "any"
    assert doc["output"] == {"file": {"path": "/tmp/pb-out"}}
    assert doc["path"]["data"] == str(tmp_path / "data")


# -- bad configs and capture files: one clear line, exit 1 -----------------------------------------


BAD_CONFIGS: list[tuple[str, str, list[str]]] = [
    ("invalid-yaml", "packetbeat.protocols:\n- type: http\n  ports: [80\n", ["invalid YAML", "line"]),
    (
        "wrong-type",
        "packetbeat.protocols:\n- type: http\n  ports: [eighty]\n",
        ["packetbeat.protocols.0.ports.0"],
    ),
    ("bad-port", "packetbeat.protocols:\n- type: http\n  ports: [70000]\n", ["packetbeat.protocols.0.ports"]),
    (
        "unknown-protocol",
        "packetbeat.protocols:\n- type: gopher\n  ports: [70]\n",
        ["unknown protocol type 'gopher'"],
    ),
    ("two-outputs", "output.console: {}\noutput.file: {path: /tmp/x}\n", ["more than one output", "output"]),
    ("bad-precision", "timestamp.precision: second\n", ["timestamp.precision"]),
    ("bad-level", "logging.level: loud\n", ["logging.level"]),
    ("bad-network", "packetbeat.interfaces.internal_networks: [privat]\n", ["internal_networks", "privat"]),
    (
        "bad-duration",
        "packetbeat.protocols:\n- type: http\n  transaction_timeout: soon\n",
        ["transaction_timeout"],
    ),
    ("not-a-mapping", "- just\n- a list\n", ["top level must be a mapping"]),
    ("warning-then-error", "colour: red\ntimestamp.precision: second\n", ["timestamp.precision"]),
]


@pytest.mark.parametrize(("name", "text", "fragments"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
@pytest.mark.parametrize("command", ["test-config", "run"])
def test_bad_config_gives_one_exiting_line(
    tmp_path: Path, name: str, text: str, fragments: list[str], command: str
) -> None:
    cfg = write_config(tmp_path, text)
    args: list[str | Path] = (
        ["test", "config"] if command == "test-config" else ["-t", "-I", shared_pcap("http_post")]
    )
    run = wirebeat(*args, "-c", cfg, tmp=tmp_path)
    assert_one_exiting_line(run, *fragments)
    assert run.stdout == ""


def test_unreadable_config_files(tmp_path: Path) -> None:
    assert_one_exiting_line(wirebeat("test", "config", "-c", tmp_path / "nope.yml", tmp=tmp_path), "nope.yml")
    assert_one_exiting_line(wirebeat("test", "config", "-c", tmp_path, tmp=tmp_path), "Is a directory")
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"name: \xff\xfe\x00\x01\n")
    assert_one_exiting_line(wirebeat("test", "config", "-c", binary, tmp=tmp_path), "not UTF-8")


def test_a_port_claimed_by_two_protocols_gives_one_exiting_line(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, "packetbeat.protocols:\n- type: http\n  ports: [80, 7]\n- type: echoproto\n  ports: [7]\n"
    )
    prelude = "import tests.shipper.fakeproto as f; f.enable()"
    ok = wirebeat(
        "test",
        "config",
        "-c",
        cfg,
        "-E",
        "packetbeat.protocols.echoproto.ports=[9]",
        tmp=tmp_path,
        prelude=prelude,
    )
    assert ok.rc == 0, ok
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path, prelude=prelude)
    assert_one_exiting_line(run, "packetbeat.protocols", "port 7 is claimed by both http and echoproto")


def test_bad_override_and_missing_variable(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "name: probe\n")
    run = wirebeat("test", "config", "-c", cfg, "-E", "novalue", tmp=tmp_path)
    assert_one_exiting_line(run, "-E", "novalue")
    run = wirebeat("test", "config", "-c", cfg, "-E", "name=${WIREBEAT_TEST_UNSET_VAR}", tmp=tmp_path)
    assert_one_exiting_line(run, "WIREBEAT_TEST_UNSET_VAR")


def test_unknown_command(tmp_path: Path) -> None:
    assert_one_exiting_line(wirebeat("frobnicate", tmp=tmp_path), "unknown command 'frobnicate'")


@pytest.mark.parametrize("kind", ["missing", "garbage", "empty", "directory"])
def test_bad_capture_file_gives_one_exiting_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "input.pcap"
    if kind == "garbage":
        path.write_bytes(b"this is not a capture file\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    run = wirebeat("-t", "-I", path, "-E", HTTP_8080, tmp=tmp_path)
    line = assert_one_exiting_line(run, str(path))
    assert "error loading config" not in line
    assert run.stdout == ""


def test_truncated_capture_file_publishes_what_it_could_read_and_warns(tmp_path: Path) -> None:
    src = shared_pcap("http_post").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src[: len(src) - 10])
    run = wirebeat(
        "-t", "-e", "-I", cut, "-E", "packetbeat.protocols=[{type: http, ports: [80]}]", tmp=tmp_path
    )
    assert run.rc == 0, run
    assert any("capture file problem" in m for m in run.messages("warning")), run
    assert len(run.events) == 1  # the POST and its response precede the cut


def test_an_unusable_output_directory_gives_one_exiting_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = wirebeat(
        "-t", "-I", shared_pcap("http_post"), "-E", f"output.file.path={blocker}/out", tmp=tmp_path
    )
    assert_one_exiting_line(run, "Not a directory")


# -- capture file replay ----------------------------------------------------------------------


def test_http_unmatched_gives_three_events_with_capture_timestamps(tmp_path: Path) -> None:
    run = wirebeat("-t", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080, tmp=tmp_path)
    assert run.rc == 0, run
    events = run.events
    assert len(events) == 3  # Packetbeat loses the open request at EOF and gives only 2
    lost, orphan, ok = events
    assert (lost["status"], lost["query"], lost["error"]["message"]) == (
        "Error",
        "GET /something",
        "Unmatched request",
    )
    assert "response" not in lost["http"]
    assert (orphan["status"], orphan["error"]["message"]) == ("Error", "Unmatched response")
    assert orphan["http"]["response"]["status_code"] == 404
    assert (ok["status"], ok["query"], ok["http"]["response"]["status_code"]) == (
        "OK",
        "GET /someotherthing",
        200,
    )
    assert ok["http"]["request"]["headers"] == {"content-length": 0}
    # Capture time, not wall-clock time.
    assert [e["@timestamp"] for e in events] == [
        "2018-04-06T13:40:08.879Z",
        "2018-04-06T13:40:20.373Z",
        "2018-04-06T13:40:20.879Z",
    ]
    assert ok["event"]["duration"] == 502_144_000
    for e in (lost, ok):
        assert missing_required(e) == [], e
    # Like Packetbeat's test: an unmatched response has event.end and no event.start.
    assert missing_required(orphan, [f for f in REQUIRED if f != "event.start"] + ["event.end"]) == []
    assert "start" not in orphan["event"]
    for e in events:
        assert e["@metadata"] == {"beat": "packetbeat", "type": "_doc", "version": VERSION}
        assert e["network"]["direction"] == "ingress"  # to 127.0.0.1
        assert e["client"]["ip"] == e["source"]["ip"] and e["server"]["ip"] == e["destination"]["ip"]


def test_expiry_runs_on_capture_time_and_open_requests_are_published_at_the_end(tmp_path: Path) -> None:
    pcap = tmp_path / "lost.pcap"
    lost = Conversation(("127.0.0.1", 41000), ("127.0.0.1", 8080), ts=T0).handshake()
    lost.send(0, b"GET /lost HTTP/1.1\r\nHost: localhost\r\n\r\n")
    later = http_exchange(tmp_path / "later.pcap", client_port=41001, ts=T0 + 30 * NS)
    with PcapWriter(str(pcap), 1) as w:
        w.write_all(lost.frames)
        w.write_all((ts, f) for ts, _lt, f, _wl in CaptureFile(str(later)))

    def run_with(timeout: str) -> list[tuple[str, str, str]]:
        cfg = f"packetbeat.protocols=[{{type: http, ports: [8080], transaction_timeout: {timeout}}}]"
        run = wirebeat("-t", "-I", pcap, "-E", cfg, tmp=tmp_path)
        assert run.rc == 0, run
        return [(e["query"], e["status"], e["@timestamp"]) for e in run.events]

    # 30 s of capture time pass before the second request: the first one expires in between.
    assert run_with("5s") == [
        ("GET /lost", "Error", "2023-11-14T22:13:20.000Z"),
        ("GET /index.html", "OK", "2023-11-14T22:13:50.000Z"),
    ]
    # With a longer timeout it is still open at the end of the file, and published then.
    assert run_with("60s") == [
        ("GET /index.html", "OK", "2023-11-14T22:13:50.000Z"),
        ("GET /lost", "Error", "2023-11-14T22:13:20.000Z"),
    ]


def test_shipped_packetbeat_yml_works_unchanged_on_a_capture(tmp_path: Path) -> None:
    run = wirebeat("-t", "-c", PB8, "-I", shared_pcap("http_basicauth"), tmp=tmp_path)
    assert run.rc == 0, run
    (evt,) = [e for e in run.events if e["type"] == "http"]
    assert evt["network"]["community_id"] == "1:TMPM5eEnGOXfxAjx6NKlyjx+X10="
    assert evt["network"]["bytes"] == 1721
    assert evt["event"]["duration"] == 18341000
    # Neither end is this host; internal_networks: [private] → from 172.31/16 to a public address.
    assert evt["network"]["direction"] == "outbound"
    assert missing_required(evt) == []
    assert evt["agent"]["type"] == "packetbeat"
    assert evt["ecs"]["version"].startswith("8.")
    assert evt["host"]["name"] == evt["agent"]["name"]


@pytest.mark.parametrize(
    "pcap", ["http_post", "http_get_2k_file", "http_url_params", "http_minitwit", "http_over_vlan"]
)
def test_required_fields_on_every_event(tmp_path: Path, pcap: str) -> None:
    run = wirebeat("-t", "-c", PB8, "-I", shared_pcap(pcap), tmp=tmp_path)
    assert run.rc == 0, run
    assert run.events, run
    orphan_required = [f for f in REQUIRED if f != "event.start"] + ["event.end"]
    assert any(e["type"] == "flow" for e in run.events)  # the shipped yml enables flows
    for e in run.events:
        orphan = e.get("error", {}).get("message") == "Unmatched response"
        required = FLOWS_REQUIRED if e["type"] == "flow" else orphan_required if orphan else REQUIRED
        assert missing_required(e, required) == [], e


def test_logs_go_to_stderr_with_e_and_to_files_without(tmp_path: Path) -> None:
    pcap = shared_pcap("http_post")
    with_e = wirebeat("-t", "-e", "-I", pcap, tmp=tmp_path / "a")
    assert with_e.rc == 0, with_e
    assert with_e.logs and all(
        {"log.level", "@timestamp", "log.logger", "message"} <= r.keys() for r in with_e.logs
    )
    assert any(r["message"] == "Total metrics" for r in with_e.logs)
    assert not list((tmp_path / "a" / "logs").glob("*"))

    quiet = wirebeat("-t", "-I", pcap, tmp=tmp_path / "b")
    assert quiet.rc == 0, quiet
    # Only the replay's summary line (docs/replay.md).
    (summary,) = quiet.stderr.splitlines()
    assert summary.startswith("wirebeat: replayed "), summary
    assert quiet.events == [{**e, "agent": quiet.events[0]["agent"]} for e in with_e.events]
    (logfile,) = (tmp_path / "b" / "logs").glob("*.ndjson")
    records = [json.loads(line) for line in logfile.read_text().splitlines()]
    assert any(r["message"] == "Total metrics" for r in records)


def test_debug_selector_publish_logs_each_event(tmp_path: Path) -> None:
    run = wirebeat(
        "-t", "-e", "-d", "publish", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080, tmp=tmp_path
    )
    assert run.rc == 0, run
    published = [r for r in run.logs if r["message"].startswith("Publish event: ")]
    assert all(r["log.level"] == "debug" and r["log.logger"] == "publish" for r in published)
    assert [json.loads(r["message"][len("Publish event: ") :]) for r in published] == run.events
    # Only the selected logger speaks at debug level.
    assert {r["log.logger"] for r in run.logs if r["log.level"] == "debug"} == {"publish"}

    without = wirebeat("-t", "-e", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080, tmp=tmp_path)
    assert not [r for r in without.logs if r["log.level"] == "debug"]


def test_loops_replay_the_file_n_times(tmp_path: Path) -> None:
    once = wirebeat("-t", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080, tmp=tmp_path).events
    twice = wirebeat(
        "-t", "-l", "2", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080, tmp=tmp_path
    ).events
    assert len(once) == 3
    assert len(twice) == 6

    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        return (e["@timestamp"], e["status"], e["network"]["community_id"])

    assert [key(e) for e in twice] == [key(e) for e in once] * 2


def test_dump_writes_the_same_packets(tmp_path: Path) -> None:
    src = shared_pcap("http_unmatched")
    run = wirebeat("-t", "-dump", tmp_path / "dump", "-I", src, "-E", HTTP_8080, tmp=tmp_path)
    assert run.rc == 0, run
    assert len(run.events) == 3
    (dumped,) = tmp_path.glob("dump-*.pcap")
    assert re.fullmatch(r"dump-\d{14}\.pcap", dumped.name)
    original = [(ts, lt, bytes(f), wl) for ts, lt, f, wl in CaptureFile(str(src))]
    copy = [(ts, lt, bytes(f), wl) for ts, lt, f, wl in CaptureFile(str(dumped))]
    assert copy == original
    assert len(copy) == 18


def test_without_t_the_file_is_paced_in_real_time_and_keeps_capture_timestamps(tmp_path: Path) -> None:
    gap = 1.2
    pcap = http_exchange(tmp_path / "slow.pcap", gap_s=gap)
    fast = wirebeat("-t", "-I", pcap, "-E", HTTP_8080, tmp=tmp_path)
    real = wirebeat("-I", pcap, "-E", HTTP_8080, tmp=tmp_path)
    assert fast.rc == real.rc == 0, (fast, real)
    assert real.elapsed >= gap
    assert fast.elapsed < real.elapsed - gap / 2
    assert real.events == [{**e, "agent": real.events[0]["agent"]} for e in fast.events]
    (evt,) = real.events
    # Packetbeat would stamp the replay time; wirebeat keeps the capture's.
    assert evt["@timestamp"] == "2023-11-14T22:13:20.000Z"
    assert evt["event"]["start"] == "2023-11-14T22:13:20.000Z"
    assert evt["event"]["end"] == "2023-11-14T22:13:21.200Z"
    assert evt["event"]["duration"] == int(gap * NS) + 100_000  # plus the request's segment and ACK


@pytest.mark.parametrize("workers", ["1", "2"])
def test_paced_replay_publishes_each_event_when_it_is_due(tmp_path: Path, workers: str) -> None:
    """Without -t the replay follows the capture's clock, and an event goes out as soon as
    its packets are read, not once 256 packets have come (the second exchange begins 2.5 s
    after the first, so with ``flush.timeout: 0s`` the first event must be written well
    before the replay ends)."""
    import subprocess
    import sys
    import time

    first = Conversation(("127.0.0.1", 41000), ("127.0.0.1", 8080), ts=T0).handshake()
    first.send(0, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").send(
        1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    second = Conversation(("127.0.0.1", 41001), ("127.0.0.1", 8080), ts=T0 + int(2.5 * NS)).handshake()
    second.send(0, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").send(
        1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    pcap = tmp_path / "two.pcap"
    with PcapWriter(str(pcap), 1) as w:
        w.write_all(first.frames + second.frames)
    cmd = [
        sys.executable, "-m", "shipper", "-I", str(pcap), "-E", HTTP_8080, "--workers", workers,
        "-E", "queue.mem.flush.timeout=0s",
        "--path.data", str(tmp_path / "data"), "--path.logs", str(tmp_path / "logs"),
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    seen: list[tuple[float, str]] = []
    for line in proc.stdout:
        seen.append((time.monotonic() - t0, json.loads(line)["url"]["path"]))
    assert proc.wait(timeout=30) == 0
    assert [path for _, path in seen] == ["/a", "/b"]
    (t_a, _), (t_b, _) = seen
    assert t_b - t_a > 1.5, seen  # the first came out while the replay waited for the second


def test_one_packet_at_a_time_reads_enter_per_packet(tmp_path: Path) -> None:
    pcap = http_exchange(tmp_path / "one.pcap")
    n = sum(1 for _ in CaptureFile(str(pcap)))
    run = wirebeat("-t", "-O", "-I", pcap, "-E", HTTP_8080, tmp=tmp_path, stdin="\n" * n)
    assert run.rc == 0, run
    assert len(run.events) == 1
    assert run.stderr.count("Press enter to read packet") == n


def test_no_publish_flag_discards_events(tmp_path: Path) -> None:
    run = wirebeat("-t", "-N", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080, tmp=tmp_path)
    assert run.rc == 0, run
    assert run.stdout == ""


def test_nanosecond_timestamp_precision(tmp_path: Path) -> None:
    run = wirebeat(
        "-t",
        "-I",
        shared_pcap("http_unmatched"),
        "-E",
        HTTP_8080,
        "-E",
        "timestamp.precision=nanosecond",
        tmp=tmp_path,
    )
    assert run.rc == 0, run
    stamps = [e["@timestamp"] for e in run.events]
    assert stamps == [
        "2018-04-06T13:40:08.879613000Z",
        "2018-04-06T13:40:20.373052000Z",
        "2018-04-06T13:40:20.879274000Z",
    ]
    for e in run.events:
        for key in ("start", "end"):
            if key in e["event"]:
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", e["event"][key])


def test_file_output_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args: list[str | Path] = ["-t", "-I", shared_pcap("http_unmatched"), "-E", HTTP_8080]
    args += [
        "-E",
        f"output.file.path={out}",
        "-E",
        "output.file.filename=pb",
        "-E",
        "output.file.permissions=0640",
    ]
    for _ in range(2):
        run = wirebeat(*args, tmp=tmp_path)
        assert run.rc == 0, run
        assert run.stdout == ""
    files = sorted(out.iterdir(), key=lambda p: (len(p.name), p.name))
    assert [re.sub(r"\d{8}", "DATE", p.name) for p in files] == ["pb-DATE.ndjson", "pb-DATE-1.ndjson"]
    for p in files:
        events = [json.loads(line) for line in p.read_text().splitlines()]
        assert [e["status"] for e in events] == ["Error", "Error", "OK"]
        assert p.stat().st_mode & 0o777 == 0o640


def test_file_output_from_a_config_file(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        f"""
        packetbeat.protocols:
        - type: http
          ports: [8080]
        output.file:
          path: {tmp_path / "out"}
          rotate_every_kb: 2
          number_of_files: 2
        logging.level: info
        """,
    )
    run = wirebeat("-t", "-c", cfg, "-l", "3", "-I", shared_pcap("http_unmatched"), tmp=tmp_path)
    assert run.rc == 0, run
    files = sorted((tmp_path / "out").iterdir(), key=lambda p: (len(p.name), p.name))
    assert len(files) == 2  # 9 events of ~1.5 KB in 2 KiB files: only the newest two are kept
    names = [re.sub(r"\d{8}", "DATE", p.name) for p in files]
    assert names[0].startswith("packetbeat-DATE-") and names[1].startswith("packetbeat-DATE-")
    last = [json.loads(line) for p in files for line in p.read_text().splitlines()]
    assert [e["status"] for e in last][-1] == "OK"


def test_logging_settings_from_the_config_file_and_the_explicit_run_command(tmp_path: Path) -> None:
    base = "packetbeat.protocols: [{type: http, ports: [8080]}]\n"
    debug = write_config(
        tmp_path, base + "logging:\n  to_stderr: true\n  level: debug\n  selectors: [publish]\n"
    )
    run = wirebeat("run", "-t", "-c", debug, "-I", shared_pcap("http_unmatched"), tmp=tmp_path)
    assert run.rc == 0, run
    assert len(run.events) == 3
    assert len([m for m in run.messages("debug") if m.startswith("Publish event: ")]) == 3

    quiet = write_config(tmp_path, base + "logging.level: warning\n", name="quiet.yml")
    run = wirebeat("run", "-t", "-e", "-c", quiet, "-I", shared_pcap("http_unmatched"), tmp=tmp_path)
    assert run.rc == 0, run
    assert len(run.events) == 3
    assert run.stderr == ""

    text = write_config(tmp_path, base + "logging.to_stderr: true\nlogging.json: false\n", name="text.yml")
    run = wirebeat("-t", "-c", text, "-I", shared_pcap("http_unmatched"), tmp=tmp_path)
    assert run.rc == 0, run
    lines = run.stderr.splitlines()
    assert lines and all(
        re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\t(INFO|WARNING)\t\[\w+\]\t", x) for x in lines
    )


def test_c_is_relative_to_path_config(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "custom.yml").write_text(
        "name: from-path-config\npacketbeat.protocols: [{type: http, ports: [8080]}]\n"
    )
    run = wirebeat("export", "config", "--path.config", etc, "-c", "custom.yml", tmp=tmp_path)
    assert run.rc == 0, run
    assert yaml.safe_load(run.stdout)["name"] == "from-path-config"
    # Without -c, packetbeat.yml is looked up in path.config.
    (etc / "packetbeat.yml").write_text("name: default-name\n")
    run = wirebeat("export", "config", "--path.config", etc, tmp=tmp_path)
    assert run.rc == 0, run
    assert yaml.safe_load(run.stdout)["name"] == "default-name"


def test_loop_forever_until_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "shipper", "-t", "-l", "0", "-I", str(shared_pcap("http_unmatched"))]
    cmd += ["-E", HTTP_8080, "--path.data", str(tmp_path / "data"), "--path.logs", str(tmp_path / "logs")]
    out_path = tmp_path / "events.ndjson"
    with out_path.open("w") as out_fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out_fh, stderr=subprocess.PIPE, text=True)
    try:
        # The first event shows the replay (and so the signal handlers) has started, however
        # slowly a loaded machine starts the interpreter; then it must keep replaying.
        deadline = time.monotonic() + 60
        while "\n" not in out_path.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, "-l 0 must keep replaying"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = out_path.read_text()
    assert proc.returncode == 0, err
    (summary,) = err.splitlines()  # stopped by a signal: the replay still says what it did
    assert summary.startswith("wirebeat: replayed "), err
    events = [json.loads(line) for line in out.splitlines()]  # every line a whole event
    assert len(events) > 3 * 3
    assert {e["@timestamp"][:10] for e in events} == {"2018-04-06"}


def test_agent_id_persists_in_path_data_and_name_comes_from_the_config(tmp_path: Path) -> None:
    args: list[str | Path] = ["-t", "-I", shared_pcap("http_post"), "-E", "name=probe-9"]
    first = wirebeat(*args, tmp=tmp_path).events[0]["agent"]
    second = wirebeat(*args, tmp=tmp_path).events[0]["agent"]
    other = wirebeat(*args, tmp=tmp_path / "elsewhere").events[0]["agent"]
    assert first["id"] == second["id"] != other["id"]
    assert first["ephemeral_id"] != second["ephemeral_id"]
    assert json.loads((tmp_path / "data" / "meta.json").read_text())["uuid"] == first["id"]
    assert (first["name"], first["type"], first["version"]) == ("probe-9", "packetbeat", VERSION)
