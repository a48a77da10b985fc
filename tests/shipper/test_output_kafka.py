"""``output.kafka`` without a broker: libbeat's format strings, selectors, conditions,
partitioners, the config rules and the delivery-report bookkeeping.

The real-broker tests are in tests/interop/test_kafka_output.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from protocols.stats import Counters
from shipper.agent.config import ConfigError
from shipper.agent.settings import build_settings
from shipper.outputs.base import ConnectError, EncodedEvent, OutputContext, OutputError
from shipper.outputs.conditions import compile_condition
from shipper.outputs.fmtstr import FieldMissing, FormatError, compile_format, go_float
from shipper.outputs.kafka import (
    _OK,
    _PENDING,
    KafkaOutput,
    Partitioner,
    PartitionSettings,
    _Batch,
    _timestamp_ms,
    fnv1a32,
    hash_partition,
    kafka_version,
)
from shipper.outputs.selector import build_rule, build_selector

EVENT = {
    "@timestamp": "2024-03-05T06:07:08.123Z",
    "@metadata": {"beat": "packetbeat", "type": "_doc", "version": "9.3.0"},
    "type": "http",
    "status": "OK",
    "client": {"ip": "10.0.0.1", "port": 40000},
    "http": {"response": {"status_code": 404}},
    "fields": {"team": "web", "level": "", "ratio": 1e6},
    "tags": ["a", "web-frontend"],
    "flag": True,
    "dotted.key": "flat",
}


# -- format strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("%{[type]}", "http"),
        ("%{[client][ip]}-%{[client.port]}", "10.0.0.1-40000"),
        ("%{[fields.team]:none}", "web"),
        ("%{[fields.missing]:none}", "none"),
        ("%{[fields.level]:empty}", "empty"),  # an empty value takes the default too
        ("%{[fields.ratio]}", "1e+06"),  # Go's shortest %g
        ("%{[flag]}", "true"),
        ("%{[@metadata][beat]}", "packetbeat"),
        ("%{[@timestamp]}", "2024-03-05T06:07:08.123Z"),
        ("%{+yyyy.MM.dd}", "2024.03.05"),
        ("x-%{+yyyy-MM-dd'T'HH\\:mm\\:ss.SSS}", "x-2024-03-05T06:07:08.123"),
        ("%{+HH:mm}", "06"),  # as in libbeat, an unescaped ':' ends the pattern
        ("%{[dotted.key]}", "flat"),  # the whole key first, as mapstr does
        ("100\\%{[type]}", "100%{[type]}"),  # escaped
        ("50% off", "50% off"),
        ("%{[fields.team]:a:b}", None),  # too many modifiers: a compile error
    ],
)
def test_format_strings(fmt: str, want: str | None) -> None:
    if want is None:
        with pytest.raises(FormatError):
            compile_format(fmt)
        return
    assert compile_format(fmt).run(EVENT) == want


@pytest.mark.parametrize("fmt", ["%{[fields.missing]}", "%{[client]}", "%{[tags]}"])
def test_required_fields_must_exist_and_be_scalars(fmt: str) -> None:
    with pytest.raises(FieldMissing):
        compile_format(fmt).run(EVENT)


@pytest.mark.parametrize(
    "bad", ["%{[type]", "%{type}", "%{[]}", "%{}", "%{[a]:x%{[b]}}", "%{[a]:>x}", "%{+QQQ}"]
)
def test_bad_format_strings_are_refused(bad: str) -> None:
    with pytest.raises(FormatError):
        compile_format(bad)


def test_go_float() -> None:
    assert [go_float(v) for v in (1e6, 123456.0, 0.1, 1e-5, 2.5, 1e21, 3.0, -0.0)] == [
        "1e+06",
        "123456",
        "0.1",
        "1e-05",
        "2.5",
        "1e+21",
        "3",
        "-0",
    ]


# -- conditions and selectors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "want"),
    [
        ({"equals": {"type": "http"}}, True),
        ({"equals": {"http": {"response": {"status_code": 404}}}}, True),  # nested YAML
        ({"equals": {"http.response.status_code": "404"}}, False),  # kinds must agree
        ({"equals": {"flag": True}}, True),
        ({"contains": {"tags": "front"}}, True),
        ({"regexp": {"client.ip": "^10\\."}}, True),
        ({"range": {"http.response.status_code.gte": 400, "http.response.status_code.lt": 500}}, True),
        ({"range": {"http.response.status_code": {"lt": 400}}}, False),
        ({"has_fields": ["client.ip", "fields.team"]}, True),
        ({"has_fields": ["nope"]}, False),
        ({"network": {"client.ip": "private"}}, True),
        ({"network": {"client.ip": ["192.168.0.0/16", "10.0.0.0/24"]}}, True),
        ({"network": {"client.ip": "public"}}, False),
        ({"or": [{"equals": {"type": "dns"}}, {"equals": {"status": "OK"}}]}, True),
        ({"and": [{"equals": {"type": "dns"}}, {"equals": {"status": "OK"}}]}, False),
        ({"not": {"equals": {"type": "dns"}}}, True),
    ],
)
def test_conditions(cond: dict[str, Any], want: bool) -> None:
    assert compile_condition(cond).check(EVENT) is want


@pytest.mark.parametrize(
    "bad",
    # (A list in equals is not refused: libbeat flattens it to a.0, a.1 …)
    [{}, {"equals": {"a": 1.5}}, {"bogus": {}}, {"regexp": {"a": "("}}, {"range": {"a.between": 1}}],
)
def test_bad_conditions_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compile_condition(bad)


def test_selector_rules_in_libbeat_order() -> None:
    sel = build_selector(
        "%{[type]}-events",
        [
            build_rule("critical", when={"equals": {"status": "Error"}}),
            build_rule("%{[fields.team]}", mappings={"web": "team-web"}, default="team-other"),
            build_rule("%{[fields.nope]}"),  # never matches: the next rule is tried
        ],
    )
    assert sel.select({**EVENT, "status": "Error"}) == "critical"
    assert sel.select(EVENT) == "team-web"
    assert sel.select({**EVENT, "fields": {"team": "db"}}) == "team-other"
    assert sel.select({"type": "dns"}) == "team-other"  # the mapping rule's default applies
    only_fmt = build_selector("%{[type]}-events", [build_rule("%{[fields.nope]}")])
    assert only_fmt.select({"type": "dns"}) == "dns-events"
    assert only_fmt.select({}) == ""  # nothing: the event is dropped and counted
    assert build_selector("Fixed-Case", []).const == "Fixed-Case"  # case is kept


# -- partitioners -------------------------------------------------------------------------------


def test_fnv1a_and_sarama_hash2partition() -> None:
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968
    # sarama: int32(hash) & 0x7FFFFFFF, modulo the partition count.
    assert hash_partition(0xBF9CF968, 7) == (0xBF9CF968 & 0x7FFFFFFF) % 7


def test_round_robin_groups_and_random_groups() -> None:
    rr = Partitioner("round_robin", PartitionSettings(group_events=3))
    seq = [rr.choose(None, {}, 4) for _ in range(24)]
    runs = [seq[i : i + 3] for i in range(0, 24, 3)]
    assert all(len(set(r)) == 1 for r in runs)
    assert [r[0] for r in runs[1:]] == [(runs[0][0] + k) % 4 for k in range(1, 8)]
    rnd = Partitioner("random", PartitionSettings(group_events=5))
    seq = [rnd.choose(None, {}, 3) for _ in range(50)]
    assert all(len(set(seq[i : i + 5])) == 1 for i in range(0, 50, 5))
    assert all(0 <= p < 3 for p in seq)


def test_hash_partitioner_key_and_fields() -> None:
    h = Partitioner("hash", PartitionSettings())
    assert h.choose(b"10.0.0.1", {}, 6) == hash_partition(fnv1a32(b"10.0.0.1"), 6)
    fields = Partitioner("hash", PartitionSettings(hash=["client.ip", "type"]))
    assert fields.choose(None, EVENT, 6) == hash_partition(fnv1a32(b"10.0.0.1http"), 6)
    strict = Partitioner("hash", PartitionSettings(hash=["nope"], random=False))
    assert strict.choose(None, EVENT, 6) == 0  # libbeat: the partitioner fails -> 0


# -- configuration ------------------------------------------------------------------------------


def kafka_settings(**over: Any) -> Any:
    body = {"hosts": ["127.0.0.1:9092"], "topic": "packetbeat", **over}
    settings, warnings = build_settings({"output": {"kafka": body}})
    return settings.output_config(), warnings


def test_defaults_are_libbeats() -> None:
    cfg, warnings = kafka_settings()
    assert warnings == []
    assert (cfg.compression, cfg.compression_level, cfg.bulk_max_size, cfg.max_retries) == (
        "gzip",
        4,
        2048,
        3,
    )
    assert (cfg.timeout, cfg.broker_timeout, cfg.client_id, cfg.version) == (30.0, 10.0, "beats", "2.1.0")
    assert (cfg.metadata.refresh_frequency, cfg.metadata.retry.max, cfg.metadata.retry.backoff) == (
        600.0,
        3,
        0.25,
    )
    out = KafkaOutput(cfg, OutputContext("t", "0", Counters(), Path(".")))
    conf = out.conf
    assert conf["acks"] == 1 and conf["retries"] == 0 and conf["enable.idempotence"] is False
    assert conf["compression.codec"] == "gzip" and conf["compression.level"] == 4
    assert conf["security.protocol"] == "PLAINTEXT" and conf["client.id"] == "beats"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"topic": ""}, "either 'topic' or 'topics' must be defined"),
        ({"hosts": []}, "no hosts configured"),
        ({"compression": "brotli"}, "compression mode 'brotli' unknown"),
        ({"compression_level": 11}, "compression_level must be between 0 and 9"),
        ({"version": "0.7"}, "unknown/unsupported kafka version '0.7'"),
        ({"username": "u"}, "password must be set when username is configured"),
        ({"max_retries": 0}, "requires value -1 or >= 1"),
        ({"required_acks": 2}, "requires value between -1 and 1"),
        ({"sasl": {"mechanism": "GSSAPI"}}, "not valid SASL mechanism"),
        ({"partition": {"random": {}, "hash": {}}}, "Too many partitioners"),
        ({"partition": {"sticky": {}}}, "unknown kafka partition mode sticky"),
        (
            {"headers": [{"key": "a", "value": "b"}], "version": "0.10"},
            "not supported for kafka versions < 0.11",
        ),
        ({"topic": "%{[type]"}, "missing closing '}'"),
        ({"topics": [{"topic": "x", "when": {"equals": {"a": 1.5}}}]}, "only strings, ints, and booleans"),
        ({"topics": [{"when": {"equals": {"a": "b"}}}]}, "missing topics.0.topic"),
        ({"kerberos": {"service_name": "kafka"}}, "Kerberos (GSSAPI) is not supported"),
        (
            {"ssl": {"enabled": True, "supported_protocols": ["TLSv1.3"]}},
            "cannot restrict TLS versions",
        ),
    ],
)
def test_config_errors_name_the_rule(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        kafka_settings(**over)
    assert message in str(exc.value)
    # "output.kafka...: what is wrong", or a broken range rule "... accessing 'output.kafka...'"
    assert str(exc.value).startswith("output.kafka") or " accessing 'output.kafka." in str(exc.value)


def test_versions_and_compat_warnings() -> None:
    assert kafka_version("2") == (2, 6, 0)
    assert kafka_version("0.10") == (0, 10, 2, 1)
    assert kafka_version("3.6.0") == (3, 6, 0)
    cfg, warnings = kafka_settings(channel_buffer_size=512, version="0.9")
    assert any("channel_buffer_size" in w and "no effect" in w for w in warnings)
    out = KafkaOutput(cfg, OutputContext("t", "0", Counters(), Path(".")))
    assert out.conf["api.version.request"] is False and out.conf["broker.version.fallback"] == "0.9.0.1"


def test_sasl_and_tls_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    from tests.interop.kafka_broker import make_certs

    certs = make_certs(tmp_path)
    ca = certs["ca"]
    cfg, _ = kafka_settings(
        username="alice",
        password="pw",
        sasl={"mechanism": "scram-sha-512"},
        ssl={"certificate_authorities": [str(ca)], "verification_mode": "certificate"},
    )
    conf = KafkaOutput(cfg, OutputContext("t", "0", Counters(), Path("."))).conf
    assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["ssl.ca.pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    assert conf["enable.ssl.certificate.verification"] is True


def test_record_timestamp_is_the_events() -> None:
    e = EncodedEvent.from_event(dict(EVENT, **{"@metadata": {"beat": "x"}}))
    assert _timestamp_ms(e) == 1709618828123
    assert _timestamp_ms({"@timestamp": "nonsense"}) == 0


# -- delivery bookkeeping (fake delivery reports) -------------------------------------------------


class _Err:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._name.lower()


def _outcome(reports: list[str | None], remembered: list[int] | None = None) -> tuple[Any, KafkaOutput]:
    cfg, _ = kafka_settings()
    stats = Counters()
    out = KafkaOutput(cfg, OutputContext("t", "0", stats, Path(".")))
    events = [{"n": i} for i in range(len(reports))]

    async def run() -> Any:
        batch = _Batch(asyncio.get_running_loop(), len(events))
        for i, r in enumerate(reports):
            batch.status[i] = _OK if r is None else 2
            batch.errors[i] = None if r is None else f"{r}: x"
        try:
            return out._outcome(events, batch)
        except OutputError as exc:
            return exc

    return asyncio.run(run()), out


def test_outcomes_follow_the_contract() -> None:
    got, _ = _outcome([None, None, None])
    assert got == 3
    # Dropped for good (libbeat's PermanentErrors) count as done.
    got, out = _outcome([None, "MSG_SIZE_TOO_LARGE", "TOPIC_AUTHORIZATION_FAILED"])
    assert got == 3
    assert out.stats.get("output.kafka.events.dropped_too_large") == 1
    assert out.stats.get("output.kafka.events.dropped_unauthorized") == 1
    # In flight when the connection broke: charged, counted as possibly stored.
    got, out = _outcome([None, "_TRANSPORT", None, "_PURGE_QUEUE"])
    assert isinstance(got, OutputError) and not isinstance(got, ConnectError)
    assert (got.acked, got.unacked) == (1, 1)
    assert len(out._done) == 1  # the third event is remembered, not sent again
    # Nothing left the client (all brokers down): cancelled, no retry charged.
    got, _ = _outcome(["_PURGE_QUEUE", "_PURGE_QUEUE"])
    assert isinstance(got, ConnectError)
    # The broker answered with a retriable error: charged, nothing possibly duplicated.
    got, _ = _outcome(["NOT_LEADER_FOR_PARTITION"])
    assert isinstance(got, OutputError) and not isinstance(got, ConnectError)
    assert (got.acked, got.unacked) == (0, 0)


def test_pending_status_is_distinct() -> None:
    assert _PENDING not in (_OK, 1, 2)
