"""Fuzzing the DHCPv4 decoder: random bytes, valid messages cut at every offset, mutations,
lying option lengths, option overload chains, padding floods and absurd hardware lengths.
Every datagram either becomes one event or one counted refusal: no exception escapes, nothing
is kept between datagrams, and the work stays linear in the datagram's size."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.dhcpwire import BOOTREPLY, exchange, message, opt, options
from protocols.dhcpv4 import Dhcpv4Plugin
from protocols.dhcpv4.config import Dhcpv4Config
from protocols.handler import FROM_CLIENT, ConnInfo
from protocols.stats import Counters
from shipper.outputs.base import dumps_event
from tests.protocols.dhcpv4_cases import CASES, CRASHES, XIDS

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONN = ConnInfo("0.0.0.0", 68, "255.255.255.255", 67, "udp")

SAMPLES = [d[2] for name, make in CASES.items() for d in make(XIDS[name])] + list(CRASHES.values())
SAMPLES += [d[2] for d in exchange(b"\x02\x00\x00\x00\x00\x09", 5, "10.0.0.5")]
SAMPLE = st.sampled_from(SAMPLES)


def feed(payloads: list[bytes]) -> tuple[list[dict[str, Any]], Counters]:
    """Through the plugin as the decoder drives it; every event must encode as JSON."""
    stats = Counters()
    plugin = Dhcpv4Plugin(Dhcpv4Config(), stats)
    events = []
    for i, p in enumerate(payloads):
        for m in plugin.on_datagram(CONN, FROM_CLIENT, p, 1_000 + i):
            evt = plugin.to_event(m)
            dumps_event(evt)
            events.append(evt)
    assert stats.get("dhcpv4.total_packets", 0) == len(payloads)
    assert len(events) + stats.get("dhcpv4.parse_failures", 0) == len(payloads)
    assert not vars(plugin).keys() - {"config", "stats", "timeout_ns", "log", "debug"}  # no state kept
    return events, stats


@FUZZ
@given(st.lists(st.binary(max_size=700), max_size=20))
def test_random_bytes(payloads: list[bytes]) -> None:
    feed(payloads)


@FUZZ
@given(st.binary(min_size=1, max_size=400))
def test_random_options_after_a_valid_header(tail: bytes) -> None:
    feed([message(opts=tail), message(BOOTREPLY, opts=options(opt(52, tail[0] & 3)), file=tail, sname=tail)])


@FUZZ
@given(SAMPLE, st.data())
def test_cut_at_every_offset(sample: bytes, data: st.DataObject) -> None:
    cuts = list(range(len(sample) + 1))
    feed([sample[:n] for n in cuts])


@FUZZ
@given(SAMPLE, st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=12))
def test_mutations(sample: bytes, edits: list[tuple[int, int]]) -> None:
    b = bytearray(sample)
    for pos, val in edits:
        b[pos % len(b)] = val
    feed([bytes(b)])


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)), max_size=30),
    st.integers(0, 255),
    st.integers(0, 3),
)
def test_lying_option_lengths(opts: list[tuple[int, int, bytes]], hlen: int, overload: int) -> None:
    raw = b"".join(bytes([c, n]) + v for c, n, v in opts)
    nested = options(opt(52, 3), opt(52, 1), opt(12, "x"))
    feed(
        [
            message(opts=raw, hlen=hlen),
            message(opts=raw + b"\xff", hlen=hlen),
            message(BOOTREPLY, opts=options(opt(52, overload)) + raw, sname=nested, file=nested + raw[:100]),
        ]
    )


def test_padding_floods_and_large_datagrams_are_linear() -> None:
    """Datagrams of pads, of one-byte options, of empty options, of End options, of long
    request lists: the time per byte stays flat from 8 KiB to 64 KiB (a quadratic walk would
    multiply it by 8; caches alone by about 2)."""

    def per_byte(n: int) -> float:
        payloads = [
            message(opts=b"\0" * n + b"\xff"),
            message(opts=(b"\x0c\x01a") * (n // 3) + b"\xff"),
            message(opts=b"\x0c\x00" * (n // 2) + b"\xff"),
            message(opts=b"\xff" * n),
            message(opts=opt(55, bytes(range(255))) * (n // 257)),
        ]
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            events, _ = feed(payloads)
            best = min(best, time.perf_counter() - t)
            assert len(events) == len(payloads)
        return best / n

    assert per_byte(64000) < per_byte(8000) * 5


def test_everything_kept_is_bounded() -> None:
    """A long run of datagrams leaves nothing behind in the plugin (it pairs nothing)."""
    events, stats = feed([SAMPLES[i % len(SAMPLES)] for i in range(3000)])
    assert len(events) > 2000
    assert (
        sum(v for k, v in stats.items() if k.startswith("dhcpv4.malformed."))
        == stats["dhcpv4.parse_failures"]
    )
