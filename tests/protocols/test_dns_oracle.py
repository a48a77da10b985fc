"""Synthetic captures (tests/protocols/dns_captures.py) give what real Packetbeat 9.3 gave
for them (tests/data/dns/*.json, recorded by gen_dns_oracle.py), field for field, except
the deliberate differences listed here (docs/differences.md, ``## DNS``).

Every record type Packetbeat formats and the others it prints as raw RDATA, EDNS options,
header flags, opcodes and rcodes, name escaping and compression, public-suffix fields,
empty and partial RDATA, notes (orphans, duplicates, EDNS mismatches, oversized answers),
malformed messages and lying counts, DNS over TCP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.helpers import decode_file
from tests.protocols.dns_captures import CAPTURES
from tests.protocols.dns_oracle import OPTIONS, build, drop_sentinel, event_key, expected, strip

FIELDS = load_fields()


def wirebeat(name: str, tmp: Path) -> list[dict[str, Any]]:
    pcap = build(name).write(tmp / f"{name}.pcap")
    env = Envelope(beat_name="dns-oracle")
    events = []
    for evt in decode_file(pcap, {"dns": OPTIONS}):
        env.apply(evt)
        assert not check_event(evt, FIELDS), check_event(evt, FIELDS)
        events.append(strip(json.loads(json.dumps(evt))))
    return drop_sentinel(events)


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        p = prefix + k
        if isinstance(v, dict):
            out.update(flat(v, p + "."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out[p + ".len"] = len(v)
            for i, x in enumerate(v):
                out.update(flat(x, f"{p}[{i}]."))
        else:
            out[p] = v
    return out


def compare(
    pb: list[dict[str, Any]], wb: list[dict[str, Any]]
) -> tuple[dict[Any, dict[str, Any]], list[Any], list[Any]]:
    """(field differences by event key, events only Packetbeat has, only wirebeat has)."""
    by_key: dict[Any, list[dict[str, Any]]] = {}
    for e in wb:
        by_key.setdefault(event_key(e), []).append(e)
    diffs: dict[Any, dict[str, Any]] = {}
    missing = []
    for e in pb:
        k = event_key(e)
        cands = by_key.get(k)
        if not cands:
            missing.append(k)
            continue
        fa = flat(e)
        best = min(cands, key=lambda c: sum(fa.get(x) != v for x, v in flat(c).items()))
        cands.remove(best)
        fb = flat(best)
        d = {
            x: (fa.get(x, "<absent>"), fb.get(x, "<absent>"))
            for x in set(fa) | set(fb)
            if fa.get(x, "<absent>") != fb.get(x, "<absent>")
        }
        if d:
            diffs[k] = d
    extra = [k for k, v in by_key.items() for _ in v]
    return diffs, missing, extra


def only_fields(diffs: dict[Any, dict[str, Any]]) -> dict[Any, set[str]]:
    return {k: set(v) for k, v in diffs.items()}


@pytest.mark.parametrize("name", [n for n in CAPTURES if n not in ("names", "tcp", "query_size")])
def test_identical_to_packetbeat(name: str, tmp_path: Path) -> None:
    pb = expected(name)
    wb = wirebeat(name, tmp_path)
    diffs, missing, extra = compare(pb, wb)
    assert not missing and not extra, (missing, extra)
    assert not diffs, json.dumps({str(k): v for k, v in diffs.items()}, indent=1)
    assert len(wb) == len(pb) > 0


def test_names_differ_only_where_documented(tmp_path: Path) -> None:
    """dns/psl-case and dns/psl-wildcard-parent: Packetbeat matches suffixes
    case-sensitively and does not treat the parent of a wildcard rule as public."""
    pb = expected("names")
    wb = wirebeat("names", tmp_path)
    diffs, missing, extra = compare(pb, wb)
    assert not missing and not extra
    got = {k[3]: v for k, v in diffs.items()}
    assert got == {
        0x400C: {"dns.question.etld_plus_one": ("kawasaki.jp", "<absent>")},
        0x4017: {
            "dns.question.etld_plus_one": ("CO.UK", "UPPER.CO.UK"),
            "dns.question.registered_domain": ("CO.UK", "UPPER.CO.UK"),
            "dns.question.top_level_domain": ("UK", "CO.UK"),
            "dns.question.subdomain": ("UPPER", "<absent>"),
        },
    }
    assert len(wb) == len(pb) == 38


def test_tcp_differs_only_where_documented(tmp_path: Path) -> None:
    """dns/tcp-messages-per-segment and dns/zone-transfer: every message of a segment is
    decoded (Packetbeat decodes one per segment), a zone transfer over several messages
    is one transaction (Packetbeat: the first message, later ones as orphans)."""
    pb = expected("tcp")
    wb = wirebeat("tcp", tmp_path)
    diffs, missing, extra = compare(pb, wb)
    pipelined = ("2023-11-14T22:13:21.001Z", "192.0.2.20", 50002)
    axfr_one_segment = ("2023-11-14T22:13:23.006Z", "192.0.2.21", 50004)
    axfr_segments = ("2023-11-14T22:13:24.007Z", "192.0.2.21", 50005)
    # Packetbeat saw only one of the three answers (as an orphan); wirebeat pairs all three.
    assert sorted(k for k in extra) == sorted(
        [
            (*pipelined, 0x8002, "answer", "OK"),
            (*pipelined, 0x8003, "answer", "OK"),
            (*pipelined, 0x8004, "answer", "OK"),
        ]
    )
    # Packetbeat's orphans: the pipelined answer, and the later messages of the transfer.
    assert sorted(missing) == sorted(
        [
            (*pipelined, 0x8003, "answer", "Error"),
            (*axfr_segments, 0x8011, "answer", "Error"),
            (*axfr_segments, 0x8011, "answer", "Error"),
        ]
    )
    fields = only_fields(diffs)
    assert set(fields) == {
        (*axfr_one_segment, 0x8010, "answer", "OK"),
        (*axfr_segments, 0x8011, "answer", "OK"),
    }
    for d in diffs.values():
        assert d["dns.answers_count"] == (5, 12)
        assert d["destination.bytes"] == (247, 542)
        assert set(d) - {"event.duration", "event.end"} == {
            "destination.bytes",
            "server.bytes",
            "network.bytes",
            "dns.answers_count",
            "dns.answers.len",
            "dns.resolved_ip",
            "related.ip",
            *(f for f in d if f.startswith("dns.answers[")),
        }
    transfer = next(e for e in wb if e["dns"]["id"] == 0x8011)
    assert [a["name"] for a in transfer["dns"]["answers"]] == [
        "zone.example",
        "zone.example",
        *(f"h{i}.zone.example" for i in range(1, 10)),
        "zone.example",
    ]
    assert transfer["event"]["duration"] == 600_000  # query → last of the three messages
    assert "error" not in transfer


def test_query_size_note_differs_only_where_documented(tmp_path: Path) -> None:
    """dns/udp-query-size-note: Packetbeat notes the EDNS query over 512 bytes, wirebeat the
    one without EDNS."""
    pb = expected("query_size")
    wb = wirebeat("query_size", tmp_path)
    diffs, missing, extra = compare(pb, wb)
    assert not missing and not extra
    assert {k[3]: v for k, v in diffs.items()} == {
        0xA001: {"error.message": ("Non-EDNS packet has size greater than 512", "<absent>")},
        0xA002: {"error.message": ("<absent>", "Non-EDNS packet has size greater than 512")},
    }
