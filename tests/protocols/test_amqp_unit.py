"""AMQP decoder units: field-table rendering, frames and content assembly, method decoding,
pairing, event fields and options."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from benchmarks import amqpwire as w
from benchmarks.synth import Conversation
from protocols.amqp import AmqpConfig, AmqpPlugin
from protocols.amqp.parser import FrameParser, Message
from protocols.amqp.transactions import AmqpHandler
from protocols.amqp.wire import Malformed, amqp_time, decimal_text, float32, go_text, table
from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.stats import Counters
from tests.helpers import decode_packets

NS = 1_000_000_000


def events(steps: list[tuple[int, bytes]], handshake: bool = False, **opts: Any) -> list[dict[str, Any]]:
    """Decode a connection carrying ``steps`` [(side, bytes)] (each one write)."""
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 5672), step_ns=1_000_000).handshake()
    if handshake:
        for side, data in w.handshake_exchange():
            conv.send(side, data)
    for side, data in steps:
        conv.send(side, data)
    conv.close()
    evts, _ = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"amqp": {"ports": [5672], **opts}})
    return evts


def one(steps: list[tuple[int, bytes]], **opts: Any) -> dict[str, Any]:
    (e,) = events(steps, **opts)
    return e


def frames(data: bytes) -> list[bytes]:
    out = []
    while data:
        n = 8 + struct.unpack_from(">I", data, 3)[0]
        out.append(data[:n])
        data = data[n:]
    return out


def parser(**kw: Any) -> tuple[FrameParser, Counters]:
    stats = Counters()
    return FrameParser(FROM_CLIENT, stats, **kw), stats


# -- field tables ------------------------------------------------------------------------


def test_table_renders_like_packetbeat() -> None:
    data = w.table(
        {
            "s": "text",
            "t": True,
            "b": ("b", -2),
            "B": ("B", 200),
            "U": ("U", -3),
            "u": ("u", 65535),
            "I": ("I", -1),
            "i": ("i", 4294967295),
            "L": ("L", -4),
            "l": ("l", -5),
            "f": ("f", 0.1),
            "d": ("d", 1e21),
            "D": ("D", (2, 12345)),
            "T": ("T", 0),
            "A": [1, "x", [2], None],
            "F": {"n": {"m": {}}},
            "x": ("x", b"\x00\xff"),
            "short": ("s", -2),
            "V": None,
        }
    )
    got, end = table(data, 0)
    assert end == len(data)
    assert got == {
        "s": "text",
        "t": True,
        "b": -2,
        "B": 200,
        "U": -3,
        "u": 65535,
        "I": -1,
        "i": 4294967295,
        "L": -4,
        "l": -5,
        "f": 0.1,
        "d": 1e21,
        "D": "123.45",
        "T": "January  1 00:00:00 1970",
        "A": {"0": 1, "1": "x", "2": {"0": 2}},
        "F": {"n": {"m": {}}},
        "x": "[0, 255]",
        "short": -2,
    }
    assert table(data, 0, keep_null=True)[0]["V"] is None
    assert table(data, 0, keep_null=True)[0]["A"]["3"] is None


@pytest.mark.parametrize(
    ("scale", "value", "text"),
    [
        (2, 12345, "123.45"),
        (0, 42, "42"),
        (2, 15, ".15"),
        (3, 5, ".005"),
        (2, -150, "-1.50"),
        (1, 0, ".0"),
        (3, 0, "0"),
    ],
)
def test_decimals(scale: int, value: int, text: str) -> None:
    assert decimal_text(scale, value) == text


def test_times_floats_strings() -> None:
    assert amqp_time(1709283907) == "March  1 09:05:07 2024"
    assert amqp_time(253402300800) == "January  1 00:00:00 10000"
    assert amqp_time(-86400) == "December 31 00:00:00 1969"
    assert float32(struct.unpack(">f", struct.pack(">f", 0.1))[0]) == 0.1
    assert float32(struct.unpack(">f", struct.pack(">f", 16777217.0))[0]) == 16777216.0
    assert go_text(b"ok\xffx\xe2\x82") == "ok\ufffdx\ufffd\ufffd"


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x10\x01a",  # longer than what follows
        b"\x00\x00\x00\x03\x01aZ",  # unknown type
        b"\x00\x00\x00\x06\x01aS\x00\x00\x00\x09",  # a long string past the table
        b"\x00\x00\x00\x03\x05ab",  # a name past the table
        b"\x00\x00",
    ],
)
def test_bad_tables(data: bytes) -> None:
    with pytest.raises(Malformed):
        table(data, 0)


def test_deep_tables_are_refused() -> None:
    inner = w.table({})
    for _ in range(80):
        inner = struct.pack(">I", len(inner) + 3) + b"\x01kF" + inner
    with pytest.raises(Malformed):
        table(inner, 0)


# -- frames and content -----------------------------------------------------------------


def test_protocol_header_and_byte_by_byte() -> None:
    data = (
        w.PROTOCOL_HEADER
        + w.queue_declare(1, "q")
        + w.basic_publish(1, "ex", "rk", b"x" * 5000, frame_max=4096)
    )
    whole, _ = parser()
    expect = [(m.name, m.fields, m.body, m.body_size) for m in whole.feed(data, 1)]
    assert [e[0] for e in expect] == ["queue.declare", "basic.publish"]
    p, stats = parser()
    got: list[Message] = []
    for i in range(len(data)):
        got += p.feed(data[i : i + 1], 10 + i)
    assert [(m.name, m.fields, m.body, m.body_size) for m in got] == expect
    assert not stats and p.pending == 0
    # Packetbeat's timing: the protocol header opened the stream of the first message; the
    # second starts after a segment that ended on a message boundary.
    assert got[0].ts == 10 and got[1].ts == 10 + len(w.PROTOCOL_HEADER) + len(w.queue_declare(1, "q"))


def test_packetbeat_timing() -> None:
    a = w.basic_publish(1, "ex", "a", b"A")
    b = w.basic_publish(1, "ex", "b", b"B")
    c = w.queue_declare(1, "c")
    p, _ = parser()
    # [A part] [A rest + B part] [B rest]: B shares A's time (the stream never ended on a boundary).
    got = p.feed(a[:10], 1) + p.feed(a[10:] + b[:30], 2) + p.feed(b[30:], 3)
    assert [m.ts for m in got] == [1, 1]
    # A segment that ends on a message boundary: the next one starts afresh.
    assert [m.ts for m in p.feed(c, 4) + p.feed(c, 5)] == [4, 5]
    # A frame cut in two: the time of its first part.
    assert [m.ts for m in p.feed(c[:5], 6) + p.feed(c[5:], 7)] == [6]
    # Packetbeat drops its stream on a method it does not know: what follows starts afresh.
    blocked = w.method(0, 10, 60, w.shortstr("memory"))
    assert [m.ts for m in p.feed(a[:10], 8) + p.feed(a[10:] + blocked + c[:5], 9) + p.feed(c[5:], 10)] == [
        8,
        10,
    ]


def test_bodies_are_streamed_and_cut() -> None:
    body = bytes(range(256)) * 400  # 102400 bytes over 26 frames
    data = w.basic_publish(1, "ex", "rk", body, frame_max=4096)
    p, stats = parser(max_body_length=100)
    got = []
    for i in range(0, len(data), 1000):
        got += p.feed(data[i : i + 1000], i)
        assert len(p.buf) < 4096  # body frames never wait whole
    (m,) = got
    assert m.body == body[:100] and m.body_size == len(body) and not stats


def test_empty_body_is_complete_at_its_header() -> None:
    p, _ = parser()
    (m,) = p.feed(w.basic_publish(1, "ex", "rk", b""), 1)
    assert m.body == b"" and m.body_size == 0


def test_content_per_channel() -> None:
    a = w.basic_publish(1, "ex", "a", b"A" * 10)
    b = w.basic_publish(2, "ex", "b", b"B" * 10)
    # method 1, method 2, header 1, header 2, body 2, body 1
    m1, h1, b1 = frames(a)
    m2, h2, b2 = frames(b)
    p, stats = parser()
    got = p.feed(m1 + m2 + h1 + h2 + b2 + b1, 1)
    assert [(m.channel, m.body) for m in got] == [(2, b"B" * 10), (1, b"A" * 10)]
    assert not stats


def test_bad_frames_drop_the_rest_of_the_segment() -> None:
    good = w.queue_declare(1, "q")
    bad = good[:-1] + b"\x00"  # no end octet
    p, stats = parser()
    assert p.feed(bad + good, 1) == []
    assert stats["amqp.bad_frames"] == 1
    (m,) = p.feed(good, 2)
    assert m.fields["queue"] == "q"
    assert p.feed(b"\x07\x00\x01\x00\x00\x00\x00\xce" + good, 3) == []  # unknown frame type
    assert stats["amqp.bad_frames"] == 2


def test_oversized_frames_and_unknown_methods() -> None:
    p, stats = parser(max_frame_size=100)
    big = w.queue_declare(1, "q", arguments={"k": "x" * 200})
    assert p.feed(big + w.queue_declare(1, "lost"), 1) == []
    assert stats["amqp.oversized_frames"] == 1
    blocked = w.method(0, 10, 60, w.shortstr("memory"))
    got = p.feed(w.heartbeat() + blocked + w.queue_declare(1, "kept"), 2)
    assert [m.fields["queue"] for m in got] == ["kept"]
    assert stats["amqp.unknown_methods"] == 1


def test_content_out_of_place_is_counted() -> None:
    p, stats = parser()
    header = w.header(1, 5)
    body = w.frame(3, 1, b"hello")
    assert p.feed(header + body, 1) == []
    assert stats["amqp.unexpected_frames"] == 2
    publish = w.basic_publish(1, "ex", "rk", b"hello")
    assert [m.name for m in p.feed(frames(publish)[0] + w.queue_declare(1, "q"), 2)] == ["queue.declare"]
    assert stats["amqp.incomplete_content"] == 1


def test_malformed_methods_and_headers_are_counted() -> None:
    p, stats = parser()
    short = w.method(1, 50, 10, b"\x00\x00\x05ab")  # a queue name past the end
    assert p.feed(short, 1) == []
    assert stats["amqp.malformed_methods"] == 1
    bad_header = w.frame(2, 1, struct.pack(">HHQH", 60, 0, 3, 0x8000) + b"\x09ab")
    assert p.feed(w.method(1, 60, 40, b"\x00\x00\x00\x00\x00") + bad_header, 2) == []
    assert stats["amqp.malformed_headers"] == 1


# -- methods and events -----------------------------------------------------------------


def test_synchronous_methods_pair_with_their_ok() -> None:
    e = one(
        [
            (0, w.queue_declare(1, "", exclusive=True, arguments={"x-max-length": 5})),
            (1, w.queue_declare_ok(1, "amq.gen-1", 3, 1)),
        ]
    )
    assert e["method"] == "queue.declare" and e["event"]["action"] == "amqp.queue.declare"
    assert e["amqp"] == {
        "queue": "amq.gen-1",
        "passive": False,
        "durable": False,
        "exclusive": True,
        "auto-delete": False,
        "no-wait": False,
        "arguments": {"x-max-length": 5},
        "message-count": 3,
        "consumer-count": 1,
    }
    assert e["status"] == "OK"
    assert e["source"]["port"] == 40000 and e["destination"]["port"] == 5672
    assert e["source"]["bytes"] == len(w.queue_declare(1, "", exclusive=True, arguments={"x-max-length": 5}))
    assert e["destination"]["bytes"] == len(w.queue_declare_ok(1, "amq.gen-1", 3, 1))
    assert e["event"]["end"] - e["event"]["start"] == 2_000_000


def test_every_method_decodes() -> None:
    steps = [
        (0, w.exchange_declare(1, "x", "", durable=True, no_wait=False)),
        (1, w.ok(1, 40, 11)),
        (0, w.exchange_delete(1, "x", if_unused=True)),
        (1, w.ok(1, 40, 21)),
        (0, w.exchange_bind(1, "d", "s", "k")),
        (1, w.ok(1, 40, 31)),
        (0, w.exchange_bind(1, "d", "s", "k", unbind=True)),
        (1, w.ok(1, 40, 51)),
        (0, w.queue_bind(1, "q", "", "k")),
        (1, w.ok(1, 50, 21)),
        (0, w.queue_unbind(1, "q", "x", "k", {"a": 1})),
        (1, w.ok(1, 50, 51)),
        (0, w.queue_purge(1, "q")),
        (1, w.queue_purge_ok(1, 4)),
        (0, w.queue_delete(1, "q", if_empty=True)),
        (1, w.queue_delete_ok(1, 0)),
        (0, w.basic_consume(1, "q", "t", no_ack=True)),
        (1, w.basic_consume_ok(1, "t")),
        (0, w.basic_cancel(1, "t")),
        (1, w.basic_cancel_ok(1, "t")),
        (0, w.basic_recover(1, False)),
        (1, w.ok(1, 60, 111)),
        (0, w.tx(1, "select")),
        (1, w.tx(1, "select", True)),
        (0, w.confirm_select(1)),
        (1, w.confirm_select_ok(1)),
    ]
    got = {e["method"]: (e["amqp"], e.get("request")) for e in events(steps, send_request=True)}
    assert got == {
        "exchange.declare": (
            {"exchange": "x", "exchange-type": "direct", "passive": False, "durable": True, "no-wait": False},
            "exchange.declare x",
        ),
        "exchange.delete": ({"exchange": "x", "if-unused": True, "no-wait": False}, "exchange.delete x"),
        "exchange.bind": (
            {"destination": "d", "source": "s", "routing-key": "k", "no-wait": False},
            "exchange.bind s d",
        ),
        "exchange.unbind": (
            {"destination": "d", "source": "s", "routing-key": "k", "no-wait": False},
            "exchange.unbind s d",
        ),
        "queue.bind": ({"queue": "q", "routing-key": "k", "no-wait": False}, "queue.bind q "),
        "queue.unbind": (
            {"queue": "q", "exchange": "x", "routing-key": "k", "arguments": {"a": 1}},
            "queue.unbind q x",
        ),
        "queue.purge": ({"queue": "q", "no-wait": False, "message-count": 4}, "queue.purge q"),
        "queue.delete": (
            {"queue": "q", "if-unused": False, "if-empty": True, "no-wait": False, "message-count": 0},
            "queue.delete q",
        ),
        "basic.consume": (
            {
                "queue": "q",
                "consumer-tag": "t",
                "no-local": False,
                "no-ack": True,
                "exclusive": False,
                "no-wait": False,
            },
            "basic.consume q",
        ),
        "basic.cancel": ({"consumer-tag": "t", "no-wait": False}, "basic.cancel t"),
        "basic.recover": ({"requeue": False}, "basic.recover"),
        "tx.select": ({}, "tx.select"),
        "confirm.select": ({"no-wait": False}, "confirm.select"),
    }


def test_asynchronous_methods_are_alone() -> None:
    got = events(
        [
            (0, w.basic_ack(1, 7, multiple=True)),
            (0, w.basic_nack(1, 8, requeue=False)),
            (0, w.basic_reject(1, 9, requeue=True)),
            (0, w.queue_declare(1, "nw", no_wait=True)),
            (1, w.basic_ack(1, 3)),
        ],
        send_request=True,
        send_response=True,
    )
    assert [(e["method"], e["status"], e["request"], e["response"], e["source"]["port"]) for e in got] == [
        ("basic.ack", "OK", "basic.ack", "", 40000),
        ("basic.nack", "OK", "basic.nack", "", 40000),
        ("basic.reject", "Error", "basic.reject 9", "", 40000),
        ("queue.declare", "OK", "queue.declare nw", "", 40000),
        ("basic.ack", "OK", "basic.ack", "", 5672),
    ]
    assert got[2]["amqp"] == {"delivery-tag": 9, "multiple": True}  # (requeue, as Packetbeat names it)
    assert all("end" not in e["event"] and "bytes" not in e["destination"] for e in got)


def test_messages() -> None:
    props = {
        "content_type": "text/plain",
        "headers": {"h": 1},
        "delivery_mode": 2,
        "priority": 3,
        "correlation_id": "c",
        "reply_to": "r",
        "expiration": "100",
        "message_id": "m",
        "timestamp": 1709283907,
        "type": "t",
        "user_id": "guest",
        "app_id": "a",
        "cluster_id": "ignored",
    }
    got = events(
        [
            (0, w.basic_publish(1, "ex", "rk", b"hello", **props)),
            (1, w.basic_deliver(1, "ct", 5, "", "rk", b"\x00\x01", redelivered=True)),
            (0, w.basic_get(1, "q")),
            (1, w.basic_get_ok(1, 6, "ex", "rk", 2, b'{"a":1}', content_type="application/json")),
            (0, w.basic_get(1, "q")),
            (1, w.basic_get_empty(1)),
            (1, w.basic_return(1, 312, "NO_ROUTE", "ex", "rk", b"back", content_type="text/plain")),
        ],
        send_request=True,
        send_response=True,
    )
    pub, dlv, get, empty, ret = got
    assert pub["method"] == "basic.publish" and pub["request"] == "hello" and pub["response"] == ""
    assert pub["amqp"] == {
        "routing-key": "rk",
        "mandatory": False,
        "immediate": False,
        "exchange": "ex",
        "content-type": "text/plain",
        "headers": {"h": 1},
        "delivery-mode": "persistent",
        "priority": 3,
        "correlation-id": "c",
        "reply-to": "r",
        "expiration": "100",
        "message-id": "m",
        "timestamp": "March  1 09:05:07 2024",
        "type": "t",
        "user-id": "guest",
        "app-id": "a",
    }
    assert pub["user"] == {"id": "guest"}
    assert pub["source"]["bytes"] == 5 and "bytes" not in pub["destination"]
    assert dlv["method"] == "basic.deliver" and dlv["response"] == "0 1" and dlv["request"] == ""
    assert (
        dlv["source"]["port"] == 40000 and dlv["destination"]["bytes"] == 2 and "bytes" not in dlv["source"]
    )
    assert dlv["amqp"] == {"consumer-tag": "ct", "delivery-tag": 5, "redelivered": True, "routing-key": "rk"}
    assert get["method"] == "basic.get" and get["request"] == "basic.get q" and get["response"] == '{"a":1}'
    assert get["source"]["bytes"] == len(w.basic_get(1, "q")) and get["destination"]["bytes"] == 7
    assert "end" not in get["event"]
    assert get["amqp"] == {
        "delivery-tag": 6,
        "redelivered": False,
        "routing-key": "rk",
        "message-count": 2,
        "exchange": "ex",
        "content-type": "application/json",
    }
    assert empty["method"] == "basic.get-empty" and empty["response"] == "OK"
    assert empty["amqp"] == {"queue": "q", "no-ack": False}
    assert empty["destination"]["bytes"] == len(w.basic_get_empty(1))
    assert ret["method"] == "basic.return" and ret["status"] == "Error" and ret["response"] == "back"
    assert ret["amqp"]["reply-code"] == 312 and ret["amqp"]["reply-text"] == "NO_ROUTE"


@pytest.mark.parametrize(
    ("props", "body", "limit", "text"),
    [
        ({"content_type": "text/plain"}, b"abcdef", 4, "abcd [...]"),
        ({"content_type": "application/json"}, b"{}", 1000, "{}"),
        ({"content_type": "text/plain", "content_encoding": "gzip"}, b"ab", 1000, "97 98"),
        ({}, b"ab", 1, "97 [...]"),
        ({"content_type": "text/plain"}, "é".encode() + b"\xff", 1000, "é\ufffd"),
        ({"content_type": "text/plain"}, "é".encode(), 1, "\ufffd [...]"),
        ({"content_type": "text/plain"}, b"abc", 0, " [...]"),
    ],
)
def test_bodies(props: dict[str, Any], body: bytes, limit: int, text: str) -> None:
    e = one([(0, w.basic_publish(1, "", "q", body, **props))], send_request=True, max_body_length=limit)
    assert e["request"] == text


def test_channel_errors() -> None:
    got = events(
        [
            (0, w.queue_declare(1, "missing", passive=True)),
            (1, w.close(1, 404, "NOT_FOUND - no queue 'missing'", 50, 10)),
            (0, w.close_ok(1)),
            (0, w.close(0, 200, "Normal shutdown")),  # hidden: connection information
            (1, w.close_ok(0)),
        ]
    )
    (e,) = got
    assert e["method"] == "channel.close" and e["status"] == "Error"
    assert e["source"]["port"] == 5672 and e["destination"]["port"] == 40000
    assert e["amqp"] == {
        "reply-code": 404,
        "reply-text": "NOT_FOUND - no queue 'missing'",
        "class-id": 50,
        "method-id": 10,
    }
    assert e["destination"]["bytes"] == 12


def test_close_without_close_ok() -> None:
    (e,) = events([(1, w.close(0, 320, "CONNECTION_FORCED", 0, 0))])
    assert e["method"] == "connection.close" and e["status"] == "Error"
    assert e["error"]["message"] == ["Close-ok method not received by sender"]


def test_client_request_sent_while_the_server_closes_the_channel() -> None:
    """The server closes channel 1 (a publish to a missing exchange) while the client, not
    having read the close yet, sends another request on it: the server discards that
    request (AMQP 0-9-1), and the client's close-ok answers the server's close. The close is
    the transaction; the discarded request is counted, never paired with the close-ok.
    (Seen live from pika on a loaded machine.)"""
    steps = [
        (0, w.basic_publish(1, "nowhere", "k", b"x", content_type="text/plain")),
        (1, w.close(1, 404, "NOT_FOUND - no exchange 'nowhere' in vhost '/'", 60, 40)),
        (0, w.queue_declare(1, "")),
        (0, w.close_ok(1)),
        (0, w.channel_open(1)),
        (1, w.channel_open_ok(1)),
        (0, w.queue_declare(1, "q")),
        (1, w.queue_declare_ok(1, "q")),
    ]
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 5672), step_ns=1_000_000).handshake()
    for side, data in steps:
        conv.send(side, data)
    conv.close()
    got, decoder = decode_packets([(ts, 1, f) for ts, f in conv.frames], {"amqp": {"ports": [5672]}})
    assert [e["method"] for e in got] == ["basic.publish", "channel.close", "queue.declare"]
    close = got[1]
    assert close["status"] == "Error" and close["source"]["port"] == 5672
    assert close["amqp"]["reply-code"] == 404 and close["amqp"]["method-id"] == 40
    assert "error" not in close  # its close-ok came
    assert got[2]["amqp"]["queue"] == "q"
    assert decoder.stats.snapshot().get("amqp.unmatched_requests") == 1  # the discarded declare


def test_hide_connection_information_off() -> None:
    got = events(
        [(0, w.basic_qos(1, 0, 10)), (1, w.ok(1, 60, 11)), (0, w.close(1, 200, "bye")), (1, w.close_ok(1))],
        handshake=True,
        hide_connection_information=False,
    )
    assert [e["method"] for e in got] == [
        "connection.start",
        "connection.tune",
        "connection.open",
        "channel.open",
        "basic.qos",
        "channel.close",
    ]
    start, tune, opened, _, qos, close = got
    assert start["source"]["port"] == 5672 and start["amqp"]["mechanism"] == "PLAIN"
    assert start["amqp"]["server-properties"]["capabilities"] == {"publisher_confirms": True}
    assert start["amqp"]["client-properties"] == {"product": "wirebeat"}
    assert tune["amqp"] == {"channel-max": 2047, "frame-max": 131072, "heartbeat": 60}
    assert opened["amqp"] == {"virtual-host": "/"}
    assert qos["amqp"] == {"prefetch-size": 0, "prefetch-count": 10, "global": False}
    assert close["status"] == "OK" and close["amqp"]["reply-code"] == 200
    assert events([(0, w.basic_qos(1, 0, 10)), (1, w.ok(1, 60, 11))], handshake=True) == []


def test_parse_options() -> None:
    steps = [
        (0, w.queue_declare(1, "q", arguments={"a": 1})),
        (1, w.queue_declare_ok(1, "q")),
        (0, w.basic_publish(1, "", "q", b"hi", content_type="text/plain", headers={"h": None, "k": 1})),
    ]
    decl, pub = events(steps, parse_arguments=False, parse_headers=False, send_request=True)
    assert "arguments" not in decl["amqp"] and "content-type" not in pub["amqp"]
    assert pub["request"] == "104 105"
    _, pub = events(steps, keep_null=True)
    assert pub["amqp"]["headers"] == {"h": None, "k": 1}


def test_bad_arguments_are_noted() -> None:
    bad = w.method(1, 50, 10, b"\x00\x00" + w.shortstr("q") + w.bits() + b"\x00\x00\x00\x03\x01kZ")
    e = one([(0, bad), (1, w.queue_declare_ok(1, "q"))])
    assert e["error"]["message"] == ["Failed to parse additional arguments"]
    assert "arguments" not in e["amqp"]


# -- pairing ----------------------------------------------------------------------------


def handler(**opts: Any) -> AmqpHandler:
    plugin = AmqpPlugin(AmqpConfig(ports=[5672], **opts), Counters())
    return AmqpHandler(plugin, ConnInfo("10.0.0.1", 40000, "10.0.0.2", 5672))


def test_per_channel_pairing_and_displacement() -> None:
    h = handler()
    out = h.on_data(FROM_CLIENT, w.queue_declare(1, "one") + w.queue_declare(2, "two"), 1)
    out += h.on_data(FROM_SERVER, w.queue_declare_ok(2, "two") + w.queue_declare_ok(1, "one"), 2)
    assert [(t.request.fields["queue"], t.response.fields["queue"]) for t in out] == [
        ("two", "two"),
        ("one", "one"),
    ]
    # A second request on a channel drops the first; the close from the broker drops the refused one.
    out = h.on_data(FROM_CLIENT, w.queue_declare(1, "a") + w.queue_declare(1, "b"), 3)
    out += h.on_data(FROM_SERVER, w.close(1, 404, "no", 50, 10), 4)
    out += h.on_data(FROM_CLIENT, w.close_ok(1), 5)
    assert [t.request.name for t in out] == ["channel.close"]
    assert h.plugin.stats["amqp.unmatched_requests"] == 2
    assert h.on_data(FROM_SERVER, w.queue_declare_ok(1, "x"), 6) == []
    assert h.plugin.stats["amqp.unmatched_responses"] == 1


def test_expiry_on_capture_time() -> None:
    h = handler(transaction_timeout=1.0)
    h.on_data(FROM_CLIENT, w.queue_declare(1, "late"), 0)
    h.on_data(FROM_SERVER, w.close(2, 406, "PRECONDITION_FAILED", 40, 10), 0)
    out = h.on_data(FROM_CLIENT, w.heartbeat(), 2 * NS)
    assert [(t.request.name, t.note) for t in out] == [
        ("channel.close", "Close-ok method not received by sender")
    ]
    assert h.plugin.stats["amqp.expired_requests"] == 1
    assert h.on_data(FROM_SERVER, w.queue_declare_ok(1, "late"), 2 * NS) == []


def test_pending_requests_are_capped() -> None:
    h = handler(max_pending_requests=10)
    for ch in range(1, 30):
        h.on_data(FROM_CLIENT, w.queue_declare(ch, f"q{ch}"), ch)
    assert len(h.pending) == 10
    assert h.plugin.stats["amqp.pending_evictions"] == 19
    assert h.on_close("fin") == []
    assert h.plugin.stats["amqp.unmatched_requests"] == 29
