"""``output.kafka`` against a real Apache Kafka 4.1 broker (KRaft), events consumed back
with the same client library (confluent-kafka) and compared.

One broker serves the whole session (PLAINTEXT, SASL_PLAINTEXT with PLAIN and SCRAM users,
SSL); the delivery test runs a broker of its own that starts late and is killed (SIGKILL)
twice while wirebeat replays a capture with default settings.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import subprocess
import time
import uuid
from collections import Counter as Tally
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.stats import Counters
from shipper.agent.settings import build_settings, load_settings
from shipper.agent.testoutput import test_output as run_test_output
from shipper.outputs.base import ConnectError, EncodedEvent, OutputContext
from shipper.outputs.kafka import KafkaOutput, fnv1a32, hash_partition
from tests.interop.kafka_broker import USERS, KafkaBroker, quiet_logger
from tests.interop.ljpeer import http_capture, wirebeat_popen

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
        print(f"\nKafka broker {broker.bootstrap} ready in {broker.started_in:.1f}s")
        yield broker
    finally:
        broker.stop()


def topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(kafka: KafkaBroker, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap, "logger": quiet_logger()})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)


def consume(kafka: KafkaBroker, topics: list[str], expect: int, timeout: float = 20.0) -> list[Any]:
    """Every record of ``topics`` from the beginning (all partitions), until ``expect`` have
    arrived and nothing more comes for a moment."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "logger": quiet_logger(),
        }
    )
    try:
        md = c.list_topics(timeout=10)
        parts = [
            TopicPartition(t, p, OFFSET_BEGINNING)
            for t in topics
            if t in md.topics
            for p in md.topics[t].partitions
        ]
        c.assign(parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            msgs = c.consume(1000, 0.3)
            real = [m for m in msgs if m.error() is None]
            out += real
            if real:
                quiet_since = time.monotonic()
            elif len(out) >= expect and time.monotonic() - quiet_since > 0.6:
                break
        return out
    finally:
        c.close()


def make_events(n: int, **extra: Any) -> list[dict[str, Any]]:
    types = ["http", "dns", "mysql"]
    return [
        {
            "@timestamp": f"2024-05-06T07:08:{i % 60:02d}.{i % 1000:03d}Z",
            "@metadata": {"beat": "packetbeat", "type": "_doc", "version": "9.3.0"},
            "type": types[i % 3],
            "seq": i,
            "client": {"ip": f"10.0.{i % 7}.{i % 5}"},
            "fields": {
                "team": ["web", "db", "ops", "qa"][i % 4],
                "level": "critical" if i % 10 == 0 else "info",
            },
            "url": {"path": f"/item/{i}"},
            **extra,
        }
        for i in range(n)
    ]


def kafka_output(kafka: KafkaBroker, **over: Any) -> tuple[KafkaOutput, Counters]:
    body: dict[str, Any] = {"hosts": [kafka.bootstrap], **over}
    settings, _ = build_settings({"output": {"kafka": body}})
    stats = Counters()
    return KafkaOutput(settings.output_config(), OutputContext("test", "9.3.0", stats, Path("."))), stats


def publish(out: KafkaOutput, events: list[dict[str, Any]], batch: int = 500) -> int:
    """Publish as the pipeline does (encoded events, in batches); the acknowledged count."""
    encoded = [EncodedEvent.from_event(dict(e, **{"@metadata": dict(e["@metadata"])})) for e in events]

    async def run() -> int:
        done = 0
        try:
            for i in range(0, len(encoded), batch):
                done += await out.publish(encoded[i : i + batch])
        finally:
            await out.close()
        return done

    return asyncio.run(run())


def by_seq(records: list[Any]) -> dict[int, Any]:
    return {json.loads(r.value())["seq"]: r for r in records}


# -- content, timestamps, routing ------------------------------------------------------------


def test_every_event_arrives_intact(kafka: KafkaBroker) -> None:
    topic = topic_name("intact")
    events = make_events(2000)
    out, stats = kafka_output(kafka, topic=topic)
    assert publish(out, events) == 2000
    records = consume(kafka, [topic], 2000)
    assert len(records) == 2000
    got = by_seq(records)
    for e in events:
        r = got[e["seq"]]
        doc = json.loads(r.value())
        assert doc == e  # @metadata included, as libbeat's json codec writes it
        # The record timestamp is the event's @timestamp (libbeat, Kafka >= 0.10).
        ts = r.timestamp()[1]
        assert time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) == e["@timestamp"][:19]
        assert ts % 1000 == int(e["@timestamp"][20:23])
        assert r.key() is None
    assert stats.get("output.sent") == 2000
    print(f"\nintact: 2000 published, {len(records)} consumed, all identical")


def test_topics_by_format_string_and_conditions(kafka: KafkaBroker) -> None:
    uid = uuid.uuid4().hex[:6]
    events = make_events(300)
    events.append({**make_events(1)[0], "seq": 300, "type": "nfs", "fields": {}})  # no team
    out, stats = kafka_output(
        kafka,
        topic=f"%{{[type]}}-{uid}",
        topics=[
            {"topic": f"critical-{uid}", "when": {"equals": {"fields.level": "critical"}}},
            {
                "topic": "%{[fields.team]}",
                "mappings": {"web": f"team-web-{uid}", "db": f"team-db-{uid}"},
                "when": {"not": {"equals": {"type": "dns"}}},
            },
        ],
    )
    assert publish(out, events) == len(events)

    def expected(e: dict[str, Any]) -> str:
        if e["fields"].get("level") == "critical":
            return f"critical-{uid}"
        if e["type"] != "dns" and e["fields"].get("team") in ("web", "db"):
            return f"team-{e['fields']['team']}-{uid}"
        return f"{e['type']}-{uid}"  # the rule yields nothing: on to `topic`

    want = {e["seq"]: expected(e) for e in events}
    topics = sorted(set(want.values()))
    records = consume(kafka, topics, len(events))
    assert len(records) == len(events)
    got = {json.loads(r.value())["seq"]: r.topic() for r in records}
    assert got == want
    print(f"\nrouting: {len(events)} events over {len(topics)} topics {dict(Tally(want.values()))}")


def test_keys_and_default_hash_partitioning(kafka: KafkaBroker) -> None:
    topic = topic_name("keys")
    create_topic(kafka, topic, 4)
    events = make_events(400)
    out, _ = kafka_output(kafka, topic=topic, key="%{[client.ip]}")
    assert publish(out, events) == 400
    records = consume(kafka, [topic], 400)
    assert len(records) == 400
    for seq, r in by_seq(records).items():
        key = events[seq]["client"]["ip"].encode()
        assert r.key() == key
        # sarama's hash partitioner: FNV-1a of the key, sign bit cleared, modulo 4.
        assert r.partition() == hash_partition(fnv1a32(key), 4)
    assert len({r.partition() for r in records}) > 1


def test_round_robin_random_and_field_hash_partitioning(kafka: KafkaBroker) -> None:
    rr, rnd, fh = topic_name("rr"), topic_name("rnd"), topic_name("fh")
    for t in (rr, rnd, fh):
        create_topic(kafka, t, 3)
    events = make_events(120)
    # round_robin, groups of 4 consecutive events per partition
    out, _ = kafka_output(kafka, topic=rr, partition={"round_robin": {"group_events": 4}})
    assert publish(out, events, batch=120) == 120
    got = by_seq(consume(kafka, [rr], 120))
    parts = [got[i].partition() for i in range(120)]
    groups = [parts[i : i + 4] for i in range(0, 120, 4)]
    assert all(len(set(g)) == 1 for g in groups)
    assert all(groups[i + 1][0] == (groups[i][0] + 1) % 3 for i in range(len(groups) - 1))
    assert Tally(parts) == {0: 40, 1: 40, 2: 40}
    # random, groups of 5
    out, _ = kafka_output(kafka, topic=rnd, partition={"random": {"group_events": 5, "reachable_only": True}})
    assert publish(out, events, batch=120) == 120
    got = by_seq(consume(kafka, [rnd], 120))
    parts = [got[i].partition() for i in range(120)]
    assert all(len(set(parts[i : i + 5])) == 1 for i in range(0, 120, 5))
    # hash of fields: equal values, equal partitions, the value libbeat's FNV-1a gives
    out, _ = kafka_output(kafka, topic=fh, partition={"hash": {"hash": ["fields.team"]}})
    assert publish(out, events, batch=120) == 120
    for seq, r in by_seq(consume(kafka, [fh], 120)).items():
        team = events[seq]["fields"]["team"].encode()
        assert r.partition() == hash_partition(fnv1a32(team), 3)


def test_headers_and_codec_format(kafka: KafkaBroker) -> None:
    topic = topic_name("fmt")
    events = make_events(50)
    out, _ = kafka_output(
        kafka,
        topic=topic,
        headers=[{"key": "origin", "value": "wirebeat"}, {"key": "env", "value": "test"}],
        codec={"format": {"string": "%{[type]} %{[url.path]} %{[fields.missing]:-}"}},
    )
    assert publish(out, events) == 50
    records = consume(kafka, [topic], 50)
    assert sorted(r.value().decode() for r in records) == sorted(
        f"{e['type']} {e['url']['path']} -" for e in events
    )
    assert all(r.headers() == [("origin", b"wirebeat"), ("env", b"test")] for r in records)


def _batch_codecs(kafka: KafkaBroker, topic: str) -> set[int]:
    """The compression codec of every record batch the broker stored (attributes & 7,
    read from the partition's log segment: Kafka's record batch v2 layout)."""
    seg = next((kafka.logs / f"{topic}-0").glob("*.log"))
    data = seg.read_bytes()
    codecs = set()
    pos = 0
    while pos + 23 <= len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        (attributes,) = struct.unpack_from(">h", data, pos + 21)
        codecs.add(attributes & 7)
        pos += 12 + length
    return codecs


@pytest.mark.parametrize(("codec", "level", "number"), [
    ("none", 4, 0), ("gzip", 9, 1), ("snappy", 4, 2), ("lz4", 4, 3), ("zstd", 4, 4),
])  # fmt: skip
def test_every_compression_codec(kafka: KafkaBroker, codec: str, level: int, number: int) -> None:
    topic = topic_name(f"codec-{codec}")
    events = make_events(1000, padding="x" * 200)  # compressible
    out, _ = kafka_output(kafka, topic=topic, compression=codec, compression_level=level)
    assert publish(out, events) == 1000
    records = consume(kafka, [topic], 1000)
    assert sorted(json.loads(r.value())["seq"] for r in records) == list(range(1000))
    assert _batch_codecs(kafka, topic) == {number}


def test_events_over_max_message_bytes_are_dropped_and_counted(kafka: KafkaBroker) -> None:
    topic = topic_name("big")
    events = make_events(20)
    events[5]["blob"] = "y" * 5000
    events[12]["blob"] = "z" * 5000
    out, stats = kafka_output(kafka, topic=topic, max_message_bytes=4000)
    assert publish(out, events) == 20  # dropped events count as done (libbeat drops them)
    assert stats.get("output.kafka.events.dropped_too_large") == 2
    records = consume(kafka, [topic], 18)
    assert sorted(json.loads(r.value())["seq"] for r in records) == [i for i in range(20) if i not in (5, 12)]


# -- SASL and TLS --------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl(kafka: KafkaBroker, mechanism: str) -> None:
    topic = topic_name(f"sasl-{mechanism.lower()}")
    user = "alice" if mechanism != "SCRAM-SHA-512" else "bob"
    events = make_events(100)
    out, _ = kafka_output(
        kafka,
        hosts=[f"127.0.0.1:{kafka.sasl_port}"],
        topic=topic,
        username=user,
        password=USERS[user],
        sasl={"mechanism": mechanism},
    )
    assert publish(out, events) == 100
    assert len(consume(kafka, [topic], 100)) == 100
    # A wrong password: the broker refuses the login; nothing is sent (no retry charged).
    bad, _ = kafka_output(
        kafka,
        hosts=[f"127.0.0.1:{kafka.sasl_port}"],
        topic=topic,
        username=user,
        password="wrong",
        sasl={"mechanism": mechanism},
        timeout="3s",
    )
    with pytest.raises(ConnectError) as exc:
        publish(bad, events[:1])
    assert "uthentication" in str(exc.value)


def test_tls(kafka: KafkaBroker) -> None:
    topic = topic_name("tls")
    events = make_events(100)
    out, _ = kafka_output(
        kafka,
        hosts=[f"localhost:{kafka.ssl_port}"],
        topic=topic,
        ssl={"certificate_authorities": [str(kafka.certs["ca"])]},
    )
    assert out.conf["security.protocol"] == "SSL"
    assert publish(out, events) == 100
    assert len(consume(kafka, [topic], 100)) == 100
    # An unrelated CA: the handshake fails, nothing is sent.
    bad, _ = kafka_output(
        kafka,
        hosts=[f"localhost:{kafka.ssl_port}"],
        topic=topic,
        timeout="3s",
        ssl={"certificate_authorities": [str(kafka.certs["other_ca"])]},
    )
    with pytest.raises(ConnectError):
        publish(bad, events[:1])


# -- wirebeat test output --------------------------------------------------------------------


def _test_output(tmp_path: Path, output: dict[str, Any]) -> tuple[int, str]:
    cfg = tmp_path / "wb.yml"
    cfg.write_text(json.dumps({"output": output, "path": {"data": str(tmp_path / "data")}}))
    settings, _ = load_settings(str(cfg), required=True)
    buf = io.StringIO()
    rc = run_test_output(settings, buf)
    return rc, buf.getvalue()


def test_test_output_kafka(kafka: KafkaBroker, tmp_path: Path) -> None:
    topic = topic_name("probe")
    rc, text = _test_output(tmp_path, {"kafka": {"hosts": [kafka.bootstrap], "topic": topic}})
    print("\n" + text)
    assert rc == 0, text
    assert (
        f"Kafka: {kafka.bootstrap}...\n  connection...\n    parse host... OK\n    dns lookup... OK\n" in text
    )
    assert "    dial up... OK" in text
    assert "  talk to server... OK" in text
    assert f"  brokers: {kafka.bootstrap} (id 1)" in text
    assert f"  topic {topic}... OK\n    partitions: 1 (1 with a leader)" in text
    # SASL with the right and a wrong password, TLS.
    sasl = {"hosts": [f"127.0.0.1:{kafka.sasl_port}"], "topic": topic, "username": "alice"}
    rc, text = _test_output(tmp_path, {"kafka": {**sasl, "password": USERS["alice"]}})
    assert rc == 0 and "SASL: PLAIN as 'alice' (SASL_PLAINTEXT)" in text, text
    rc, text = _test_output(tmp_path, {"kafka": {**sasl, "password": "wrong", "timeout": "3s"}})
    assert rc == 1 and "talk to server... ERROR" in text and "uthentication" in text, text
    rc, text = _test_output(
        tmp_path,
        {
            "kafka": {
                "hosts": [f"localhost:{kafka.ssl_port}"],
                "topic": topic,
                "ssl": {"certificate_authorities": [str(kafka.certs["ca"])]},
            }
        },
    )
    assert rc == 0 and "TLS... security: verification mode full" in text, text
    # One host down: its dial fails, the verdict is 1.
    rc, text = _test_output(tmp_path, {"kafka": {"hosts": ["127.0.0.1:1", kafka.bootstrap], "topic": topic}})
    assert rc == 1 and "dial up... ERROR dial tcp 127.0.0.1:1: connection refused" in text, text


# -- wirebeat end to end, and at-least-once through restarts ------------------------------------


def test_wirebeat_replay_to_kafka(kafka: KafkaBroker, tmp_path: Path) -> None:
    n = 3000
    pcap = http_capture(tmp_path / "cap.pcap", n)
    topic = topic_name("replay")
    proc = wirebeat_popen(
        "-e", "-t", "-I", str(pcap),
        "-E", "packetbeat.protocols=[{type: http, ports: [80]}]",
        "-E", f"output.kafka.hosts=['{kafka.bootstrap}']",
        "-E", f"output.kafka.topic='{topic}-%{{[type]}}'",
        "-E", "output.kafka.key='%{[url.path]}'",
        "--path.data", str(tmp_path / "data"), "--path.logs", str(tmp_path / "logs"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    records = consume(kafka, [f"{topic}-http"], n)
    paths = Tally(json.loads(r.value())["url"]["path"] for r in records)
    assert set(paths) == {f"/item/{i}" for i in range(n)} and len(records) == n
    assert all(r.key().decode() == json.loads(r.value())["url"]["path"] for r in records)


LATE_START = float(os.environ.get("WIREBEAT_LATE_START", "6"))


def test_broker_late_and_killed_twice_loses_nothing(tmp_path: Path) -> None:
    """Default settings; the broker starts ``LATE_START`` s after wirebeat, then is killed
    (SIGKILL) twice mid-stream and restarted. Every event must arrive; duplicates only
    from records in flight at a kill, at most ``output.unacked``."""
    from tests.interop.test_delivery import Wirebeat, paced_capture

    n = 20_000
    broker = KafkaBroker(tmp_path / "broker")  # formatted, not started: late
    pcap = paced_capture(tmp_path / "cap.pcap", n, LATE_START + 14)
    topic = "packetbeat"
    wb = Wirebeat(
        tmp_path,
        pcap,
        "-E",
        f"output.kafka.hosts=['{broker.bootstrap}']",
        "-E",
        f"output.kafka.topic={topic}",
    )
    try:
        time.sleep(LATE_START)
        assert wb.proc.poll() is None, wb.tail()
        broker.start()
        boots = [broker.started_in]

        from confluent_kafka import Consumer, TopicPartition

        probe = Consumer(
            {"bootstrap.servers": broker.bootstrap, "group.id": "probe", "logger": quiet_logger()}
        )

        def received() -> int:
            try:
                _, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=2)
                return int(high)
            except Exception:
                return 0

        kills = []
        for k in (1, 2):
            target = k * n // 3
            deadline = time.monotonic() + 90
            while received() < target:
                assert wb.proc.poll() is None, f"wirebeat ended early: {wb.tail()}"
                assert time.monotonic() < deadline, f"timed out waiting for {target}: {wb.tail()}"
                time.sleep(0.1)
            got = received()
            assert got < n, "everything arrived before the kill: nothing tested"
            broker.kill()
            kills.append(got)
            time.sleep(0.5)
            broker.start()
            boots.append(broker.started_in)
        assert wb.wait(180) == 0, wb.tail()
        probe.close()
        records = consume(broker, [topic], n, timeout=60)
    finally:
        wb.stop()
        broker.stop()
    paths = [json.loads(r.value())["url"]["path"] for r in records]
    seen = Tally(paths)
    totals = wb.totals()
    dups = len(paths) - len(seen)
    print(
        f"\nkafka: {n} published, {len(seen)} distinct received, {dups} duplicates, kills at {kills}; "
        f"output.unacked={totals.get('pipeline.output.unacked', 0)}, "
        f"cancelled batches={totals.get('pipeline.output.cancelled_batches', 0)}, "
        f"failed batches={totals.get('pipeline.output.failed_batches', 0)}; "
        f"broker boots {[round(b, 1) for b in boots]} s"
    )
    assert set(seen) == {f"/item/{i}" for i in range(n)}, f"lost {n - len(seen)}; {totals}"
    assert not [k for k, v in totals.items() if "dropped" in k and v], totals
    assert totals["pipeline.output.acked"] == n == totals["pipeline.publisher.published"]
    assert dups <= totals.get("pipeline.output.unacked", 0), totals
    assert totals.get("pipeline.output.cancelled_batches", 0) >= 2, totals


def test_kill_with_records_in_flight(tmp_path: Path) -> None:
    """One large batch, the broker SIGKILLed as soon as its first records are stored: the
    batch fails with the delivered prefix acknowledged and the records that were in flight
    counted as possibly stored; while the broker is down the batch is cancelled (nothing
    sent); after the restart the rest arrives, and the duplicates are at most what was
    counted."""
    import threading

    from confluent_kafka import Consumer, TopicPartition

    from shipper.outputs.base import OutputError

    broker = KafkaBroker(tmp_path / "broker")
    broker.start()
    topic = "inflight"
    n = 40_000
    events = make_events(n, padding="p" * 400)
    encoded = [EncodedEvent.from_event(dict(e, **{"@metadata": dict(e["@metadata"])})) for e in events]
    out, stats = kafka_output(broker, topic=topic, compression="none")
    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "probe", "logger": quiet_logger()})
    killed_at: list[int] = []

    def kill_when_storing() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                _, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=1)
            except Exception:
                high = 0
            if high > 2000:  # the warm-up record is offset 0
                broker.kill()
                killed_at.append(int(high))
                return
            time.sleep(0.005)

    outcomes: list[str] = []
    unacked = 0

    async def run() -> None:
        nonlocal unacked
        await out.publish(encoded[:1])  # the topic exists, the producer is connected
        pending = encoded[1:]
        killer = threading.Thread(target=kill_when_storing)
        killer.start()
        restarted = False
        while pending:
            try:
                acked = await out.publish(pending)
                outcomes.append(f"ok {acked}")
            except ConnectError:
                outcomes.append("cancelled")
                acked = 0
                if not restarted:
                    killer.join()
                    await asyncio.get_running_loop().run_in_executor(None, broker.start)
                    restarted = True
            except OutputError as exc:
                outcomes.append(f"failed acked={exc.acked} unacked={exc.unacked}")
                acked, unacked = exc.acked, unacked + exc.unacked
            pending = pending[acked:]
        await out.close()

    try:
        asyncio.run(run())
        probe.close()
        records = consume(broker, [topic], n, timeout=60)
    finally:
        broker.stop()
    seqs = Tally(json.loads(r.value())["seq"] for r in records)
    dups = sum(seqs.values()) - len(seqs)
    print(
        f"\nin flight: killed at offset {killed_at}, outcomes {outcomes}, {dups} duplicates, unacked {unacked}"
    )
    assert killed_at, "the broker was never killed"
    assert set(seqs) == set(range(n))
    assert any(o.startswith("failed") for o in outcomes), outcomes  # charged once, at the kill
    assert "cancelled" in outcomes, outcomes  # the broker was away: no retry charged
    assert dups <= unacked
