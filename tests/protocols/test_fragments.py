"""IP fragment reassembly under attack (issue 11 point 14): memory bounded in bytes, caps
configurable (``packetbeat.ip_fragments.*``), every expiry, eviction and end-of-capture
discard counted; first-come wins on overlaps; linear work.

Before: 4,000 incomplete datagrams of 67 fragments held ~460 MB, the 4,096-datagram cap
was the only bound and was not configurable, and whatever was pending at the end of the
capture vanished without a count.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synth import ip_frame, udp_datagram
from protocols import net
from protocols.decoder import Decoder, DecoderLimits
from protocols.net import FragmentReassembler
from protocols.stats import Counters
from shipper.agent.beat import Beat
from shipper.agent.config import ConfigError
from shipper.agent.settings import load_settings
from tests.protocols.recorder import recorder
from tests.protocols.test_decoder_properties import EXAMPLES
from tests.protocols.workmeter import metered

NS = 1_000_000_000
LOSSES = (
    "ip.fragments_expired",
    "ip.fragments_evicted",
    "ip.fragments_evicted_bytes",
    "ip.fragments_oversize",
    "ip.fragments_incomplete_at_end",
)


def fragments(ident: int, payload: bytes, size: int, src: str = "10.0.0.1") -> list[bytes]:
    """Ethernet/IPv4 fragments of one UDP datagram carrying ``payload``, ``size`` bytes each."""
    frame = ip_frame(src, "10.0.0.2", 17, udp_datagram(40000, 7777, payload), ident=ident)
    eth, ip = frame[:14], frame[14:]
    hdr, body = bytearray(ip[:20]), ip[20:]
    out = []
    for off in range(0, len(body), size):
        part = body[off : off + size]
        struct.pack_into(
            ">HHH", hdr, 2, 20 + len(part), ident, (0x2000 if off + size < len(body) else 0) | off // 8
        )
        out.append(eth + bytes(hdr) + part)
    return out


def flood(datagrams: int, per: int, size: int = 1480) -> list[bytes]:
    """The attacker: ``datagrams`` datagrams of ``per`` fragments, each missing its last."""
    out = []
    for i in range(datagrams):
        src = f"10.{1 + i // 65536}.{i // 256 % 256}.{i % 256}"
        out += fragments(i % 65536, b"\xaa" * (size * per), size, src)[: per - 1]
    return out


def test_the_flood_stays_under_the_byte_cap_and_every_eviction_is_counted() -> None:
    cap = 8 << 20
    frames = flood(1200, 30)
    dec = Decoder([], DecoderLimits(fragment_max_bytes=cap))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i, fr in enumerate(frames):
        dec.feed(i, 1, fr)
        assert dec.frags.held <= cap
    held_for_real = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    # The accounting is honest: what the process holds is what the reassembler counts.
    assert held_for_real <= cap * 1.15, (held_for_real, dec.frags.held)
    stats = dec.stats
    pending = len(dec.frags.pending)
    assert stats["ip.fragments_evicted_bytes"] == 1200 - pending
    assert stats["ip.fragments_lost"] == (1200 - pending) * 29
    dec.flush()
    assert stats["ip.fragments_incomplete_at_end"] == pending
    assert not dec.frags.pending and dec.frags.held == 0


def test_the_datagram_count_cap_evicts_and_counts() -> None:
    dec = Decoder([], DecoderLimits(fragment_max_pending=100))
    for i, fr in enumerate(flood(300, 3)):
        dec.feed(i, 1, fr)
    assert len(dec.frags.pending) == 100
    assert dec.stats["ip.fragments_evicted"] == 200


def test_expiry_and_end_of_capture_are_counted() -> None:
    dec = Decoder([], DecoderLimits(fragment_timeout_ns=5 * NS))
    for fr in flood(10, 3):
        dec.feed(0, 1, fr)
    dec.tick(6 * NS)
    assert dec.stats["ip.fragments_expired"] == 10
    for fr in flood(4, 3):
        dec.feed(7 * NS, 1, fr)
    dec.flush()
    assert dec.stats["ip.fragments_incomplete_at_end"] == 4


def test_overlaps_cost_nothing_and_the_first_copy_wins() -> None:
    st_ = Counters()
    fr = FragmentReassembler(st_, max_datagram=100_000)
    key = (b"a", b"b", 17, 1)
    assert fr.add(0, key, 0, True, b"A" * 800) is None
    for off in range(0, 800, 8):  # copies with other bytes inside it: nothing new
        assert fr.add(0, key, off, True, b"B" * (800 - off)) is None
    assert fr.add(0, key, 0, True, b"B" * 1600) is None  # only its second half is new
    dg = fr.pending[key]
    assert dg.cost == 1600 + 2 * net.FRAGMENT_OVERHEAD + net.DATAGRAM_OVERHEAD == fr.held
    assert st_["ip.fragments_duplicate"] == 100
    whole = fr.add(0, key, 1600, False, b"C" * 8)
    assert whole == b"A" * 800 + b"B" * 800 + b"C" * 8
    assert fr.held == 0


@pytest.mark.parametrize("cap", [1 << 20, 4 << 20])
def test_tiny_fragments_are_accounted_with_their_overhead(cap: int) -> None:
    stats = Counters()
    fr = FragmentReassembler(stats, max_bytes=cap)
    key = (b"a", b"b", 17, 1)
    for off in range(0, 80_000, 16):  # every other 8-byte block: 5,000 holes
        fr.add(0, key, off, True, b"x" * 8)
    assert fr.held == 5000 * (8 + net.FRAGMENT_OVERHEAD) + net.DATAGRAM_OVERHEAD
    for off in range(8, 80_000, 16):
        fr.add(0, key, off, True, b"y" * 8)
        assert fr.held <= cap
    whole = fr.add(0, key, 80_000, False, b"z")
    if cap > 10_000 * (8 + net.FRAGMENT_OVERHEAD):
        assert whole == b"xxxxxxxxyyyyyyyy" * 5000 + b"z"
    else:  # 10,000 fragments do not fit in 1 MiB: given up on, and counted
        assert whole is None and stats["ip.fragments_evicted_bytes"] == 1


def test_a_later_end_shorter_than_what_was_sent_is_counted() -> None:
    st_ = Counters()
    fr = FragmentReassembler(st_)
    key = (b"a", b"b", 17, 1)
    fr.add(0, key, 0, True, b"a" * 64)
    fr.add(0, key, 64, True, b"b" * 64)
    assert fr.add(0, key, 32, False, b"c" * 8) == b"a" * 40
    assert st_["ip.fragments_inconsistent"] >= 1


def test_work_per_fragment_is_logarithmic_not_linear() -> None:
    """Structural: Python lines run per fragment stay constant as the holes multiply."""

    def work(n: int) -> float:
        fr = FragmentReassembler(Counters(), max_bytes=1 << 30, max_datagram=1 << 30)
        key = (b"a", b"b", 17, 1)
        rnd = random.Random(n)
        offs = [16 * k for k in range(n)]
        rnd.shuffle(offs)
        with metered([]) as meter:
            for off in offs:
                fr.add(0, key, off, True, b"x" * 8)
            for off in offs:
                fr.add(0, key, off + 8, True, b"y" * 8)
        return meter.lines / (2 * n)

    assert work(8000) < 1.3 * work(500)


def test_caps_come_from_the_config_and_are_validated(tmp_path: Path) -> None:
    s, warnings = load_settings(
        None,
        [
            "packetbeat.ip_fragments.max_bytes=4MiB",
            "packetbeat.ip_fragments.max_datagrams=123",
            "packetbeat.ip_fragments.timeout=7s",
        ],
    )
    assert not warnings
    frags = Beat(s).new_decoder().frags
    assert (frags.max_bytes, frags.max_pending, frags.timeout_ns) == (4 << 20, 123, 7 * NS)
    defaults = Beat(load_settings(None, [])[0]).new_decoder().frags
    assert (defaults.max_bytes, defaults.max_pending, defaults.timeout_ns) == (32 << 20, 4096, 30 * NS)
    for bad, why in [
        ("max_bytes=1000", "requires value >= 131072"),
        ("max_datagrams=0", "requires value >= 1"),
        ("timeout=0", "requires value > 0"),
        ("timeout=-1s", "requires value > 0"),
    ]:
        key = f"packetbeat.ip_fragments.{bad.split('=')[0]}"
        with pytest.raises(ConfigError, match=f"{why} accessing '{key}' \\(got .*, from -E\\)"):
            load_settings(None, [f"packetbeat.ip_fragments.{bad}"])


@settings(max_examples=max(60, EXAMPLES), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    datagrams=st.integers(1, 12),
    cap_kb=st.sampled_from([128, 256, 4096]),
    pending=st.sampled_from([1, 3, 4096]),
)
def test_fragments_in_any_order_cut_repeated_or_overlapping_lose_nothing_silently(
    seed: int, datagrams: int, cap_kb: int, pending: int
) -> None:
    """Every datagram comes out whole and correct, or a loss counter says why; the bytes
    held never pass the cap."""
    rnd = random.Random(seed)
    payloads = {}
    frames = []
    for i in range(datagrams):
        payload = rnd.randbytes(rnd.randint(1, 20_000))
        payloads[payload] = i
        frs = fragments(i, payload, 8 * rnd.randint(1, 200))
        if len(frs) > 1 and rnd.random() < 0.3:
            frs.pop(rnd.randrange(len(frs)))  # lost on the way
        frs += [rnd.choice(frs) for _ in range(rnd.randint(0, 3))]  # duplicates
        frames += frs
    rnd.shuffle(frames)
    dec, plugin = recorder()
    dec.frags.max_bytes = cap_kb << 10
    dec.frags.max_pending = pending
    for i, fr in enumerate(frames):
        dec.feed(i, 1, fr)
        assert dec.frags.held <= dec.frags.max_bytes
    dec.flush()
    got = [data for _conn, _d, data in plugin.datagrams]
    for data in got:
        assert data in payloads  # never a wrong datagram
    assert len(got) + sum(dec.stats.get(k, 0) for k in LOSSES) >= datagrams
    assert dec.frags.held == 0
