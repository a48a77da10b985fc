"""Packetbeat's Thrift captures give what Packetbeat gives (system tests 0002 and 0004).

Expected values were worked out from the captures themselves (tshark -d
tcp.port==9090,thrift, frame times and TCP payload lengths) and Packetbeat's rendering
rules; see the tables below.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import decode_file, shared_pcap

IDL_DIR = Path(__file__).resolve().parent.parent / "data" / "thrift"
IDL = [str(IDL_DIR / "tutorial.thrift"), str(IDL_DIR / "shared.thrift")]

# method, params by id, params by IDL name, return value (None: no reply), exceptions,
# request bytes, reply bytes (framed: the frame length, as Packetbeat reports it).
TUTORIAL: list[tuple[str, str, str, str | None, str, int, int]] = [
    ("ping", "()", "()", "", "", 17, 17),
    ("add", "(1: 1, 2: 1)", "(num1: 1, num2: 1)", "2", "", 30, 23),
    ("add16", "(1: 1, 2: 1)", "(num1: 1, num2: 1)", "2", "", 28, 23),
    ("add64", "(1: 1, 2: 1)", "(num1: 1, num2: 1)", "2", "", 40, 29),
    ("add_doubles", "(1: 1.2, 2: 1.3)", "(num1: 1.2, num2: 1.3)", "2.5", "", 46, 35),
    ("echo_bool", "(1: true)", "(b: true)", "true", "", 26, 26),
    ("echo_string", '(1: "hello")', '(s: "hello")', '"hello"', "", 36, 36),
    ("echo_binary", '(1: "world")', '(s: "world")', '"world"', "", 36, 36),
    ("echo_list", "(1: [1, 2, 3])", "(l: [1, 2, 3])", "[1, 2, 3]", "", 36, 36),
    ("echo_set", "(1: {1, 2, 3})", "(s: {1, 2, 3})", "{1, 2, 3}", "", 35, 35),
    (
        "echo_map",
        '(1: {"a": 1, "c": 3, "b": 2})',
        '(m: {"a": 1, "c": 3, "b": 2})',
        '{"a": 1, "c": 3, "b": 2}',
        "",
        51,
        51,
    ),
    (
        "calculate",
        "(1: 1, 2: (1: 1, 2: 0, 3: 4))",
        "(logid: 1, w: (1: 1, 2: 0, 3: 4))",
        "",
        '(1: (1: 4, 2: "Cannot divide by 0"))',
        54,
        58,
    ),
    ("calculate", "(1: 1, 2: (1: 15, 2: 10, 3: 2))", "(logid: 1, w: (1: 15, 2: 10, 3: 2))", "5", "", 54, 29),
    ("getStruct", "(1: 1)", "(key: 1)", '(1: 1, 2: "5")', "", 29, 41),
    ("zip", "()", "()", None, "", 16, 0),
    ("zip", "()", "()", None, "", 16, 0),
    ("ping", "()", "()", "", "", 17, 17),
]

# Frame times (tshark frame.time_epoch) of each call and its reply.
TIMES = {
    "thrift_tutorial": [
        ("1413886709.828096", "1413886709.828239"),
        ("1413886709.828435", "1413886709.828619"),
        ("1413886709.828762", "1413886709.828976"),
        ("1413886709.829134", "1413886709.829283"),
        ("1413886709.829407", "1413886709.829563"),
        ("1413886709.829721", "1413886709.829855"),
        ("1413886709.829962", "1413886709.830122"),
        ("1413886709.830276", "1413886709.830422"),
        ("1413886709.830597", "1413886709.830767"),
        ("1413886709.830927", "1413886709.831112"),
        ("1413886709.831325", "1413886709.831530"),
        ("1413886709.831769", "1413886709.832009"),
        ("1413886709.832256", "1413886709.832475"),
        ("1413886709.832613", "1413886709.832798"),
        ("1413886709.832948", None),
        ("1413886709.832989", None),
        ("1413886709.833040", "1413886709.833188"),
    ],
    "thrift_tutorial_framed_transport": [
        ("1414000483.231005", "1414000483.231176"),
        ("1414000483.231361", "1414000483.231525"),
        ("1414000483.231676", "1414000483.231862"),
        ("1414000483.232022", "1414000483.232196"),
        ("1414000483.232390", "1414000483.232561"),
        ("1414000483.232762", "1414000483.232904"),
        ("1414000483.233047", "1414000483.233194"),
        ("1414000483.233310", "1414000483.233449"),
        ("1414000483.233594", "1414000483.233760"),
        ("1414000483.233979", "1414000483.234129"),
        ("1414000483.234328", "1414000483.234507"),
        ("1414000483.234814", "1414000483.235017"),
        ("1414000483.235232", "1414000483.235438"),
        ("1414000483.235646", "1414000483.235796"),
        ("1414000483.235968", None),
        ("1414000483.236043", None),
        ("1414000483.236092", "1414000483.236225"),
    ],
    "ipv6_thrift": [
        ("1416131879.549523", "1416131879.549598"),
        ("1416131879.549695", "1416131879.549763"),
        ("1416131879.549841", "1416131879.549895"),
        ("1416131879.549954", "1416131879.550008"),
        ("1416131879.550071", "1416131879.550127"),
        ("1416131879.550184", "1416131879.550232"),
        ("1416131879.550285", "1416131879.550396"),
        ("1416131879.550475", "1416131879.550523"),
        ("1416131879.550582", "1416131879.550642"),
        ("1416131879.550711", "1416131879.550770"),
        ("1416131879.550841", "1416131879.550912"),
        ("1416131879.550994", "1416131879.551080"),
        ("1416131879.551164", "1416131879.551234"),
        ("1416131879.551330", "1416131879.551388"),
        # the second zip and the final ping share one segment (frame 36)
        ("1416131879.551452", None),
        ("1416131879.590918", None),
        ("1416131879.590918", "1416131879.591148"),
    ],
}
ENDPOINTS = {
    "thrift_tutorial": ("127.0.0.1", 53325),
    "thrift_tutorial_framed_transport": ("127.0.0.1", 53503),
    "ipv6_thrift": ("::1", 51659),
}


def ns(s: str) -> int:
    return int(Decimal(s) * 1_000_000_000)


def decode(name: str, **opts: Any) -> list[dict[str, Any]]:
    cfg: dict[str, Any] = {"ports": [9090], **opts}
    return decode_file(shared_pcap(name), {"thrift": cfg})


@pytest.mark.parametrize(
    ("name", "transport"),
    [
        ("thrift_tutorial", "socket"),
        ("thrift_tutorial_framed_transport", "framed"),
        ("ipv6_thrift", "framed"),
    ],
)
def test_tutorial_field_by_field(name: str, transport: str) -> None:
    events = decode(name, transport_type=transport, send_request=True, send_response=True)
    assert len(events) == len(TUTORIAL) == 17
    client_ip, client_port = ENDPOINTS[name]
    for evt, row, (t_req, t_rep) in zip(events, TUTORIAL, TIMES[name], strict=True):
        method, params, _named, ret, exc, req_bytes, rep_bytes = row
        assert evt["type"] == "thrift"
        assert evt["network"] == {"transport": "tcp", "protocol": "thrift"}
        assert evt["source"]["ip"] == client_ip and evt["source"]["port"] == client_port
        assert evt["destination"]["ip"] == client_ip and evt["destination"]["port"] == 9090
        assert evt["method"] == method
        assert evt["path"] == ""
        assert evt["query"] == method + params
        assert evt["request"] == method + params
        assert evt["thrift"]["params"] == params
        assert "service" not in evt["thrift"]
        assert evt["source"]["bytes"] == req_bytes
        assert evt["@timestamp"] == evt["event"]["start"] == ns(t_req)
        if ret is None:
            # one-way (no reply): no return value, no response bytes, no end
            assert "return_value" not in evt["thrift"]
            assert "bytes" not in evt["destination"]
            assert "end" not in evt["event"]
            assert "response" not in evt
            assert evt["status"] == "OK"
            continue
        assert t_rep is not None
        assert evt["event"]["end"] == ns(t_rep)
        assert evt["event"]["end"] > evt["event"]["start"]
        assert evt["destination"]["bytes"] == rep_bytes
        assert evt["thrift"]["return_value"] == ret
        if exc:
            assert evt["status"] == "Error"
            assert evt["thrift"]["exceptions"] == exc
            assert evt["response"] == "Exceptions: " + exc
        else:
            assert evt["status"] == "OK"
            assert "exceptions" not in evt["thrift"]
            assert evt["response"] == ret


def test_send_options_default_off() -> None:
    events = decode("thrift_tutorial")
    assert len(events) == 17
    assert all("request" not in e and "response" not in e for e in events)


def test_tutorial_with_idl() -> None:
    events = decode("thrift_tutorial", idl_files=IDL)
    assert len(events) == 17
    for evt, row in zip(events, TUTORIAL, strict=True):
        method, _params, named, ret, exc, _, _ = row
        service = "SharedService" if method == "getStruct" else "Calculator"
        assert evt["method"] == method
        assert evt["thrift"]["service"] == service
        assert evt["path"] == service
        assert evt["thrift"]["params"] == named
        assert evt["query"] == method + named
        if ret is not None:
            assert evt["thrift"]["return_value"] == ret
        if exc:
            # exception field ids are named from the IDL's throws clause
            assert evt["thrift"]["exceptions"] == exc.replace("(1: (", "(ouch: (", 1)


def test_echo_binary_framed_with_idl() -> None:
    # The capture repeats the whole conversation five times (same sequence numbers):
    # the copies are retransmissions and must not make more transactions.
    events = decode("thrift_echo_binary", transport_type="framed", idl_files=IDL)
    assert len(events) == 1
    evt = events[0]
    assert evt["method"] == "echo_binary"
    assert evt["thrift"]["return_value"] == "ab0c1d281a000000"  # not UTF-8: hex
    assert evt["thrift"]["params"] == "(s: ab0c1d281a000000)"
    assert evt["thrift"]["service"] == "Calculator"
    assert evt["source"]["bytes"] == 39 and evt["destination"]["bytes"] == 39
    assert evt["event"]["start"] == ns("1416826542.090154")
    assert evt["event"]["end"] == ns("1416826542.268156")
    assert evt["status"] == "OK"


def test_transport_detected_whatever_the_config() -> None:
    # transport_type only breaks ties: strict binary headers are found at offset 0 or 4.
    socket_cfg = decode("thrift_tutorial_framed_transport", transport_type="socket")
    framed_cfg = decode("thrift_tutorial_framed_transport", transport_type="framed")
    assert [e["query"] for e in socket_cfg] == [e["query"] for e in framed_cfg]
    assert len(socket_cfg) == 17


def test_capture_reply_off() -> None:
    events = decode("thrift_tutorial", capture_reply=False)
    assert len(events) == 17
    for evt, row in zip(events, TUTORIAL, strict=True):
        if row[3] is None:
            continue
        assert evt["thrift"]["return_value"] == ""
        assert "exceptions" not in evt["thrift"]
        assert evt["status"] == "OK"
        assert evt["destination"]["bytes"] == row[6]


def test_obfuscate_strings() -> None:
    events = decode("thrift_tutorial", obfuscate_strings=True)
    by_method = {e["method"]: e for e in events}
    assert by_method["echo_string"]["thrift"]["params"] == '(1: "*")'
    assert by_method["echo_string"]["thrift"]["return_value"] == '"*"'
    assert by_method["echo_map"]["thrift"]["params"] == '(1: {"*": 1, "*": 3, "*": 2})'


def test_limits_string_and_collection() -> None:
    events = decode("thrift_tutorial", string_max_size=3, collection_max_size=2)
    # Packetbeat reads the method name with the same string limit.
    assert [e["method"] for e in events[:2]] == ["pin...", "add"]
    assert events[6]["thrift"]["params"] == '(1: "hel...")'
    assert events[8]["thrift"]["params"] == "(1: [1, 2, ...])"
    assert events[9]["thrift"]["return_value"] == "{1, 2, ...}"
    assert events[10]["thrift"]["params"] == '(1: {"a": 1, "c": 3, ...})'
    assert events[11]["thrift"]["params"] == "(1: 1, 2: (1: 1, 2: 0, ...))"
