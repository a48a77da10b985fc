"""Hypothesis properties for every TCP decoder (HTTP, MySQL, PgSQL, Redis, Thrift), driven
through the whole ``Decoder`` (frames → TCP reassembly → handler → event builder):

* random bytes, valid conversations cut at every offset, mutated conversations, fed
  whole, byte by byte and in random chunks;
* no exception escapes anywhere: ``<proto>.handler_errors`` and ``<proto>.event_errors``
  stay 0 (the TCP layer and the decoder count what would otherwise be a crash);
* every loss is counted: a request of the conversation that does not come out as an event
  is in a counter; against a mutated conversation, fewer requests out than the clean run
  means some counter went up;
* the chunking never changes the events;
* buffers stay bounded (with small caps configured), and the work done is linear in the
  input (``workmeter``: Python lines + bytes searched, no clock).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synth import Conversation
from protocols.decoder import Decoder
from protocols.handler import ConnInfo
from protocols.http import parser as http_parser
from protocols.redis import parser as redis_parser
from protocols.registry import build_plugins, default_config, plugin_class
from protocols.stats import Counters
from tests.protocols.conversations import CASES, SAMPLES, Conv
from tests.protocols.workmeter import CountingBytes, metered

C, S = 0, 1
PORTS = {"http": 80, "redis": 6379, "mysql": 3306, "pgsql": 5432, "thrift": 9090}
PROTOS = sorted(PORTS)
CLIENT = ("10.0.0.1", 40000)

#: Options that reach more code (headers and bodies kept, responses rendered) and small
#: caps so that random input meets them.
OPTS: dict[str, dict[str, Any]] = {
    "http": {
        "send_all_headers": True,
        "include_body_for": ["text/html"],
        "send_request": True,
        "send_response": True,
        "max_message_size": 2048,
    },
    "redis": {"send_request": True, "send_response": True, "max_message_size": 1024},
    "mysql": {"send_request": True, "send_response": True},
    "pgsql": {"send_request": True, "send_response": True},
    "thrift": {},
}
#: Counters that say a transaction was dropped without an event.
UNPUBLISHED = {
    "http": (),
    "redis": ("redis.unmatched_requests",),
    "mysql": ("mysql.unmatched_requests",),
    "pgsql": (
        "pgsql.unmatched_requests",
        "pgsql.unanswered_statements",
        "pgsql.skipped_statements",
        "pgsql.ignored_set_statements",
    ),
    "thrift": (),
}

# -- running a conversation through the Decoder ------------------------------------------


def buffered(handler: Any) -> int:
    """Bytes a handler holds for messages not yet complete."""
    total = 0
    for p in getattr(handler, "parsers", ()):
        total += len(getattr(p, "buf", b"")) + len(getattr(p, "rest", b""))
    for s in getattr(handler, "streams", ()):
        total += len(s.buf)
    return total


def run(
    proto: str, pieces: list[tuple[int, bytes]], opts: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], Counters]:
    """Each piece is sent as its own segment(s) (mss 1448); the decoder's state is checked
    after every frame."""
    cfg = OPTS[proto] if opts is None else opts
    plugins = build_plugins({proto: default_config(proto, ports=[PORTS[proto]], **cfg)})
    dec = Decoder(plugins)
    conv = Conversation(CLIENT, ("10.0.0.2", PORTS[proto])).handshake()
    for d, data in pieces:
        if data:
            conv.send(d, data)
    conv.close()
    events: list[dict[str, Any]] = []
    fed = 0
    for ts, frame in conv.frames:
        events += dec.feed(ts, 1, frame)
        fed += len(frame)
        for c in dec.tcp.conns.values():
            if c.handler is not None:
                assert buffered(c.handler) <= 64 * 1024 + fed
    events += dec.flush()
    stats = dec.stats
    assert stats.get(f"{proto}.handler_errors", 0) == 0, stats
    assert stats.get(f"{proto}.event_errors", 0) == 0, stats
    assert all(e["type"] == proto for e in events)
    return events, stats


def whole(conv: Conv) -> list[tuple[int, bytes]]:
    return [(d, m) for d, m, _ in conv]


def bytewise(conv: Conv) -> list[tuple[int, bytes]]:
    return [(d, m[i : i + 1]) for d, m, _ in conv for i in range(len(m))]


def chunked(conv: Conv, rnd: random.Random) -> list[tuple[int, bytes]]:
    out = []
    for d, m, _ in conv:
        i = 0
        while i < len(m):
            n = rnd.randint(1, 64)
            out.append((d, m[i : i + n]))
            i += n
    return out


def requests_out(proto: str, events: list[dict[str, Any]]) -> int:
    if proto == "http":
        return sum(1 for e in events if "request" in e["http"] or "method" in e)
    return len(events)


def unpublished(proto: str, stats: Counters) -> int:
    return sum(stats.get(k, 0) for k in UNPUBLISHED[proto])


_TIMING = frozenset({"@timestamp", "start", "end", "duration"})


def strip_times(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if k not in _TIMING}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


#: ``WIREBEAT_FUZZ_EXAMPLES=5000`` for a longer run.
EXAMPLES = int(os.environ.get("WIREBEAT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the properties ----------------------------------------------------------------------


@pytest.mark.parametrize(("proto", "index"), CASES)
def test_valid_conversation_whole_bytewise_and_chunked_give_the_same_events(proto: str, index: int) -> None:
    conv = SAMPLES[proto][index]
    events, stats = run(proto, whole(conv))
    assert requests_out(proto, events) + unpublished(proto, stats) == sum(n for _, _, n in conv)
    expected = strip_times(events)
    assert strip_times(run(proto, bytewise(conv))[0]) == expected
    for seed in range(3):
        assert strip_times(run(proto, chunked(conv, random.Random(seed)))[0]) == expected


@pytest.mark.parametrize(("proto", "index"), CASES)
def test_valid_conversation_cut_at_every_offset(proto: str, index: int) -> None:
    """The stream ends at any byte: every request that was sent whole comes out, as an
    event (answered or not) or in a counter."""
    conv = SAMPLES[proto][index]
    # Every offset near a message boundary, every 17th inside long messages.
    cuts: set[int] = set()
    start = 0
    for _, m, _ in conv:
        end = start + len(m)
        cuts.update(range(start, min(end, start + 64)))
        cuts.update(range(max(start, end - 64), end + 1))
        cuts.update(range(start, end, 17))
        start = end
    for cut in sorted(cuts):
        pieces: list[tuple[int, bytes]] = []
        sent = 0
        left = cut
        for d, m, n in conv:
            if left <= 0:
                break
            pieces.append((d, m[:left]))
            if left >= len(m):
                sent += n
            left -= len(m)
        events, stats = run(proto, pieces)
        out = requests_out(proto, events)
        assert out + unpublished(proto, stats) >= sent, (cut, events, stats)


@FUZZ
@given(
    proto=st.sampled_from(PROTOS),
    chunks=st.lists(st.tuples(st.sampled_from([C, S]), st.binary(min_size=1, max_size=300)), max_size=25),
)
def test_random_bytes(proto: str, chunks: list[tuple[int, bytes]]) -> None:
    run(proto, chunks)


@FUZZ
@given(
    case=st.sampled_from(CASES),
    prefix=st.lists(st.tuples(st.sampled_from([C, S]), st.binary(min_size=1, max_size=60)), max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_bytes_before_and_between_valid_messages(
    case: tuple[str, int], prefix: list[tuple[int, bytes]], seed: int
) -> None:
    proto, index = case
    rnd = random.Random(seed)
    pieces = list(prefix)
    for d, m, _ in SAMPLES[proto][index]:
        pieces.append((d, m))
        if rnd.random() < 0.2:
            pieces.append((rnd.choice([C, S]), rnd.randbytes(rnd.randint(1, 40))))
    run(proto, pieces)


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        op = rnd.random()
        i = rnd.randrange(len(b) + 1)
        if op < 0.5 and b:
            b[min(i, len(b) - 1)] = rnd.randrange(256)
        elif op < 0.7:
            b[i:i] = rnd.randbytes(rnd.randint(1, 8))
        elif op < 0.85:
            del b[i : i + rnd.randint(1, 8)]
        else:  # a digit for a digit: lengths and counts lie
            digits = [k for k, c in enumerate(b) if 0x30 <= c <= 0x39]
            if digits:
                b[rnd.choice(digits)] = rnd.choice(b"0123456789")
    return bytes(b)


@FUZZ
@given(
    case=st.sampled_from(CASES), seed=st.integers(0, 2**32 - 1), split=st.sampled_from(["whole", "chunked"])
)
def test_mutated_conversations_lose_nothing_silently(case: tuple[str, int], seed: int, split: str) -> None:
    proto, index = case
    conv = SAMPLES[proto][index]
    clean, clean_stats = run(proto, whole(conv))
    rnd = random.Random(seed)
    victims = set(rnd.sample(range(len(conv)), rnd.randint(1, 2)))
    bad: Conv = [(d, mutate(m, rnd) if i in victims else m, n) for i, (d, m, n) in enumerate(conv)]
    pieces = whole(bad) if split == "whole" else chunked(bad, rnd)
    events, stats = run(proto, pieces)
    if requests_out(proto, events) < requests_out(proto, clean):
        raised = [k for k, v in stats.items() if k.startswith(proto + ".") and v > clean_stats.get(k, 0)]
        assert raised, (events, stats, clean_stats)


@settings(max_examples=max(40, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    proto=st.sampled_from(PROTOS),
    chunks=st.lists(st.tuples(st.sampled_from([C, S]), st.binary(min_size=1, max_size=400)), max_size=20),
)
def test_work_is_linear_in_the_input(proto: str, chunks: list[tuple[int, bytes]]) -> None:
    """Structural, not timed: lines run + bytes searched stay within a constant per
    segment plus a constant per byte, whatever the bytes."""
    stats = Counters()
    plugin = plugin_class(proto)(default_config(proto, ports=[PORTS[proto]], **OPTS[proto]), stats)
    handler: Any = plugin.new_handler(ConnInfo("10.0.0.1", 40000, "10.0.0.2", PORTS[proto]))
    total = sum(len(c) for _, c in chunks)
    with metered([http_parser, redis_parser]) as meter:
        for i, (d, data) in enumerate(chunks):
            for t in handler.on_data(d, CountingBytes(data), i):
                plugin.to_event(t)
        for t in handler.on_close("fin"):
            plugin.to_event(t)
    assert meter.work <= 400 * (len(chunks) + 1) + 30 * total, (meter.lines, meter.scanned)
