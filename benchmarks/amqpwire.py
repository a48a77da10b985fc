"""AMQP 0-9-1 frames for tests and benchmarks: methods, content (header and body frames
cut at ``frame_max``), field tables with explicit or inferred types.

Each function returns the bytes one side sends. Field table values are encoded from their
Python type (str → ``S``, bool → ``t``, int → ``I`` or ``l``, float → ``d``, dict → ``F``,
list → ``A``, None → ``V``, bytes → ``x``) or from an explicit ``(type letter, value)``.
"""

from __future__ import annotations

import struct
from typing import Any

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + FRAME_END


def shortstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


def longstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def bits(*flags: bool) -> bytes:
    return bytes([sum(1 << i for i, f in enumerate(flags) if f)])


def value(v: Any) -> bytes:
    if isinstance(v, tuple):
        kind, x = v
        if kind in "bB":
            return kind.encode() + struct.pack(">b" if kind == "b" else ">B", x)
        if kind in "sUu":
            return kind.encode() + struct.pack(">H" if kind == "u" else ">h", x)
        if kind in "Ii":
            return kind.encode() + struct.pack(">i" if kind == "I" else ">I", x)
        if kind in "Ll":
            return kind.encode() + struct.pack(">q", x)
        if kind == "f":
            return b"f" + struct.pack(">f", x)
        if kind == "d":
            return b"d" + struct.pack(">d", x)
        if kind == "D":
            scale, n = x
            return b"D" + struct.pack(">Bi", scale, n)
        if kind == "T":
            return b"T" + struct.pack(">Q", x)
        if kind == "S":
            return b"S" + longstr(x)
        if kind == "x":
            return b"x" + struct.pack(">I", len(x)) + x
        if kind == "raw":
            return x  # type: ignore[no-any-return]
        raise ValueError(kind)
    if isinstance(v, bool):
        return b"t" + bytes([v])
    if isinstance(v, int):
        return b"I" + struct.pack(">i", v) if -(1 << 31) <= v < 1 << 31 else b"l" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">d", v)
    if isinstance(v, (str, bytes)) and not isinstance(v, bytes):
        return b"S" + longstr(v)
    if isinstance(v, bytes):
        return b"x" + struct.pack(">I", len(v)) + v
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, list):
        items = b"".join(value(x) for x in v)
        return b"A" + struct.pack(">I", len(items)) + items
    if v is None:
        return b"V"
    raise TypeError(type(v))


def table(d: dict[str, Any] | None) -> bytes:
    body = b"".join(shortstr(k) + value(v) for k, v in (d or {}).items())
    return struct.pack(">I", len(body)) + body


def method(channel: int, class_id: int, method_id: int, args: bytes = b"") -> bytes:
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


# Basic content property flags (AMQP 0-9-1 §4.2.6.1 order).
_PROPS = (
    ("content_type", 15, "s"),
    ("content_encoding", 14, "s"),
    ("headers", 13, "F"),
    ("delivery_mode", 12, "B"),
    ("priority", 11, "B"),
    ("correlation_id", 10, "s"),
    ("reply_to", 9, "s"),
    ("expiration", 8, "s"),
    ("message_id", 7, "s"),
    ("timestamp", 6, "T"),
    ("type", 5, "s"),
    ("user_id", 4, "s"),
    ("app_id", 3, "s"),
    ("cluster_id", 2, "s"),
)


def header(channel: int, body_size: int, class_id: int = 60, **props: Any) -> bytes:
    flags = 0
    data = b""
    for name, bit, kind in _PROPS:
        v = props.get(name)
        if v is None:
            continue
        flags |= 1 << bit
        if kind == "s":
            data += shortstr(v)
        elif kind == "F":
            data += table(v)
        elif kind == "B":
            data += bytes([v])
        else:
            data += struct.pack(">Q", v)
    return frame(2, channel, struct.pack(">HHQH", class_id, 0, body_size, flags) + data)


def content(channel: int, body: bytes, frame_max: int = 131072, **props: Any) -> bytes:
    """The content header and body frames of a message (bodies cut to fit ``frame_max``)."""
    room = frame_max - 8
    out = header(channel, len(body), **props)
    for i in range(0, len(body), room):
        out += frame(3, channel, body[i : i + room])
    return out


def heartbeat() -> bytes:
    return frame(8, 0, b"")


# -- methods -----------------------------------------------------------------------------


def connection_start(props: dict[str, Any] | None = None) -> bytes:
    args = b"\x00\x09" + table(props) + longstr("AMQPLAIN PLAIN") + longstr("en_US")
    return method(0, 10, 10, args)


def connection_start_ok(props: dict[str, Any] | None = None, user: str = "guest") -> bytes:
    response = b"\x00" + user.encode() + b"\x00" + b"guest"
    return method(0, 10, 11, table(props) + shortstr("PLAIN") + longstr(response) + shortstr("en_US"))


def connection_tune(channel_max: int = 2047, frame_max: int = 131072, heartbeat: int = 60) -> bytes:
    return method(0, 10, 30, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def connection_tune_ok(channel_max: int = 2047, frame_max: int = 131072, heartbeat: int = 60) -> bytes:
    return method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def connection_open(vhost: str = "/") -> bytes:
    return method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")


def connection_open_ok() -> bytes:
    return method(0, 10, 41, shortstr(""))


def close(channel: int, code: int, text: str, class_id: int = 0, method_id: int = 0) -> bytes:
    """channel.close (channel > 0) or connection.close (channel 0)."""
    cls = 20 if channel else 10
    mid = 40 if channel else 50
    return method(
        channel, cls, mid, struct.pack(">H", code) + shortstr(text) + struct.pack(">HH", class_id, method_id)
    )


def close_ok(channel: int) -> bytes:
    return method(channel, 20, 41) if channel else method(0, 10, 51)


def channel_open(channel: int) -> bytes:
    return method(channel, 20, 10, shortstr(""))


def channel_open_ok(channel: int) -> bytes:
    return method(channel, 20, 11, longstr(""))


def channel_flow(channel: int, active: bool) -> bytes:
    return method(channel, 20, 20, bits(active))


def channel_flow_ok(channel: int, active: bool) -> bytes:
    return method(channel, 20, 21, bits(active))


def exchange_declare(
    channel: int,
    name: str,
    kind: str = "direct",
    passive: bool = False,
    durable: bool = False,
    auto_delete: bool = False,
    internal: bool = False,
    no_wait: bool = False,
    arguments: dict[str, Any] | None = None,
) -> bytes:
    args = (
        b"\x00\x00" + shortstr(name) + shortstr(kind) + bits(passive, durable, auto_delete, internal, no_wait)
    )
    return method(channel, 40, 10, args + table(arguments))


def exchange_delete(channel: int, name: str, if_unused: bool = False, no_wait: bool = False) -> bytes:
    return method(channel, 40, 20, b"\x00\x00" + shortstr(name) + bits(if_unused, no_wait))


def exchange_bind(
    channel: int,
    destination: str,
    source: str,
    key: str = "",
    no_wait: bool = False,
    arguments: dict[str, Any] | None = None,
    unbind: bool = False,
) -> bytes:
    args = b"\x00\x00" + shortstr(destination) + shortstr(source) + shortstr(key) + bits(no_wait)
    return method(channel, 40, 40 if unbind else 30, args + table(arguments))


def queue_declare(
    channel: int,
    name: str = "",
    passive: bool = False,
    durable: bool = False,
    exclusive: bool = False,
    auto_delete: bool = False,
    no_wait: bool = False,
    arguments: dict[str, Any] | None = None,
) -> bytes:
    args = b"\x00\x00" + shortstr(name) + bits(passive, durable, exclusive, auto_delete, no_wait)
    return method(channel, 50, 10, args + table(arguments))


def queue_declare_ok(channel: int, name: str, messages: int = 0, consumers: int = 0) -> bytes:
    return method(channel, 50, 11, shortstr(name) + struct.pack(">II", messages, consumers))


def queue_bind(
    channel: int,
    queue: str,
    exchange: str,
    key: str = "",
    no_wait: bool = False,
    arguments: dict[str, Any] | None = None,
) -> bytes:
    args = b"\x00\x00" + shortstr(queue) + shortstr(exchange) + shortstr(key) + bits(no_wait)
    return method(channel, 50, 20, args + table(arguments))


def queue_unbind(
    channel: int, queue: str, exchange: str, key: str = "", arguments: dict[str, Any] | None = None
) -> bytes:
    args = b"\x00\x00" + shortstr(queue) + shortstr(exchange) + shortstr(key)
    return method(channel, 50, 50, args + table(arguments))


def queue_purge(channel: int, queue: str, no_wait: bool = False) -> bytes:
    return method(channel, 50, 30, b"\x00\x00" + shortstr(queue) + bits(no_wait))


def queue_purge_ok(channel: int, messages: int) -> bytes:
    return method(channel, 50, 31, struct.pack(">I", messages))


def queue_delete(
    channel: int, queue: str, if_unused: bool = False, if_empty: bool = False, no_wait: bool = False
) -> bytes:
    return method(channel, 50, 40, b"\x00\x00" + shortstr(queue) + bits(if_unused, if_empty, no_wait))


def queue_delete_ok(channel: int, messages: int) -> bytes:
    return method(channel, 50, 41, struct.pack(">I", messages))


def ok(channel: int, class_id: int, method_id: int) -> bytes:
    """A -ok without arguments (exchange.declare-ok, queue.bind-ok, tx.select-ok, ...)."""
    return method(channel, class_id, method_id)


def basic_qos(channel: int, size: int = 0, count: int = 0, global_: bool = False) -> bytes:
    return method(channel, 60, 10, struct.pack(">IH", size, count) + bits(global_))


def basic_consume(
    channel: int,
    queue: str,
    tag: str = "",
    no_local: bool = False,
    no_ack: bool = False,
    exclusive: bool = False,
    no_wait: bool = False,
    arguments: dict[str, Any] | None = None,
) -> bytes:
    args = b"\x00\x00" + shortstr(queue) + shortstr(tag) + bits(no_local, no_ack, exclusive, no_wait)
    return method(channel, 60, 20, args + table(arguments))


def basic_consume_ok(channel: int, tag: str) -> bytes:
    return method(channel, 60, 21, shortstr(tag))


def basic_cancel(channel: int, tag: str, no_wait: bool = False) -> bytes:
    return method(channel, 60, 30, shortstr(tag) + bits(no_wait))


def basic_cancel_ok(channel: int, tag: str) -> bytes:
    return method(channel, 60, 31, shortstr(tag))


def basic_publish(
    channel: int,
    exchange: str,
    key: str,
    body: bytes,
    mandatory: bool = False,
    immediate: bool = False,
    frame_max: int = 131072,
    **props: Any,
) -> bytes:
    m = method(channel, 60, 40, b"\x00\x00" + shortstr(exchange) + shortstr(key) + bits(mandatory, immediate))
    return m + content(channel, body, frame_max, **props)


def basic_return(
    channel: int, code: int, text: str, exchange: str, key: str, body: bytes, **props: Any
) -> bytes:
    args = struct.pack(">H", code) + shortstr(text) + shortstr(exchange) + shortstr(key)
    return method(channel, 60, 50, args) + content(channel, body, **props)


def basic_deliver(
    channel: int,
    tag: str,
    delivery_tag: int,
    exchange: str,
    key: str,
    body: bytes,
    redelivered: bool = False,
    frame_max: int = 131072,
    **props: Any,
) -> bytes:
    args = (
        shortstr(tag)
        + struct.pack(">Q", delivery_tag)
        + bits(redelivered)
        + shortstr(exchange)
        + shortstr(key)
    )
    return method(channel, 60, 60, args) + content(channel, body, frame_max, **props)


def basic_get(channel: int, queue: str, no_ack: bool = False) -> bytes:
    return method(channel, 60, 70, b"\x00\x00" + shortstr(queue) + bits(no_ack))


def basic_get_ok(
    channel: int,
    delivery_tag: int,
    exchange: str,
    key: str,
    count: int,
    body: bytes,
    redelivered: bool = False,
    **props: Any,
) -> bytes:
    args = struct.pack(">Q", delivery_tag) + bits(redelivered) + shortstr(exchange) + shortstr(key)
    return method(channel, 60, 71, args + struct.pack(">I", count)) + content(channel, body, **props)


def basic_get_empty(channel: int) -> bytes:
    return method(channel, 60, 72, shortstr(""))


def basic_ack(channel: int, tag: int, multiple: bool = False) -> bytes:
    return method(channel, 60, 80, struct.pack(">Q", tag) + bits(multiple))


def basic_reject(channel: int, tag: int, requeue: bool = False) -> bytes:
    return method(channel, 60, 90, struct.pack(">Q", tag) + bits(requeue))


def basic_nack(channel: int, tag: int, multiple: bool = False, requeue: bool = True) -> bytes:
    return method(channel, 60, 120, struct.pack(">Q", tag) + bits(multiple, requeue))


def basic_recover(channel: int, requeue: bool = True) -> bytes:
    return method(channel, 60, 110, bits(requeue))


def tx(channel: int, which: str, ok_: bool = False) -> bytes:
    mid = {"select": 10, "commit": 20, "rollback": 30}[which] + (1 if ok_ else 0)
    return method(channel, 90, mid)


def confirm_select(channel: int, no_wait: bool = False) -> bytes:
    return method(channel, 85, 10, bits(no_wait))


def confirm_select_ok(channel: int) -> bytes:
    return method(channel, 85, 11)


def handshake(channel: int = 1, vhost: str = "/") -> tuple[list[bytes], list[bytes]]:
    """(client, server) messages that open a connection and channel ``channel``, in order:
    use as ``[(0, c0), (1, s0), ...]``."""
    client = [
        PROTOCOL_HEADER,
        connection_start_ok({"product": "wirebeat"}),
        connection_tune_ok(),
        connection_open(vhost),
    ]
    client.append(channel_open(channel))
    server = [
        connection_start({"product": "RabbitMQ", "capabilities": {"publisher_confirms": True}}),
        connection_tune(),
        connection_open_ok(),
        channel_open_ok(channel),
    ]
    return client, server


def handshake_exchange(channel: int = 1, vhost: str = "/") -> list[tuple[int, bytes]]:
    """The opening of a connection as (side, bytes) steps (0 client, 1 server)."""
    c, s = handshake(channel, vhost)
    return [(0, c[0]), (1, s[0]), (0, c[1]), (1, s[1]), (0, c[2] + c[3]), (1, s[2]), (0, c[4]), (1, s[3])]
