"""Real HTTP traffic on 127.0.0.1, captured with tcpdump, through the decoder.

The workload (``http_workload``) drives a real server subprocess (``http_server.py``)
with real clients: keep-alive ``http.client`` connections (four at once), pipelined
requests over raw sockets, chunked and gzip responses, 404 and 500, HEAD, uploads with
``Expect: 100-continue``, and a 3 MiB upload and a 5 MiB download. The expected values
come from what the server logged it read and wrote for each request (``?id=``), checked
against what the client counted it sent, never from the decoder.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from capture import CaptureFile
from shipper.pipeline.envelope import Envelope
from tests.helpers import decode_packets
from tests.integration.http_workload import LiveCapture, live_http_capture  # noqa: F401 (fixture)
from tests.protocols.test_http_pcaps import run_wirebeat

pytestmark = pytest.mark.integration

#: What ``Expect: 100-continue`` gets back before the final response.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def decode(cap: LiveCapture, **opts: Any) -> tuple[dict[str, dict[str, Any]], dict[str, int], int]:
    """Events by request id (through the envelope), the decoder's counters, event count."""
    packets = [(ts, lt, frame) for ts, lt, frame, _wl in CaptureFile(str(cap.pcap))]
    events, dec = decode_packets(packets, {"http": {"ports": [cap.port], **opts}})
    env = Envelope(beat_name="test")
    by_id = {}
    for e in events:
        env.apply(e)
        (ident,) = parse_qs(e["url"]["query"])["id"]
        by_id[ident] = e
    return by_id, dict(dec.stats), len(events)


def test_workload(live_http_capture: LiveCapture) -> None:  # noqa: F811
    """At least 200 requests of every kind, in bounded time; server and client agree."""
    cap = live_http_capture
    assert len(cap.log) >= 200
    assert cap.elapsed < 30
    assert {r["id"] for r in cap.log} == set(cap.sent) == set(cap.how)
    assert Counter(cap.how.values()).keys() == {"keep-alive", "pipelined", "expect-100", "close", "large"}
    for r in cap.log:
        assert r["request_bytes"] == cap.sent[r["id"]], r
    paths = Counter(r["path"].split("/")[1] for r in cap.log)
    assert {"bytes", "chunked", "gzip", "gzipchunked", "close", "close10", "status", "upload"} <= paths.keys()
    assert {r["status"] for r in cap.log} == {200, 204, 304, 404, 500}
    assert any(r["method"] == "HEAD" for r in cap.log)
    assert {r["version"] for r in cap.log} == {"HTTP/1.1", "HTTP/1.0"}
    assert max(r["request_body_bytes"] for r in cap.log) >= 3 * 1024 * 1024
    assert max(r["response_body_bytes"] for r in cap.log) >= 5 * 1024 * 1024
    assert all(r["interim_bytes"] == len(CONTINUE) for r in cap.log if cap.how[r["id"]] == "expect-100")


def test_every_transaction(live_http_capture: LiveCapture) -> None:  # noqa: F811
    cap = live_http_capture
    events, stats, count = decode(cap)
    # Nothing lost, nothing unparsed, nothing unmatched: the capture is complete.
    connections = len({r["client_port"] for r in cap.log})
    interim = sum(1 for r in cap.log if r["interim_bytes"])
    assert stats.pop("tcp.connections") >= connections  # and the capture's probe connections
    assert stats.pop("http.interim_responses") == interim
    stats.pop("tcp.retransmits", None)  # loopback does retransmit now and then; harmless
    assert stats == {}
    assert count == len(cap.log) == len(events)
    for r in cap.log:
        e = events[r["id"]]
        http = e["http"]
        what = (r["id"], cap.how[r["id"]], r["method"], r["path"])
        assert e["method"] == http["request"]["method"] == r["method"], what
        assert e["url"]["path"] == r["path"], what
        assert e["query"] == f"{r['method']} {r['path']}", what
        assert http["response"]["status_code"] == r["status"], what
        assert e["status"] == ("OK" if r["status"] < 400 else "Error"), what
        assert "error" not in e, what
        assert http["version"] == r["version"].removeprefix("HTTP/"), what
        # Sizes: what went over the wire; a 100 Continue is not part of the response.
        assert http["request"]["bytes"] == e["source"]["bytes"] == r["request_bytes"], what
        assert http["response"]["bytes"] == e["destination"]["bytes"] == r["response_bytes"], what
        assert e["network"]["bytes"] == r["request_bytes"] + r["response_bytes"], what
        assert http["request"].get("body", {}).get("bytes", 0) == r["request_body_bytes"], what
        assert http["response"].get("body", {}).get("bytes", 0) == r["response_body_bytes"], what
        assert e["event"]["duration"] > 0, what
        assert (e["source"]["ip"], e["source"]["port"]) == ("127.0.0.1", r["client_port"]), what
        assert (e["destination"]["ip"], e["destination"]["port"]) == ("127.0.0.1", cap.port), what
        assert e["url"]["full"] == f"http://127.0.0.1:{cap.port}{r['path']}?id={r['id']}", what


def test_gzip_bodies_are_decoded_with_include_body_for(live_http_capture: LiveCapture) -> None:  # noqa: F811
    """``Content-Encoding: gzip`` (with Content-Length, and over chunked encoding): the
    event shows the text the client got after decompressing, and its length."""
    cap = live_http_capture
    events, _stats, _count = decode(cap, include_body_for=["text/plain"])
    assert len(cap.texts) >= 20
    for ident, text in cap.texts.items():
        body = events[ident]["http"]["response"]["body"]
        assert body["content"] == text.decode(), ident
        assert body["bytes"] == len(text), ident
    without, _stats, _count = decode(cap)
    for ident in cap.texts:
        assert "content" not in without[ident]["http"]["response"]["body"]


def test_through_the_cli(live_http_capture: LiveCapture, tmp_path: Path) -> None:  # noqa: F811
    """The same capture through ``wirebeat -I -t`` and ``output.file``."""
    cap = live_http_capture
    events = run_wirebeat(tmp_path, cap.pcap, {"ports": [cap.port]})
    got = {
        parse_qs(e["url"]["query"])["id"][0]: (e["http"]["request"]["bytes"], e["http"]["response"]["bytes"])
        for e in events
    }
    assert len(events) == len(cap.log)
    assert got == {r["id"]: (r["request_bytes"], r["response_bytes"]) for r in cap.log}


@pytest.mark.parametrize("seed", range(6))
def test_packet_loss_never_pairs_the_wrong_response(live_http_capture: LiveCapture, seed: int) -> None:  # noqa: F811
    """About 2% of the data packets lost: transactions go missing or come out unmatched or
    noted ``Packet loss``, but a request is never paired with another request's response.

    Known limit: the segments of HEAD requests are kept. Without its request a HEAD
    response is read with the body its Content-Length announces, and the request waiting
    at that moment gets the wrong bytes (see test_http_messages)."""
    cap = live_http_capture
    log = {r["id"]: r for r in cap.log}
    rng = random.Random(seed)
    packets = [
        (ts, lt, frame)
        for ts, lt, frame, _wl in CaptureFile(str(cap.pcap))
        if len(frame) <= 80 or b"HEAD /" in frame or rng.random() > 0.02
    ]
    events, dec = decode_packets(packets, {"http": {"ports": [cap.port]}})
    assert dec.stats["tcp.gaps"] > 0
    paired = 0
    for e in events:
        http = e["http"]
        if "request" not in http or "response" not in http:
            continue
        paired += 1
        r = log[parse_qs(e["url"]["query"])["id"][0]]
        loss = any("Packet loss" in n for n in e.get("error", {}).get("message", []))
        assert http["response"]["status_code"] == r["status"], (r, e)
        assert loss or http["response"]["bytes"] == r["response_bytes"], (r, e)
        assert loss or http["request"]["bytes"] == r["request_bytes"], (r, e)
    assert paired > len(cap.log) // 2
