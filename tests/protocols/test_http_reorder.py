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
from tests.protocols import http_oracle as oracle
from tests.protocols.test_http_pcaps import CAPTURES

SEEDS = range(12)


def reorder(src: Path, dst: Path, seed: int, window: int = 4, dup_every: int = 6) -> int:
    """Write ``src`` to ``dst`` shuffled within windows of up to ``window`` packets, with
    about one packet in ``dup_every`` written again up to ``window`` packets later.
    Returns how many packets changed place or were duplicated."""
    rng = random.Random(seed)
    packets = list(CaptureFile(str(src)))
    linktypes = {lt for _ts, lt, _f, _wl in packets}
    assert len(linktypes) == 1
    shuffled: list[Any] = []
    i = 0
    while i < len(packets):
        block = packets[i : i + rng.randint(2, window)]
        rng.shuffle(block)
        shuffled += block
        i += len(block)
    out: list[Any] = []
    pending: list[tuple[int, Any]] = []  # (write after this index, packet)
    dups = 0
    for k, p in enumerate(shuffled):
        out.append(p)
        out += [q for due, q in pending if due == k]
        pending = [(due, q) for due, q in pending if due != k]
        if rng.randrange(dup_every) == 0:
            pending.append((k + rng.randint(1, window), p))
            dups += 1
    out += [q for _due, q in pending]
    moved = sum(a is not b for a, b in zip(packets, shuffled, strict=True))
    with PcapWriter(str(dst), linktypes.pop()) as w:
        for ts, _lt, frame, wire_len in out:
            w.write(ts, frame, wire_len)
    return moved + dups


def write_order(src: Path, dst: Path, order: list[int]) -> None:
    """Write the packets of ``src`` (0-based indexes) in ``order``, timestamps unchanged."""
    packets = list(CaptureFile(str(src)))
    with PcapWriter(str(dst), packets[0][1]) as w:
        for i in order:
            ts, _lt, frame, wire_len = packets[i]
            w.write(ts, frame, wire_len)


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
    write_order(pcap, out, order)
    (evt,) = decode_file(out, proto)
    assert evt["status"] == "OK" and "error" not in evt
    assert canonical([evt]) == canonical(decode_file(pcap, proto))
