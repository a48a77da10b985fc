"""Write ``cases.pcap``: AMQP 0-9-1 connections covering the corners of Packetbeat's AMQP
decoder, one scenario per connection (client ports 40001...): every method it knows, with
and without arguments; messages with every property, every field-table type, text, JSON,
binary and encoded bodies, bodies over several frames and segments, empty bodies; channel
and connection errors with and without their close-ok; no-wait methods; publisher
confirms; interleaved channels; heartbeats and unknown methods among other frames;
segment cuts that Packetbeat times differently.

Run once; ``cases.pcap`` and Packetbeat 9.3's events for it (one ``cases.<variant>.
packetbeat.ndjson`` per option set of tests/protocols/test_amqp_packetbeat.py) are kept
beside this script:

    python tests/data/amqp/make_cases.py && python tests/data/amqp/make_cases.py --packetbeat
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from benchmarks import amqpwire as w
from benchmarks.synth import ACK, PSH, Conversation
from capture import PcapWriter

HERE = Path(__file__).resolve().parent
SERVER = ("10.0.0.2", 5672)
T0 = 1_709_290_000_000_000_000  # 2024-03-01T10:46:40Z
MS = 1_000_000

#: Option sets Packetbeat is run with (also used by the test).
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "all": {"send_request": True, "send_response": True, "hide_connection_information": False},
    "raw": {
        "send_request": True,
        "send_response": True,
        "parse_headers": False,
        "parse_arguments": False,
        "max_body_length": 10,
    },
}

STAMP = 1_709_283_907  # 2024-03-01T09:05:07Z


def conversation(n: int) -> Conversation:
    conv = Conversation(("10.0.0.1", 40000 + n), SERVER, ts=T0 + n * 2_000_000_000, step_ns=MS)
    conv.handshake()
    for side, data in w.handshake_exchange():
        conv.send(side, data)
    return conv


def segments(conv: Conversation, side: int, *chunks: bytes) -> None:
    """Each chunk as one TCP segment, then an ACK back."""
    for c in chunks:
        conv._emit(side, ACK | PSH, c)
        conv.seq[side] += len(c)
    conv._emit(1 - side, ACK)


def sync(conv: Conversation, request: bytes, reply: bytes) -> None:
    conv.send(0, request)
    conv.send(1, reply)


def topology() -> Conversation:
    """Every synchronous method Packetbeat decodes, with arguments of the common types."""
    c = conversation(1)
    args = {"alternate-exchange": "ae", "x-n": 3, "x-flag": True, "x-nested": {"k": "v", "n": [1, "a"]}}
    sync(c, w.exchange_declare(1, "ex.direct", "direct", durable=True, arguments=args), w.ok(1, 40, 11))
    sync(c, w.exchange_declare(1, "ex.fanout", "fanout", auto_delete=True, internal=True), w.ok(1, 40, 11))
    sync(c, w.exchange_declare(1, "ex.empty-type", ""), w.ok(1, 40, 11))
    sync(c, w.exchange_declare(1, "ex.direct", passive=True), w.ok(1, 40, 11))
    qargs = {"x-max-length": 1000, "x-message-ttl": 60000, "x-queue-type": "classic"}
    sync(c, w.queue_declare(1, "q1", durable=True, arguments=qargs), w.queue_declare_ok(1, "q1", 7, 2))
    sync(c, w.queue_declare(1, "", exclusive=True, auto_delete=True), w.queue_declare_ok(1, "amq.gen-abc123"))
    sync(c, w.queue_bind(1, "q1", "ex.direct", "rk", arguments={"x-match": "any"}), w.ok(1, 50, 21))
    sync(c, w.queue_bind(1, "q1", "", "q1"), w.ok(1, 50, 21))
    sync(c, w.exchange_bind(1, "ex.fanout", "ex.direct", "k2"), w.ok(1, 40, 31))
    sync(c, w.exchange_bind(1, "ex.fanout", "ex.direct", "k2", unbind=True), w.ok(1, 40, 51))
    sync(c, w.queue_purge(1, "q1"), w.queue_purge_ok(1, 5))
    sync(c, w.queue_delete(1, "q1", if_unused=True, if_empty=True), w.queue_delete_ok(1, 0))
    sync(c, w.exchange_delete(1, "ex.fanout", if_unused=True), w.ok(1, 40, 21))
    sync(c, w.basic_recover(1, True), w.ok(1, 60, 111))
    c.close()
    return c


def props_all(i: int) -> dict[str, object]:
    return {
        "content_type": "application/json",
        "headers": {
            "str": "v",
            "int": i,
            "big": 1 << 40,
            "bool": True,
            "dec": ("D", (3, 12345)),
            "when": ("T", STAMP),
        },
        "delivery_mode": 2,
        "priority": 7,
        "correlation_id": f"corr-{i}",
        "reply_to": "replies",
        "expiration": "60000",
        "message_id": f"m-{i}",
        "timestamp": STAMP + i,
        "type": "order.created",
        "user_id": "guest",
        "app_id": "tests",
        "cluster_id": "c1",
    }


def publishing() -> Conversation:
    """Messages with every property; text, JSON, binary, encoded, invalid UTF-8, long and
    multi-frame bodies (in one write, and cut by TCP into several segments)."""
    c = conversation(2)
    c.send(0, w.basic_publish(1, "ex", "rk", b"plain text", content_type="text/plain"))
    c.send(0, w.basic_publish(1, "ex", "rk", b'{"n": 1, "s": "\xc3\xa9"}', **props_all(1)))
    c.send(0, w.basic_publish(1, "", "q1", bytes(range(0, 256, 3)), content_type="application/octet-stream"))
    c.send(
        0,
        w.basic_publish(1, "ex", "rk", b"\x1f\x8b gzip", content_type="text/plain", content_encoding="gzip"),
    )
    c.send(0, w.basic_publish(1, "ex", "rk", b"no properties"))
    c.send(0, w.basic_publish(1, "ex", "rk", "é".encode() * 700 + b"\xff", content_type="text/plain"))
    c.send(0, w.basic_publish(1, "ex", "rk", b"x" * 999 + "é".encode(), content_type="text/plain"))
    c.send(0, w.basic_publish(1, "ex", "rk", b"ok\xffbad\xc3", content_type="text/plain"))
    big = b"".join(b"line %05d of a long message\n" % i for i in range(400))
    c.send(0, w.basic_publish(1, "ex", "rk", big, frame_max=4096, content_type="text/plain", delivery_mode=1))
    c.send(
        0,
        w.basic_publish(1, "ex", "rk", b"y" * 1000, mandatory=True, immediate=True, content_type="text/json"),
    )
    c.send(0, w.basic_publish(1, "ex", "rk", b"z" * 1001, content_type="application/vnd.api+json; charset=x"))
    c.close()
    return c


def consuming() -> Conversation:
    """A consumer: deliveries (some redelivered), acks, nacks, rejects, a cancel."""
    c = conversation(3)
    sync(c, w.basic_consume(1, "q1", "ctag-1", arguments={"x-priority": 2}), w.basic_consume_ok(1, "ctag-1"))
    for i in range(1, 7):
        body = f"message {i}".encode()
        props = {"content_type": "text/plain"} if i % 2 else props_all(i)
        c.send(
            1, w.basic_deliver(1, "ctag-1", i, "ex" if i < 5 else "", "rk", body, redelivered=i == 3, **props)
        )
        if i % 3 == 1:
            c.send(0, w.basic_ack(1, i))
        elif i % 3 == 2:
            c.send(0, w.basic_nack(1, i, multiple=i == 5, requeue=False))
        else:
            c.send(0, w.basic_reject(1, i, requeue=True))
    c.send(0, w.basic_ack(1, 6, multiple=True))
    sync(c, w.basic_cancel(1, "ctag-1"), w.basic_cancel_ok(1, "ctag-1"))
    sync(
        c,
        w.basic_consume(1, "q2", "", no_ack=True, exclusive=True, no_local=True),
        w.basic_consume_ok(1, "amq.ctag-x"),
    )
    # The broker cancels the consumer (queue deleted): a basic.cancel with no-wait.
    c.send(1, w.basic_cancel(1, "amq.ctag-x", no_wait=True))
    c.close()
    return c


def getting() -> Conversation:
    """basic.get answered by a message and by get-empty; an unroutable message returned."""
    c = conversation(4)
    sync(c, w.basic_get(1, "q1"), w.basic_get_ok(1, 1, "ex", "rk", 3, b"got it", content_type="text/plain"))
    sync(
        c, w.basic_get(1, "q1", no_ack=True), w.basic_get_ok(1, 2, "", "q1", 0, b"\x00\x01", redelivered=True)
    )
    sync(c, w.basic_get(1, "q1"), w.basic_get_empty(1))
    c.send(0, w.basic_publish(1, "ex", "nowhere", b"returned", mandatory=True, content_type="text/plain"))
    c.send(1, w.basic_return(1, 312, "NO_ROUTE", "ex", "nowhere", b"returned", content_type="text/plain"))
    c.close()
    return c


def transactions() -> Conversation:
    c = conversation(5)
    sync(c, w.tx(1, "select"), w.tx(1, "select", True))
    c.send(0, w.basic_publish(1, "", "q1", b"in tx", content_type="text/plain"))
    sync(c, w.tx(1, "commit"), w.tx(1, "commit", True))
    c.send(0, w.basic_publish(1, "", "q1", b"rolled back", content_type="text/plain"))
    sync(c, w.tx(1, "rollback"), w.tx(1, "rollback", True))
    c.close()
    return c


def channel_error() -> Conversation:
    """no-wait methods; a queue.bind refused with channel.close 404, closed with close-ok;
    a channel.close 406 whose close-ok comes later on."""
    c = conversation(6)
    c.send(0, w.exchange_declare(1, "titres", "fanout", durable=True, no_wait=True))
    c.send(0, w.queue_declare(1, "nw", no_wait=True))
    c.send(0, w.basic_consume(1, "nw", "t1", no_wait=True))
    c.send(0, w.queue_delete(1, "gone", no_wait=True))
    sync(c, w.queue_declare(1, "my_queue", exclusive=True), w.queue_declare_ok(1, "my_queue"))
    c.send(0, w.queue_bind(1, "my_queue", "plop"))
    c.send(1, w.close(1, 404, "NOT_FOUND - no exchange 'plop' in vhost '/'", 50, 20))
    c.send(0, w.close_ok(1))
    c.send(0, w.channel_open(2))
    c.send(1, w.channel_open_ok(2))
    c.send(0, w.exchange_declare(2, "kind", "fanout"))
    c.send(1, w.close(2, 406, "PRECONDITION_FAILED - inequivalent arg 'type'", 40, 10))
    c.send(0, w.close_ok(2))
    c.close()
    return c


def connection_error() -> Conversation:
    """connection.open refused (530) and answered with close-ok."""
    c = Conversation(("10.0.0.1", 40007), SERVER, ts=T0 + 7 * 2_000_000_000, step_ns=MS).handshake()
    client, server = w.handshake(1, "nope")
    c.send(0, client[0])
    c.send(1, server[0])
    c.send(0, client[1])
    c.send(1, server[1])
    c.send(0, client[2] + client[3])
    c.send(1, w.close(0, 530, "NOT_ALLOWED - vhost nope not found", 10, 40))
    c.send(0, w.close_ok(0))
    c.close()
    return c


def refused_login() -> Conversation:
    """Login refused (403) and the connection reset: the close-ok never comes."""
    c = Conversation(("10.0.0.1", 40008), SERVER, ts=T0 + 8 * 2_000_000_000, step_ns=MS).handshake()
    client, server = w.handshake(1)
    c.send(0, client[0])
    c.send(1, server[0])
    c.send(0, client[1])
    c.send(
        1, w.close(0, 403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN", 10, 11)
    )
    c.reset(1)
    return c


def confirms() -> Conversation:
    """Publisher confirms: confirm.select (unknown to Packetbeat), acks and a nack from the broker."""
    c = conversation(9)
    sync(c, w.confirm_select(1), w.confirm_select_ok(1))
    for i in range(1, 4):
        c.send(0, w.basic_publish(1, "", "q1", f"confirmed {i}".encode(), content_type="text/plain"))
        c.send(1, w.basic_ack(1, i))
    c.send(0, w.basic_publish(1, "", "full", b"refused"))
    c.send(1, w.basic_nack(1, 4, requeue=False))
    c.close()
    return c


def table_types() -> Conversation:
    """Every field-table type: those Packetbeat renders like wirebeat, those it gets wrong
    (signed I and l, byte arrays, small and negative decimals), RabbitMQ's ``s`` (a short
    int Packetbeat takes for a string, losing the message), method arguments."""
    c = conversation(10)
    same = {
        "S": "long string",
        "t": True,
        "f": False,
        "b": ("b", -5),
        "B": ("B", 250),
        "U": ("U", -300),
        "u": ("u", 65000),
        "Ipos": ("I", 7),
        "i": ("i", 4000000000),
        "L": ("L", -9),
        "lpos": ("l", 1 << 50),
        "float": ("f", 0.1),
        "double": ("d", 2.5e-7),
        "dec": ("D", (2, 12345)),
        "dec0": ("D", (0, 42)),
        "decfrac": ("D", (2, 15)),
        "T": ("T", STAMP),
        "Tbig": ("T", 253402300800),
        "V": None,
        "A": [1, "two", [3, None], {"four": 4}],
        "F": {"a": {"b": {}}, "c": ""},
        "utf8": "żółw",
        b"bad\xff": ("S", b"\xc3\x28"),
    }
    fixed = {
        "I": ("I", -7),
        "l": ("l", -11),
        "x": ("x", b"\x01\x02\x03\x04\x05\x06"),
        "xshort": ("x", b"\x09"),
        "decsmall": ("D", (3, 5)),
        "decneg": ("D", (2, -150)),
    }
    c.send(0, w.basic_publish(1, "ex", "rk", b"same", content_type="text/plain", headers=same))
    c.send(0, w.basic_publish(1, "ex", "rk", b"fixed", content_type="text/plain", headers=fixed))
    c.send(
        0, w.basic_publish(1, "ex", "rk", b"short int", content_type="text/plain", headers={"s": ("s", 1234)})
    )
    args = {"x-float": ("f", 1.5), "x-dec": ("D", (1, 15)), "x-list": ["a", ("B", 1)]}
    sync(c, w.queue_declare(1, "typed", arguments=args), w.queue_declare_ok(1, "typed"))
    c.close()
    return c


def empty_bodies() -> Conversation:
    """A message with an empty body (no body frame), then another (Packetbeat merges them)."""
    c = conversation(11)
    c.send(0, w.basic_publish(1, "ex", "rk", b"", content_type="text/plain", message_id="empty"))
    c.send(0, w.basic_publish(1, "ex", "rk", b"after the empty one", content_type="text/plain"))
    c.send(1, w.basic_deliver(1, "ct", 1, "ex", "rk", b""))
    sync(c, w.queue_purge(1, "q"), w.queue_purge_ok(1, 0))
    c.close()
    return c


def pipelined() -> Conversation:
    """Two publishes in one segment, then two multi-frame messages in one segment (Packetbeat
    appends the second body to the first and makes an event of each body frame)."""
    c = conversation(12)
    c.send(
        0,
        w.basic_publish(1, "ex", "rk", b"first", content_type="text/plain")
        + w.basic_publish(1, "ex", "rk", b"second", content_type="text/plain"),
    )
    big1 = b"a" * 6000
    big2 = b"b" * 6000
    segments(
        c,
        0,
        w.basic_publish(1, "ex", "big", big1, frame_max=4096, content_type="text/plain")
        + w.basic_publish(1, "ex", "big", big2, frame_max=4096, content_type="text/plain"),
    )
    sync(c, w.tx(1, "select"), w.tx(1, "select", True))
    c.close()
    return c


def channels() -> Conversation:
    """Requests waiting on two channels at once; a delivery and an ack while a request waits."""
    c = conversation(13)
    c.send(0, w.channel_open(2))
    c.send(1, w.channel_open_ok(2))
    c.send(0, w.queue_declare(1, "one"))
    c.send(0, w.queue_declare(2, "two"))
    c.send(1, w.queue_declare_ok(1, "one"))
    c.send(1, w.queue_declare_ok(2, "two", 1))
    c.send(0, w.queue_purge(1, "one"))
    c.send(1, w.basic_deliver(2, "ct", 1, "", "two", b"meanwhile", content_type="text/plain"))
    c.send(0, w.basic_ack(2, 1))
    c.send(1, w.queue_purge_ok(1, 3))
    c.close()
    return c


def interruptions() -> Conversation:
    """A heartbeat, an unknown method (connection.blocked) and a hidden method before other
    frames in the same segment: Packetbeat loses what follows them."""
    c = conversation(14)
    c.send(0, w.heartbeat() + w.queue_declare(1, "after-heartbeat"))
    c.send(1, w.queue_declare_ok(1, "after-heartbeat"))
    c.send(
        1,
        w.method(0, 10, 60, w.shortstr("low on memory"))
        + w.basic_deliver(1, "ct", 9, "ex", "rk", b"after blocked", content_type="text/plain"),
    )
    c.send(0, w.basic_qos(1, 0, 5) + w.queue_declare(1, "after-qos"))
    c.send(1, w.ok(1, 60, 11) + w.queue_declare_ok(1, "after-qos"))
    c.send(0, w.heartbeat())
    sync(c, w.queue_purge(1, "after-qos"), w.queue_purge_ok(1, 0))
    c.close()
    return c


def cut_segments() -> Conversation:
    """Messages cut by segments at odd places: [A part] [A rest + B part] [B rest]."""
    c = conversation(15)
    a = w.basic_publish(1, "ex", "a", b"message A", content_type="text/plain")
    b = w.basic_publish(1, "ex", "b", b"message B", content_type="text/plain")
    segments(c, 0, a[:10])
    segments(c, 0, a[10:] + b[:30])
    segments(c, 0, b[30:])
    q = w.queue_declare(1, "cut")
    segments(c, 0, q[:5])
    segments(c, 0, q[5:])
    c.send(1, w.queue_declare_ok(1, "cut"))
    c.close()
    return c


def unbind_arguments() -> Conversation:
    """queue.unbind with arguments (Packetbeat looks for them one byte too far; without
    arguments, that makes it crash, so there is no such case here)."""
    c = conversation(16)
    sync(
        c,
        w.queue_unbind(1, "q1", "ex", "rk", arguments={"x-match": "all", "kind": "report"}),
        w.ok(1, 50, 51),
    )
    c.close()
    return c


def bad_arguments() -> Conversation:
    """An arguments table that does not decode (an unknown type): the method still counts."""
    c = conversation(17)
    bad = w.method(
        1, 50, 10, b"\x00\x00" + w.shortstr("badargs") + w.bits() + b"\x00\x00\x00\x05\x01kZ\x00\x00"
    )
    sync(c, bad, w.queue_declare_ok(1, "badargs"))
    c.close()
    return c


def connection_information() -> Conversation:
    """What hide_connection_information hides: qos, flow, and normal closes with close-ok."""
    c = conversation(18)
    sync(c, w.basic_qos(1, 0, 10, True), w.ok(1, 60, 11))
    sync(c, w.channel_flow(1, False), w.channel_flow_ok(1, False))
    sync(c, w.close(1, 200, "Normal shutdown"), w.close_ok(1))
    sync(c, w.close(0, 200, "Normal shutdown"), w.close_ok(0))
    c.close()
    return c


SCENARIOS = [
    topology,
    publishing,
    consuming,
    getting,
    transactions,
    channel_error,
    connection_error,
    refused_login,
    confirms,
    table_types,
    empty_bodies,
    pipelined,
    channels,
    interruptions,
    cut_segments,
    unbind_arguments,
    bad_arguments,
    connection_information,
]


def write() -> None:
    frames = []
    for make in SCENARIOS:
        frames += make().frames
    frames.sort(key=lambda f: f[0])
    with PcapWriter(str(HERE / "cases.pcap"), 1, nanosecond=False) as pw:
        for ts, fr in frames:
            pw.write(ts, fr)


def packetbeat() -> None:
    """Run Packetbeat 9.3 (scripts/build-packetbeat) on cases.pcap for every variant."""
    root = HERE.parents[2]
    exe = subprocess.run(
        [str(root / "scripts" / "build-packetbeat")], capture_output=True, text=True, check=True
    )
    binary = exe.stdout.strip().splitlines()[-1]
    for name, opts in VARIANTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            lines = [
                "packetbeat.interfaces.device: any",
                "packetbeat.protocols:",
                "- type: amqp",
                "  ports: [5672]",
            ]
            lines += [f"  {k}: {json.dumps(v)}" for k, v in opts.items()]
            lines += [
                f"output.file: {{path: {tmp}/out, filename: pb}}",
                "queue.mem.flush.timeout: 0s",
                "packetbeat.shutdown_timeout: 2s",
                f"path.data: {tmp}/data",
                f"path.logs: {tmp}/logs",
            ]
            cfg = Path(tmp) / "pb.yml"
            cfg.write_text("\n".join(lines) + "\n")
            subprocess.run(
                [binary, "-e", "-t", "-I", str(HERE / "cases.pcap"), "-c", str(cfg), "--strict.perms=false"],
                capture_output=True,
                check=True,
            )
            events = []
            for f in sorted((Path(tmp) / "out").glob("*.ndjson")):
                for line in f.read_text().splitlines():
                    e = json.loads(line)
                    for k in ("agent", "host", "ecs"):
                        e.pop(k, None)
                    e.get("@metadata", {}).pop("version", None)
                    events.append(json.dumps(e, sort_keys=True, ensure_ascii=False))
            (HERE / f"cases.{name}.packetbeat.ndjson").write_text("\n".join(events) + "\n")
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"{name}: {len(events)} events")


if __name__ == "__main__":
    if "--packetbeat" in sys.argv:
        packetbeat()
    else:
        write()
