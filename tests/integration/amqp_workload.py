"""A scripted pika workload against a RabbitMQ broker, recording the event each operation
must produce from what pika sent and what it got back.

Everything the expectations say comes from the client side: the arguments pika was given,
the method frames it received (declare-ok counts, delivery tags, consumer tags, reply codes
and texts), the properties and bodies it delivered, and method frame sizes from pika's own
encoder (``pika.spec``). Field tables are rendered here independently of the decoder, the
way Packetbeat renders them.
"""

from __future__ import annotations

import datetime
import decimal
import json
import time
from typing import Any

import pika
import pika.exceptions
import pika.spec as spec

#: RabbitMQ's smallest frame_max: bodies over 4088 bytes take several frames.
FRAME_MAX = 4096
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def frame_size(method: Any) -> int:
    """A method frame's size on the wire, from pika's encoder: header, class and method ids,
    arguments, end octet."""
    return 12 + sum(len(p) for p in method.encode())


def render(v: Any) -> Any:
    """A value of a pika-encoded field table as Packetbeat renders it."""
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, bytes):
        return "[" + ", ".join(str(b) for b in v) + "]"
    if isinstance(v, decimal.Decimal):
        sign, digits, exp = v.normalize().as_tuple()
        text = "".join(map(str, digits))
        if isinstance(exp, int) and exp < 0:
            text = text.rjust(-exp, "0")
            text = text[: len(text) + exp] + "." + text[len(text) + exp :]
        elif isinstance(exp, int) and exp > 0:
            text += "0" * exp
        return ("-" if sign else "") + text
    if isinstance(v, datetime.datetime):
        return f"{MONTHS[v.month - 1]} {v.day:2d} {v:%H:%M:%S} {v.year}"
    if isinstance(v, dict):
        return {k: render(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return {str(i): render(x) for i, x in enumerate(v) if x is not None}
    raise TypeError(type(v))


def render_props(p: pika.BasicProperties | None) -> dict[str, Any]:
    if p is None:
        return {}
    out: dict[str, Any] = {}
    for attr, name in (("content_type", "content-type"), ("content_encoding", "content-encoding")):
        if getattr(p, attr) is not None:
            out[name] = getattr(p, attr)
    if p.headers:
        out["headers"] = render(p.headers)
    if p.delivery_mode in (1, 2):
        out["delivery-mode"] = "non-persistent" if p.delivery_mode == 1 else "persistent"
    if p.priority is not None:
        out["priority"] = p.priority
    for attr in ("correlation_id", "reply_to", "expiration", "message_id"):
        if getattr(p, attr) is not None:
            out[attr.replace("_", "-")] = getattr(p, attr)
    if p.timestamp is not None:
        out["timestamp"] = render(datetime.datetime.fromtimestamp(p.timestamp, datetime.UTC))
    for attr in ("type", "user_id", "app_id"):
        if getattr(p, attr) is not None:
            out[attr.replace("_", "-")] = getattr(p, attr)
    return out


def body_text(body: bytes, props: dict[str, Any], limit: int = 1000) -> str:
    """``request``/``response`` for a message body (Packetbeat's rules)."""
    ctype = props.get("content-type", "")
    kept = body[:limit]
    if not props.get("content-encoding") and ("text" in ctype or "json" in ctype):
        text = kept.decode("utf-8", "replace") if _go_like(kept) else _go_text(kept)
    else:
        text = " ".join(str(b) for b in kept)
    return text + (" [...]" if len(kept) < len(body) else "")


def _go_like(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _go_text(b: bytes) -> str:
    out = []
    i = 0
    while i < len(b):
        for n in (4, 3, 2, 1):
            try:
                out.append(b[i : i + n].decode("utf-8"))
                i += n
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


class Expect(dict[str, Any]):
    """One event the capture must yield (keys: port, channel, method, amqp, status, src,
    src_bytes, dst_bytes, request, response, body)."""


class Workload:
    def __init__(self, port: int) -> None:
        self.port = port
        self.expected: list[Expect] = []
        self.ops = 0
        self.client_ports: list[int] = []

    # -- recording -------------------------------------------------------------------

    def expect(
        self,
        cport: int,
        channel: int,
        method: str,
        amqp: dict[str, Any],
        *,
        status: str = "OK",
        src: str = "client",
        src_bytes: int | None = None,
        dst_bytes: int | None = None,
        request: str | None = None,
        response: str | None = None,
    ) -> None:
        self.expected.append(
            Expect(
                port=cport,
                channel=channel,
                method=method,
                amqp=amqp,
                status=status,
                src=src,
                src_bytes=src_bytes,
                dst_bytes=dst_bytes,
                request=request,
                response=response,
            )
        )

    def sync(
        self,
        cport: int,
        ch: Any,
        request: Any,
        reply: Any,
        name: str,
        amqp: dict[str, Any],
        text: str = "",
    ) -> None:
        """A synchronous method and its -ok (pika objects, for the frame sizes)."""
        self.expect(
            cport,
            ch.channel_number,
            name,
            amqp,
            src_bytes=frame_size(request),
            dst_bytes=frame_size(reply),
            request=f"{name} {text}" if text else name,
            response="OK",
        )
        self.ops += 1

    # -- the workload ----------------------------------------------------------------

    def connect(self, **kw: Any) -> pika.BlockingConnection:
        params = pika.ConnectionParameters("127.0.0.1", self.port, heartbeat=0, frame_max=FRAME_MAX, **kw)
        conn = pika.BlockingConnection(params)
        self.client_ports.append(conn._impl._transport._sock.getsockname()[1])
        return conn

    def run(self) -> Workload:
        conn = self.connect()
        cport = self.client_ports[-1]
        self.topology(conn, cport)
        self.publishing(conn, cport)
        self.getting(conn, cport)
        self.consuming(conn, cport)
        self.transactions(conn, cport)
        self.confirms(conn, cport)
        self.teardown(conn, cport)
        self.channel_errors(conn, cport)
        conn.close()
        self.connection_errors()
        return self

    def topology(self, conn: pika.BlockingConnection, cport: int) -> None:
        ch = conn.channel()
        self.ch = ch
        for name, kind, durable, auto_delete, arguments in (
            ("wb.alt", "fanout", False, False, None),
            ("wb.direct", "direct", True, False, {"alternate-exchange": "wb.alt"}),
            ("wb.topic", "topic", False, True, None),
            ("wb.headers", "headers", False, False, {"x-note": "headers", "x-n": 3}),
        ):
            ch.exchange_declare(name, kind, durable=durable, auto_delete=auto_delete, arguments=arguments)
            amqp: dict[str, Any] = {
                "exchange": name,
                "exchange-type": kind,
                "passive": False,
                "durable": durable,
                "no-wait": False,
            }
            if arguments:
                amqp["arguments"] = render(arguments)
            req = spec.Exchange.Declare(0, name, kind, False, durable, auto_delete, False, False, arguments)
            self.sync(cport, ch, req, spec.Exchange.DeclareOk(), "exchange.declare", amqp, name)

        self.queues: dict[str, str] = {}
        for key, name, kw in (
            ("q1", "wb.q1", {"durable": True, "arguments": {"x-max-length": 10000, "x-message-ttl": 600000}}),
            ("tmp", "", {"exclusive": True}),
            ("q2", "wb.q2", {"arguments": {"x-max-priority": 10, "x-queue-mode": "default"}}),
            ("full", "wb.full", {"arguments": {"x-max-length": 1, "x-overflow": "reject-publish"}}),
        ):
            ok = ch.queue_declare(name, **kw).method
            self.queues[key] = ok.queue
            args = kw.get("arguments")
            amqp = {
                "queue": ok.queue,
                "passive": False,
                "durable": kw.get("durable", False),
                "exclusive": kw.get("exclusive", False),
                "auto-delete": False,
                "no-wait": False,
                "message-count": ok.message_count,
                "consumer-count": ok.consumer_count,
            }
            if args:
                amqp["arguments"] = render(args)
            req = spec.Queue.Declare(
                0, name, False, kw.get("durable", False), kw.get("exclusive", False), False, False, args
            )
            self.sync(cport, ch, req, ok, "queue.declare", amqp, name)

        for queue, exchange, key, arguments in (
            (self.queues["q1"], "wb.direct", "k1", None),
            (self.queues["q2"], "wb.topic", "a.*.c", {"note": "topic binding"}),
            (self.queues["tmp"], "wb.headers", "", {"x-match": "all", "kind": "report"}),
        ):
            ch.queue_bind(queue, exchange, key, arguments)
            amqp = {"queue": queue, "exchange": exchange, "routing-key": key, "no-wait": False}
            if arguments:
                amqp["arguments"] = render(arguments)
            req = spec.Queue.Bind(0, queue, exchange, key, False, arguments)
            self.sync(cport, ch, req, spec.Queue.BindOk(), "queue.bind", amqp, f"{queue} {exchange}")

        ch.exchange_bind("wb.topic", "wb.direct", "k2")
        amqp = {"destination": "wb.topic", "source": "wb.direct", "routing-key": "k2", "no-wait": False}
        req = spec.Exchange.Bind(0, "wb.topic", "wb.direct", "k2", False, None)
        self.sync(cport, ch, req, spec.Exchange.BindOk(), "exchange.bind", amqp, "wb.direct wb.topic")

        # basic.qos is connection information: no event unless hide_connection_information is off.
        ch.basic_qos(prefetch_count=20)
        self.ops += 1

    def publish(
        self,
        cport: int,
        ch: Any,
        exchange: str,
        key: str,
        body: bytes,
        props: pika.BasicProperties | None = None,
        mandatory: bool = False,
    ) -> None:
        amqp: dict[str, Any] = {"routing-key": key, "mandatory": mandatory, "immediate": False}
        if exchange:
            amqp["exchange"] = exchange
        rendered = render_props(props)
        amqp.update(rendered)
        self.expect(
            cport,
            ch.channel_number,
            "basic.publish",
            amqp,
            src_bytes=len(body),
            request=body_text(body, rendered),
            response="",
        )
        self.ops += 1
        # (expected first: in confirm mode, pika raises for a returned or refused message)
        ch.basic_publish(exchange, key, body, props, mandatory=mandatory)

    def messages(self) -> list[tuple[bytes, pika.BasicProperties | None]]:
        stamp = datetime.datetime(2024, 3, 1, 9, 5, 7, tzinfo=datetime.UTC)
        out: list[tuple[bytes, pika.BasicProperties | None]] = []
        for i in range(72):
            k = i % 6
            if k == 0:
                out.append((f"text message {i}".encode(), pika.BasicProperties(content_type="text/plain")))
            elif k == 1:
                body = json.dumps({"n": i, "items": list(range(i % 7))}).encode()
                props = pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=2,
                    priority=i % 10,
                    correlation_id=f"corr-{i}",
                    reply_to="wb.replies",
                    expiration="600000",
                    message_id=f"msg-{i}",
                    timestamp=int(stamp.timestamp()) + i,
                    type="order.created",
                    user_id="guest",
                    app_id="wirebeat-tests",
                    headers={
                        "str": "value",
                        "int": i,
                        "neg": -i,
                        "big": 1 << 40,
                        "bool": bool(i % 2),
                        "dec": decimal.Decimal("12.345"),
                        "small": decimal.Decimal("0.05"),
                        "when": stamp,
                        "raw": b"\x00\x01\xfe",
                        "list": [1, "two", True, {"k": "v"}],
                        "nested": {"a": {"b": {"c": i}}, "empty": {}},
                        "none": None,
                    },
                )
                out.append((body, props))
            elif k == 2:
                out.append((bytes(range(i, i + 40)), None))
            elif k == 3:
                body = ("large " * 2000).encode()[:11000]  # three body frames
                out.append((body, pika.BasicProperties(content_type="text/plain", delivery_mode=1)))
            elif k == 4:
                body = "é" * 600  # 1200 bytes: the 1000-byte cut falls inside no character
                out.append(
                    (
                        body.encode() + b"\xff\xfe",
                        pika.BasicProperties(content_type="text/plain; charset=utf-8"),
                    )
                )
            else:
                props = pika.BasicProperties(content_type="text/plain", content_encoding="gzip")
                out.append((b"\x1f\x8b compressed", props))
        return out

    def publishing(self, conn: pika.BlockingConnection, cport: int) -> None:
        ch = self.ch
        self.sent = self.messages()
        for body, props in self.sent:
            self.publish(cport, ch, "wb.direct", "k1", body, props)
        for i in range(4):
            self.publish(
                cport,
                ch,
                "wb.topic",
                "a.b.c",
                f"topic {i}".encode(),
                pika.BasicProperties(content_type="text/plain"),
            )
        # Passive declares until the broker has routed every publish (it routes them
        # asynchronously: the first answer may count only some).
        q1 = self.queues["q1"]
        for _ in range(100):
            ok = ch.queue_declare(q1, passive=True).method
            amqp = {
                "queue": q1,
                "passive": True,
                "durable": False,
                "exclusive": False,
                "auto-delete": False,
                "no-wait": False,
                "message-count": ok.message_count,
                "consumer-count": ok.consumer_count,
            }
            self.sync(cport, ch, spec.Queue.Declare(queue=q1, passive=True), ok, "queue.declare", amqp, q1)
            if ok.message_count == len(self.sent):
                break
            time.sleep(0.05)
        self.q1_count = ok.message_count
        assert self.q1_count == len(self.sent), self.q1_count

    def getting(self, conn: pika.BlockingConnection, cport: int) -> None:
        ch = self.ch
        q1 = self.queues["q1"]
        for _ in range(10):
            method, props, body = ch.basic_get(q1, auto_ack=False)
            assert method is not None and body is not None
            rendered = render_props(props)
            amqp: dict[str, Any] = {
                "delivery-tag": method.delivery_tag,
                "redelivered": method.redelivered,
                "routing-key": method.routing_key,
                "message-count": method.message_count,
            }
            if method.exchange:
                amqp["exchange"] = method.exchange
            amqp.update(rendered)
            self.expect(
                cport,
                ch.channel_number,
                "basic.get",
                amqp,
                src_bytes=frame_size(spec.Basic.Get(0, q1, False)),
                dst_bytes=len(body),
                request=f"basic.get {q1}",
                response=body_text(body, rendered),
            )
            self.ops += 1
            ch.basic_ack(method.delivery_tag)
            self.acked(cport, ch, method.delivery_tag)
        # An empty queue: basic.get-empty.
        q2 = self.queues["tmp"]
        method, props, body = ch.basic_get(q2)
        assert method is None
        self.expect(
            cport,
            ch.channel_number,
            "basic.get-empty",
            {"queue": q2, "no-ack": False},
            src_bytes=frame_size(spec.Basic.Get(0, q2, False)),
            dst_bytes=frame_size(spec.Basic.GetEmpty()),
            request=f"basic.get {q2}",
            response="OK",
        )
        self.ops += 1

    def acked(
        self, cport: int, ch: Any, tag: int, kind: str = "ack", multiple: bool = False, requeue: bool = False
    ) -> None:
        name = f"basic.{kind}"
        if kind == "ack":
            amqp = {"delivery-tag": tag, "multiple": multiple}
            req: Any = spec.Basic.Ack(tag, multiple)
        elif kind == "nack":
            amqp = {"delivery-tag": tag, "multiple": multiple, "requeue": requeue}
            req = spec.Basic.Nack(tag, multiple, requeue)
        else:
            amqp = {"delivery-tag": tag, "multiple": requeue}
            req = spec.Basic.Reject(tag, requeue)
        self.expect(
            cport,
            ch.channel_number,
            name,
            amqp,
            status="Error" if kind == "reject" else "OK",
            src_bytes=frame_size(req),
            request=f"{name} {tag}" if kind == "reject" else name,
            response="",
        )
        self.ops += 1

    def consuming(self, conn: pika.BlockingConnection, cport: int) -> None:
        """Consume the messages left in q1, acknowledging, nacking and rejecting in turn
        (all of them, so no delivery is left pending when the consumer is cancelled)."""
        ch = self.ch
        q1 = self.queues["q1"]
        got = [0]

        def on_message(chan: Any, method: Any, props: Any, body: bytes) -> None:
            rendered = render_props(props)
            amqp = {
                "consumer-tag": method.consumer_tag,
                "delivery-tag": method.delivery_tag,
                "redelivered": method.redelivered,
                "routing-key": method.routing_key,
            }
            if method.exchange:
                amqp["exchange"] = method.exchange
            amqp.update(rendered)
            self.expect(
                cport,
                chan.channel_number,
                "basic.deliver",
                amqp,
                dst_bytes=len(body),
                request="",
                response=body_text(body, rendered),
            )
            self.ops += 1
            kind = ("ack", "nack", "reject")[got[0] % 3]
            if kind == "ack":
                chan.basic_ack(method.delivery_tag)
            elif kind == "nack":
                chan.basic_nack(method.delivery_tag, requeue=False)
            else:
                chan.basic_reject(method.delivery_tag, requeue=False)
            self.acked(cport, chan, method.delivery_tag, kind)
            got[0] += 1

        left = self.q1_count - 10
        tag = ch.basic_consume(q1, on_message, arguments={"x-priority": 5})
        consume = spec.Basic.Consume(queue=q1, consumer_tag=tag, arguments={"x-priority": 5})
        amqp = {
            "queue": q1,
            "consumer-tag": tag,
            "no-local": False,
            "no-ack": False,
            "exclusive": False,
            "no-wait": False,
            "arguments": {"x-priority": 5},
        }
        self.sync(cport, ch, consume, spec.Basic.ConsumeOk(tag), "basic.consume", amqp, q1)
        deadline = 200
        while got[0] < left and deadline:
            conn.process_data_events(time_limit=0.1)
            deadline -= 1
        assert got[0] == left, f"{got[0]} deliveries of {left}"
        ch.basic_cancel(tag)
        self.sync(
            cport,
            ch,
            spec.Basic.Cancel(consumer_tag=tag),
            spec.Basic.CancelOk(tag),
            "basic.cancel",
            {"consumer-tag": tag, "no-wait": False},
            tag,
        )
        ch.basic_recover(requeue=True)
        self.sync(
            cport, ch, spec.Basic.Recover(True), spec.Basic.RecoverOk(), "basic.recover", {"requeue": True}
        )

    def transactions(self, conn: pika.BlockingConnection, cport: int) -> None:
        ch = conn.channel()
        ch.tx_select()
        self.sync(cport, ch, spec.Tx.Select(), spec.Tx.SelectOk(), "tx.select", {})
        for i in range(3):
            self.publish(
                cport,
                ch,
                "",
                self.queues["q2"],
                f"tx {i}".encode(),
                pika.BasicProperties(content_type="text/plain"),
            )
        ch.tx_commit()
        self.sync(cport, ch, spec.Tx.Commit(), spec.Tx.CommitOk(), "tx.commit", {})
        for i in range(2):
            self.publish(cport, ch, "", self.queues["q2"], f"rolled back {i}".encode())
        ch.tx_rollback()
        self.sync(cport, ch, spec.Tx.Rollback(), spec.Tx.RollbackOk(), "tx.rollback", {})
        ch.close()

    def confirms(self, conn: pika.BlockingConnection, cport: int) -> None:
        ch = conn.channel()
        ch.confirm_delivery()
        self.sync(
            cport,
            ch,
            spec.Confirm.Select(False),
            spec.Confirm.SelectOk(),
            "confirm.select",
            {"no-wait": False},
        )
        # Record the broker's acks and nacks as pika receives them.
        received: list[Any] = []
        for kind in (spec.Basic.Ack, spec.Basic.Nack):
            ch._impl.callbacks.add(
                ch.channel_number, kind, lambda frame: received.append(frame.method), False
            )
        for i in range(1, 11):
            self.publish(
                cport,
                ch,
                "",
                self.queues["q2"],
                f"confirmed {i}".encode(),
                pika.BasicProperties(content_type="text/plain"),
            )
            self.confirmed(cport, ch, received)
        # Unroutable with mandatory: basic.return (an error), then the ack.
        body = b"nobody listens"
        props = pika.BasicProperties(content_type="text/plain", message_id="lost-1")
        try:
            self.publish(cport, ch, "wb.topic", "no.such.key", body, props, mandatory=True)
        except pika.exceptions.UnroutableError as exc:
            ret = exc.messages[0].method
            rendered = render_props(props)
            amqp = {
                "exchange": ret.exchange,
                "routing-key": ret.routing_key,
                "reply-code": ret.reply_code,
                "reply-text": ret.reply_text,
            }
            amqp.update(rendered)
            self.expect(
                cport,
                ch.channel_number,
                "basic.return",
                amqp,
                status="Error",
                dst_bytes=len(body),
                request="",
                response=body_text(body, rendered),
            )
            self.ops += 1
        else:
            raise AssertionError("the unroutable message was not returned")
        self.confirmed(cport, ch, received)
        # A full queue that rejects publishes: basic.nack from the broker.
        full = self.queues["full"]
        self.publish(cport, ch, "", full, b"first")
        self.confirmed(cport, ch, received)
        try:
            self.publish(cport, ch, "", full, b"second")
        except pika.exceptions.NackError:
            pass
        else:
            raise AssertionError("the broker did not nack")
        self.confirmed(cport, ch, received)
        assert self.expected[-1]["method"] == "basic.nack"
        ch.close()

    def confirmed(self, cport: int, ch: Any, received: list[Any]) -> None:
        """The broker's basic.ack/basic.nack that pika received since the last call."""
        assert received, "no confirm"
        for m in received:
            name = "basic.ack" if isinstance(m, spec.Basic.Ack) else "basic.nack"
            amqp = {"delivery-tag": m.delivery_tag, "multiple": m.multiple}
            if name == "basic.nack":
                amqp["requeue"] = m.requeue
            self.expect(
                cport,
                ch.channel_number,
                name,
                amqp,
                src="server",
                src_bytes=frame_size(m),
                request=name,
                response="",
            )
            self.ops += 1
        received.clear()

    def teardown(self, conn: pika.BlockingConnection, cport: int) -> None:
        ch = self.ch
        q2 = self.queues["q2"]
        ok = ch.queue_purge(q2).method
        self.sync(
            cport,
            ch,
            spec.Queue.Purge(0, q2),
            ok,
            "queue.purge",
            {"queue": q2, "no-wait": False, "message-count": ok.message_count},
            q2,
        )
        ch.queue_unbind(q2, "wb.topic", "a.*.c", {"note": "topic binding"})
        amqp = {
            "queue": q2,
            "exchange": "wb.topic",
            "routing-key": "a.*.c",
            "arguments": {"note": "topic binding"},
        }
        req = spec.Queue.Unbind(0, q2, "wb.topic", "a.*.c", {"note": "topic binding"})
        self.sync(cport, ch, req, spec.Queue.UnbindOk(), "queue.unbind", amqp, f"{q2} wb.topic")
        ch.exchange_unbind("wb.topic", "wb.direct", "k2")
        amqp = {"destination": "wb.topic", "source": "wb.direct", "routing-key": "k2", "no-wait": False}
        req = spec.Exchange.Unbind(0, "wb.topic", "wb.direct", "k2", False, None)
        self.sync(cport, ch, req, spec.Exchange.UnbindOk(), "exchange.unbind", amqp, "wb.direct wb.topic")
        for key in ("q1", "q2", "full"):
            q = self.queues[key]
            ok = ch.queue_delete(q).method
            amqp = {
                "queue": q,
                "if-unused": False,
                "if-empty": False,
                "no-wait": False,
                "message-count": ok.message_count,
            }
            self.sync(cport, ch, spec.Queue.Delete(0, q), ok, "queue.delete", amqp, q)
        for name in ("wb.direct", "wb.topic", "wb.headers", "wb.alt"):
            ch.exchange_delete(name)
            amqp = {"exchange": name, "if-unused": False, "no-wait": False}
            self.sync(
                cport,
                ch,
                spec.Exchange.Delete(0, name),
                spec.Exchange.DeleteOk(),
                "exchange.delete",
                amqp,
                name,
            )

    def channel_close(
        self, cport: int, ch: Any, exc: pika.exceptions.ChannelClosedByBroker, class_id: int, method_id: int
    ) -> None:
        close = spec.Channel.Close(exc.reply_code, exc.reply_text, class_id, method_id)
        self.expect(
            cport,
            ch.channel_number,
            "channel.close",
            {
                "reply-code": exc.reply_code,
                "reply-text": exc.reply_text,
                "class-id": class_id,
                "method-id": method_id,
            },
            status="Error",
            src="server",
            src_bytes=frame_size(close),
            dst_bytes=frame_size(spec.Channel.CloseOk()),
            request="channel.close",
            response="OK",
        )
        self.ops += 1

    def channel_errors(self, conn: pika.BlockingConnection, cport: int) -> None:
        # A passive declare of a queue that does not exist: 404 on queue.declare (50/10).
        ch = conn.channel()
        try:
            ch.queue_declare("wb.missing", passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self.channel_close(cport, ch, exc, 50, 10)
        else:
            raise AssertionError("passive declare of a missing queue succeeded")
        # Redeclaring an exchange with another type: 406 on exchange.declare (40/10).
        ch = conn.channel()
        ch.exchange_declare("wb.kind", "direct")
        amqp = {
            "exchange": "wb.kind",
            "exchange-type": "direct",
            "passive": False,
            "durable": False,
            "no-wait": False,
        }
        req = spec.Exchange.Declare(0, "wb.kind", "direct", False, False, False, False, False, None)
        self.sync(cport, ch, req, spec.Exchange.DeclareOk(), "exchange.declare", amqp, "wb.kind")
        try:
            ch.exchange_declare("wb.kind", "fanout")
        except pika.exceptions.ChannelClosedByBroker as exc:
            self.channel_close(cport, ch, exc, 40, 10)
        else:
            raise AssertionError("exchange redeclared with another type")
        # Publishing to an exchange that does not exist: the publish, then 404 on basic.publish.
        ch = conn.channel()
        self.publish(cport, ch, "wb.nowhere", "k", b"lost", pika.BasicProperties(content_type="text/plain"))
        try:
            ch.queue_declare("", exclusive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self.channel_close(cport, ch, exc, 60, 40)
        else:
            raise AssertionError("publish to a missing exchange went unnoticed")
        ch = conn.channel()
        ch.exchange_delete("wb.kind")
        amqp = {"exchange": "wb.kind", "if-unused": False, "no-wait": False}
        self.sync(
            cport,
            ch,
            spec.Exchange.Delete(0, "wb.kind"),
            spec.Exchange.DeleteOk(),
            "exchange.delete",
            amqp,
            "wb.kind",
        )

    def connection_errors(self) -> None:
        """A virtual host that does not exist: connection.close 530 on connection.open."""
        try:
            self.connect(virtual_host="wb-nope")
        except pika.exceptions.ProbableAccessDeniedError as exc:
            text = str(exc)
        else:
            raise AssertionError("connected to a missing virtual host")
        assert "530" in text, text
        self.connection_refused = text
        self.ops += 1
