"""Packetbeat's memcache captures give what Packetbeat 9.3 gives (system tests 0040, 0041).

The expectations (tests/protocols/memcache_expected.py) are Packetbeat 9.3.0's own events
for the 18 captures, written out once. Every event must come out with the same fields and
values once the documented differences (docs/differences.md, memcache) are applied to
Packetbeat's side: ``source.bytes``/``destination.bytes`` hold the request's and the reply's
sizes (Packetbeat swaps them), and ``event.outcome`` follows the status (Packetbeat: always
``success`` for a text reply, nothing for a binary error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, flatten, load_fields
from tests.helpers import SHARED_PCAPS, beats_pcap, decode_file
from tests.protocols.memcache_expected import EXPECTED

#: In Packetbeat's system tests but not in ../shared: read from the beats module.
FROM_BEATS = ("memcache_bin_tcp_counter_ops", "memcache_text_udp_single_store")
SKIP = ("agent.", "host.", "@metadata.", "ecs.")


def capture(name: str) -> Path:
    p = SHARED_PCAPS / f"{name}.pcap"
    return p if p.exists() else beats_pcap(name)


def events(name: str, **opts: Any) -> list[dict[str, Any]]:
    env = Envelope(beat_name="test")
    out = []
    for evt in decode_file(capture(name), {"memcache": {"ports": [11211], **opts}}):
        full = env.apply(evt)
        out.append({k: v for k, v in sorted(flatten(full).items()) if not k.startswith(SKIP)})
    out.sort(
        key=lambda e: (
            e["event.start"],
            e["source.port"],
            e.get("memcache.request.opaque", 0),
            json.dumps(e.get("memcache.request.keys")),
        )
    )
    return out


def documented(exp: dict[str, Any]) -> dict[str, Any]:
    """Packetbeat's event with wirebeat's deliberate differences applied."""
    out = dict(exp)
    for a, b in (("source", "destination"), ("client", "server")):
        sa, sb = out.pop(f"{a}.bytes", None), out.pop(f"{b}.bytes", None)
        if sb is not None:
            out[f"{a}.bytes"] = sb
        if sa is not None:
            out[f"{b}.bytes"] = sa
    if "memcache.response.type" in out:
        out["event.outcome"] = "success" if out["status"] == "OK" else "failure"
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_matches_packetbeat(name: str) -> None:
    got = events(name)
    want = [documented(e) for e in EXPECTED[name]]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w


def test_expectations_cover_the_shared_captures() -> None:
    shared = {p.stem for p in SHARED_PCAPS.glob("memcache_*.pcap")}
    local = set(FROM_BEATS)
    assert len(EXPECTED) == 18
    assert set(EXPECTED) == shared | local


def test_documented_differences_are_the_only_ones() -> None:
    """Without the transformation, only the documented fields differ."""
    allowed = {"source.bytes", "destination.bytes", "client.bytes", "server.bytes", "event.outcome"}
    changed: set[str] = set()
    for name, want in EXPECTED.items():
        for g, w in zip(events(name), want, strict=True):
            changed |= {k for k in set(g) | set(w) if g.get(k) != w.get(k)}
    assert changed <= allowed
    assert "source.bytes" in changed and "event.outcome" in changed


def test_events_fit_the_template() -> None:
    fields = load_fields()
    env = Envelope(beat_name="test")
    for name in EXPECTED:
        for evt in decode_file(capture(name), {"memcache": {"ports": [11211], "maxvalues": -1}}):
            assert check_event(env.apply(evt), fields) == []


def test_udp_quiet_requests_wait_for_the_timeout() -> None:
    """Packetbeat publishes unanswered UDP requests when udptransactiontimeout runs out;
    on a capture that ends first they come out at the end (flush)."""
    got = events("memcache_bin_udp_multi_store")
    assert [e["memcache.request.keys"] for e in got] == [["k3"], ["k2"], ["k1"]]
    assert all(e["status"] == "OK" and e["memcache.request.quiet"] for e in got)
    assert all("event.end" not in e and "memcache.response.type" not in e for e in got)


def test_values_are_base64_with_maxvalues() -> None:
    got = events("memcache_text_tcp_multi_store_load", maxvalues=-1)
    get = next(e for e in got if e.get("memcache.request.command") == "get")
    assert get["memcache.response.keys"] == ["k1", "k2", "k3"]
    assert len(get["memcache.response.values"]) == 3
    assert get["memcache.response.count_values"] == 3
    sets = [e for e in got if e.get("memcache.request.command") == "set"]
    assert all(isinstance(e["memcache.request.values"], str) for e in sets)
    got = events("memcache_text_tcp_multi_store_load", maxvalues=2, maxbytespervalue=4)
    get = next(e for e in got if e.get("memcache.request.command") == "get")
    assert len(get["memcache.response.values"]) == 2
    assert all(len(v) == 8 for v in get["memcache.response.values"])  # 4 bytes in base64
    got = events("memcache_bin_tcp_multi_store_load", maxvalues=1)
    hits = [e for e in got if e.get("memcache.response.count_values")]
    assert hits and all(len(e["memcache.response.values"]) == 1 for e in hits)
