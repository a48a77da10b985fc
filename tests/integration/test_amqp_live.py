"""Live AMQP: a private RabbitMQ broker (Debian's rabbitmq-server), pika as the client, the
traffic captured on lo with tcpdump and decoded.

The workload (tests/integration/amqp_workload.py) runs some 270 operations: exchanges and
queues declared with arguments, bindings (queue and exchange), 80 publishes with every
property and header type (text, JSON, binary, encoded, invalid UTF-8, bodies over three
frames at frame_max 4096), basic.get (messages and get-empty), a consumer acknowledging,
nacking and rejecting 50 deliveries, cancel, recover, tx select/commit/rollback, publisher
confirms (the broker's acks, a basic.return for an unroutable mandatory message, a nack from
a full queue), purge/unbind/delete, three channel errors (404 on a passive declare, 406 on a
redeclare, 404 on a publish to a missing exchange) and a connection error (530, unknown
virtual host). It records, for each operation, the event it must produce, from what pika
sent and received; every one is checked here (method, fields, status, direction, sizes,
request and response texts), and no other event may come out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.registry import build_plugins, default_config
from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, load_fields
from tests.helpers import decode_file
from tests.integration.capture import live_capture
from tests.integration.rabbitmq_server import rabbitmq_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def broker() -> Iterator[int]:
    with rabbitmq_server() as port:
        yield port


class Run:
    def __init__(self, port: int, pcap: Path, workload: Any, seconds: float) -> None:
        self.port = port
        self.pcap = pcap
        self.workload = workload
        self.seconds = seconds

    def events(self, **opts: Any) -> list[dict[str, Any]]:
        return decode_file(self.pcap, {"amqp": {"ports": [self.port], **opts}})

    def client_port(self, e: dict[str, Any]) -> int:
        return int(e["source"]["port"] if e["destination"]["port"] == self.port else e["destination"]["port"])


@pytest.fixture(scope="module")
def run(broker: int, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from tests.integration.amqp_workload import Workload

    pcap = tmp_path_factory.mktemp("amqp") / "live.pcap"
    with live_capture(pcap, broker, protocol="amqp"):
        t0 = time.monotonic()
        workload = Workload(broker).run()
        seconds = time.monotonic() - t0
    return Run(broker, pcap, workload, seconds)


def match(run: Run, events: list[dict[str, Any]], with_texts: bool) -> list[dict[str, Any]]:
    """Pair every expected event with a decoded one (same connection, method and fields) and
    check it; returns the decoded events nothing expected."""
    left = [e for e in events if run.client_port(e) in run.workload.client_ports]
    for exp in run.workload.expected:
        found = [
            i
            for i, e in enumerate(left)
            if run.client_port(e) == exp["port"] and e["method"] == exp["method"] and e["amqp"] == exp["amqp"]
        ]
        if not found:
            near = [e["amqp"] for e in left if e["method"] == exp["method"]][:3]
            raise AssertionError(
                f"no event for {exp['method']} {exp['amqp']}; unmatched of that method: {near}"
            )
        e = left.pop(found[0])
        assert e["status"] == exp["status"], (exp, e)
        assert e["event"]["action"] == "amqp." + exp["method"]
        server_sent = e["source"]["port"] == run.port
        assert server_sent == (exp["src"] == "server"), (exp, e["source"])
        assert e["source"].get("bytes") == exp["src_bytes"], (exp, e)
        assert e["destination"].get("bytes") == exp["dst_bytes"], (exp, e)
        if exp["response"] == "OK":
            assert e["event"]["end"] >= e["event"]["start"]
        else:
            assert "end" not in e["event"]
        if with_texts:
            assert e["request"] == exp["request"], (exp, e["request"][:200])
            assert e["response"] == exp["response"], (exp, e["response"][:200])
        else:
            assert "request" not in e and "response" not in e
        if "user-id" in exp["amqp"]:
            assert e["user"] == {"id": exp["amqp"]["user-id"]}
    return left


def refused(run: Run, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if run.client_port(e) not in run.workload.client_ports]


def test_workload_size(run: Run) -> None:
    assert run.workload.ops >= 250
    assert len(run.workload.expected) >= 260
    print(
        f"amqp live workload: {run.workload.ops} operations, {len(run.workload.expected)} events, {run.seconds:.1f} s"
    )


def test_every_operation_is_an_event(run: Run) -> None:
    events = run.events(send_request=True, send_response=True)
    assert match(run, events, with_texts=True) == []
    # The connection refused for its virtual host: the broker's close (pika never answers it).
    (e,) = refused(run, events)
    assert e["method"] == "connection.close" and e["status"] == "Error"
    assert e["amqp"] == {
        "reply-code": 530,
        "reply-text": "NOT_ALLOWED - vhost wb-nope not found",
        "class-id": 10,
        "method-id": 40,
    }
    assert e["error"]["message"] == ["Close-ok method not received by sender"]
    assert e["source"]["port"] == run.port


def test_default_options(run: Run) -> None:
    events = run.events()
    assert match(run, events, with_texts=False) == []
    assert len(refused(run, events)) == 1


def test_nothing_was_lost(run: Run) -> None:
    plugins = build_plugins({"amqp": default_config("amqp", ports=[run.port])})
    stats = plugins[0].stats
    from capture import CaptureFile
    from protocols.decoder import Decoder

    dec = Decoder(plugins)
    for ts, lt, frame, _wl in CaptureFile(str(run.pcap)):
        dec.feed(ts, lt, frame)
    dec.flush()
    amqp = {k: v for k, v in stats.items() if k.startswith("amqp.")}
    assert amqp == {}
    assert not any(k.startswith("tcp.gap") for k in stats)


def test_connection_information(run: Run) -> None:
    """hide_connection_information: false adds the opening and closing methods."""
    events = run.events(hide_connection_information=False)
    left = match(run, events, with_texts=False)
    by_method: dict[str, list[dict[str, Any]]] = {}
    for e in left:
        by_method.setdefault(e["method"], []).append(e)
    (start,) = by_method.pop("connection.start")
    assert start["source"]["port"] == run.port
    assert start["amqp"]["server-properties"]["product"] == "RabbitMQ"
    assert start["amqp"]["client-properties"]["product"] == "Pika Python Client Library"
    assert start["amqp"]["mechanism"] == "PLAIN" and start["amqp"]["version-minor"] == 9
    (tune,) = by_method.pop("connection.tune")
    assert tune["amqp"]["frame-max"] == 4096 and tune["amqp"]["heartbeat"] == 0
    (opened,) = by_method.pop("connection.open")
    assert opened["amqp"] == {"virtual-host": "/"}
    (qos,) = by_method.pop("basic.qos")
    assert qos["amqp"] == {"prefetch-size": 0, "prefetch-count": 20, "global": False}
    # Channels 1-7 opened; 2 and 3 closed by pika (reply code 0), the others by the
    # connection's close (200).
    assert len(by_method.pop("channel.open")) == 7
    closes = by_method.pop("channel.close")
    assert (
        sorted((e["amqp"]["reply-code"], e["status"]) for e in closes) == [(0, "OK")] * 2 + [(200, "OK")] * 2
    )
    (close,) = by_method.pop("connection.close")
    assert close["amqp"]["reply-code"] == 200 and close["status"] == "OK"
    assert by_method == {}
    # The refused connection: its start, tune (its open is dropped by the broker's close).
    methods = sorted(e["method"] for e in refused(run, events))
    assert methods == ["connection.close", "connection.start", "connection.tune"]


def test_every_field_is_defined(run: Run) -> None:
    fields = load_fields()
    env = Envelope(beat_name="test")
    problems = []
    for opts in ({"send_request": True, "send_response": True}, {"hide_connection_information": False}):
        for e in run.events(**opts):
            problems += check_event(env.apply(e), fields)
    assert not problems, problems[:10]
