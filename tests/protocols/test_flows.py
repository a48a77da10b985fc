"""The flow table: keys, counters, the report clock on capture time, bounds."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from protocols.decoder import Decoder
from protocols.flows import FlowConfig, FlowConfigError
from protocols.registry import build_plugins, default_config
from shipper.pipeline.envelope import Envelope

S = 1_000_000_000
T0 = 1_700_000_003 * S  # 3 s past a multiple of 10 s: the report clock starts at T0 + 7 s
MA, MB = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def udp(
    src: str, dst: str, sport: int, dport: int, size: int = 10, macs: tuple[str, str] = (MA, MB)
) -> bytes:
    return bytes(
        Ether(src=macs[0], dst=macs[1])
        / IP(src=src, dst=dst)
        / UDP(sport=sport, dport=dport)
        / Raw(b"u" * size)
    )


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: str = "A",
    seq: int = 1,
    payload: bytes = b"",
    **ip: Any,
) -> bytes:
    fwd = src < dst
    macs = (MA, MB) if fwd else (MB, MA)
    pkt: Packet = (
        Ether(src=macs[0], dst=macs[1])
        / IP(src=src, dst=dst, **ip)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq)
    )
    return bytes(pkt / Raw(payload)) if payload else bytes(pkt)


def decoder(**opts: Any) -> Decoder:
    cfg = {"timeout": 30, "period": 10, **opts}
    plugins = build_plugins({"http": default_config("http", ports=[80])})
    return Decoder(plugins, flows=FlowConfig.from_seconds(**cfg))


def feed(dec: Decoder, packets: list[tuple[int, bytes]], wire: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ts, frame in packets:
        out += dec.feed_many([(ts, 1, frame, max(wire, len(frame)))])
    return [e for e in out if e["type"] == "flow"]


def flows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "flow"]


# -- the report clock ------------------------------------------------------------------------


def test_reports_run_on_capture_time_aligned_to_ten_seconds() -> None:
    dec = decoder()
    a = udp("10.0.0.1", "10.0.0.2", 1000, 2000)
    b = udp("10.0.0.2", "10.0.0.1", 2000, 1000, size=30, macs=(MB, MA))
    got = feed(dec, [(T0, a), (T0 + 2 * S, b), (T0 + 9 * S, a), (T0 + 22 * S, a)])
    # The report clock starts at T0+7s and ticks every 10s; a tick runs before the first
    # packet at or after it, so the report at +17s has the packets before it.
    assert [(e["@timestamp"] - T0) // S for e in got] == [17]
    assert (got[0]["source"]["packets"], got[0]["destination"]["packets"]) == (2, 1)
    got = feed(dec, [(T0 + 70 * S, udp("10.9.9.9", "10.9.9.8", 1, 2))])
    # +27s and on: every tick reports; every third one (+37, +67) checks timeouts: at +67
    # the flow has been idle 45s > 30s → its final report, and it is gone.
    assert [((e["@timestamp"] - T0) // S, e["flow"]["final"]) for e in got] == [
        (27, False),
        (37, False),
        (47, False),
        (57, False),
        (67, True),
    ]
    assert {e["source"]["packets"] for e in got} == {3}
    final = got[-1]
    assert final["event"]["type"] == ["connection", "end"]
    assert (final["event"]["start"], final["event"]["end"]) == (T0, T0 + 22 * S)
    assert final["event"]["duration"] == 22 * S
    assert final["source"]["bytes"] == 3 * len(a) and final["destination"]["bytes"] == len(b)
    assert final["network"] == {
        "type": "ipv4",
        "transport": "udp",
        "community_id": final["network"]["community_id"],
        "bytes": 3 * len(a) + len(b),
        "packets": 4,
    }
    rest = dec.flush()
    assert [(e["source"]["ip"], e["flow"]["final"], e["@timestamp"]) for e in rest] == [
        ("10.9.9.9", True, T0 + 70 * S)
    ]
    assert dec.stats["flows.timed_out"] == 1 and dec.stats["flows.created"] == 2


def test_idle_link_ticks_report_too() -> None:
    dec = decoder()
    feed(dec, [(T0, udp("10.0.0.1", "10.0.0.2", 1, 2))])
    assert flows(dec.tick(T0 + 16 * S)) == []
    got = flows(dec.tick(T0 + 40 * S))
    assert [((e["@timestamp"] - T0) // S, e["flow"]["final"]) for e in got] == [
        (17, False),
        (27, False),
        (37, True),
    ]


def test_period_minus_one_reports_only_ended_flows() -> None:
    dec = decoder(period=-1)
    got = feed(
        dec, [(T0, udp("10.0.0.1", "10.0.0.2", 1, 2)), (T0 + 100 * S, udp("10.0.0.3", "10.0.0.2", 1, 2))]
    )
    # One tick every timeout (30s) from T0+7s: the first flow ends at T0+37s.
    assert [((e["@timestamp"] - T0) // S, e["flow"]["final"]) for e in got] == [(37, True)]
    assert [e["flow"]["final"] for e in flows(dec.flush())] == [True]


def test_delta_reports_restart_the_counters() -> None:
    dec = decoder(delta=True)
    a = udp("10.0.0.1", "10.0.0.2", 1, 2)
    b = udp("10.0.0.2", "10.0.0.1", 2, 1, macs=(MB, MA))
    got = feed(
        dec,
        [
            (T0, a),
            (T0 + S, b),
            (T0 + 8 * S, a),
            (T0 + 18 * S, a),
            (T0 + 30 * S, udp("10.5.5.5", "10.5.5.6", 1, 2)),
        ],
    )
    rows = [
        (e["source"].get("packets"), e["destination"].get("packets"), e["network"]["packets"]) for e in got
    ]
    # +17: 2 and 1 so far; +27: one more from the source, none back (reported as 0).
    assert rows == [(2, 1, 3), (1, 0, 1)]
    (final, other) = flows(dec.flush())
    assert (final["source"]["packets"], final["destination"]["packets"], final["flow"]["final"]) == (
        0,
        0,
        True,
    )
    assert other["source"]["packets"] == 1 and "packets" not in other["destination"]


def test_two_replays_give_identical_reports() -> None:
    packets = [(T0 + i * S // 3, udp("10.0.0.1", f"10.0.1.{i % 7}", 1000 + i % 3, 53)) for i in range(200)]
    packets += [(T0 + 90 * S, tcp("10.0.0.1", "10.0.0.9", 5000, 80, "S"))]

    def replay() -> list[dict[str, Any]]:
        dec = decoder()
        events = feed(dec, packets) + flows(dec.flush())
        env = Envelope(beat_name="determinism")
        return [{k: v for k, v in env.apply(e).items() if k not in ("agent", "host")} for e in events]

    first, second = replay(), replay()
    assert first == second
    assert len(first) > 7 and len({e["flow"]["id"] for e in first}) == 22


# -- keys and counters -----------------------------------------------------------------------


def test_fast_path_and_general_path_count_into_the_same_flow() -> None:
    dec = decoder()
    plain = tcp("10.0.0.1", "10.0.0.2", 4000, 9000, "PA", payload=b"x" * 20)
    with_options = tcp(
        "10.0.0.1", "10.0.0.2", 4000, 9000, "PA", payload=b"y" * 20, options=[b"\x94\x04\x00\x00"]
    )
    back = tcp("10.0.0.2", "10.0.0.1", 9000, 4000, "A")
    feed(dec, [(T0, plain), (T0 + 1, with_options), (T0 + 2, back)], wire=1500)
    (f,) = flows(dec.flush())
    assert (f["source"]["packets"], f["source"]["bytes"]) == (2, 3000)  # wire length, not captured length
    assert (f["destination"]["packets"], f["destination"]["bytes"]) == (1, 1500)
    assert f["source"]["port"] == 4000 and f["network"]["transport"] == "tcp"


def test_each_tcp_connection_on_a_protocol_port_is_a_flow() -> None:
    dec = decoder()
    c, s = "10.0.0.1", "10.0.0.2"
    first = [
        (T0, tcp(c, s, 4000, 80, "S", seq=100)),
        (T0 + 1, tcp(s, c, 80, 4000, "SA", seq=500)),
        (T0 + 2, tcp(c, s, 4000, 80, "FA", seq=101)),
        (T0 + 3, tcp(s, c, 80, 4000, "FA", seq=501)),
    ]
    # The same addresses again: a new SYN after the FINs is a new connection (Packetbeat
    # keeps one), and after 10s idle (http's transaction_timeout) so is any packet.
    again = [(T0 + S, tcp(c, s, 4000, 80, "S", seq=9000)), (T0 + S + 1, tcp(s, c, 80, 4000, "SA", seq=7000))]
    later = [(T0 + 20 * S, tcp(c, s, 4000, 80, "A", seq=9001))]
    # On a port no protocol claims, the addresses are one flow.
    other = [(T0 + i, tcp(c, s, 4001, 9999, "S" if i % 2 == 0 else "FA", seq=i)) for i in range(4)]
    feed(dec, first + again + later + other)
    got = flows(dec.flush())
    by_port = sorted(
        (e["source"]["port"], e["source"]["packets"], e["destination"].get("packets", 0)) for e in got
    )
    assert by_port == [(4000, 1, 0), (4000, 1, 1), (4000, 2, 2), (4001, 4, 0)]
    assert len({e["flow"]["id"] for e in got}) == 4


def test_a_duplicated_syn_after_the_fins_is_no_new_connection() -> None:
    """Captures with duplicated packets (wsgi_loopback.pcap) repeat the first SYN after the
    FINs: the same initial sequence number, the same connection."""
    dec = decoder()
    c, s = "10.0.0.1", "10.0.0.2"
    feed(
        dec,
        [
            (T0, tcp(c, s, 4000, 80, "S", seq=100)),
            (T0 + 1, tcp(s, c, 80, 4000, "SA", seq=500)),
            (T0 + 2, tcp(c, s, 4000, 80, "FA", seq=101)),
            (T0 + 3, tcp(s, c, 80, 4000, "FA", seq=501)),
            (T0 + 4, tcp(c, s, 4000, 80, "S", seq=100)),
            (T0 + 5, tcp(s, c, 80, 4000, "PA", seq=501, payload=b"late")),
        ],
    )
    (f,) = flows(dec.flush())
    assert (f["source"]["packets"], f["destination"]["packets"]) == (3, 3)


def test_allow_mismatched_eth_leaves_the_macs_out() -> None:
    there = udp("10.0.0.1", "10.0.0.2", 1, 2, macs=(MA, MB))
    back = udp("10.0.0.2", "10.0.0.1", 2, 1, macs=("02:00:00:00:00:0c", MA))  # routed: other MAC back
    dec = decoder()
    feed(dec, [(T0, there), (T0 + 1, back)])
    assert len(flows(dec.flush())) == 2
    dec = decoder(allow_mismatched_eth=True)
    feed(dec, [(T0, there), (T0 + 1, back)])
    (f,) = flows(dec.flush())
    assert "mac" not in f["source"] and f["destination"]["packets"] == 1


def test_icmp_flow_transport_and_community_id_follow_packetbeat() -> None:
    """Only the source side's last ICMP type/code counts, and only when it is not 0/0: a flow
    that an echo reply opened has neither network.transport nor community_id."""
    dec = decoder()
    req = bytes(Ether(src=MA, dst=MB) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=1, seq=1))
    rep = bytes(Ether(src=MB, dst=MA) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=1, seq=1))
    feed(dec, [(T0, req), (T0 + 1, rep)])
    (f,) = flows(dec.flush())
    assert (
        f["network"]["transport"] == "icmp"
        and f["network"]["community_id"] == "1:YcMyyWJfhc95EW1GfXt6jlZ3DiQ="
    )
    dec = decoder()
    feed(dec, [(T0, rep), (T0 + 1, req)])
    (f,) = flows(dec.flush())
    assert "transport" not in f["network"] and "community_id" not in f["network"]
    assert f["source"]["ip"] == "10.0.0.2" and f["network"]["packets"] == 2


def test_flow_table_is_bounded_and_evictions_are_reported() -> None:
    dec = decoder(max_flows=3)
    got = feed(dec, [(T0 + i, udp("10.0.0.1", "10.0.0.2", 1000 + i, 53)) for i in range(5)])
    assert [(e["source"]["port"], e["flow"]["final"]) for e in got] == [(1000, True), (1001, True)]
    assert dec.stats["flows.evicted"] == 2
    assert len(dec.flows.flows) == 3 and len(dec.flows.table) == 6  # type: ignore[union-attr]
    assert [e["source"]["port"] for e in flows(dec.flush())] == [1002, 1003, 1004]


def test_flows_off_costs_nothing_and_counts_nothing() -> None:
    dec = Decoder(build_plugins({"http": default_config("http", ports=[80])}))
    assert dec.flows is None
    assert dec.feed(T0, 1, udp("10.0.0.1", "10.0.0.2", 1, 2)) == [] and dec.flush() == []


@pytest.mark.parametrize(("timeout", "period"), [(0.5, 10), (30, 0.5)])
def test_packetbeat_rejects_sub_second_timings(timeout: float, period: float) -> None:
    with pytest.raises(FlowConfigError):
        FlowConfig.from_seconds(timeout, period)
    FlowConfig.from_seconds(30, -1)
    FlowConfig.from_seconds(30, 0)


def test_forgotten_flows_leave_no_reference_cycles() -> None:
    """The shipper collects cyclic garbage rarely (Beat.tune_gc): ended flows must be freed
    by reference counting alone."""
    import gc

    from protocols.flows.table import Conn, Flow, Side

    def alive() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, Flow | Side | Conn))

    gc.collect()
    gc.disable()
    try:
        assert alive() == 0
        dec = decoder(timeout=1, period=-1)
        packets = [
            (T0 + i, tcp("10.0.0.1", "10.0.0.2", 4000 + i % 5, 80, "S" if i < 5 else "FA")) for i in range(10)
        ]
        packets += [(T0 + S, tcp("10.0.0.1", "10.0.0.2", 4000, 80, "S", seq=99))]  # a reused connection
        packets += [(T0 + i, udp("10.0.0.1", "10.0.0.2", 5000 + i, 53)) for i in range(5)]
        feed(dec, packets)
        assert alive() > 0
        feed(dec, [(T0 + 10 * S, udp("10.9.9.9", "10.9.9.8", 1, 2))])  # all of them time out
        assert dec.stats["flows.timed_out"] == 11
        dec.flush()
        assert alive() == 0
    finally:
        gc.enable()
