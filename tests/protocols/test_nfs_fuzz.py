"""Fuzzing the NFS decoder: random bytes, valid conversations cut at every offset and fed
whole, byte by byte and in random chunks, mutated bytes, lying fragment lengths, absurd
opaque lengths (credentials, tags, group lists, file handles), auth bodies over 400 bytes,
COMPOUNDs claiming billions of operations, gaps. Only counted errors may come out: no
exception escapes, buffers and the pending-call table stay bounded, work stays linear."""

from __future__ import annotations

import random
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.nfs import NfsPlugin
from protocols.nfs.config import NfsConfig
from protocols.nfs.parser import RecordStream
from protocols.nfs.transactions import NfsTcpHandler
from protocols.stats import Counters
from tests.protocols.nfs_captures import v3_exchanges, v4_exchanges
from tests.protocols.nfs_wire import (
    auth_raw,
    auth_sys,
    call,
    compound,
    op_getfh,
    opaque,
    record,
    reply,
    string,
    u32,
    words,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAD = 4096

#: A conversation, as (direction, bytes on the wire) in order.
SAMPLES: list[tuple[int, bytes]] = []
for _xid, _c, _r in v3_exchanges() + v4_exchanges():
    SAMPLES.append((FROM_CLIENT, record(_c)))
    if _r is not None:
        SAMPLES.append((FROM_SERVER, record(_r)))
ANSWERED = sum(1 for _x, c, _r in v3_exchanges() + v4_exchanges() if c[12:16] == u32(100003))


def plugin(**kw: Any) -> NfsPlugin:
    kw.setdefault("max_record_head", HEAD)
    kw.setdefault("max_record_size", 1 << 20)
    return NfsPlugin(NfsConfig(ports=[2049], **kw), Counters())


def feed(
    plug: NfsPlugin, pieces: list[tuple[int, bytes]], gaps: dict[int, int] | None = None
) -> list[dict[str, Any]]:
    """Feed (direction, bytes) pieces to one connection; events out; state checked bounded."""
    h = plug.new_handler(ConnInfo("10.0.0.1", 800, "10.0.0.2", 2049))
    assert isinstance(h, NfsTcpHandler)
    events: list[dict[str, Any]] = []
    ts = 1_000_000
    for i, (direction, data) in enumerate(pieces):
        ts += 1_000
        if gaps and i in gaps:
            h.on_gap(direction, gaps[i])
        for txn in h.on_data(direction, data, ts):
            events.append(plug.to_event(txn))
        for s in h.streams:
            assert s.pending <= HEAD + 4 + 24
        assert len(plug.pairing.pending) <= max(plug.config.max_pending, 1)
        assert len(plug.pairing.other) <= 4096
    for txn in h.on_close("fin") + plug.flush():
        events.append(plug.to_event(txn))
    for e in events:
        assert e["type"] == "nfs" and "xid" in e["rpc"]
    return events


def summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (e["rpc"]["xid"], e["status"], e["nfs"].get("opcode"), e["nfs"].get("status"), e["rpc"].get("status"))
        for e in events
    )


def chunks(data: bytes, rnd: random.Random) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(data):
        n = rnd.randint(1, 97) if rnd.random() < 0.7 else rnd.randint(98, 5000)
        out.append(data[pos : pos + n])
        pos += n
    return out


WHOLE = summary(feed(plugin(), SAMPLES))


def test_the_sample_conversation_decodes() -> None:
    assert len(WHOLE) == ANSWERED
    assert all(s[1] == "OK" for s in WHOLE)


@given(st.lists(st.tuples(st.sampled_from([FROM_CLIENT, FROM_SERVER]), st.binary(max_size=300)), max_size=20))
@FUZZ
def test_random_bytes(pieces: list[tuple[int, bytes]]) -> None:
    feed(plugin(), pieces)


@given(st.integers(0, 2**32))
@settings(max_examples=60, deadline=None)
def test_random_chunking_gives_the_same_events(seed: int) -> None:
    rnd = random.Random(seed)
    pieces: list[tuple[int, bytes]] = []
    for direction, data in SAMPLES:
        pieces += [(direction, c) for c in chunks(data, rnd)]
    assert summary(feed(plugin(), pieces)) == WHOLE


def test_byte_by_byte_gives_the_same_events() -> None:
    pieces = [(d, data[i : i + 1]) for d, data in SAMPLES for i in range(len(data))]
    assert summary(feed(plugin(), pieces)) == WHOLE


def test_cut_at_every_offset() -> None:
    """Each message cut short at every offset, then the rest of the conversation: no
    exception; the cut message is lost (its reply unmatched), the framing may be lost."""
    for k, (direction, data) in enumerate(SAMPLES):
        if len(data) > 2000:
            continue  # the large READ and WRITE: their headers are cut in the small ones
        for cut in range(len(data)):
            feed(plugin(), [(direction, data[:cut]), *SAMPLES[k + 1 : k + 5]])


@given(st.integers(0, 2**32), st.integers(1, 40))
@FUZZ
def test_mutations(seed: int, flips: int) -> None:
    rnd = random.Random(seed)
    stream = [(d, bytearray(data)) for d, data in SAMPLES]
    for _ in range(flips):
        d, data = stream[rnd.randrange(len(stream))]
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    feed(plugin(), [(d, bytes(data)) for d, data in stream])


@given(st.integers(0, 2**32), st.integers(0, 0x7FFFFFFF))
@FUZZ
def test_lying_fragment_length_then_valid_records(seed: int, size: int) -> None:
    """A marker claiming ``size`` bytes, then the conversation: nothing is allocated from
    the claim; a claim past max_record_size loses the framing, which is found again."""
    plug = plugin()
    rnd = random.Random(seed)
    lie = u32(size) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(40)))
    events = feed(plug, [(FROM_CLIENT, lie), *SAMPLES])
    if size > plug.config.max_record_size:
        assert plug.stats["nfs.oversized_records"] >= 1
        # Resynchronised: the calls after the lie are decoded (the first may be eaten).
        assert len(events) >= ANSWERED - 2


def test_resync_finds_the_next_call_and_reply() -> None:
    plug = plugin()
    c, r = record(call(7, 1, b"\1" * 36)), record(reply(7, u32(0)))
    junk = u32(0xFFFFFFF0) + b"\x00\x00\x00\x02" * 50  # a lying marker, then junk words
    events = feed(plug, [(FROM_CLIENT, junk + c), (FROM_SERVER, u32(0x7FFFFFFF) + b"z" * 33 + r)])
    assert [(e["rpc"]["xid"], e["nfs"]["status"]) for e in events] == [("00000007", "NFS_OK")]
    assert plug.stats["nfs.oversized_records"] == 2


def test_gap_inside_a_fragment_drops_only_that_record() -> None:
    plug = plugin()
    c1 = record(call(1, 6, b"\1" * 36 + b"\0" * 200))
    c2 = record(call(2, 1, b"\1" * 36))
    r2 = record(reply(2, u32(0)))
    # 100 bytes of the first call are lost: the rest of it arrives, then the second call.
    h = plug.new_handler(ConnInfo("10.0.0.1", 800, "10.0.0.2", 2049))
    out = h.on_data(FROM_CLIENT, c1[:50], 1)
    assert h.on_gap(FROM_CLIENT, 100) is False
    out += h.on_data(FROM_CLIENT, c1[150:] + c2, 2)
    out += h.on_data(FROM_SERVER, r2, 3)
    assert [t.call.xid for t in out] == [2]
    assert plug.stats["nfs.damaged_records"] == 1


def test_gap_across_records_resynchronises() -> None:
    plug = plugin()
    recs = [record(call(x, 1, b"\1" * 36)) for x in (1, 2, 3, 4)]
    h = plug.new_handler(ConnInfo("10.0.0.1", 800, "10.0.0.2", 2049))
    out = h.on_data(FROM_CLIENT, recs[0], 1)
    h.on_gap(FROM_CLIENT, len(recs[1]) + 10)  # the second call and 10 bytes of the third
    out += h.on_data(FROM_CLIENT, recs[2][10:] + recs[3], 2)
    out += h.on_data(FROM_SERVER, b"".join(record(reply(x, u32(0))) for x in (1, 2, 3, 4)), 3)
    assert sorted(t.call.xid for t in out) == [1, 4]
    assert plug.stats["nfs.lost_sync"] == 1
    assert plug.stats["nfs.unmatched_replies"] == 2


def test_absurd_lengths_are_counted_not_allocated() -> None:
    plug = plugin()
    head = u32(9) + u32(0) + u32(2) + u32(100003) + u32(3) + u32(1)
    msgs = [
        head + u32(1) + u32(0xFFFFFFF0),  # credential length
        head + u32(1) + u32(24) + u32(1) + u32(0xFFFFFF00) + b"\0" * 16,  # machine name length
        head
        + auth_raw(1, u32(1) + string("m") + u32(0) + u32(0) + u32(0x3FFFFFFF))
        + auth_raw(0, b""),  # gids
        head + auth_raw(1, b"\0" * 401) + auth_raw(0, b""),  # credential over MAX_AUTH_BYTES
        head + auth_sys() + u32(0) + u32(0x7FFFFFFF),  # verifier length
        call(10, 1, opaque(b"x") + u32(1) + u32(0xFFFFFFFF) + op_getfh(), vers=4),  # op count
        call(11, 1, u32(0xFFFFFFFF), vers=4),  # tag length
        call(12, 1, compound([u32(22) + u32(0x7FFFFFF0)]), vers=4),  # PUTFH handle length
        call(13, 1, compound([u32(9) + u32(0x40000000)]), vers=4),  # GETATTR bitmap length
    ]
    t0 = time.perf_counter()
    events = feed(plug, [(FROM_CLIENT, record(m)) for m in msgs])
    assert time.perf_counter() - t0 < 1.0
    assert events == []
    assert plug.stats["nfs.malformed_messages"] == len(msgs)
    assert plug.stats["nfs.malformed.auth_too_long"] == 3
    assert plug.stats["nfs.malformed.bad_auth_sys"] == 2
    assert plug.stats["nfs.malformed.short_compound"] == 4


def test_huge_compound_is_linear() -> None:
    """A COMPOUND of 15,000 GETFH operations (no first-class one): one pass over them."""
    plug = plugin(max_record_head=1 << 20)
    ops = [op_getfh()] * 15_000
    msg = call(5, 1, compound(ops, "many", 1), vers=4)
    t0 = time.perf_counter()
    events = feed(plug, [(FROM_CLIENT, record(msg)), (FROM_SERVER, record(reply(5, u32(0))))])
    assert time.perf_counter() - t0 < 1.0
    assert [e["nfs"]["opcode"] for e in events] == ["GETFH"]


def test_compound_beyond_the_kept_head() -> None:
    """A record longer than max_record_head whose operations run past the kept bytes: the
    walk stops at the head; the call is still published with what was read."""
    plug = plugin()
    ops = [op_getfh()] * 2000  # 8,000 bytes of operations, head 4,096
    msg = call(6, 1, compound(ops, "", 1), vers=4)
    events = feed(plug, [(FROM_CLIENT, record(msg)), (FROM_SERVER, record(reply(6, u32(0))))])
    assert [(e["nfs"]["opcode"], e["source"]["bytes"]) for e in events] == [("ILLEGAL", len(msg))]


@given(st.binary(max_size=600))
@FUZZ
def test_udp_random_datagrams(data: bytes) -> None:
    plug = plugin()
    info = ConnInfo("10.0.0.1", 800, "10.0.0.2", 2049, "udp")
    for direction in (FROM_CLIENT, FROM_SERVER):
        for txn in plug.on_datagram(info, direction, data, 5):
            plug.to_event(txn)
    for txn in plug.flush():
        plug.to_event(txn)


@given(st.lists(st.integers(0, 2**32 - 1), max_size=50), st.integers(1, 64))
@FUZZ
def test_pending_calls_are_capped(xids: list[int], cap: int) -> None:
    plug = plugin(max_pending=cap)
    pieces = [(FROM_CLIENT, record(call(x, 1, b"\1" * 36))) for x in xids]
    events = feed(plug, pieces)
    assert all(e["status"] == "NO_REPLY" for e in events)
    # A call evicted and sent again waits anew; one still waiting is a retransmission.
    assert len(set(xids)) <= len(events) <= len(xids)
    if len(set(xids)) == len(xids):
        assert plug.stats.get("nfs.evicted_calls", 0) == max(len(xids) - cap, 0)


def test_record_stream_state_after_many_fragments() -> None:
    """Many empty non-last fragments cost four bytes each and no state."""
    stats = Counters()
    s = RecordStream(stats, 64, 1 << 20)
    body = call(1, 1)
    data = u32(0) * 10_000 + u32(0x80000000 | len(body)) + body
    recs = s.feed(data)
    assert [r.size for r in recs] == [len(body)] and s.pending == 0


def test_words_helper_round_trip() -> None:
    assert words([1, 2]) == u32(2) + u32(1) + u32(2)
