"""The event envelope: Packetbeat's common fields (pb.Fields.ComputeValues) and what libbeat
adds (@timestamp, agent, host, ecs, @metadata)."""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.agent.version import ECS_VERSION, VERSION
from shipper.pipeline.envelope import (
    MAX_TIMESTAMP_NS,
    MIN_TIMESTAMP_NS,
    Envelope,
    EventRejected,
    TimeFormatter,
    community_id,
)
from shipper.pipeline.processors import Context, Processing
from tests.helpers import decode_file, shared_pcap
from tests.shipper.shiprun import REQUIRED

T0 = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def tcp_event(
    src: tuple[str, int] = ("10.1.1.1", 40000),
    dst: tuple[str, int] = ("10.2.2.2", 80),
    start: int | None = T0,
    end: int | None = T0 + 18_341_000,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {}
    if start is not None:
        event["start"] = start
    if end is not None:
        event["end"] = end
    evt: dict[str, Any] = {
        "@timestamp": start if start is not None else end,
        "type": "http",
        "status": "OK",
        "event": event,
        "network": {"transport": "tcp", "protocol": "http"},
        "source": {"ip": src[0], "port": src[1], "bytes": 100},
        "destination": {"ip": dst[0], "port": dst[1], "bytes": 250},
        "related": {"ip": [src[0], dst[0]]},
    }
    evt.update(extra)
    return evt


def env(**kw: Any) -> Envelope:
    kw.setdefault("beat_name", "tap-1")
    return Envelope(**kw)


# -- network.community_id -----------------------------------------------------------------


#: Published test vectors of the Community ID spec (corelight/community-id-spec).
VECTORS = [
    ("tcp", "128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    ("udp", "192.168.1.52", 54585, "8.8.8.8", 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    ("sctp", "192.168.170.8", 7, "192.168.170.56", 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    (
        "tcp",
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        63943,
        "2607:f8b0:400c:c03::1a",
        25,
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
    ),
    # ICMP: type and code in place of the ports.
    ("icmp", "192.168.0.89", 8, "192.168.0.1", 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    ("ipv6-icmp", "fe80::260:97ff:fe07:69ea", 134, "ff02::1", 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00="),
]


@pytest.mark.parametrize(("transport", "sip", "sport", "dip", "dport", "expected"), VECTORS)
def test_community_id_spec_vectors(
    transport: str, sip: str, sport: int, dip: str, dport: int, expected: str
) -> None:
    assert community_id(transport, sip, sport, dip, dport) == expected


@pytest.mark.parametrize(("transport", "sip", "sport", "dip", "dport", "expected"), VECTORS[:4])
def test_community_id_is_the_same_in_both_directions(
    transport: str, sip: str, sport: int, dip: str, dport: int, expected: str
) -> None:
    assert community_id(transport, dip, dport, sip, sport) == expected


def test_icmp_reply_hashes_like_its_request_and_one_way_types_keep_their_direction() -> None:
    request = community_id("icmp", "192.168.0.89", 8, "192.168.0.1", 0)
    reply = community_id("icmp", "192.168.0.1", 0, "192.168.0.89", 0)
    assert request == reply
    # Destination unreachable (3) has no counterpart: the two directions differ.
    there = community_id("icmp", "10.0.0.1", 3, "10.0.0.2", 1)
    back = community_id("icmp", "10.0.0.2", 3, "10.0.0.1", 1)
    assert there != back


def test_envelope_computes_icmp_community_id_from_the_icmp_fields() -> None:
    evt = {
        "@timestamp": T0,
        "type": "icmp",
        "status": "OK",
        "event": {"start": T0},
        "network": {"transport": "icmp", "protocol": "icmp"},
        "source": {"ip": "192.168.0.89"},
        "destination": {"ip": "192.168.0.1"},
        "icmp": {"version": 4, "request": {"type": 8, "code": 0}, "response": {"type": 0, "code": 0}},
    }
    env().apply(evt)
    assert evt["network"]["community_id"] == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
    assert evt["network"]["type"] == "ipv4"


def test_community_id_for_unknown_transports_is_left_out() -> None:
    assert community_id("gre", "10.0.0.1", 0, "10.0.0.2", 0) is None
    evt = tcp_event()
    evt["network"]["transport"] = "gre"
    env().apply(evt)
    assert "community_id" not in evt["network"]


def test_http_basicauth_matches_packetbeats_golden_values() -> None:
    events = decode_file(shared_pcap("http_basicauth"), {"http": {}})
    (evt,) = [e for e in events if e["type"] == "http"]
    env(local_ips=["127.0.0.1"]).apply(evt)
    assert evt["network"]["community_id"] == "1:TMPM5eEnGOXfxAjx6NKlyjx+X10="
    assert evt["network"]["bytes"] == 1721
    assert evt["event"]["duration"] == 18341000
    assert evt["network"]["direction"] == "unknown"  # neither end is this host
    assert evt["@timestamp"] == evt["event"]["start"]
    assert set(evt["related"]["ip"]) == {evt["source"]["ip"], evt["destination"]["ip"]}
    flat = flatten(evt)
    assert [k for k in REQUIRED if k not in flat] == []


# -- network.direction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "internal", "expected"),
    [
        ("10.0.0.5", "127.0.0.1", [], "ingress"),  # destination loopback
        ("127.0.0.1", "127.0.0.1", [], "ingress"),
        ("::1", "::1", [], "ingress"),
        ("10.0.0.5", "192.0.2.10", [], "ingress"),  # destination is a local address
        ("192.0.2.10", "198.51.100.1", [], "egress"),  # source is a local address
        ("169.254.1.1", "198.51.100.1", [], "egress"),  # source link-local
        ("198.51.100.1", "fe80::1", [], "ingress"),  # destination link-local
        ("10.0.0.5", "224.0.0.251", [], "ingress"),  # link-local multicast
        ("198.51.100.1", "203.0.113.7", [], "unknown"),
        ("10.0.0.5", "10.0.0.6", ["private"], "internal"),
        ("10.0.0.5", "203.0.113.7", ["private"], "outbound"),
        ("203.0.113.7", "172.16.4.4", ["private"], "inbound"),
        ("203.0.113.7", "198.51.100.1", ["private"], "external"),
        ("203.0.113.7", "10.0.0.5", ["203.0.113.0/24"], "outbound"),
        ("2001:db8::1", "2001:db8::2", ["2001:db8::/32"], "internal"),
        ("203.0.113.7", "10.0.0.5", ["public"], "outbound"),
        ("10.0.0.5", "203.0.113.7", ["public"], "inbound"),
        ("10.0.0.5", "203.0.113.7", ["unicast"], "internal"),
        ("10.0.0.5", "203.0.113.7", ["global_unicast"], "internal"),
        ("203.0.113.7", "239.1.1.1", ["multicast"], "inbound"),
    ],
)
def test_direction(src: str, dst: str, internal: list[str], expected: str) -> None:
    evt = tcp_event(src=(src, 40000), dst=(dst, 80))
    env(local_ips=["192.0.2.10"], internal_networks=internal).apply(evt)
    assert evt["network"]["direction"] == expected


def test_a_direction_set_by_the_protocol_is_kept() -> None:
    evt = tcp_event()
    evt["network"]["direction"] = "inbound"
    env().apply(evt)
    assert evt["network"]["direction"] == "inbound"


# -- mirrors, sums, durations, defaults ------------------------------------------------------


def test_client_and_server_mirror_source_and_destination() -> None:
    evt = tcp_event(src=("10.1.1.1", 40000), dst=("10.2.2.2", 8080))
    evt["destination"]["domain"] = "example.net"
    env().apply(evt)
    assert evt["client"] == evt["source"] == {"ip": "10.1.1.1", "port": 40000, "bytes": 100}
    assert evt["server"] == evt["destination"]
    assert evt["server"]["domain"] == "example.net"
    assert evt["network"]["bytes"] == 350
    assert evt["network"]["type"] == "ipv4"


def test_mirrors_are_copies_when_a_processor_may_change_them() -> None:
    # Without processors nothing touches the event after the envelope, so client/server
    # may be the very source/destination objects; with them, changing one must not
    # change the other.
    processing = Processing.build(
        [{"add_fields": {"target": "client", "fields": {"name": "c"}}}], {}, Context()
    )
    evt = tcp_event(src=("10.1.1.1", 40000), dst=("10.2.2.2", 8080))
    out = env(processing=processing).apply(evt)
    assert out["client"] == {"ip": "10.1.1.1", "port": 40000, "bytes": 100, "name": "c"}
    assert out["source"] == {"ip": "10.1.1.1", "port": 40000, "bytes": 100}
    assert out["server"] == out["destination"] and out["server"] is not out["destination"]


def test_explicit_client_and_server_are_not_overwritten() -> None:
    evt = tcp_event(client={"ip": "10.9.9.9"}, server={"ip": "10.8.8.8"})
    env().apply(evt)
    assert evt["client"] == {"ip": "10.9.9.9"}
    assert evt["server"] == {"ip": "10.8.8.8"}


def test_ipv6_network_type() -> None:
    evt = tcp_event(src=("2001:db8::1", 40000), dst=("2001:db8::2", 80))
    env().apply(evt)
    assert evt["network"]["type"] == "ipv6"


def test_event_defaults_and_duration_in_nanoseconds() -> None:
    evt = tcp_event()
    env().apply(evt)
    e = evt["event"]
    assert e["kind"] == "event"
    assert e["category"] == ["network"]
    assert e["type"] == ["connection", "protocol"]
    assert e["dataset"] == "http"
    assert e["duration"] == 18_341_000
    assert e["start"] == "2023-11-14T22:13:20.123Z"
    assert e["end"] == "2023-11-14T22:13:20.141Z"


def test_protocol_event_fields_are_kept() -> None:
    evt = tcp_event()
    evt["event"].update({"type": ["connection"], "dataset": "custom", "duration": 5})
    env().apply(evt)
    assert evt["event"]["type"] == ["connection"]
    assert evt["event"]["dataset"] == "custom"
    assert evt["event"]["duration"] == 5


@pytest.mark.parametrize(
    ("start", "end"),
    [(T0, None), (None, T0), (T0, T0 - 1)],
    ids=["no-end", "no-start", "negative"],
)
def test_duration_only_with_both_ends_and_never_negative(start: int | None, end: int | None) -> None:
    evt = tcp_event(start=start, end=end)
    env().apply(evt)
    assert "duration" not in evt["event"]
    assert ("start" in evt["event"]) == (start is not None)
    assert ("end" in evt["event"]) == (end is not None)


def test_network_bytes_left_out_when_zero() -> None:
    evt = tcp_event()
    evt["source"]["bytes"] = 0
    evt["destination"]["bytes"] = 0
    env().apply(evt)
    assert "bytes" not in evt["network"]


@pytest.mark.parametrize(
    ("notes", "expected"),
    [(["Unmatched request"], "Unmatched request"), (["a", "b"], ["a", "b"]), ([], None)],
)
def test_error_message_is_a_string_for_one_note_and_a_list_for_several(
    notes: list[str], expected: Any
) -> None:
    evt = tcp_event(error={"message": list(notes)})
    env().apply(evt)
    if expected is None:
        assert "error" not in evt
    else:
        assert evt["error"]["message"] == expected


# -- @timestamp and what libbeat adds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("precision", "text"),
    [
        ("millisecond", "2023-11-14T22:13:20.123Z"),
        ("microsecond", "2023-11-14T22:13:20.123456Z"),
        ("nanosecond", "2023-11-14T22:13:20.123456789Z"),
    ],
)
def test_timestamp_precision(precision: str, text: str) -> None:
    evt = tcp_event()
    env(precision=precision).apply(evt)
    assert evt["@timestamp"] == text
    assert evt["event"]["start"] == text


def test_time_formatter_truncates_and_pads() -> None:
    fmt = TimeFormatter("millisecond")
    assert fmt(1_700_000_000_999_999_999) == "2023-11-14T22:13:20.999Z"
    assert fmt(1_700_000_001_000_000_000) == "2023-11-14T22:13:21.000Z"
    assert fmt(1_700_000_001_001_000_000) == "2023-11-14T22:13:21.001Z"
    assert TimeFormatter("nanosecond")(5) == "1970-01-01T00:00:00.000000005Z"


def test_agent_host_ecs_and_metadata() -> None:
    host = {"name": "tap-1", "hostname": "box", "os": {"type": "linux"}}
    evt = tcp_event()
    env(agent_id="a-1", ephemeral_id="e-1", host=host).apply(evt)
    assert evt["agent"]["type"] == "packetbeat"
    assert evt["agent"]["name"] == "tap-1"
    assert evt["agent"]["version"] == VERSION
    assert evt["agent"]["id"] == "a-1"
    assert evt["agent"]["ephemeral_id"] == "e-1"
    assert evt["host"] == host
    assert evt["ecs"] == {"version": ECS_VERSION}
    assert evt["@metadata"] == {"beat": "packetbeat", "type": "_doc", "version": VERSION}
    flat = flatten(evt)
    assert [k for k in REQUIRED if k not in flat] == []


def test_host_defaults_to_the_beat_name() -> None:
    evt = tcp_event()
    env(beat_name="probe").apply(evt)
    assert evt["host"] == {"name": "probe"}


def test_fields_tags_and_per_protocol_index() -> None:
    e = env(
        fields={"env": "staging"},
        tags=["tap"],
        per_protocol={"http": {"index": "web", "fields": {"team": "a"}, "tags": ["web"]}},
    )
    evt = e.apply(tcp_event())
    assert evt["fields"] == {"team": "a", "env": "staging"}
    assert evt["tags"] == ["web", "tap"]
    assert evt["@metadata"]["beat"] == "web"

    other = tcp_event()
    other["type"] = "mysql"
    e.apply(other)
    assert other["@metadata"]["beat"] == "packetbeat"
    assert other["fields"] == {"env": "staging"}

    under_root = env(fields={"env": "prod"}, fields_under_root=True).apply(tcp_event())
    assert under_root["env"] == "prod"
    assert "fields" not in under_root


def test_envelope_is_idempotent_on_derived_fields() -> None:
    evt = tcp_event()
    e = env()
    e.apply(evt)
    first = copy.deepcopy(evt)
    e.apply(evt)
    assert evt == first


# -- any integer timestamp: formatted, or rejected with a reason; never a crash ----------------

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3}|\d{6}|\d{9})Z")


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (-1, "1969-12-31T23:59:59.999999999Z"),  # once came out as ".999999999Z"
        (-999_999_999, "1969-12-31T23:59:59.000000001Z"),
        (-1_000_000_000, "1969-12-31T23:59:59.000000000Z"),
        (-(10**18), "1938-04-24T22:13:20.000000000Z"),
        (MIN_TIMESTAMP_NS, "0001-01-01T00:00:00.000000000Z"),
        (MAX_TIMESTAMP_NS, "9999-12-31T23:59:59.999999999Z"),
        (2**63, "2262-04-11T23:47:16.854775808Z"),
    ],
)
def test_times_before_1970_and_at_the_ends_of_rfc3339(ts: int, text: str) -> None:
    assert TimeFormatter("nanosecond")(ts) == text
    # The same second again (the formatter caches per second) gives the same answer.
    assert TimeFormatter("nanosecond")(ts) == TimeFormatter("nanosecond")(ts)


@pytest.mark.parametrize(
    "ts", [MAX_TIMESTAMP_NS + 1, MIN_TIMESTAMP_NS - 1, 10**30, -(10**30), 2**200, -(2**200)]
)
def test_timestamps_beyond_the_years_1_to_9999_are_rejected_with_a_reason(ts: int) -> None:
    with pytest.raises(EventRejected) as info:
        TimeFormatter("millisecond")(ts)
    assert info.value.reason == "bad_timestamp"
    evt = tcp_event(start=ts, end=ts)
    before = copy.deepcopy(evt)
    with pytest.raises(EventRejected):
        env().apply(evt)
    assert evt == before  # rejected before anything was changed


@given(st.integers(), st.sampled_from(["millisecond", "microsecond", "nanosecond"]))
@settings(max_examples=400, deadline=None)
def test_any_integer_timestamp_formats_exactly_or_is_rejected(ts: int, precision: str) -> None:
    fmt = TimeFormatter(precision)
    try:
        text = fmt(ts)
    except EventRejected as exc:
        assert exc.reason == "bad_timestamp"
        assert not MIN_TIMESTAMP_NS <= ts <= MAX_TIMESTAMP_NS
        return
    m = _RFC3339.fullmatch(text)
    assert m, text
    sec, frac = divmod(ts, 1_000_000_000)
    back = datetime.datetime(*map(int, m.groups()[:6])) - datetime.datetime(1970, 1, 1)
    assert back.days * 86400 + back.seconds == sec
    digits = m.group(7)
    assert int(digits) == frac // 10 ** (9 - len(digits))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update({"@timestamp": 10**30}), "bad_timestamp"),
        (lambda e: e["event"].update({"end": -(10**30)}), "bad_timestamp"),
        (lambda e: e.update({"@timestamp": 1.5}), "invalid"),
        (lambda e: e.update({"event": "start"}), "invalid"),
        (lambda e: e.update({"network": ["tcp"]}), "invalid"),
        (lambda e: e.update({"source": "10.0.0.1"}), "invalid"),
        (lambda e: e["source"].update({"ip": 167772161}), "invalid"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(mutate: Any, reason: str) -> None:
    evt = tcp_event()
    mutate(evt)
    with pytest.raises(EventRejected) as info:
        env().apply(evt)
    assert info.value.reason == reason


def test_odd_endpoint_values_do_not_break_the_envelope() -> None:
    evt = tcp_event()
    evt["source"]["port"] = 70000  # not a port: no community id, no crash
    evt["source"]["bytes"] = "many"
    evt["destination"]["ip"] = "10.0.0.\x00"
    env().apply(evt)
    assert "community_id" not in evt["network"]
    assert evt["network"]["bytes"] == 250


@given(
    st.integers(MIN_TIMESTAMP_NS, MAX_TIMESTAMP_NS),
    st.sampled_from(["millisecond", "microsecond", "nanosecond"]),
)
def test_the_fraction_is_the_leading_digits_of_the_nanoseconds(ts: int, precision: str) -> None:
    """The fraction comes from a table (not a format spec per event): always the first 3, 6
    or 9 of the nine nanosecond digits, truncated, never rounded."""
    digits = {"millisecond": 3, "microsecond": 6, "nanosecond": 9}[precision]
    text = TimeFormatter(precision)(ts)
    assert text.endswith("Z") and text[19] == "."
    assert text[20:-1] == f"{ts % 1_000_000_000:09d}"[:digits]


@given(
    st.lists(
        st.one_of(
            st.integers(MIN_TIMESTAMP_NS - 2_000_000, MIN_TIMESTAMP_NS + 2_000_000),
            st.integers(MAX_TIMESTAMP_NS - 2_000_000, MAX_TIMESTAMP_NS + 2_000_000),
            st.integers(1_700_000_000_000_000_000, 1_700_000_000_005_000_000),
            st.integers(),
        ),
        max_size=30,
    ),
    st.sampled_from(["millisecond", "microsecond", "nanosecond"]),
)
def test_stamp_keeps_only_the_last_units_text(times: list[int], precision: str) -> None:
    """``stamp`` (``@timestamp``, the last unit's text kept) gives what ``format`` gives for
    every sequence of times, repeats and neighbours within one millisecond included, and
    rejects what ``format`` rejects, also right after a valid time."""
    fmt, plain = TimeFormatter(precision), TimeFormatter(precision)
    for ts in times:
        try:
            want = plain.format(ts)
        except EventRejected:
            with pytest.raises(EventRejected):
                fmt.stamp(ts)
            continue
        assert fmt.stamp(ts) == want


def test_flow_reports_of_one_tick_share_the_timestamp_text() -> None:
    fmt = TimeFormatter("millisecond")
    at = 1_700_000_000_123_456_789
    assert fmt.stamp(at) is fmt.stamp(at + 1) is fmt.stamp(at - 456_789)
    assert fmt.stamp(at + 1_000_000) == "2023-11-14T22:13:20.124Z"
