"""AMQP events against Packetbeat 9.3's, field for field.

The shared captures (Packetbeat's system tests 0052 and 0053) and the beats module's
amqp_publish.pcap (0051) must give exactly Packetbeat's events, whose values are written out
below. ``tests/data/amqp/cases.<variant>.packetbeat.
ndjson`` are the events the real Packetbeat 9.3.0 wrote for ``cases.pcap`` (18 connections,
one scenario each, made by ``tests/data/amqp/make_cases.py``) with three option sets. Every
field of every event must be equal, except the deliberate differences listed per connection
here, each documented in ``docs/differences.md`` (AMQP).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.helpers import ROOT, beats_pcap, decode_file, shared_pcap

DATA = ROOT / "tests" / "data" / "amqp"
IGNORED = ("agent.", "host.", "ecs.", "@metadata.version")
MISSING = "<missing>"

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "all": {"send_request": True, "send_response": True, "hide_connection_information": False},
    "raw": {
        "send_request": True,
        "send_response": True,
        "parse_headers": False,
        "parse_arguments": False,
        "max_body_length": 10,
    },
}

#: Per connection of cases.pcap (client port): per event ((action, occurrence)), the fields
#: allowed to differ, with the slug of their section in docs/differences.md.
FIELDS: dict[int, dict[tuple[str, int], dict[str, str]]] = {
    40010: {("basic.publish", 1): {"amqp.headers": "table-values"}},
    40011: {},
    40012: {
        ("basic.publish", 1): {"request": "pipelined-bodies"},
        ("basic.publish", 3): {"request": "pipelined-bodies"},
    },
    40013: {
        # Packetbeat pairs channel 2's request with channel 1's reply.
        ("queue.declare", 0): {
            "amqp.queue": "per-channel-pairing",
            "amqp.message-count": "per-channel-pairing",
            "event.end": "per-channel-pairing",
            "event.duration": "per-channel-pairing",
        },
        ("basic.deliver", 0): {
            "source.bytes": "message-leftovers",
            "client.bytes": "message-leftovers",
            "network.bytes": "message-leftovers",
            "request": "message-leftovers",
        },
    },
    40015: {("basic.publish", 1): {"request": "pipelined-bodies"}},
    40016: {("queue.unbind", 0): {"amqp.arguments": "queue-unbind-arguments"}},
    40017: {("queue.declare", 0): {"error.message": "argument-notes"}},
}
#: Events only wirebeat reports: client port → {(action, occurrence among wirebeat's): slug}.
#: (The occurrences in FIELDS count the events both report.)
EXTRA: dict[int, dict[tuple[str, int], str]] = {
    40008: {("connection.close", 0): "in-flight-close"},
    40009: {("confirm.select", 0): "confirm"},
    40010: {("basic.publish", 2): "short-int-tables"},  # not in "raw": no headers decoded
    40011: {("basic.publish", 0): "empty-bodies", ("basic.deliver", 0): "empty-bodies"},
    40013: {("queue.declare", 0): "per-channel-pairing", ("queue.purge", 0): "message-leftovers"},
    40014: {
        ("queue.declare", 0): "stream-recovery",
        ("basic.deliver", 0): "stream-recovery",
        ("queue.declare", 1): "stream-recovery",  # not in "all": basic.qos is decoded there
    },
}
#: Events only Packetbeat reports: client port → {(action, occurrence among Packetbeat's): slug}.
MISSING_EVENTS: dict[int, dict[tuple[str, int], str]] = {
    40012: {("basic.publish", 3): "pipelined-bodies"},
}
#: Per variant, on every connection.
EVERYWHERE: dict[str, dict[tuple[str, int], dict[str, str]]] = {}


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and not prefix.startswith("amqp."):
            out.update(flat(v, f"{prefix}{k}."))
        elif k == "user.id":  # Packetbeat writes the dotted key
            out["user.id"] = v
        else:
            out[prefix + k] = v
    return out


def client_port(e: dict[str, Any]) -> int:
    return int(e["source.port"] if e["destination.port"] == 5672 else e["destination.port"])


def action(e: dict[str, Any]) -> str:
    return str(e["event.action"]).removeprefix("amqp.")


def by_connection(events: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        out[client_port(e)].append(e)
    return out


def numbered(events: list[dict[str, Any]]) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    """Each event keyed by its action and its occurrence among the events of that action."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for e in events:
        a = action(e)
        out.append(((a, seen[a]), e))
        seen[a] += 1
    return out


def without(
    events: list[dict[str, Any]], drop: set[tuple[str, int]]
) -> tuple[dict[tuple[str, int], dict[str, Any]], set[tuple[str, int]]]:
    """The events but those in ``drop``, renumbered; and which of ``drop`` were there."""
    kept = [e for k, e in numbered(events) if k not in drop]
    found = {k for k, _ in numbered(events) if k in drop}
    return dict(numbered(kept)), found


def packetbeat(variant: str) -> dict[int, list[dict[str, Any]]]:
    path = DATA / f"cases.{variant}.packetbeat.ndjson"
    return by_connection([flat(json.loads(line)) for line in path.read_text().splitlines() if line.strip()])


def wirebeat_raw(pcap: Path, **opts: Any) -> list[dict[str, Any]]:
    env = Envelope(beat_name="test")
    return [env.apply(e) for e in decode_file(pcap, {"amqp": {"ports": [5672], **opts}})]


def wirebeat(pcap: Path, **opts: Any) -> list[dict[str, Any]]:
    # Through JSON, as an output would write it.
    return [flat(json.loads(json.dumps(e, default=str))) for e in wirebeat_raw(pcap, **opts)]


def diff(pb: dict[str, Any], wb: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        k: (pb.get(k, MISSING), wb.get(k, MISSING))
        for k in sorted(set(pb) | set(wb))
        if not k.startswith(IGNORED) and pb.get(k, MISSING) != wb.get(k, MISSING)
    }


def documented_slugs() -> set[str]:
    text = (ROOT / "docs" / "differences.md").read_text()
    return set(re.findall(r"^### amqp/([a-z0-9-]+)$", text, re.M))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cases_match_packetbeat(variant: str) -> None:
    pb = packetbeat(variant)
    wb = by_connection(wirebeat(DATA / "cases.pcap", **VARIANTS[variant]))
    assert set(wb) | set(pb) <= set(range(40001, 40019))
    checked = 0
    for port in set(wb) | set(pb):
        extra = set(EXTRA.get(port, {}))
        if variant == "raw" and port == 40010:
            extra = set()
        if variant == "all" and port == 40014:
            extra.discard(("queue.declare", 1))
        missing = set(MISSING_EVENTS.get(port, {}))
        expected, pb_only = without(pb.get(port, []), missing)
        got, wb_only = without(wb.get(port, []), extra)
        assert wb_only == extra, (port, "events only wirebeat has", extra - wb_only)
        assert pb_only == missing, (port, "events only Packetbeat has", missing - pb_only)
        assert set(got) == set(expected), (port, set(got) ^ set(expected))
        for k, e in expected.items():
            allowed = {**EVERYWHERE.get(variant, {}).get(k, {}), **FIELDS.get(port, {}).get(k, {})}
            d = diff(e, got[k])
            assert set(d) <= set(allowed), (port, k, {f: v for f, v in d.items() if f not in allowed})
            checked += len(e)
    assert checked > 2000


def test_every_difference_is_documented() -> None:
    slugs: set[str] = set()
    for table in (EXTRA, MISSING_EVENTS):
        for per in table.values():
            slugs |= set(per.values())
    for fields in [*FIELDS.values(), *EVERYWHERE.values()]:
        for per_event in fields.values():
            slugs |= set(per_event.values())
    assert slugs <= documented_slugs()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_field_is_defined(variant: str) -> None:
    fields = load_fields()
    problems = []
    for evt in wirebeat_raw(DATA / "cases.pcap", **VARIANTS[variant]):
        problems += check_event(evt, fields)
    assert not problems, problems[:20]


# -- the shared captures: Packetbeat 9.3's events, written out ------------------------------


def _pb(
    ts: str, action: str, sport: int, dport: int, src: int | None, dst: int | None, **kw: Any
) -> dict[str, Any]:
    e = {
        "@timestamp": ts,
        "event.action": "amqp." + action,
        "method": action,
        "source.port": sport,
        "destination.port": dport,
        "source.bytes": src,
        "destination.bytes": dst,
    }
    e.update(kw)
    return e


CHANNEL_ERROR = [
    _pb(
        "2016-01-26T20:17:22.964Z",
        "exchange.declare",
        34445,
        5672,
        33,
        None,
        status="OK",
        duration=None,
        amqp={
            "durable": True,
            "exchange": "titres",
            "exchange-type": "fanout",
            "no-wait": True,
            "passive": False,
        },
    ),
    _pb(
        "2016-01-26T20:17:22.964Z",
        "queue.declare",
        34445,
        5672,
        28,
        29,
        status="OK",
        duration=41_609_000,
        amqp={
            "auto-delete": False,
            "consumer-count": 0,
            "durable": False,
            "exclusive": True,
            "message-count": 0,
            "no-wait": False,
            "passive": False,
            "queue": "my_queue",
        },
    ),
    _pb(
        "2016-01-26T20:17:23.006Z",
        "channel.close",
        5672,
        34445,
        62,
        12,
        status="Error",
        duration=91_000,
        amqp={
            "class-id": 50,
            "method-id": 20,
            "reply-code": 404,
            "reply-text": "NOT_FOUND - no exchange 'plop' in vhost '/'",
        },
    ),
]

CTAG = "ctag-/tmp/go-build422534415/command-line-arguments/_obj/exe/receive_logs-1"
GEN = "amq.gen-Iq95Zja_wgS1oeYQv1bfSg"
DECLARE_LOGS = {
    "durable": True,
    "exchange": "logs",
    "exchange-type": "fanout",
    "no-wait": False,
    "passive": False,
}
EMIT_RECEIVE = [
    _pb(
        "2016-01-25T20:19:36.656Z",
        "exchange.declare",
        58979,
        5672,
        31,
        12,
        status="OK",
        duration=118_000,
        amqp=DECLARE_LOGS,
    ),
    _pb(
        "2016-01-25T20:19:36.656Z",
        "queue.declare",
        58979,
        5672,
        20,
        51,
        status="OK",
        duration=788_000,
        amqp={
            "auto-delete": False,
            "consumer-count": 0,
            "durable": False,
            "exclusive": True,
            "message-count": 0,
            "no-wait": False,
            "passive": False,
            "queue": GEN,
        },
    ),
    _pb(
        "2016-01-25T20:19:36.657Z",
        "queue.bind",
        58979,
        5672,
        56,
        12,
        status="OK",
        duration=386_000,
        amqp={"exchange": "logs", "no-wait": False, "queue": GEN, "routing-key": ""},
    ),
    _pb(
        "2016-01-25T20:19:36.658Z",
        "basic.consume",
        58979,
        5672,
        125,
        87,
        status="OK",
        duration=137_000,
        amqp={
            "consumer-tag": CTAG,
            "exclusive": False,
            "no-ack": True,
            "no-local": False,
            "no-wait": False,
            "queue": GEN,
        },
    ),
    _pb(
        "2016-01-25T20:19:49.257Z",
        "exchange.declare",
        58980,
        5672,
        31,
        12,
        status="OK",
        duration=136_000,
        amqp=DECLARE_LOGS,
    ),
    _pb(
        "2016-01-25T20:19:49.258Z",
        "basic.publish",
        58980,
        5672,
        5,
        None,
        status="OK",
        duration=None,
        amqp={
            "content-type": "text/plain",
            "exchange": "logs",
            "immediate": False,
            "mandatory": False,
            "routing-key": "",
        },
    ),
    _pb(
        "2016-01-25T20:19:49.258Z",
        "basic.deliver",
        58979,
        5672,
        None,
        5,
        status="OK",
        duration=None,
        amqp={
            "consumer-tag": CTAG,
            "content-type": "text/plain",
            "delivery-tag": 1,
            "exchange": "logs",
            "redelivered": False,
            "routing-key": "",
        },
    ),
]


def order(e: dict[str, Any]) -> tuple[str, str]:
    return e["@timestamp"], e["method"]


def summary(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "@timestamp": e["@timestamp"],
        "event.action": e["event.action"],
        "method": e["method"],
        "source.port": e["source.port"],
        "destination.port": e["destination.port"],
        "source.bytes": e.get("source.bytes"),
        "destination.bytes": e.get("destination.bytes"),
        "status": e["status"],
        "duration": e.get("event.duration"),
        "amqp": {k[5:]: v for k, v in e.items() if k.startswith("amqp.")},
    }


@pytest.mark.parametrize(
    ("name", "expected"), [("amqp_channel_error", CHANNEL_ERROR), ("amqp_emit_receive", EMIT_RECEIVE)]
)
def test_shared_captures_identical(name: str, expected: list[dict[str, Any]]) -> None:
    events = sorted(wirebeat(shared_pcap(name)), key=order)
    assert [summary(e) for e in events] == sorted(expected, key=order)
    for e in events:
        assert e["type"] == "amqp" and e["network.protocol"] == "amqp" and e["network.transport"] == "tcp"
        assert e["source.ip"] == e["destination.ip"] == "127.0.0.1"
        assert e["event.start"] == e["@timestamp"] and e["event.dataset"] == "amqp"
        assert "request" not in e and "response" not in e and "error.message" not in e


def test_shared_captures_with_bodies() -> None:
    """send_request/send_response: the short request texts, OK, the body."""
    events = wirebeat(shared_pcap("amqp_emit_receive"), send_request=True, send_response=True)
    events.sort(key=order)
    got = [(e["method"], e["request"], e["response"]) for e in events]
    assert got == [
        ("exchange.declare", "exchange.declare logs", "OK"),
        ("queue.declare", "queue.declare", "OK"),  # a server-named queue: empty in the request
        ("queue.bind", f"queue.bind {GEN} logs", "OK"),
        ("basic.consume", f"basic.consume {GEN}", "OK"),
        ("exchange.declare", "exchange.declare logs", "OK"),
        ("basic.deliver", "", "hello"),
        ("basic.publish", "hello", ""),
    ]
    events = wirebeat(shared_pcap("amqp_channel_error"), send_request=True, send_response=True)
    got = [(e["method"], e["request"], e["response"]) for e in events]
    assert got == [
        ("exchange.declare", "exchange.declare titres", ""),
        ("queue.declare", "queue.declare my_queue", "OK"),
        ("channel.close", "channel.close", "OK"),
    ]


def test_packetbeat_publish_capture() -> None:
    """Packetbeat's system test 0051 (amqp_publish.pcap, read from the beats module), with
    send_request as that test has it: Packetbeat's two events."""
    events = sorted(wirebeat(beats_pcap("amqp_publish"), send_request=True), key=order)
    assert [summary(e) for e in events] == [
        _pb(
            "2016-01-26T19:52:14.730Z",
            "basic.publish",
            34222,
            5672,
            5,
            None,
            status="OK",
            duration=None,
            amqp={
                "content-type": "text/plain",
                "routing-key": "hello",
                "mandatory": False,
                "immediate": False,
            },
        ),
        _pb(
            "2016-01-26T19:52:14.730Z",
            "queue.declare",
            34222,
            5672,
            25,
            26,
            status="OK",
            duration=454_000,
            amqp={
                "queue": "hello",
                "passive": False,
                "durable": False,
                "exclusive": False,
                "auto-delete": False,
                "no-wait": False,
                "consumer-count": 0,
                "message-count": 0,
            },
        ),
    ]
    assert [e["request"] for e in events] == ["hello", "queue.declare hello"]
