"""Pairing truth: every transaction is either right or flagged, never silently wrong.

``benchmarks/pairing_truth.py`` synthesizes connections whose requests carry unique ids
echoed by their responses, damages the captures (5 % of packets lost, 30 % reordered
within 4 packets, handshakes missing, captures starting mid-connection) and classifies
every event. Here a bounded version runs for several seeds per protocol; the larger
table is the benchmark's. Also the regression cases of issue 11, points 5 and 6: a
capture that starts with a response, and a client whose ephemeral port is another
protocol's server port.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.pairing_truth import PROTOCOLS, Damage, run
from benchmarks.synth import ACK, PSH, SYN, Conversation, ip_frame, tcp_segment
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

SEEDS = (1, 2, 3)
CONNS = 60


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_no_silently_wrong_pairs_under_loss_and_reordering(name: str, seed: int) -> None:
    t = run(PROTOCOLS[name], seed, CONNS)
    assert t.wrong == 0, t.examples
    assert t.right > t.transactions // 2  # the damage leaves most transactions intact


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_no_silently_wrong_pairs_with_the_handshake_and_loss(name: str) -> None:
    """Without captures picked up mid-way (the one undecidable case, see the benchmark),
    heavier damage: 10 % loss, half the packets reordered."""
    t = run(PROTOCOLS[name], 7, CONNS, Damage(loss=0.10, reorder=0.5, mid_connection=0, no_handshake=0.3))
    assert t.wrong == 0, t.examples


def decode(frames: list[tuple[int, bytes]], **protocols: list[int]) -> list[dict[str, Any]]:
    dec = Decoder(build_plugins({n: default_config(n, ports=p) for n, p in protocols.items()}))
    out: list[dict[str, Any]] = []
    for ts, frame in frames:
        out += dec.feed(ts, 1, frame)
    return out + dec.flush()


def http_exchange(uid: int) -> tuple[bytes, bytes]:
    return PROTOCOLS["http"].exchange(uid)


def segment(ts: int, from_client: bool, seq: int, ack: int, payload: bytes) -> tuple[int, bytes]:
    c, s = ("10.0.0.1", 40000), ("10.0.0.2", 80)
    src, dst = (c, s) if from_client else (s, c)
    return ts, ip_frame(src[0], dst[0], 6, tcp_segment(src[1], dst[1], seq, ack, ACK | PSH, payload))


def test_capture_starting_with_a_response_pairs_the_rest_right() -> None:
    """Issue 11, point 5: no SYN; the capture starts with the request ``/rq1x``, sent
    before the response to an earlier request (never captured) arrived, then that
    response. The response comes out unmatched and every later pair is right (they were
    shifted by one for the rest of the connection, with no note)."""
    pairs = [http_exchange(u) for u in range(4)]
    c, s = 2000, 5000  # the first request byte captured, the first response byte
    frames = []
    ts = 1_700_000_000_000_000_000
    # r1 was sent before s0 arrived (acknowledges server bytes up to 5000 only); s0 was
    # sent before r1 arrived (acknowledges client bytes up to 2000): s0 is not r1's answer.
    (r1, s1), s0 = pairs[1], pairs[0][1]
    frames.append(segment(ts, True, c, s, r1))
    frames.append(segment(ts + 1000, False, s, c, s0))
    c, s = c + len(r1), s + len(s0)
    frames.append(segment(ts + 2000, False, s, c, s1))
    s += len(s1)
    for rq, rs in pairs[2:]:
        ts += 3000
        frames.append(segment(ts, True, c, s, rq))
        c += len(rq)
        frames.append(segment(ts + 1000, False, s, c, rs))
        s += len(rs)
    events = decode(frames, http=[80])
    got = [(e.get("url", {}).get("path"), e["http"].get("response", {}).get("status_phrase")) for e in events]
    assert got == [(None, "rs0x"), ("/rq1x", "rs1x"), ("/rq2x", "rs2x"), ("/rq3x", "rs3x")]
    assert events[0]["error"]["message"] == ["Unmatched response"]
    assert all("error" not in e for e in events[1:])


def client_on_3306_to_http(handshake: bool) -> list[tuple[int, bytes]]:
    conv = Conversation(("10.0.0.1", 3306), ("10.0.0.2", 80))
    if handshake:
        conv.handshake()
    for uid in (1, 2):
        rq, rs = http_exchange(uid)
        conv.send(0, rq).send(1, rs)
    return conv.frames


def test_protocol_from_the_syn_not_the_source_port() -> None:
    """Issue 11, point 6: a client whose ephemeral port is 3306 talks HTTP to port 80;
    with MySQL and HTTP both enabled, the SYN says 80 is the server: HTTP (the MySQL
    decoder used to get it, from the source port)."""
    events = decode(client_on_3306_to_http(True), http=[80], mysql=[3306])
    assert [e["type"] for e in events] == ["http", "http"]
    assert [e["url"]["path"] for e in events] == ["/rq1x", "/rq2x"]
    assert {e["destination"]["port"] for e in events if "url" in e} == {80}


@pytest.mark.parametrize("server_first", [False, True])
def test_protocol_without_syn_from_the_configured_server_port(server_first: bool) -> None:
    """Without a SYN, both ports configured: the well-known port is the server's, whichever
    side the first packet captured comes from."""
    frames = client_on_3306_to_http(False)
    if server_first:
        frames = frames[1:]  # starts with the first response
    events = decode(frames, http=[80], mysql=[3306])
    assert {e["type"] for e in events} == {"http"}
    assert {e["destination"]["port"] for e in events if "url" in e} == {80}
    assert [e["url"]["path"] for e in events if "url" in e][-1] == "/rq2x"


def test_syn_to_an_unconfigured_port_is_not_decoded() -> None:
    """The SYN goes to port 8081, which no protocol claims: the connection is not taken for
    MySQL because the client's port is 3306."""
    conv = Conversation(("10.0.0.1", 3306), ("10.0.0.2", 8081)).handshake()
    rq, rs = http_exchange(1)
    conv.send(0, rq).send(1, rs)
    dec = Decoder(build_plugins({"mysql": default_config("mysql")}))
    events = []
    for ts, frame in conv.frames:
        events += dec.feed(ts, 1, frame)
    events += dec.flush()
    assert events == []
    assert dec.stats["tcp.unknown_port_packets"] >= 1
    assert SYN  # (imported for readers: the handshake above starts with it)
