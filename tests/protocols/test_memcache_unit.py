"""memcache decoder: parsing of every command and reply, pairing (TCP and UDP), options, loss.

Field names and values follow Packetbeat 9.3 (checked against its output on captures made
with a real memcached: tests/protocols/test_memcache_pcaps.py for the shared ones).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.memcache import MemcachePlugin
from protocols.memcache.config import MemcacheConfig
from protocols.memcache.parser import StreamParser
from protocols.stats import Counters

C, S = FROM_CLIENT, FROM_SERVER
CONN = ConnInfo("10.0.0.1", 40000, "10.0.0.2", 11211)
UCONN = ConnInfo("10.0.0.1", 40001, "10.0.0.2", 11211, "udp")
MS = 1_000_000


def plugin(**opts: Any) -> MemcachePlugin:
    return MemcachePlugin(MemcacheConfig(ports=[11211], **opts), Counters())


def tcp(
    steps: list[tuple[int, bytes]], p: MemcachePlugin | None = None, close: bool = True
) -> list[dict[str, Any]]:
    p = p or plugin()
    h = p.new_handler(CONN)
    txns: list[Any] = []
    ts = 1000 * MS
    for d, data in steps:
        txns += h.on_data(d, data, ts)
        ts += MS
    if close:
        txns += h.on_close("fin")
    return [p.to_event(t) for t in txns]


def mc(evt: dict[str, Any]) -> dict[str, Any]:
    return evt["memcache"]


def binmsg(
    op: int,
    key: bytes = b"",
    extras: bytes = b"",
    value: bytes = b"",
    opaque: int = 0,
    cas: int = 0,
    status: int = 0,
    request: bool = True,
) -> bytes:
    body = extras + key + value
    return (
        struct.pack(
            ">BBHBBHIIQ",
            0x80 if request else 0x81,
            op,
            len(key),
            len(extras),
            0,
            0 if request else status,
            len(body),
            opaque,
            cas,
        )
        + body
    )


def udp(rid: int, payload: bytes, seq: int = 0, total: int = 1) -> bytes:
    return struct.pack(">HHHH", rid, seq, total, 0) + payload


# -- text protocol ---------------------------------------------------------------------------


def test_store_and_load() -> None:
    set_, get, quit_ = tcp(
        [
            (C, b"set k 5 100 3\r\nabc\r\n"),
            (S, b"STORED\r\n"),
            (C, b"gets k nope\r\n"),
            (S, b"VALUE k 5 3 77\r\nabc\r\nEND\r\n"),
            (C, b"quit\r\n"),
        ]
    )
    assert mc(set_) == {
        "request": {
            "command": "set",
            "type": "Store",
            "count_values": 1,
            "keys": ["k"],
            "flags": 5,
            "exptime": 100,
            "bytes": 3,
            "noreply": False,
        },
        "response": {"command": "STORED", "type": "Success"},
        "protocol_type": "text",
    }
    assert set_["source"]["bytes"] == 20 and set_["destination"]["bytes"] == 8
    assert set_["event"]["action"] == "memcache.store" and set_["event"]["outcome"] == "success"
    assert set_["event"]["end"] - set_["event"]["start"] == MS
    assert mc(get)["request"] == {"command": "gets", "type": "Load", "keys": ["k", "nope"]}
    assert mc(get)["response"] == {
        "command": "VALUE",
        "type": "Load",
        "count_values": 1,
        "keys": ["k"],
        "flags": 5,
        "bytes": 3,
        "cas_unique": 77,
    }
    assert get["destination"]["bytes"] == len(b"VALUE k 5 3 77\r\nabc\r\nEND\r\n")
    assert quit_["status"] == "OK" and "response" not in mc(quit_) and "end" not in quit_["event"]


def test_multi_get_merges_values_and_keys() -> None:
    (get,) = tcp(
        [
            (C, b"get a b c\r\n"),
            (S, b"VALUE a 1 2\r\nxx\r\n"),
            (S, b"VALUE c 3 4\r\nyyyy\r\nEND\r\n"),
        ],
        plugin(maxvalues=-1),
    )
    r = mc(get)["response"]
    assert r["keys"] == ["a", "c"] and r["count_values"] == 2 and r["bytes"] == 6
    assert r["flags"] == 1 and r["cas_unique"] == 0
    assert r["values"] == ["eHg=", "eXl5eQ=="]
    assert get["event"]["end"] == get["event"]["start"] + MS  # the reply's first byte


def test_failures_and_statuses() -> None:
    evts = tcp(
        [
            (C, b"cas k 0 0 1 9\r\nz\r\n"),
            (S, b"EXISTS\r\n"),
            (C, b"cas n 0 0 1 9\r\nz\r\n"),
            (S, b"NOT_FOUND\r\n"),
            (C, b"incr k 1\r\n"),
            (S, b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
            (C, b"add k 0 0 1\r\nz\r\n"),
            (S, b"SERVER_ERROR out of memory storing object\r\n"),
            (C, b"touch k 10\r\n"),
            (S, b"TOUCHED\r\n"),
            (C, b"incr n 10\r\n"),
            (S, b"42\r\n"),
        ]
    )
    assert [e["status"] for e in evts] == ["OK", "Error", "Client Error", "Server Error", "OK", "OK"]
    assert [e["event"]["outcome"] for e in evts] == [
        "success",
        "failure",
        "failure",
        "failure",
        "success",
        "success",
    ]
    assert mc(evts[0])["request"]["cas_unique"] == 9
    assert mc(evts[2])["response"] == {
        "command": "CLIENT_ERROR",
        "type": "Fail",
        "error_msg": "cannot increment or decrement non-numeric value",
    }
    assert mc(evts[4])["response"]["command"] == "TOCHED"  # Packetbeat's spelling
    assert mc(evts[5])["request"] == {
        "command": "incr",
        "type": "Counter",
        "keys": ["n"],
        "delta": 10,
        "noreply": False,
    }
    assert mc(evts[5])["response"] == {"command": "<counter_op_res>", "type": "Counter", "value": 42}


def test_info_and_admin_commands() -> None:
    evts = tcp(
        [
            (C, b"stats settings\r\n"),
            (S, b"STAT maxbytes 67108864\r\nSTAT tcpport 11211\r\nEND\r\n"),
            (C, b"stats\r\n"),
            (S, b"STAT pid 1\r\nEND\r\n"),
            (C, b"version\r\n"),
            (S, b"VERSION 1.6.18\r\n"),
            (C, b"verbosity 1\r\n"),
            (S, b"OK\r\n"),
            (C, b"flush_all\r\n"),
            (S, b"OK\r\n"),
            (C, b"flush_all 30\r\n"),
            (S, b"OK\r\n"),
            (C, b"slabs reassign 1 -2\r\n"),
            (S, b"OK\r\n"),
            (C, b"slabs automove 2\r\n"),
            (S, b"OK\r\n"),
            (C, b"lru_crawler sleep 100\r\n"),
            (S, b"OK\r\n"),
            (C, b"lru_crawler crawl 1,2\r\n"),
            (S, b"OK\r\n"),
        ]
    )
    reqs = [mc(e)["request"] for e in evts]
    assert reqs[0] == {"command": "stats", "type": "Stats", "raw_args": "settings"}
    assert mc(evts[0])["response"] == {
        "command": "STAT",
        "type": "Stats",
        "stats": [{"name": "maxbytes", "value": "67108864"}, {"name": "tcpport", "value": "11211"}],
    }
    assert reqs[1]["raw_args"] == ""
    assert reqs[2] == {"command": "version", "type": "Info"}
    assert mc(evts[2])["response"] == {"command": "VERSION", "type": "Info"}
    assert reqs[3] == {"command": "verbosity", "type": "Info", "verbosity": 1}
    assert reqs[4] == {"command": "flush_all", "type": "Delete", "exptime": 0}
    assert reqs[5]["exptime"] == 30
    assert reqs[6] == {"command": "slabs reassign", "type": "SlabCtrl", "source_class": 1, "dest_class": -2}
    assert reqs[7] == {"command": "slabs automove", "type": "SlabCtrl", "automove": "aggressive"}
    assert reqs[8] == {"command": "lru_crawler sleep", "type": "LRUCrawler", "sleep_us": 100}
    assert reqs[9] == {"command": "lru_crawler tocrawl", "type": "LRUCrawler", "raw_args": "1,2"}
    assert [e["event"]["action"] for e in evts[:3]] == ["memcache.stats", "memcache.stats", "memcache.info"]


def test_noreply_requests_stand_alone() -> None:
    """Packetbeat pairs a noreply request with the next request's reply; not here."""
    evts = tcp(
        [
            (C, b"set a 0 0 1 noreply\r\nx\r\n"),
            (C, b"delete b noreply\r\n"),
            (C, b"get a\r\n"),
            (S, b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        ]
    )
    assert [mc(e)["request"]["command"] for e in evts] == ["set", "delete", "get"]
    assert mc(evts[0])["request"]["noreply"] is True and "response" not in mc(evts[0])
    assert evts[0]["status"] == "OK" and "error" not in evts[0]
    assert mc(evts[2])["response"]["keys"] == ["a"]


def test_unknown_commands() -> None:
    p = plugin()
    evts = tcp([(C, b"gat 10 k\r\n"), (S, b"END\r\n")], p)
    # The stream is dropped at the unknown command; the reply comes out alone.
    assert len(evts) == 1 and evts[0]["status"] == "Client Error"
    assert evts[0]["error"]["message"] == ["Invalid transaction. Request missing"]
    assert p.stats["memcache.unknown_commands"] == 1
    (evt,) = tcp([(C, b"gat 10 k\r\n"), (S, b"END\r\n")], plugin(parseunknown=True))
    assert mc(evt)["request"] == {"line": "gat 10 k", "command": "UNKNOWN", "type": "UNKNOWN"}
    assert evt["event"]["action"] == "memcache.unknown"


def test_parse_error_publishes_pending_and_resumes_at_next_segment() -> None:
    p = plugin()
    evts = tcp(
        [
            (C, b"get a\r\n"),
            (C, b"set k 0 0 x\r\n"),  # bytes is not a number
            (C, b"get b\r\n"),
            (S, b"END\r\n"),
        ],
        p,
    )
    assert mc(evts[0])["request"]["keys"] == ["a"]
    assert evts[0]["error"]["message"] == ["Unfinished transaction"] and evts[0]["status"] == "Server Error"
    assert mc(evts[1])["request"]["keys"] == ["b"] and mc(evts[1])["response"]["command"] == "END"
    assert p.stats["memcache.bad_argument"] == 1 and p.stats["memcache.stream_drops"] == 1


def test_noreply_token_and_trailing_tokens() -> None:
    (evt,) = tcp([(C, b"touch k 10 noreply extra\r\n")])
    assert mc(evt)["request"]["noreply"] is True
    p = plugin()
    assert tcp([(C, b"delete k 0\r\n")], p) == []  # "0" where noreply may stand: Packetbeat drops
    assert p.stats["memcache.bad_argument"] == 1


def test_large_values_are_not_buffered() -> None:
    p = plugin()
    h = p.new_handler(CONN)
    h.on_data(C, b"set big 0 0 3000000\r\n", 1)
    parser = h.parsers[C]
    assert parser is not None
    for _ in range(2000):
        h.on_data(C, b"v" * 1500, 2)
        assert len(parser.buf) <= 1500
    h.on_data(C, b"\r\n", 3)
    (txn,) = h.on_data(S, b"STORED\r\n", 4)
    evt = p.to_event(txn)
    assert mc(evt)["request"]["bytes"] == 3_000_000
    assert evt["source"]["bytes"] == len(b"set big 0 0 3000000\r\n") + 3_000_002


def test_lying_length_and_bad_terminator() -> None:
    p = plugin()
    assert tcp([(C, b"set k 0 0 2\r\nabcd\r\n")], p) == []
    assert p.stats["memcache.bad_data_terminator"] == 1
    p = plugin(max_message_size=64)
    assert tcp([(C, b"get " + b"k" * 100)], p) == []
    assert p.stats["memcache.oversized_messages"] == 1


def test_gap_inside_a_value_keeps_the_stream() -> None:
    p = plugin(maxvalues=-1)
    h = p.new_handler(CONN)
    assert h.on_data(C, b"set k 0 0 10\r\nab", 1) == []
    assert h.on_gap(C, 5) is False
    assert h.on_data(C, b"cde\r\n", 2) == []
    (txn,) = h.on_data(S, b"STORED\r\n", 3)
    evt = p.to_event(txn)
    assert evt["error"]["message"] == ["Packet loss while capturing the request"]
    assert mc(evt)["request"]["count_values"] == 1 and "values" not in mc(evt)["request"]
    assert evt["status"] == "OK"
    # Outside a value, requests were lost: the one waiting is answered first and pairs as
    # usual; the response of the lost one would pair with the next request, so that pair
    # is flagged, until a response comes with no request (the streams are in step again).
    h = p.new_handler(CONN)
    h.on_data(C, b"get a\r\n", 1)
    assert h.on_gap(C, 7) is False  # room for one request as short as "get a"
    assert h.on_data(C, b"get b\r\n", 2) == []
    out = [p.to_event(t) for t in h.on_data(S, b"END\r\nEND\r\nEND\r\n", 3)]
    assert [mc(e)["request"]["keys"] if "request" in mc(e) else None for e in out] == [["a"], ["b"], None]
    assert "error" not in out[0]
    assert out[1]["error"]["message"] == ["Packet loss while capturing the request"]
    assert out[2]["error"]["message"] == ["Invalid transaction. Request missing"]
    (txn,) = h.on_data(C, b"get c\r\n", 4) + h.on_data(S, b"END\r\n", 5)
    assert "error" not in p.to_event(txn)
    # Lost responses: as Packetbeat, the stream is dropped and what waits is published.
    h = p.new_handler(CONN)
    h.on_data(C, b"get a\r\n", 1)
    h.on_data(S, b"VALUE a 0 1", 2)
    assert h.on_gap(S, 3) is True
    (txn,) = h.on_close("gap")
    assert p.to_event(txn)["error"]["message"] == ["Unfinished transaction"]


# -- binary protocol --------------------------------------------------------------------------


def test_binary_set_get_and_errors() -> None:
    evts = tcp(
        [
            (C, binmsg(0x01, b"k", struct.pack(">II", 3, 60), b"hello", opaque=1)),
            (S, binmsg(0x01, opaque=1, cas=10, request=False)),
            (C, binmsg(0x0C, b"nope", opaque=2)),
            (S, binmsg(0x0C, b"nope", struct.pack(">I", 0), opaque=2, status=1, request=False)),
            (C, binmsg(0x05, b"k", struct.pack(">QQI", 1, 0, 0), opaque=3)),
            (
                S,
                binmsg(
                    0x05,
                    value=b"Non-numeric server-side value for incr or decr",
                    opaque=3,
                    status=6,
                    request=False,
                ),
            ),
            (C, binmsg(0x05, b"n", struct.pack(">QQI", 2, 5, 0xFFFFFFFF), opaque=4)),
            (S, binmsg(0x05, value=struct.pack(">Q", 7), opaque=4, cas=11, request=False)),
            (C, binmsg(0x30, opaque=5)),
            (S, binmsg(0x30, value=b"Unknown command", opaque=5, status=0x81, request=False)),
        ]
    )
    assert mc(evts[0])["request"] == {
        "command": "set",
        "type": "Store",
        "opcode": "Set",
        "opcode_value": 1,
        "opaque": 1,
        "keys": ["k"],
        "count_values": 1,
        "bytes": 5,
        "quiet": False,
        "vbucket": 0,
        "flags": 3,
        "exptime": 60,
    }
    assert mc(evts[0])["response"] == {
        "command": "set",
        "type": "Store",
        "opcode": "Set",
        "opcode_value": 1,
        "opaque": 1,
        "cas_unique": 10,
        "status": "Success",
        "status_code": 0,
    }
    assert [e["status"] for e in evts] == ["OK", "Error", "Error", "OK", "Server Error"]
    assert mc(evts[1])["response"]["flags"] == 0 and mc(evts[1])["response"]["keys"] == ["nope"]
    assert "value" not in mc(evts[2])["response"]  # an error text is no number
    assert mc(evts[2])["response"]["status"] == "Incr/Decr on non-numeric value."
    assert mc(evts[3])["request"]["delta"] == 2 and mc(evts[3])["request"]["initial"] == 5
    assert mc(evts[3])["request"]["exptime"] == 0xFFFFFFFF
    assert mc(evts[3])["response"]["value"] == 7
    assert mc(evts[4])["request"]["command"] == "UNKNOWN" and mc(evts[4])["request"]["opcode"] == "RGet"


def test_binary_quiet_batch_ended_by_noop() -> None:
    batch = (
        binmsg(0x09, b"hit", opaque=1)
        + binmsg(0x0D, b"miss", opaque=2)
        + binmsg(0x11, b"s", struct.pack(">II", 0, 0), b"v", opaque=3)
        + binmsg(0x0A, opaque=4)
    )
    replies = binmsg(0x09, value=b"data", extras=struct.pack(">I", 0), opaque=1, request=False) + binmsg(
        0x0A, opaque=4, request=False
    )
    evts = tcp([(C, batch), (S, replies)])
    assert [(mc(e)["request"]["opcode"], "response" in mc(e), e["status"]) for e in evts] == [
        ("GetQ", True, "OK"),
        ("GetKQ", False, "OK"),
        ("SetQ", False, "OK"),
        ("No-op", True, "OK"),
    ]
    assert all("error" not in e for e in evts)


def test_binary_non_quiet_without_reply_is_noted() -> None:
    evts = tcp(
        [
            (C, binmsg(0x00, b"a", opaque=1) + binmsg(0x00, b"b", opaque=2)),
            (S, binmsg(0x00, extras=b"\0\0\0\0", value=b"B", opaque=2, request=False)),
        ]
    )
    assert evts[0]["error"]["message"] == ["Missing response for non-quiet request"]
    assert evts[0]["status"] == "Server Error"
    assert mc(evts[1])["request"]["keys"] == ["b"] and evts[1]["status"] == "OK"


def test_getkq_batch_with_opaque_zero_pairs_by_key() -> None:
    """python-binary-memcached's get_multi: GetKQ..., GetK, all with opaque 0."""
    reqs = binmsg(0x0D, b"a") + binmsg(0x0D, b"b") + binmsg(0x0C, b"c")
    replies = binmsg(0x0D, b"b", b"\0\0\0\0", b"B", request=False) + binmsg(
        0x0C, b"c", b"\0\0\0\0", status=1, request=False
    )
    evts = tcp([(C, reqs), (S, replies)])
    got = [(mc(e)["request"]["keys"], mc(e).get("response", {}).get("keys")) for e in evts]
    assert got == [(["a"], None), (["b"], ["b"]), (["c"], ["c"])]


def test_binary_stats_and_version() -> None:
    replies = (
        binmsg(0x10, b"pid", value=b"42", opaque=7, request=False)
        + binmsg(0x10, b"uptime", value=b"5", opaque=7, request=False)
        + binmsg(0x10, opaque=7, request=False)
    )
    stats, version = tcp(
        [
            (C, binmsg(0x10, opaque=7)),
            (S, replies[:30]),
            (S, replies[30:]),
            (C, binmsg(0x0B, opaque=8)),
            (S, binmsg(0x0B, value=b"1.6.18", opaque=8, request=False)),
        ]
    )
    r = mc(stats)["response"]
    assert r["stats"] == [{"name": "pid", "value": "42"}, {"name": "uptime", "value": "5"}]
    assert r["keys"] == ["pid"] and stats["destination"]["bytes"] == len(replies)
    assert mc(version)["response"]["version"] == "1.6.18"


def test_short_extras_get_a_note() -> None:
    (evt,) = tcp(
        [(C, binmsg(0x01, b"k", b"\0\0\0\1", b"v", opaque=1)), (S, binmsg(0x01, opaque=1, request=False))]
    )
    assert evt["error"]["message"] == "unexpected end of buffer" or evt["error"]["message"] == [
        "unexpected end of buffer"
    ]
    assert mc(evt)["request"]["flags"] == 1 and mc(evt)["request"]["exptime"] == 0


def test_quitq_and_orphans_and_mixing() -> None:
    p = plugin()
    evts = tcp(
        [
            (S, b"STORED\r\n"),
            (C, binmsg(0x17)),
        ],
        p,
    )
    assert evts[0]["status"] == "Client Error" and mc(evts[0])["protocol_type"] == "text"
    assert evts[0]["source"]["ip"] == "10.0.0.1"  # the requester side, as Packetbeat
    assert mc(evts[1])["request"]["opcode"] == "QuitQ" and evts[1]["status"] == "OK"
    p = plugin()
    assert tcp([(C, b"get a\r\n"), (S, binmsg(0x00, opaque=0, request=False))], p) == []
    assert p.stats["memcache.mixed_protocols"] == 1


def test_pending_requests_are_capped() -> None:
    p = plugin(max_pending_requests=3)
    evts = tcp([(C, b"get a\r\nget b\r\nget c\r\nget d\r\n")], p, close=False)
    assert len(evts) == 1 and evts[0]["error"]["message"] == ["Unfinished transaction"]
    assert p.stats["memcache.pending_evictions"] == 1


# -- UDP --------------------------------------------------------------------------------------


def udp_events(p: MemcachePlugin, steps: list[tuple[int, bytes]], flush: bool = True) -> list[dict[str, Any]]:
    txns: list[Any] = []
    ts = 1000 * MS
    for d, data in steps:
        txns += p.on_datagram(UCONN, d, data, ts)
        ts += MS
    if flush:
        txns += p.flush()
    return [p.to_event(t) for t in txns]


def test_udp_reply_in_several_datagrams_and_messages() -> None:
    p = plugin()
    value = b"Q" * 3000
    reply = b"VALUE big 0 3000\r\n" + value + b"\r\n"
    evts = udp_events(
        p,
        [
            (C, udp(9, b"get s big\r\n")),
            (S, udp(9, b"VALUE s 0 1\r\nx\r\n")),
            (S, udp(9, reply[:1400], 0, 3)),
            (S, udp(9, reply[1400:2800], 1, 3)),
            (S, udp(9, reply[2800:], 2, 3)),
            (S, udp(9, b"END\r\n")),
        ],
        flush=False,
    )
    (evt,) = evts
    r = mc(evt)["response"]
    assert r["keys"] == ["s", "big"] and r["count_values"] == 2 and r["bytes"] == 3001
    assert evt["destination"]["bytes"] == len(b"VALUE s 0 1\r\nx\r\n") + len(reply) + 5
    assert evt["network"]["transport"] == "udp" and evt["event"]["end"] == evt["event"]["start"] + MS
    assert not p.udp.exchanges


def test_udp_timeouts_noreply_and_empty_frames() -> None:
    p = plugin(udptransactiontimeout=0.05)
    assert udp_events(p, [(C, udp(1, b"delete k noreply\r\n")), (S, b"\0\1")], flush=False) == []
    assert p.stats["memcache.udp_short_datagrams"] == 1
    assert p.on_datagram(UCONN, S, struct.pack(">HHHH", 2, 0, 0, 0), 1) == []  # quiet: empty frame
    assert p.stats["memcache.udp_empty_frames"] == 1
    assert p.tick(1000 * MS + 40 * MS) == []
    (txn,) = p.tick(1000 * MS + 60 * MS)
    evt = p.to_event(txn)
    assert mc(evt)["request"]["noreply"] is True and evt["status"] == "OK"
    # A request that is never answered is a server error once the timeout runs out.
    (evt,) = udp_events(p, [(C, udp(3, b"get k\r\n"))])
    assert evt["status"] == "Server Error" and "error" not in evt
    # A reply whose request was not seen.
    (evt,) = udp_events(p, [(S, udp(4, b"END\r\n"))])
    assert evt["status"] == "Client Error" and evt["source"]["ip"] == "10.0.0.1"


def test_udp_quit_and_binary() -> None:
    p = plugin()
    (evt,) = udp_events(p, [(C, udp(5, b"quit\r\n"))], flush=False)
    assert evt["status"] == "OK"
    (evt,) = udp_events(
        p,
        [
            (C, udp(6, binmsg(0x00, b"k", opaque=6))),
            (S, udp(6, binmsg(0x00, b"", b"\0\0\0\0", b"v", 6, request=False))),
        ],
        flush=False,
    )
    assert mc(evt)["protocol_type"] == "binary" and mc(evt)["response"]["count_values"] == 1


def test_udp_bad_frames_are_counted() -> None:
    p = plugin()
    assert p.on_datagram(UCONN, C, struct.pack(">HHHH", 1, 5, 2, 0) + b"x", 1) == []
    assert p.stats["memcache.udp_bad_sequences"] == 1
    assert udp_events(p, [(C, udp(2, b"bogus\r\n"))]) == []
    assert p.stats["memcache.unknown_commands"] == 1
    assert udp_events(p, [(C, udp(3, b"get k"))]) == []
    assert p.stats["memcache.udp_incomplete_messages"] == 1


def test_udp_exchanges_are_capped() -> None:
    p = plugin(max_udp_transactions=10)
    evts = udp_events(p, [(C, udp(i, b"get k%d\r\n" % i)) for i in range(15)], flush=False)
    assert len(evts) == 5 and len(p.udp.exchanges) == 10
    assert p.stats["memcache.udp_evictions"] == 5


# -- options and parser details ----------------------------------------------------------------


def test_config_names_and_defaults() -> None:
    from shipper.agent.config import parse_duration

    cfg = MemcacheConfig()
    assert (cfg.parseunknown, cfg.maxvalues, cfg.maxbytespervalue, cfg.udptransactiontimeout) == (
        False,
        0,
        0,
        10.0,
    )
    assert parse_duration("200ms") == pytest.approx(0.2)


def test_stock_config_gives_no_warning(tmp_path: Any) -> None:
    from shipper.agent.settings import load_settings

    yml = tmp_path / "packetbeat.yml"
    yml.write_text(
        "packetbeat.protocols:\n- type: memcache\n  ports: [11211]\n  parseunknown: true\n"
        "  maxvalues: -1\n  maxbytespervalue: 100\n  udptransactiontimeout: 1000\n"
        "output.console: {}\n"
    )
    settings, warnings = load_settings(str(yml))
    assert not [w for w in warnings if "memcache" in w]


def test_messages_split_anywhere_parse_the_same() -> None:
    stream = (
        b"set k 0 0 5\r\nhello\r\nget k x\r\nincr n 1 noreply\r\n"
        + binmsg(0x01, b"k", b"\0" * 8, b"v" * 40, 3)
        + binmsg(0x10, b"pid", value=b"1", request=False)
        + b"stats detail on\r\n"
    )
    whole, err = StreamParser(False, True, 10, 1 << 20).feed(stream, 1)
    assert err is None and len(whole) == 6
    for cut in range(1, len(stream)):
        p = StreamParser(False, True, 10, 1 << 20)
        a, e1 = p.feed(stream[:cut], 1)
        b, e2 = p.feed(stream[cut:], 2)
        assert e1 is None and e2 is None
        got = a + b
        assert [(m.cmd.code, m.size, m.keys, m.values) for m in got] == [
            (m.cmd.code, m.size, m.keys, m.values) for m in whole
        ]


def test_maxvalues_bounds_a_multi_get() -> None:
    """Packetbeat crashes here (maxvalues >= 4, three values or more); up to N are kept."""
    reply = b"".join(b"VALUE k%d 0 1\r\n%d\r\n" % (i, i) for i in range(6)) + b"END\r\n"
    (evt,) = tcp([(C, b"get k0 k1 k2 k3 k4 k5\r\n"), (S, reply)], plugin(maxvalues=5))
    r = mc(evt)["response"]
    assert r["count_values"] == 6 and len(r["keys"]) == 6
    assert r["values"] == ["MA==", "MQ==", "Mg==", "Mw==", "NA=="]


def test_counter_reply_followed_by_another_in_one_segment() -> None:
    """Packetbeat skips 8 bytes after a binary counter reply; the next reply stays intact."""
    replies = binmsg(0x05, value=struct.pack(">Q", 3), opaque=1, request=False) + binmsg(
        0x00, extras=b"\0\0\0\0", value=b"v", opaque=2, request=False
    )
    incr, get = tcp(
        [
            (C, binmsg(0x05, b"n", struct.pack(">QQI", 1, 0, 0), opaque=1) + binmsg(0x00, b"k", opaque=2)),
            (S, replies),
        ]
    )
    assert mc(incr)["response"]["value"] == 3 and incr["destination"]["bytes"] == 32
    assert mc(get)["response"]["count_values"] == 1 and get["status"] == "OK"


def test_udp_bytes_held_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from protocols.memcache import transactions

    monkeypatch.setattr(transactions, "MAX_UDP_HELD", 3000)
    p = plugin()
    steps = [(C, udp(i, b"set k 0 0 5000\r\n" + b"x" * 1000, 0, 5)) for i in range(5)]
    evts = udp_events(p, steps, flush=False)
    assert evts == [] and p.stats["memcache.udp_evictions"] == 3  # nothing whole to publish
    assert p.udp.held == 2 * (1000 + len(b"set k 0 0 5000\r\n")) and len(p.udp.exchanges) == 2


def test_merged_values_are_bounded() -> None:
    p = plugin(maxvalues=-1, max_message_size=1000)
    reply = b"".join(b"VALUE k%d 0 300\r\n%s\r\n" % (i, b"v" * 300) for i in range(6)) + b"END\r\n"
    (evt,) = tcp([(C, b"get k0 k1 k2 k3 k4 k5\r\n"), (S, reply)], p)
    r = mc(evt)["response"]
    assert r["count_values"] == 6 and len(r["keys"]) == 6 and len(r["values"]) == 3
    assert p.stats["memcache.truncated_replies"] == 3
