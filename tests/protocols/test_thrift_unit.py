"""Thrift parser and pairing on messages encoded by thriftpy2 (binary and compact)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import thriftpy2
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.protocol.compact import TCompactProtocol
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport import TMemoryBuffer

from benchmarks.synth import Conversation
from protocols.thrift.parser import Format, ThriftParser, go_float, go_quote
from tests.helpers import decode_packets

IDL_DIR = Path(__file__).resolve().parent.parent / "data" / "thrift"
TUT = thriftpy2.load(str(IDL_DIR / "tutorial.thrift"), include_dirs=[str(IDL_DIR)])
CALC = TUT.Calculator
C, S = 0, 1
CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 9090)


def encode(
    method: str,
    mtype: int,
    obj: Any,
    seqid: int = 0,
    compact: bool = False,
    framed: bool = False,
    name: str = "",
) -> bytes:
    buf = TMemoryBuffer()
    proto = TCompactProtocol(buf) if compact else TBinaryProtocol(buf)
    proto.write_message_begin(name or method, mtype, seqid)
    proto.write_struct(obj)
    proto.write_message_end()
    data = buf.getvalue()
    return struct.pack(">i", len(data)) + data if framed else data


def call(method: str, seqid: int = 0, **kw: Any) -> tuple[str, int, Any, int]:
    return method, TMessageType.CALL, getattr(CALC, method + "_args")(**kw), seqid


def reply(method: str, seqid: int = 0, **kw: Any) -> tuple[str, int, Any, int]:
    return method, TMessageType.REPLY, getattr(CALC, method + "_result")(**kw), seqid


def run(
    msgs: list[tuple[int, tuple[str, int, Any, int]]], compact: bool = False, framed: bool = False, **cfg: Any
):
    conv = Conversation(CLIENT, SERVER).handshake()
    for side, (method, mtype, obj, seqid) in msgs:
        conv.send(side, encode(method, mtype, obj, seqid, compact, framed))
    conv.close()
    return decode_packets([(ts, 1, f) for ts, f in conv.frames], {"thrift": {"ports": [9090], **cfg}})


WORKLOAD = [
    (C, call("ping")),
    (S, reply("ping")),
    (C, call("add", num1=-1, num2=2**31 - 1)),
    (S, reply("add", success=-(2**31))),
    (C, call("add16", num1=-2, num2=300)),
    (S, reply("add16", success=298)),
    (C, call("add64", num1=-(2**63), num2=2**40)),
    (S, reply("add64", success=2**63 - 1)),
    (C, call("add_doubles", num1=1e21, num2=-0.5)),
    (S, reply("add_doubles", success=1e-7)),
    (C, call("echo_bool", b=False)),
    (S, reply("echo_bool", success=True)),
    (C, call("echo_string", s='tab\there "q" é')),
    (S, reply("echo_string", success="")),
    (C, call("echo_binary", s=b"\xff\x00")),
    (S, reply("echo_binary", success=b"ok")),
    (C, call("echo_list", l=list(range(20)))),
    (S, reply("echo_list", success=[])),
    (C, call("echo_set", s={7})),
    (S, reply("echo_set", success=set())),
    (C, call("echo_map", m={"k": 1})),
    (S, reply("echo_map", success={})),
    (C, call("calculate", logid=9, w=TUT.Work(num1=1, num2=0, op=4, comment="x"))),
    (S, reply("calculate", ouch=TUT.InvalidOperation(whatOp=4, why="div"))),
    (C, call("getStruct", key=5)),
    (S, reply("getStruct", success=TUT.shared.SharedStruct(key=5, value="v"))),
]
EXPECTED = [
    ("ping", "()", ""),
    ("add", "(1: -1, 2: 2147483647)", "-2147483648"),
    ("add16", "(1: -2, 2: 300)", "298"),
    ("add64", "(1: -9223372036854775808, 2: 1099511627776)", "9223372036854775807"),
    ("add_doubles", "(1: 1000000000000000000000, 2: -0.5)", "0.0000001"),
    ("echo_bool", "(1: false)", "true"),
    ("echo_string", '(1: "tab\\there \\"q\\" é")', '""'),
    ("echo_binary", "(1: ff00)", '"ok"'),
    ("echo_list", "(1: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, ...])", ""),
    ("echo_set", "(1: {7})", ""),
    ("echo_map", '(1: {"k": 1})', "{}"),
    ("calculate", '(1: 9, 2: (1: 1, 2: 0, 3: 4, 4: "x"))', ""),
    ("getStruct", "(1: 5)", '(1: 5, 2: "v")'),
]


@pytest.mark.parametrize("compact", [False, True], ids=["binary", "compact"])
@pytest.mark.parametrize("framed", [False, True], ids=["socket", "framed"])
def test_all_types_both_protocols_both_transports(compact: bool, framed: bool) -> None:
    # The configuration says socket/binary: the connection's first bytes decide.
    events, dec = run(WORKLOAD, compact=compact, framed=framed)
    assert dec.stats.get("thrift.parse_errors", 0) == 0
    assert [(e["method"], e["thrift"]["params"], e["thrift"]["return_value"]) for e in events] == EXPECTED
    calc = events[11]
    assert calc["status"] == "Error"
    assert calc["thrift"]["exceptions"] == '(1: (1: 4, 2: "div"))'
    assert all(e["status"] == "OK" for i, e in enumerate(events) if i != 11)
    for e in events:
        assert e["event"]["end"] > e["event"]["start"]
        assert e["source"]["bytes"] > 0 and e["destination"]["bytes"] > 0


def test_idl_names_and_multiplexed_method() -> None:
    conv = Conversation(CLIENT, SERVER).handshake()
    conv.send(C, encode("add", 1, CALC.add_args(num1=1, num2=2), name="Calculator:add"))
    conv.send(S, encode("add", 2, CALC.add_result(success=3), name="Calculator:add"))
    conv.close()
    idl = [str(IDL_DIR / "tutorial.thrift")]
    events, _ = decode_packets(
        [(ts, 1, f) for ts, f in conv.frames], {"thrift": {"ports": [9090], "idl_files": idl}}
    )
    assert [(e["method"], e["thrift"]["params"], e["thrift"]["service"]) for e in events] == [
        ("Calculator:add", "(num1: 1, num2: 2)", "Calculator")
    ]


def test_application_exception() -> None:
    exc = TApplicationException(TApplicationException.UNKNOWN_METHOD, "Unknown method")
    events, _ = run([(C, call("ping")), (S, ("ping", TMessageType.EXCEPTION, exc, 0))])
    assert events[0]["status"] == "Error"
    assert events[0]["thrift"]["exceptions"] == '(1: "Unknown method", 2: 1)'
    assert events[0]["thrift"]["return_value"] == ""


def test_oneway_and_unanswered_calls() -> None:
    events, dec = run(
        [
            (C, ("zip", TMessageType.ONEWAY, CALC.zip_args(), 0)),
            (C, call("add", num1=1, num2=1)),  # never answered
            (C, call("ping")),
            (S, reply("ping")),
            (C, call("add16", num1=1, num2=1)),  # pending at the end
        ]
    )
    assert [(e["method"], "return_value" in e["thrift"]) for e in events] == [
        ("zip", False),
        ("add", False),
        ("ping", True),
        ("add16", False),
    ]
    assert dec.stats["thrift.unmatched_requests"] == 2


def test_async_client_replies_out_of_order() -> None:
    events, _ = run(
        [
            (C, call("add", seqid=1, num1=1, num2=1)),
            (C, call("add", seqid=2, num1=2, num2=2)),
            (S, reply("add", seqid=2, success=4)),
            (S, reply("add", seqid=1, success=2)),
        ]
    )
    assert [(e["thrift"]["params"], e["thrift"]["return_value"]) for e in events] == [
        ("(1: 2, 2: 2)", "4"),
        ("(1: 1, 2: 1)", "2"),
    ]


def test_reply_for_another_method_is_dropped() -> None:
    events, dec = run([(C, call("ping")), (S, reply("add", success=1)), (S, reply("ping"))])
    assert [e["method"] for e in events] == ["ping"]
    assert events[0]["thrift"]["return_value"] == ""
    assert dec.stats["thrift.unmatched_responses"] == 1


def test_non_strict_binary_header() -> None:
    body = bytes.fromhex("0800010000000108000200000002") + b"\x00"
    req = struct.pack(">i", 3) + b"add" + b"\x01" + struct.pack(">i", 0) + body
    rep = (
        struct.pack(">i", 3)
        + b"add"
        + b"\x02"
        + struct.pack(">i", 0)
        + bytes.fromhex("08000000000003")
        + b"\x00"
    )
    conv = Conversation(CLIENT, SERVER).handshake().send(C, req).send(S, rep).close()
    events, _ = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"thrift": {"ports": [9090]}})
    assert [(e["query"], e["thrift"]["return_value"], e["source"]["bytes"]) for e in events] == [
        ("add(1: 1, 2: 2)", "3", len(req))
    ]


def test_gap_in_reply_publishes_with_note() -> None:
    conv = Conversation(CLIENT, SERVER).handshake()
    conv.send(C, encode(*call("echo_list", l=list(range(5000)))[:3]))
    rep = encode(*reply("echo_list", success=list(range(5000)))[:3])
    conv.send(S, rep[:1000])
    conv.seq[1] += 3000  # lost
    conv.send(S, rep[4000:])
    conv.close()
    events, dec = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"thrift": {"ports": [9090]}})
    assert len(events) == 1
    assert events[0]["error"]["message"] == ["Packet loss while capturing the response"]
    assert events[0]["thrift"]["return_value"] == ""
    assert dec.stats["thrift.gap_drops"] == 1


def test_framed_resync_after_corrupt_frame() -> None:
    good = encode(*call("ping")[:3], framed=True)
    bad = struct.pack(">i", 10) + b"\x80\x01\x00\x01\x00\x00\x00\x04pi"  # truncated header inside its frame
    p = ThriftParser(Format())
    msgs = p.feed(good + bad + good, 1)
    assert [m.method for m in msgs] == ["ping", "ping"]
    assert p.errors == 1


def test_parser_streams_large_strings_and_lists() -> None:
    data = encode(*call("echo_string", s="x" * 1_000_000)[:3])
    p = ThriftParser(Format(string_max_size=10))
    out = []
    for i in range(0, len(data), 1448):
        out += p.feed(data[i : i + 1448], i)
        assert len(p.rest) < 64
    assert [(m.fields, m.size) for m in out] == [([(1, '"xxxxxxxxxx..."')], len(data))]
    data = encode(*call("echo_list", l=list(range(10000)))[:3])
    p = ThriftParser(Format())
    out = []
    for i in range(0, len(data), 100):
        out += p.feed(data[i : i + 100], i)
        assert len(p.rest) < 64
    assert out[0].fields == [(1, "[" + ", ".join(str(i) for i in range(15)) + ", ...]")]


def test_parser_limits() -> None:
    # 100 nested lists: refused past the depth limit, without recursion.
    nested = (
        b"\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x00" + b"\x0f\x00\x01" + b"\x0f\x00\x00\x00\x01" * 100
    )
    p = ThriftParser(Format(max_depth=64))
    assert p.feed(nested, 1) == [] and p.errors == 1
    many = b"\x80\x01\x00\x01\x00\x00\x00\x01m\x00\x00\x00\x00" + b"\x03\x00\x01\x07" * 600 + b"\x00"
    p = ThriftParser(Format(max_struct_fields=500))
    assert p.feed(many, 1) == [] and p.errors == 1


def test_go_formatting() -> None:
    assert [go_float(x) for x in (2.5, 2.0, -0.0, 1e21, 1e-7, float("inf"), float("nan"))] == [
        "2.5",
        "2",
        "-0",
        "1000000000000000000000",
        "0.0000001",
        "+Inf",
        "NaN",
    ]
    assert go_quote('a"b\\c\n\x01\u00a0é😀') == '"a\\"b\\\\c\\n\\x01\\u00a0é😀"'


@pytest.mark.parametrize("compact", [False, True], ids=["binary", "compact"])
@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_skipped_elements_resume_at_any_cut(compact: bool, step: int) -> None:
    # Elements past collection_max_size are walked without rendering (their strings are
    # skipped): a cut right after a skipped string must resume after it.
    result = TUT.Calculator.echo_map_result(success={f"key{i}": i for i in range(40)})
    data = encode("echo_map", TMessageType.REPLY, result, compact=compact)
    whole = ThriftParser(Format()).feed(data, 0)
    p = ThriftParser(Format())
    out = []
    for i in range(0, len(data), step):
        out += p.feed(data[i : i + step], i)
    assert p.errors == 0
    assert [(m.fields, m.size) for m in out] == [(m.fields, m.size) for m in whole]
