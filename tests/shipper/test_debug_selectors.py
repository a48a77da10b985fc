"""``-d SELECTORS`` as libbeat's: debug lines for the named selectors only (``*`` for all),
what Packetbeat logs under them (``http``: "Received request with tuple ...", "Received
response with tuple ...", "HTTP transaction completed", parse problems; ``tcp``: the
connection table; ``publish``: every event; ``publisher``: acknowledged batches); an
unknown selector is harmless; with no selector a protocol builds no debug line at all."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.synth import Conversation
from capture import CaptureFile, PcapWriter
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config
from shipper.agent.logs import setup_logging
from tests.helpers import shared_pcap
from tests.shipper.shiprun import Run, wirebeat

PCAP = shared_pcap("http_url_params")
TUPLE = "tcp 192.168.238.50:51021 -> 107.170.1.22:80 #1"


def debug_lines(run: Run) -> Counter[tuple[str, str]]:
    assert run.rc == 0, run
    return Counter((r["log.logger"], r["message"]) for r in run.logs if r["log.level"] == "debug")


def run_with(tmp_path: Path, selectors: str, pcap: Path = PCAP, *extra: str) -> Run:
    return wirebeat("-e", "-d", selectors, "-t", "-I", pcap, *extra, tmp=tmp_path)


def test_d_http_logs_what_packetbeat_logs_for_http_and_nothing_else(tmp_path: Path) -> None:
    lines = debug_lines(run_with(tmp_path, "http"))
    assert set(lines) == {
        ("http", f"Received request with tuple: {TUPLE} (GET /dashboard/transactions?input=packetbeat&src_ip=192.35.243.1)"),
        ("http", f"Received response with tuple: {TUPLE} (status 404)"),
        ("http", f"HTTP transaction completed on {TUPLE}"),
    }  # fmt: skip


def test_d_tcp_publish_publisher_and_several_at_once(tmp_path: Path) -> None:
    tcp = debug_lines(run_with(tmp_path, "tcp"))
    assert set(tcp) == {("tcp", f"new http connection {TUPLE}"), ("tcp", f"connection {TUPLE} ends (flush)")}
    publish = debug_lines(run_with(tmp_path, "publish"))
    assert {k for k, _ in publish} == {"publish"} and all(
        m.startswith("Publish event: {") for _, m in publish
    )
    publisher = debug_lines(run_with(tmp_path, "publisher"))
    assert set(publisher) == {("publisher", "console: 1 of a batch of 1 events acknowledged")}
    both = debug_lines(run_with(tmp_path, "tcp,http"))
    assert {k for k, _ in both} == {"tcp", "http"}
    repeated = debug_lines(wirebeat("-e", "-d", "tcp", "-d", "http", "-t", "-I", PCAP, tmp=tmp_path))
    assert repeated == both


def test_d_star_enables_every_selector(tmp_path: Path) -> None:
    loggers = {k for k, _ in debug_lines(run_with(tmp_path, "*"))}
    assert {"http", "tcp", "publish", "publisher"} <= loggers


def test_an_unknown_selector_is_harmless(tmp_path: Path) -> None:
    run = run_with(tmp_path, "nosuchselector")
    assert debug_lines(run) == Counter() and len(run.events) == 1
    plain = wirebeat("-t", "-I", PCAP, tmp=tmp_path)
    same = wirebeat("-d", "nosuchselector", "-t", "-I", PCAP, tmp=tmp_path)
    assert [e["url"] for e in plain.events] == [e["url"] for e in same.events]


def test_other_protocols_log_under_their_own_selector(tmp_path: Path) -> None:
    mysql = shared_pcap("mysql_long_result")
    lines = debug_lines(run_with(tmp_path, "mysql", mysql))
    assert lines and {k for k, _ in lines} == {"mysql"}
    assert all(m.startswith("MYSQL transaction completed on tcp ") for _, m in lines)
    assert debug_lines(run_with(tmp_path, "mysql")) == Counter()  # no MySQL on this capture


def garbled_http(path: Path) -> Path:
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 80), ts=1_700_000_000 * 10**9).handshake()
    conv.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conv.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conv.send(0, b"\x00\x01\x02 this is no HTTP at all\r\n\r\n")
    conv.close()
    with PcapWriter(str(path), 1) as w:
        w.write_all(conv.frames)
    return path


def test_d_http_says_when_a_message_cannot_be_understood(tmp_path: Path) -> None:
    lines = debug_lines(run_with(tmp_path, "http", garbled_http(tmp_path / "garbled.pcap")))
    problems = [m for k, m in lines if "Couldn't understand HTTP message" in m]
    assert problems == [
        "Couldn't understand HTTP message from the client on tcp 10.0.0.1:40000 -> 10.0.0.2:80 #1 "
        f"({problems[0].rsplit('(', 1)[1]}"
    ], lines
    assert ("http", "HTTP transaction completed on tcp 10.0.0.1:40000 -> 10.0.0.2:80 #1") in lines


@pytest.fixture
def no_debug_logging() -> object:
    setup_logging(level="info", to_stderr=True)
    yield
    setup_logging(level="info", to_stderr=True)


def test_without_selectors_no_debug_line_is_built(
    no_debug_logging: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cheap when off: no protocol or TCP debug call happens at all (not even one that
    logging would discard), so no argument is formatted."""
    calls: list[str] = []
    monkeypatch.setattr(logging.Logger, "debug", lambda self, *a, **k: calls.append(self.name))
    plugins = build_plugins({"http": default_config("http"), "mysql": default_config("mysql")})
    assert not any(p.debug for p in plugins)
    decoder = Decoder(plugins)
    events = []
    for pcap in (PCAP, shared_pcap("mysql_long_result")):
        with CaptureFile(str(pcap)) as cap:
            for ts, linktype, frame, _wire in cap:
                events += decoder.feed(ts, linktype, frame)
    events += decoder.flush()
    assert events and calls == []
    # And with -d http, the same run does call it (the check above is not vacuous).
    setup_logging(level="info", selectors=["http"], to_stderr=True)
    plugins = build_plugins({"http": default_config("http")})
    assert plugins[0].debug
    decoder = Decoder(plugins)
    with CaptureFile(str(PCAP)) as cap:
        for ts, linktype, frame, _wire in cap:
            decoder.feed(ts, linktype, frame)
    decoder.flush()
    assert set(calls) == {"http"}
