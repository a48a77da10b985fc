"""Out-of-order and duplicated segments give the same HTTP events as the ordered capture.

Multi-queue NICs and ``any`` captures deliver packets of one connection slightly out of
order, and retransmissions duplicate them. Each capture here is rewritten with its packets
shuffled inside small windows (a few packets, as real reordering goes) and some of them
repeated a few packets later, with their original timestamps, through ``PcapWriter``; the
rewritten file is read back with ``CaptureFile`` and must decode to exactly the events of
the original: the shared captures, and the live capture of ``test_http_live``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile, PcapWriter
from tests.helpers import decode_file, shared_pcap
from tests.integration.http_workload import LiveCapture, live_http_capture  # noqa: F401 (fixture)
from tests.protocols import http_oracle as oracle
from tests.protocols.test_http_pcaps import CAPTURES

SEEDS = range(12)
#: Packets further apart than this in capture time are never swapped: a NIC's queues
#: reorder packets that arrive together, not across a quiet second.
MAX_SKEW_NS = 100_000_000


def bursts(packets: list[Any]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for p in packets:
        if out and abs(p[0] - out[-1][-1][0]) <= MAX_SKEW_NS:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def reorder(src: Path, dst: Path, seed: int, window: int = 4, dup_every: int = 6) -> int:
    """Write ``src`` to ``dst`` shuffled within windows of up to ``window`` packets, with
    about one packet in ``dup_every`` written again up to ``window`` packets later, never
    across a pause longer than ``MAX_SKEW_NS``. Timestamps stay the packets' own.
    Returns how many packets changed place or were duplicated."""
    rng = random.Random(seed)
    packets = list(CaptureFile(str(src)))
    linktypes = {lt for _ts, lt, _f, _wl in packets}
    assert len(linktypes) == 1
    out: list[Any] = []
    changed = 0
    for burst in bursts(packets):
        shuffled: list[Any] = []
        i = 0
        while i < len(burst):
            block = burst[i : i + rng.randint(2, window)]
            rng.shuffle(block)
            shuffled += block
            i += len(block)
        changed += sum(a is not b for a, b in zip(burst, shuffled, strict=True))
        pending: list[tuple[int, Any]] = []  # (write after this index, packet)
        for k, p in enumerate(shuffled):
            out.append(p)
            out += [q for due, q in pending if due == k]
            pending = [(due, q) for due, q in pending if due != k]
            if rng.randrange(dup_every) == 0:
                pending.append((k + rng.randint(1, window), p))
                changed += 1
        out += [q for _due, q in pending]
    with PcapWriter(str(dst), linktypes.pop()) as w:
        for ts, _lt, frame, wire_len in out:
            w.write(ts, frame, wire_len)
    return changed


def tcp_packets(pcap: Path) -> list[dict[str, str]]:
    """Per packet (0-based): TCP ports, flags and payload length, as tshark reads them."""
    out = oracle._tshark(
        pcap, [], "-T", "fields", "-E", "occurrence=f",
        "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags.str", "-e", "tcp.len",
    )  # fmt: skip
    keys = ("sport", "dport", "flags", "len")
    return [dict(zip(keys, line.split("\t"), strict=True)) for line in out.splitlines()]


def index_of(packets: list[dict[str, str]], **want: str) -> int:
    (i,) = [i for i, p in enumerate(packets) if all(p[k] == v for k, v in want.items())]
    return i


def canonical(events: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True, default=str) for e in events)


def duplicate_jitter(pcap: Path) -> int:
    """Largest time between two identical frames of the capture (0 if none repeats).

    When a capture already holds a packet twice (``wsgi_loopback`` holds every packet
    twice, microseconds apart), whichever copy is read first gives the message its time."""
    seen: dict[bytes, list[int]] = {}
    for ts, _lt, frame, _wl in CaptureFile(str(pcap)):
        seen.setdefault(frame, []).append(ts)
    return max(max(v) - min(v) for v in seen.values())


def assert_same_events(got: list[dict[str, Any]], want: list[dict[str, Any]], jitter: int = 0) -> None:
    """The same events, in any order; times may differ by ``jitter`` nanoseconds."""

    def split(e: dict[str, Any]) -> tuple[str, list[int | None]]:
        e = json.loads(json.dumps(e, default=str))
        times = [e.pop("@timestamp"), e["event"].pop("start", None), e["event"].pop("end", None)]
        return json.dumps(e, sort_keys=True), times

    a, b = sorted(map(split, got)), sorted(map(split, want))
    assert [x for x, _ in a] == [x for x, _ in b]
    for (_, ta), (_, tb) in zip(a, b, strict=True):
        for x, y in zip(ta, tb, strict=True):
            assert (x is None) == (y is None)
            assert x is None or y is None or abs(x - y) <= jitter


@pytest.mark.parametrize(
    ("name", "client_port"), [("http_basicauth", "55874"), ("http_get_2k_file", "51321")]
)
def test_syn_captured_after_the_request(tmp_path: Path, name: str, client_port: str) -> None:
    """The client's SYN is captured after the server's SYN-ACK and after its own request:
    it is that connection's SYN, not a new connection reusing the 4-tuple (which used to
    publish the request unmatched, then the response unmatched)."""
    pcap = shared_pcap(name)
    proto = {"http": {"ports": CAPTURES[name]}}
    packets = tcp_packets(pcap)
    syn = index_of(packets, sport=client_port, flags="··········S·")
    (request, *_) = [i for i, p in enumerate(packets) if p["sport"] == client_port and p["len"] != "0"]
    order = [i for i in range(len(packets)) if i != syn]
    order.insert(order.index(request) + 1, syn)
    out = tmp_path / "late-syn.pcap"
    oracle.write_order(pcap, out, order)
    (evt,) = decode_file(out, proto)
    assert evt["status"] == "OK" and "error" not in evt
    assert canonical([evt]) == canonical(decode_file(pcap, proto))


def test_rst_captured_before_the_response_it_acknowledges(tmp_path: Path) -> None:
    """The client's RST acknowledges the 200 response, but is captured before it: the
    connection stays open until those bytes are in (it used to close at once, leaving
    ``GET /someotherthing`` unmatched and dropping the response as a late duplicate)."""
    pcap = shared_pcap("http_unmatched")
    proto = {"http": {"ports": [8080]}}
    packets = tcp_packets(pcap)
    rst = index_of(packets, sport="63082", flags="·······A·R··")
    response = index_of(packets, sport="8080", dport="63082", len="113")
    order = [i for i in range(len(packets)) if i != rst]
    order.insert(order.index(response), rst)
    out = tmp_path / "early-rst.pcap"
    oracle.write_order(pcap, out, order)
    events = decode_file(out, proto)
    assert canonical(events) == canonical(decode_file(pcap, proto))
    assert [e["status"] for e in events if e.get("query") == "GET /someotherthing"] == ["OK"]


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("http_over_vlan", 1),  # the response before the request
        ("http_post", 2),  # the response's second segment before the request and the first
        ("http_url_params", 7),  # the response's last segment first
    ],
)
def test_capture_starting_mid_connection_out_of_order(tmp_path: Path, name: str, first: int) -> None:
    """These captures start mid-connection (no handshake): the first segment seen of a
    side is not necessarily its first byte. A segment that came earlier on the wire but
    later in the capture used to be dropped as a retransmission; the start of such a stream
    is now settled only after the reorder window."""
    pcap = shared_pcap(name)
    proto = {"http": {"ports": CAPTURES[name]}}
    packets = tcp_packets(pcap)
    assert not any("S" in p["flags"] for p in packets)
    order = [first] + [i for i in range(len(packets)) if i != first]
    out = tmp_path / "mid.pcap"
    oracle.write_order(pcap, out, order)
    (evt,) = decode_file(out, proto)
    assert "error" not in evt
    assert canonical([evt]) == canonical(decode_file(pcap, proto))


@pytest.mark.parametrize("name", [*sorted(CAPTURES), "gap_in_stream"])
def test_shared_capture_reordered_and_duplicated(tmp_path: Path, name: str) -> None:
    pcap = shared_pcap(name)
    proto = {"http": {"ports": CAPTURES.get(name, [8000])}}
    original = decode_file(pcap, proto)
    assert original
    jitter = duplicate_jitter(pcap)
    changed = 0
    for seed in SEEDS:
        out = tmp_path / f"{name}-{seed}.pcap"
        changed += reorder(pcap, out, seed)
        assert_same_events(decode_file(out, proto), original, jitter)
    assert changed >= len(SEEDS) // 2  # the rewritten files really differ


def test_live_capture_reordered_and_duplicated(tmp_path: Path, live_http_capture: LiveCapture) -> None:  # noqa: F811
    """The live workload of ``test_http_live`` (216 transactions over 8 connections,
    pipelining, 100-continue, multi-megabyte bodies), shuffled and duplicated."""
    cap = live_http_capture
    proto = {"http": {"ports": [cap.port]}}
    original = decode_file(cap.pcap, proto)
    assert len(original) == len(cap.log)
    for seed in range(3):
        out = tmp_path / f"live-{seed}.pcap"
        assert reorder(cap.pcap, out, seed) > 200
        assert_same_events(decode_file(out, proto), original)
