"""A synthesized capture with one case of each deliberate SIP difference (docs/differences.md,
SIP): folded headers, white space before a colon, SDP with bare LF and an upper-case
Content-Type, an SDP owner given by host name, a response without Content-Length, a
Content-Length with trailing junk, and over TCP a message in 100-byte segments, two messages
in one segment and a message followed by the start of the next.

What wirebeat makes of it is checked here; the capture is also registered for the Packetbeat
comparison (tests/oracle/test_live_recordings.py), where every difference must be explained by
the entry meant for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.synth import Conversation, ip_frame, udp_datagram
from capture.pcapwriter import PcapWriter
from tests.helpers import decode_file
from tests.oracle.recordings import record_for_oracle

TS = 1_700_000_000_000_000_000
C, S = ("10.0.0.1", 5062), ("10.0.0.2", 5060)


def m(start: str, *headers: str, body: bytes = b"", cl: bool = True) -> bytes:
    lines = [start, *headers]
    if cl:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def dialog(n: int, cid: str, transport: str = "UDP", port: int = 5062) -> tuple[str, ...]:
    return (
        f"Via: SIP/2.0/{transport} 10.0.0.1:{port};branch=z9hG4bK{n}",
        "To: <sip:bob@h>",
        "From: <sip:a@h>;tag=1",
        f"Call-ID: {cid}",
    )


UDP = [
    m("OPTIONS sip:bob@h SIP/2.0", *dialog(1, "fold@h")[:1], "To: Bob", " <sip:bob@h>", "From: <sip:a@h>;tag=1",
      "Call-ID: fold@h", "CSeq: 1 OPTIONS"),
    m("OPTIONS sip:bob@h SIP/2.0", *dialog(2, "ws@h")[:3], "Call-ID : ws@h", "CSeq : 2 OPTIONS"),
    m("INVITE sip:bob@h SIP/2.0", *dialog(3, "lf@h"), "CSeq: 3 INVITE", "Content-Type: Application/SDP",
      body=b"v=0\no=- 1 2 IN IP4 host.example.com\ns=x\nc=IN IP4 192.0.2.1\nt=0 0\n"),
    m("INVITE sip:bob@h SIP/2.0", *dialog(4, "owner@h"), "CSeq: 4 INVITE", "Content-Type: application/sdp",
      body=b"v=0\r\no=- 1 2 IN IP4 host.example.com\r\ns=x\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"),
    m("SIP/2.0 200 OK", *dialog(4, "nocl@h"), "CSeq: 4 INVITE", cl=False),
    m("MESSAGE sip:bob@h SIP/2.0", *dialog(5, "junk@h"), "CSeq: 5 MESSAGE", "Content-Type: text/plain",
      "Content-Length: 5abc", body=b"hello", cl=False),
]  # fmt: skip
TCP = [
    m("OPTIONS sip:bob@h SIP/2.0", *dialog(10 + i, "tcp@h", "TCP", 40000), f"CSeq: {i} OPTIONS")
    for i in range(1, 6)
]


def write_capture(path: Path) -> None:
    w = PcapWriter(str(path), 1)
    ts = TS
    for x in UDP:
        src, dst = (S, C) if x.startswith(b"SIP/") else (C, S)
        w.write(ts, ip_frame(src[0], dst[0], 17, udp_datagram(src[1], dst[1], x)))
        ts += 10_000_000
    conv = Conversation(("10.0.0.1", 40000), S, ts=ts, mss=100).handshake()
    conv.send(0, TCP[0], ack=False)  # in 100-byte segments
    conv.mss = 1448
    conv.send(0, TCP[1] + TCP[2], ack=False)
    conv.send(0, TCP[3] + TCP[4][:50], ack=False)
    conv.send(0, TCP[4][50:], ack=False)
    w.write_all(conv.close().frames)
    w.close()


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    pcap = tmp_path_factory.mktemp("sip-differences") / "sip-differences.pcap"
    write_capture(pcap)
    record_for_oracle(pcap, [{"type": "sip", "ports": [5060]}], label="sip-differences (synthesized)")
    return decode_file(pcap, {"sip": {"ports": [5060]}})


def by_call(events: list[dict[str, Any]], cid: str) -> list[dict[str, Any]]:
    return [e for e in events if e["sip"].get("call_id") == cid]


def test_every_message_is_an_event(events: list[dict[str, Any]]) -> None:
    assert len(events) == len(UDP) + len(TCP)
    tcp = by_call(events, "tcp@h")
    assert [e["event"]["original"].encode() for e in tcp] == TCP
    assert {e["network"]["transport"] for e in tcp} == {"tcp"}


def test_folded_and_spaced_headers(events: list[dict[str, Any]]) -> None:
    (folded,) = by_call(events, "fold@h")
    assert (
        folded["sip"]["to"]["uri"]["original"] == "sip:bob@h" and folded["sip"]["to"]["display_info"] == "Bob"
    )
    assert folded["sip"]["from"]["tag"] == "1"
    (spaced,) = by_call(events, "ws@h")
    assert spaced["sip"]["cseq"] == {"code": 2, "method": "OPTIONS"}


def test_sdp_cases(events: list[dict[str, Any]]) -> None:
    (lf,) = by_call(events, "lf@h")
    assert lf["sip"]["sdp"]["version"] == "0" and lf["sip"]["sdp"]["connection"]["address"] == "192.0.2.1"
    (owner,) = by_call(events, "owner@h")
    assert owner["sip"]["sdp"]["owner"] == {"session_id": "1", "version": "2"}
    assert owner["related"]["ip"] == ["10.0.0.1", "10.0.0.2"]


def test_lengths(events: list[dict[str, Any]]) -> None:
    (nocl,) = by_call(events, "nocl@h")
    assert nocl["sip"]["code"] == 200 and "content_length" not in nocl["sip"]
    (junk,) = by_call(events, "junk@h")
    assert "content_length" not in junk["sip"] and junk["event"]["original"].endswith("hello")
