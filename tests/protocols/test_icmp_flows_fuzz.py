"""Bad input for the ICMP decoder and the flow table: random bytes, valid frames cut at every
offset, mutated frames, on every link type. Only counted errors may come out: no exception
escapes, every report builds, the tables stay within their bounds."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.decoder import Decoder
from protocols.flows import FlowConfig, FlowTable
from protocols.icmp import IcmpPlugin
from protocols.icmp.config import IcmpConfig
from protocols.net import SUPPORTED_LINKTYPES
from protocols.registry import build_plugins, default_config
from protocols.stats import Counters
from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.protocols.flow_captures import CAPTURES

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
S = 1_000_000_000
T0 = 1_700_000_000 * S
LINKTYPES = sorted(SUPPORTED_LINKTYPES)


@functools.cache
def samples() -> list[tuple[int, bytes]]:
    out = []
    for make in CAPTURES.values():
        linktype, frames = make()
        out += [(linktype, f) for _ts, f in frames]
    return out


@functools.cache
def fields() -> Any:
    return load_fields()


def table(max_flows: int = 8) -> tuple[FlowTable, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    return FlowTable(
        FlowConfig(max_flows=max_flows, timeout_ns=S, period_ns=S), out, {80: S}, Counters()
    ), out


def check_bounds(ft: FlowTable) -> None:
    cap = ft.config.max_flows
    assert len(ft.flows) <= cap
    assert len(ft.table) <= 2 * cap
    assert len(ft.conns) <= 2 * cap + 2
    assert len(ft.fragments) <= 4096


def run_frames(frames: list[tuple[int, int, bytes]]) -> None:
    ft, out = table()
    for i, (ts, lt, frame) in enumerate(frames):
        ft.tick(ts)
        ft.update(ts, lt, frame, len(frame) + i % 3)
        check_bounds(ft)
    ft.flush()
    env = Envelope(beat_name="fuzz")
    for evt in out:
        assert evt["type"] == "flow"
        assert not check_event(env.apply(evt), fields())


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(LINKTYPES), st.binary(max_size=120)), max_size=30),
    st.lists(st.integers(0, 3 * S), max_size=30),
)
def test_random_frames_on_every_linktype(frames: list[tuple[int, bytes]], gaps: list[int]) -> None:
    ts = T0
    stamped = []
    for i, (lt, frame) in enumerate(frames):
        ts += gaps[i] if i < len(gaps) else 1
        stamped.append((ts, lt, frame))
    run_frames(stamped)


@FUZZ
@given(st.data())
def test_valid_frames_cut_and_mutated(data: st.DataObject) -> None:
    pool = samples()
    picks = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=12))
    frames = []
    for k, idx in enumerate(picks):
        lt, frame = pool[idx]
        how = data.draw(st.sampled_from(["whole", "cut", "flip", "splice"]))
        if how == "cut":
            frame = frame[: data.draw(st.integers(0, len(frame)))]
        elif how == "flip" and frame:
            b = bytearray(frame)
            for _ in range(data.draw(st.integers(1, 6))):
                b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
            frame = bytes(b)
        elif how == "splice":
            other = pool[data.draw(st.integers(0, len(pool) - 1))][1]
            cut = data.draw(st.integers(0, len(frame)))
            frame = frame[:cut] + other[data.draw(st.integers(0, len(other))) :]
        frames.append((T0 + k * S // 2, lt, frame))
    run_frames(frames)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(LINKTYPES), st.binary(max_size=200)), max_size=20))
def test_decoder_with_flows_and_icmp_never_raises(frames: list[tuple[int, bytes]]) -> None:
    plugins = build_plugins({"icmp": default_config("icmp"), "http": default_config("http", ports=[80])})
    dec = Decoder(plugins, flows=FlowConfig(max_flows=4, timeout_ns=S, period_ns=S))
    events = []
    for i, (lt, frame) in enumerate(frames):
        events += dec.feed_many([(T0 + i * S // 3, lt, frame, len(frame))])
    events += dec.flush()
    assert dec.flows is not None and not dec.flows.flows
    assert "icmp.handler_errors" not in dec.stats and "icmp.event_errors" not in dec.stats
    env = Envelope(beat_name="fuzz")
    for evt in events:
        assert not check_event(env.apply(evt), fields())


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([4, 6]), st.binary(min_size=0, max_size=40), st.booleans(), st.integers(0, 3)
        ),
        max_size=40,
    )
)
def test_icmp_messages_random_bytes(messages: list[tuple[int, bytes, bool, int]]) -> None:
    plugin = IcmpPlugin(IcmpConfig(max_pending=3), Counters())
    a4, b4 = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    a6, b6 = b"\xfd" + b"\x00" * 14 + b"\x01", b"\xfd" + b"\x00" * 14 + b"\x02"
    txns = []
    for i, (version, body, forward, kind) in enumerate(messages):
        # Bias towards the paired kinds so pairing, duplicates and lone replies all happen.
        head = [b"", b"\x08\x00", b"\x00\x00", b"\x80\x00" if version == 6 else b"\x0d\x00"][kind]
        msg = head + body[len(head) :] if len(body) >= len(head) else body
        src, dst = (a4, b4) if version == 4 else (a6, b6)
        if not forward:
            src, dst = dst, src
        txns += plugin.on_icmp(T0 + i, version, src, dst, msg)
        assert len(plugin.tracker.pending) <= 3
        txns += plugin.tick(T0 + i)
    txns += plugin.flush()
    assert not plugin.tracker.pending
    env = Envelope(beat_name="fuzz")
    for t in txns:
        evt = env.apply(plugin.to_event(t))
        assert evt["status"] in ("OK", "Error")
        assert not check_event(evt, fields())
    short = sum(1 for v, body, _f, k in messages if len(body) < 8)
    assert plugin.stats.get("icmp.malformed", 0) <= short
