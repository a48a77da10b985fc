"""``output.kafka``: events as Kafka records, with libbeat's options, defaults and semantics.

**Client library: confluent-kafka (librdkafka).** Chosen over aiokafka for the delivery
contract (``shipper.outputs.base.Output``, docs/delivery.md): librdkafka's internal
retries can be switched off (``retries: 0``), so every resend of a record is a resend
*this module* decides, sees and counts — aiokafka re-sends failed produce requests by
itself until the batch expires, and a delivered future does not tell whether its batch
was sent twice, so duplicates after a broker restart could not be counted. librdkafka
also reports *why* each record failed in a way that separates "never left the client"
(``_PURGE_QUEUE`` after all brokers went down) from "in flight when the connection
broke" (``_TRANSPORT``, timeouts), and it honours ``compression_level`` (gzip, lz4, zstd),
``version`` (``broker.version.fallback``), ``keep_alive`` and ``bulk_max_size``
(``batch.num.messages``), which aiokafka has no setting for. Every codec (gzip, snappy,
lz4, zstd) and SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512 are built into its wheels. The
producer is thread-based; :class:`_Bridge` hands its delivery reports to the pipeline's
asyncio loop. What librdkafka cannot do is said where it matters: TLS protocol bounds
(``ssl.supported_protocols`` other than TLS 1.2-1.3 is refused rather than ignored) and
the keep-alive period (only on/off).

Routing, as libbeat: ``topic`` (format string) and ``topics`` rules
(:mod:`shipper.outputs.selector`), ``key`` (format string; left out when a field is
missing), ``partition.random`` / ``round_robin`` (``group_events``) / ``hash`` (``hash:
[fields]``, ``random``), each with ``reachable_only``; without ``partition`` the record key
is hashed (FNV-1a, as sarama) and records without a key go to a random partition.

Delivery, per batch: records are produced, then the batch waits for every delivery
report. Delivered records are done; records the broker refuses for good are dropped and
counted as libbeat drops them (``MESSAGE_TOO_LARGE`` and other size errors, invalid
records, topic/cluster authorisation errors: ``output.kafka.events.dropped_*``), and so
are events larger than ``max_message_bytes`` (checked before sending) and events no topic
can be selected for. If the cluster cannot be reached (no metadata, all brokers down
before anything was sent) the batch raises :class:`ConnectError`: cancelled, no retry
charged. Anything else is retried by the pipeline (one retry charged): records that were
in flight when a connection broke count in ``output.unacked`` (they may be stored twice).
Records delivered while an earlier one of the batch waits for a retry are remembered, so
the resend skips them.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import partial
from typing import Any

import attrs
import orjson

from protocols.common.config import Duration
from shipper.agent.config import ConfigError, at_least, between, greater_than
from shipper.agent.settings import SslSettings
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import (
    ConnectError,
    EncodedEvent,
    EventEncodingError,
    JsonCodec,
    Output,
    OutputContext,
    OutputError,
    encode_event,
)
from shipper.outputs.fmtstr import (
    FieldMissing,
    FormatError,
    FormatString,
    compile_format,
    lookup,
    parse_timestamp,
    to_text,
)
from shipper.outputs.hosts import format_host, parse_host
from shipper.outputs.selector import Selector, build_rule, build_selector
from shipper.outputs.tlsconfig import TLSConfigError, client_context

log = logging.getLogger("kafka")

DEFAULT_PORT = 9092

# -- configuration ---------------------------------------------------------------------------

#: libbeat's accepted ``version`` strings: its abbreviations (common/kafka/version.go) ...
_ABBREVIATIONS = {
    "0.8.2": "0.8.2.2", "0.8": "0.8.2.2", "0.9.0": "0.9.0.1", "0.9": "0.9.0.1",
    "0.10.0": "0.10.0.1", "0.10.1": "0.10.1.0", "0.10.2": "0.10.2.1", "0.10": "0.10.2.1",
    "0.11.0": "0.11.0.2", "0.11": "0.11.0.2", "1.0": "1.0.0", "1.1": "1.1.1", "1": "1.1.1",
    "2.0": "2.0.1", "2.1": "2.1.0", "2.2": "2.2.0", "2.3": "2.3.0", "2.4": "2.4.0", "2.5": "2.5.0",
    "2.6": "2.6.0", "2.7": "2.7.0", "2.8": "2.8.0", "2": "2.6.0", "3": "3.1.1", "3.2": "3.2.0",
    "3.3": "3.3.1", "3.4": "3.4.0", "3.5": "3.5.1", "3.6": "3.6.0",
}  # fmt: skip
#: ... and the full versions sarama knows (SupportedVersions).
_SUPPORTED = {
    "0.8.2.0", "0.8.2.1", "0.8.2.2", "0.9.0.0", "0.9.0.1", "0.10.0.0", "0.10.0.1", "0.10.1.0",
    "0.10.1.1", "0.10.2.0", "0.10.2.1", "0.10.2.2", "0.11.0.0", "0.11.0.1", "0.11.0.2", "1.0.0",
    "1.0.1", "1.0.2", "1.1.0", "1.1.1", "2.0.0", "2.0.1", "2.1.0", "2.1.1", "2.2.0", "2.2.1", "2.2.2",
    "2.3.0", "2.3.1", "2.4.0", "2.4.1", "2.5.0", "2.5.1", "2.6.0", "2.6.1", "2.6.2", "2.7.0",
    "2.7.1", "2.8.0", "2.8.1", "2.8.2", "3.0.0", "3.0.1", "3.0.2", "3.1.0", "3.1.1", "3.1.2",
    "3.2.0", "3.2.1", "3.2.2", "3.2.3", "3.3.0", "3.3.1", "3.3.2", "3.4.0", "3.4.1", "3.5.0",
    "3.5.1", "3.6.0",
}  # fmt: skip

COMPRESSIONS = {"none": "none", "no": "none", "off": "none", "gzip": "gzip", "lz4": "lz4"}
COMPRESSIONS |= {"snappy": "snappy", "zstd": "zstd"}


def kafka_version(text: str) -> tuple[int, ...]:
    """libbeat's ``version`` → its full form as a tuple; ValueError for unknown ones."""
    full = _ABBREVIATIONS.get(text, text)
    if full not in _SUPPORTED:
        raise ValueError(f"unknown/unsupported kafka version '{text}'")
    return tuple(int(p) for p in full.split("."))


def _version(_inst: Any, _attr: Any, value: str) -> None:
    kafka_version(value)


def _hosts(_inst: Any, _attr: Any, value: list[str]) -> None:
    if not value:
        raise ValueError("no hosts configured")
    for h in value:
        parse_host(h, DEFAULT_PORT)


def _format(_inst: Any, _attr: Any, value: str) -> None:
    try:
        compile_format(value)
    except FormatError as exc:
        raise ValueError(str(exc)) from None


def _compression(_inst: Any, _attr: Any, value: str) -> None:
    if value.lower() not in COMPRESSIONS:
        raise ValueError(f"compression mode '{value}' unknown")


def _retries(_inst: Any, _attr: Any, value: int) -> None:
    # libbeat: validate:"min=-1,nonzero".
    if value < -1 or value == 0:
        raise ValueError(f"requires value -1 or >= 1 (got {value})")


def _mechanism(_inst: Any, _attr: Any, value: str) -> None:
    if value.upper() not in ("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise ValueError(
            f"not valid SASL mechanism '{value}', only supported with PLAIN|SCRAM-SHA-512|SCRAM-SHA-256"
        )


def _no_kerberos(_inst: Any, _attr: Any, value: Any) -> None:
    if value and (not isinstance(value, dict) or value.get("enabled", True) is not False):
        raise ValueError("Kerberos (GSSAPI) is not supported by wirebeat; use sasl.mechanism PLAIN or SCRAM")


@attrs.frozen
class BackoffSettings:
    init: Duration = attrs.field(default=Duration(1.0), validator=greater_than(0))
    max: Duration = attrs.field(default=Duration(60.0), validator=greater_than(0))


@attrs.frozen
class MetadataRetry:
    max: int = attrs.field(default=3, validator=between(0, 1000))
    backoff: Duration = attrs.field(default=Duration(0.25), validator=at_least(0))


@attrs.frozen
class MetadataSettings:
    retry: MetadataRetry = MetadataRetry()
    refresh_frequency: Duration = attrs.field(default=Duration(600.0), validator=at_least(0))
    full: bool = False


@attrs.frozen
class PartitionSettings:
    """One of ``partition.random``, ``partition.round_robin``, ``partition.hash``."""

    reachable_only: bool = False
    group_events: int = attrs.field(
        default=1, validator=between(1, 1 << 31), metadata={"only_under": ("random", "round_robin")}
    )
    #: hash only: the fields to hash (empty: the record key).
    hash: list[str] = attrs.field(factory=list, metadata={"only_under": ("hash",)})
    #: hash only: a random partition when a field is missing (else partition 0, as libbeat).
    random: bool = attrs.field(default=True, metadata={"only_under": ("hash",)})


@attrs.frozen
class Header:
    key: str = ""
    value: str = ""


@attrs.frozen
class SaslSettings:
    mechanism: str = attrs.field(default="", validator=_mechanism)


@attrs.frozen
class FormatCodec:
    string: str = attrs.field(default="", validator=_format)


@attrs.frozen
class KafkaCodecSettings:
    json: JsonCodec = JsonCodec()
    format: FormatCodec | None = None


@attrs.frozen
class TopicRule:
    topic: str = attrs.field(default="", validator=_format)
    default: str = ""
    mappings: dict[str, Any] = attrs.field(factory=dict)
    when: dict[str, Any] | None = None


@attrs.frozen
class KafkaConfig:
    enabled: bool = True
    hosts: list[str] = attrs.field(factory=list, validator=_hosts)
    topic: str = attrs.field(default="", validator=_format)
    topics: list[TopicRule] = attrs.field(factory=list)
    key: str = attrs.field(default="", validator=_format)
    partition: dict[str, PartitionSettings] = attrs.field(factory=dict)
    #: None: the client default, 1 (the leader wrote it), as sarama's WaitForLocal.
    required_acks: int | None = attrs.field(default=None, validator=attrs.validators.optional(between(-1, 1)))
    compression: str = attrs.field(default="gzip", validator=_compression)
    #: gzip 0-9 (libbeat's rule); lz4 0-12, zstd 1-12; -1: the codec's default.
    compression_level: int = attrs.field(default=4, validator=between(-1, 12))
    #: None: 1000000 bytes (sarama's default). Larger events are dropped and counted.
    max_message_bytes: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(between(1, 1 << 30))
    )
    bulk_max_size: int = attrs.field(default=2048, validator=between(0, 1_000_000))
    bulk_flush_frequency: Duration = attrs.field(default=Duration(0.0), validator=between(0, 900))
    timeout: Duration = attrs.field(default=Duration(30.0), validator=between(1, 3600))
    broker_timeout: Duration = attrs.field(default=Duration(10.0), validator=between(1, 3600))
    keep_alive: Duration = attrs.field(default=Duration(0.0), validator=at_least(0))
    client_id: str = "beats"
    version: str = attrs.field(default="2.1.0", validator=_version)
    metadata: MetadataSettings = MetadataSettings()
    max_retries: int = attrs.field(default=3, validator=_retries)
    backoff: BackoffSettings = BackoffSettings()
    headers: list[Header] = attrs.field(factory=list)
    username: str = ""
    password: str = ""
    sasl: SaslSettings = SaslSettings()
    ssl: SslSettings | None = None
    codec: KafkaCodecSettings = KafkaCodecSettings()
    kerberos: dict[str, Any] | None = attrs.field(default=None, validator=_no_kerberos)
    channel_buffer_size: int = attrs.field(default=256, validator=at_least(1), metadata={"ignored": True})
    enable_krb5_fast: bool = attrs.field(default=False, metadata={"ignored": True})

    def __attrs_post_init__(self) -> None:
        if not self.topic and not self.topics:
            raise ValueError("either 'topic' or 'topics' must be defined")
        if self.username and not self.password:
            raise ValueError("password must be set when username is configured")
        if self.compression.lower() == "gzip" and not 0 <= self.compression_level <= 9:
            raise ValueError("compression_level must be between 0 and 9")
        if self.headers and kafka_version(self.version) < (0, 11):
            raise ValueError("including headers is not supported for kafka versions < 0.11")
        if len(self.partition) > 1:
            raise ValueError("Too many partitioners")
        for name in self.partition:
            if name not in ("random", "round_robin", "hash"):
                raise ValueError(f"unknown kafka partition mode {name}")
        for i, rule in enumerate(self.topics):
            if not rule.topic:
                raise ValueError(f"missing topics.{i}.topic")
            try:
                build_rule(rule.topic, rule.default, rule.mappings, rule.when)
            except ValueError as exc:
                raise ValueError(f"topics.{i}: {exc}") from None
        if self.ssl is not None and self.ssl.active:
            wanted = set(self.ssl.supported_protocols)
            if not {"TLSv1.2", "TLSv1.3"} <= wanted:
                raise ValueError(
                    "ssl.supported_protocols: the Kafka client cannot restrict TLS versions; "
                    "only lists that include TLSv1.2 and TLSv1.3 are accepted"
                )


CONFIG = KafkaConfig

# -- partitioners (libbeat's outputs/kafka/partition.go) ---------------------------------------


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_partition(h: int, n: int) -> int:
    """sarama's ``hash2Partition``: the hash as int32, sign bit cleared, modulo ``n``."""
    return (h & 0x7FFFFFFF) % n


def _hash_value(value: Any) -> bytes | None:
    """The bytes a field contributes to the hash (libbeat: strings as-is, integers as
    little-endian 64-bit, floats by their text); None for values that cannot be hashed."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    if isinstance(value, float | bytes):
        text = to_text(value)
        return text.encode() if text is not None else None
    return None


class Partitioner:
    """One per topic (sarama makes one per topic too): ``choose(key, event, n)``."""

    def __init__(self, mode: str, cfg: PartitionSettings) -> None:
        self.mode = mode
        self.cfg = cfg
        self.reachable_only = cfg.reachable_only
        self._count = cfg.group_events
        self._partition = random.getrandbits(31) if mode == "round_robin" else 0

    def choose(self, key: bytes | None, event: Mapping[str, Any], n: int) -> int:
        mode = self.mode
        if mode == "random":
            if self._count >= self.cfg.group_events:
                self._count = 0
                self._partition = random.randrange(n)
            self._count += 1
            return self._partition % n
        if mode == "round_robin":
            if self._count >= self.cfg.group_events:
                self._count = 0
                self._partition += 1
                if self._partition >= n:
                    self._partition = 0
            self._count += 1
            return self._partition % n
        if self.cfg.hash:
            data = bytearray()
            for field in self.cfg.hash:
                chunk = _hash_value(lookup(event, field))
                if chunk is None:
                    # libbeat: random hash, or (random: false) the partitioner fails and
                    # sarama's wrapper answers partition 0.
                    return random.randrange(n) if self.cfg.random else 0
                data += chunk
            return hash_partition(fnv1a32(bytes(data)), n)
        if key is None:
            return random.randrange(n)
        return hash_partition(fnv1a32(key), n)


# -- librdkafka bridge --------------------------------------------------------------------------

# Error names of librdkafka's delivery reports, sorted by what they mean for the event.
#: Refused for good: dropped and counted (libbeat's msgRef.fail).
_TOO_LARGE = {"MSG_SIZE_TOO_LARGE", "INVALID_MSG_SIZE", "RECORD_LIST_TOO_LARGE"}
_INVALID = {"INVALID_MSG", "INVALID_RECORD", "CORRUPT_MESSAGE", "INVALID_TIMESTAMP"}
_UNAUTHORIZED = {"TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED"}
#: Never left the client (purged after all brokers went down).
_NOT_SENT = {"_PURGE_QUEUE"}
#: The request was (possibly) written and no answer came: the broker may have stored it.
_MAYBE_STORED = {
    "_TRANSPORT", "_MSG_TIMED_OUT", "_TIMED_OUT", "REQUEST_TIMED_OUT", "_PURGE_INFLIGHT",
    "NETWORK_EXCEPTION", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "_TIMED_OUT_QUEUE",
}  # fmt: skip

_OK, _DROP, _FAIL, _PENDING = 0, 1, 2, 3


class _Batch:
    """Delivery state of one ``publish`` call. Reports arrive on the poller thread while
    the loop thread is still producing: ``reported`` is counted under ``lock`` and the
    batch is complete once it is ``sealed`` with ``expected`` records and all reported."""

    __slots__ = ("done", "errors", "expected", "lock", "loop", "reported", "sealed", "status")

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int) -> None:
        self.loop = loop
        self.status = [_PENDING] * n
        self.errors: list[str | None] = [None] * n
        self.lock = threading.Lock()
        self.reported = 0
        self.expected = 0
        self.sealed = False
        self.done: asyncio.Future[None] = loop.create_future()

    def seal(self, produced: int) -> bool:
        """All records are handed to the client; True when every report is in already."""
        with self.lock:
            self.expected = produced
            self.sealed = True
            return self.reported == produced


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _LibLogger:
    """librdkafka's log lines into the ``kafka`` logger: connection chatter at debug level
    (the pipeline says once what it cannot reach), configuration warnings as warnings."""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        text = fmt % args if args else fmt
        if "CONFWARN" in text:
            log.warning("librdkafka: %s", text)
        else:
            log.debug("librdkafka: %s", text)


class _Bridge:
    """A confluent-kafka producer, its poller thread and the cluster metadata cache."""

    def __init__(self, conf: dict[str, Any]) -> None:
        import confluent_kafka

        self.ck = confluent_kafka
        self.down = False
        self.last_error = ""
        conf = dict(conf, error_cb=self._on_error, logger=_LibLogger())
        try:
            self.producer = confluent_kafka.Producer(conf)
        except confluent_kafka.KafkaException as exc:
            raise ConfigError("output.kafka", f"the Kafka client refused the settings: {exc}") from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    def _on_error(self, err: Any) -> None:
        name = err.name()
        self.last_error = err.str()
        if name == "_ALL_BROKERS_DOWN":
            self.down = True
            # What still waits in the client's queue was never sent: fail it now
            # (``_PURGE_QUEUE``), so the batch is cancelled instead of timing out.
            try:
                self.producer.purge(in_queue=True, in_flight=False, blocking=False)
            except Exception as exc:  # pragma: no cover - purge on a closing producer
                log.debug("purge failed: %s", exc)
        elif name in ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "_SSL"):
            self.down = True
        log.debug("kafka client error: %s", self.last_error)

    def list_topics(self, topic: str | None, timeout: float) -> Any:
        return self.producer.list_topics(topic, timeout=timeout)

    def close(self, timeout: float) -> int:
        """Flush what is queued (up to ``timeout``), stop the poller; records left."""
        self._stop.set()
        self._thread.join(5)
        left: int = self.producer.flush(timeout)
        if left:
            self.producer.purge(in_queue=True, in_flight=True, blocking=False)
            self.producer.poll(0)
        return left


class _TopicInfo:
    __slots__ = ("all", "at", "error", "writable")

    def __init__(self, all_: list[int], writable: list[int], error: str, at: float) -> None:
        self.all = all_
        self.writable = writable
        self.error = error
        self.at = at


# -- the output ----------------------------------------------------------------------------------


class KafkaOutput(Output):
    name = "kafka"

    def __init__(self, config: KafkaConfig, ctx: OutputContext) -> None:
        self.config = config
        self.ctx = ctx
        self.stats = ctx.stats
        self.hosts = [parse_host(h, DEFAULT_PORT) for h in config.hosts]
        self.batch_size = config.bulk_max_size
        self.max_retries = config.max_retries
        self.backoff = Backoff(config.backoff.init, config.backoff.max)
        #: Two batches in flight: one is produced while the other waits for its acks.
        self.concurrency = 2
        self.version = kafka_version(config.version)
        self.selector: Selector = build_selector(
            config.topic,
            [build_rule(r.topic, r.default, r.mappings, r.when) for r in config.topics],
        )
        self.key: FormatString | None = compile_format(config.key) if config.key else None
        self.value_format: FormatString | None = None
        if config.codec.format is not None and config.codec.format.string:
            self.value_format = compile_format(config.codec.format.string)
        self.headers = [(h.key, h.value.encode()) for h in config.headers if h.key]
        self.max_message_bytes = config.max_message_bytes or 1_000_000
        if config.partition:
            ((mode, pcfg),) = config.partition.items()
        else:
            mode, pcfg = "hash", PartitionSettings()
        self.partition_mode, self.partition_cfg = mode, pcfg
        self._partitioners: dict[str, Partitioner] = {}
        self._topics: dict[str, _TopicInfo] = {}
        #: Whether events must be decoded (format strings, conditions, field hashing).
        self._needs_fields = (
            self.selector.const is None
            or self.key is not None
            or self.value_format is not None
            or bool(pcfg.hash)
        )
        try:
            self.ssl_context = client_context(config.ssl)  # checks files, passphrase, ciphers
        except TLSConfigError as exc:
            raise ConfigError("output.kafka", str(exc)) from None
        self.conf = self._client_conf()
        self._bridge: _Bridge | None = None
        self._done: OrderedDict[int, Any] = OrderedDict()
        self._done_cap = max(4 * max(self.batch_size, 2048) * self.concurrency, 1024)

    # -- client settings --------------------------------------------------------------------

    def _client_conf(self) -> dict[str, Any]:
        cfg = self.config
        ms = lambda s: max(0, round(s * 1000))  # noqa: E731
        codec = COMPRESSIONS[cfg.compression.lower()]
        conf: dict[str, Any] = {
            "bootstrap.servers": ",".join(format_host(h, p) for h, p in self.hosts),
            "client.id": cfg.client_id or "beats",
            # Every resend is the pipeline's, seen and counted (module docstring).
            "enable.idempotence": False,
            "retries": 0,
            "acks": cfg.required_acks if cfg.required_acks is not None else 1,
            "compression.codec": codec,
            "batch.num.messages": max(1, cfg.bulk_max_size or 10_000),
            "linger.ms": ms(cfg.bulk_flush_frequency),
            "message.max.bytes": max(1_000_000, self.max_message_bytes + 4096),
            "request.timeout.ms": ms(cfg.broker_timeout),
            "message.timeout.ms": ms(cfg.timeout),
            "socket.timeout.ms": ms(cfg.timeout),
            "socket.connection.setup.timeout.ms": ms(cfg.timeout),
            "socket.keepalive.enable": cfg.keep_alive > 0,
            "topic.metadata.refresh.interval.ms": ms(cfg.metadata.refresh_frequency) or -1,
            "topic.metadata.refresh.sparse": not cfg.metadata.full,
            "retry.backoff.ms": max(1, ms(cfg.metadata.retry.backoff)),
            "log.connection.close": False,
        }
        if codec != "none" and codec != "snappy":
            level = cfg.compression_level
            if codec == "zstd" and level == 0:
                level = -1
            conf["compression.level"] = level
        if self.version < (0, 10):
            # Brokers older than 0.10 cannot tell their API versions: say which to use.
            # From 0.10 on the versions are negotiated (ApiVersions), whatever ``version`` says.
            conf["api.version.request"] = False
            conf["broker.version.fallback"] = ".".join(map(str, self.version))
        tls = self.ssl_context is not None
        if cfg.username:
            conf["security.protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
            conf["sasl.mechanism"] = (cfg.sasl.mechanism or "PLAIN").upper()
            conf["sasl.username"] = cfg.username
            conf["sasl.password"] = cfg.password
        else:
            conf["security.protocol"] = "SSL" if tls else "PLAINTEXT"
        if tls and cfg.ssl is not None:
            conf.update(_ssl_conf(cfg.ssl))
        return conf

    # -- reporting ---------------------------------------------------------------------------

    def url(self, index: int) -> str:
        host, port = self.hosts[index]
        return format_host(host, port)

    def describe(self) -> str:
        return f"kafka({','.join(self.url(i) for i in range(len(self.hosts)))})"

    def bridge(self) -> _Bridge:
        if self._bridge is None:
            self._bridge = _Bridge(self.conf)
        return self._bridge

    # -- metadata ---------------------------------------------------------------------------

    async def _metadata(self, topic: str | None, timeout: float) -> Any:
        """Cluster metadata (for ``topic`` or all): ConnectError when no broker answers."""
        bridge = self.bridge()
        loop = asyncio.get_running_loop()
        try:
            md = await loop.run_in_executor(None, bridge.list_topics, topic, timeout)
        except bridge.ck.KafkaException as exc:
            err = exc.args[0] if exc.args else None
            text = err.str() if err is not None and hasattr(err, "str") else str(exc)
            if bridge.last_error and bridge.last_error not in text:
                text = f"{text} ({bridge.last_error})"
            self.stats.incr("output.kafka.connect_errors")
            auth = "AUTHENTICATION" in (err.name() if err is not None and hasattr(err, "name") else "")
            raise ConnectError(f"{self.describe()}: {text}", retriable=not auth) from None
        bridge.down = False
        return md

    async def _topic(self, topic: str) -> _TopicInfo:
        """Partitions of ``topic`` (cached for ``metadata.refresh_frequency``); retried
        ``metadata.retry.max`` times while the broker says it has no leader yet (a topic
        being created)."""
        info = self._topics.get(topic)
        now = time.monotonic()
        refresh = self.config.metadata.refresh_frequency or float("inf")
        if info is not None and not info.error and now - info.at < refresh:
            return info
        retry = self.config.metadata.retry
        wait = min(self.config.timeout, 10.0)
        for attempt in range(retry.max + 1):
            md = await self._metadata(topic, wait)
            tmd = md.topics.get(topic)
            error = ""
            parts: list[int] = []
            writable: list[int] = []
            if tmd is None:
                error = "UNKNOWN_TOPIC_OR_PART"
            else:
                if tmd.error is not None:
                    error = tmd.error.name()
                for pid, pmd in sorted(tmd.partitions.items()):
                    parts.append(pid)
                    if pmd.leader >= 0 and pmd.error is None:
                        writable.append(pid)
            if parts and not error:
                info = _TopicInfo(parts, writable, "", time.monotonic())
                self._topics[topic] = info
                return info
            if attempt < retry.max:
                await asyncio.sleep(retry.backoff)
        info = _TopicInfo([], [], error or "no partitions", time.monotonic())
        self._topics[topic] = info
        return info

    # -- building records ---------------------------------------------------------------------

    def _drop(self, reason: str, text: str) -> None:
        self.stats.incr(f"output.kafka.events.dropped_{reason}")
        log.error("Kafka: dropping event (%s): %s", reason, text)

    def _record(self, event: Any, fields: Mapping[str, Any]) -> tuple[str, bytes, bytes | None, int] | str:
        """(topic, value, key, timestamp ms) or the reason the event is dropped."""
        topic = self.selector.select(fields)
        if not topic:
            self._drop("no_topic", "no topic could be selected")
            return "no_topic"
        if self.value_format is not None:
            try:
                value = self.value_format.run(fields).encode()
            except FieldMissing as exc:
                self._drop("unencodable", f"codec.format: field {exc.args[0]!r} is missing")
                return "unencodable"
        else:
            try:
                json = self.config.codec.json
                value = encode_event(event, json.pretty, json.escape_html)
            except EventEncodingError as exc:
                self._drop("unencodable", str(exc))
                return "unencodable"
        key = None
        if self.key is not None:
            try:
                key = self.key.run(fields).encode()
            except FieldMissing:
                key = None
        size = len(value) + (len(key) if key else 0) + sum(len(k) + len(v) for k, v in self.headers)
        if size > self.max_message_bytes:
            self._drop(
                "too_large",
                f"topic={topic}: message of {size} bytes exceeds max_message_bytes {self.max_message_bytes}",
            )
            return "too_large"
        return topic, value, key, _timestamp_ms(event) if self.version >= (0, 10) else 0

    def _partition(self, topic: str, info: _TopicInfo, key: bytes | None, event: Mapping[str, Any]) -> int:
        p = self._partitioners.get(topic)
        if p is None:
            p = self._partitioners[topic] = Partitioner(self.partition_mode, self.partition_cfg)
        choices = info.writable if p.reachable_only and info.writable else info.all
        return choices[p.choose(key, event, len(choices))]

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, events: list[Any]) -> int:
        n = len(events)
        if not n:
            return 0
        loop = asyncio.get_running_loop()
        bridge = self.bridge()
        if bridge.down:
            # All brokers were down: ask for metadata before sending anything.
            await self._metadata(None, min(self.config.timeout, 5.0))
        batch = _Batch(loop, n)
        records: list[tuple[int, str, bytes, bytes | None, int]] = []
        #: Decoded events, when a format string, condition or field hash needs them.
        fields_of: dict[int, Mapping[str, Any]] = {}
        for i, e in enumerate(events):
            if self._done.get(id(e)) is e:
                batch.status[i] = _OK
                continue
            if self._needs_fields:
                fields_of[i] = _fields(e)
            rec = self._record(e, fields_of.get(i, e))
            if isinstance(rec, str):
                batch.status[i] = _DROP
                continue
            records.append((i, *rec))
        infos: dict[str, _TopicInfo] = {}
        for t in {r[1] for r in records}:
            infos[t] = await self._topic(t)  # ConnectError: nothing was sent yet
        produce = bridge.producer.produce
        headers: Any = self.headers or None
        sent = 0
        for i, topic, value, key, ts in records:
            info = infos[topic]
            if not info.all:
                batch.status[i] = _FAIL
                batch.errors[i] = f"topic {topic}: {info.error}"
                continue
            part = self._partition(topic, info, key, fields_of[i] if fields_of else events[i])
            cb = partial(_delivered, batch, i)
            while True:
                try:
                    produce(topic, value, key, partition=part, on_delivery=cb, timestamp=ts, headers=headers)
                    break
                except BufferError:
                    await asyncio.sleep(0.01)  # the client's queue is full: let it drain
                except bridge.ck.KafkaException as exc:
                    sent -= 1  # refused by the client: no report will come
                    err = exc.args[0]
                    name = err.name() if hasattr(err, "name") else "UNKNOWN"
                    if name in _TOO_LARGE:
                        self._drop("too_large", f"topic={topic}: {err.str()}")
                        batch.status[i] = _DROP
                    else:
                        batch.status[i] = _FAIL
                        batch.errors[i] = f"{name}: {err.str() if hasattr(err, 'str') else err}"
                    break
            sent += 1
            if sent % 512 == 0:
                await asyncio.sleep(0)  # let the other batch's reports in
        if not batch.seal(sent):
            await batch.done
        return self._outcome(events, batch)

    def _outcome(self, events: list[Any], batch: _Batch) -> int:
        n = len(events)
        maybe_stored = 0
        not_sent = 0
        failures = 0
        first_error = ""
        for i in range(n):
            st = batch.status[i]
            if st != _FAIL:
                continue
            failures += 1
            err = batch.errors[i] or ""
            name = err.partition(":")[0]
            if name in _TOO_LARGE or name in _INVALID or name in _UNAUTHORIZED:
                reason = "too_large" if name in _TOO_LARGE else "invalid"
                if name in _UNAUTHORIZED:
                    reason = "unauthorized"
                self._drop(reason, err)
                batch.status[i] = _DROP
                failures -= 1
                continue
            if name in _NOT_SENT:
                not_sent += 1
            elif name in _MAYBE_STORED:
                maybe_stored += 1
            if not first_error:
                first_error = err
        delivered = sum(1 for s in batch.status if s == _OK)
        self.stats.incr("output.sent", delivered)
        if not failures:
            for e in events:
                self._done.pop(id(e), None)
            return n
        # Leaders may have moved or a topic may be new: read the metadata again next time.
        self._topics.clear()
        acked = 0
        while acked < n and batch.status[acked] in (_OK, _DROP):
            acked += 1
        for e in events[:acked]:
            self._done.pop(id(e), None)
        unacked = 0
        for i in range(acked, n):
            if batch.status[i] in (_OK, _DROP):
                self._remember(events[i])
            elif (batch.errors[i] or "").partition(":")[0] in _MAYBE_STORED:
                unacked += 1
        self.stats.incr("output.kafka.errors", failures)
        if not_sent == failures and acked == 0 and delivered == 0:
            bridge = self._bridge
            why = bridge.last_error if bridge is not None and bridge.last_error else first_error
            raise ConnectError(f"{self.describe()}: all brokers are down ({why})")
        raise OutputError(
            f"Kafka publish failed for {failures} of {n} events: {first_error}",
            retriable=True,
            acked=acked,
            unacked=unacked,
        )

    def _remember(self, event: Any) -> None:
        self._done[id(event)] = event
        self._done.move_to_end(id(event))
        while len(self._done) > self._done_cap:
            self._done.popitem(last=False)

    async def connect(self) -> None:
        await self._metadata(None, min(self.config.timeout, 5.0))

    async def close(self) -> None:
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            loop = asyncio.get_running_loop()
            left = await loop.run_in_executor(None, bridge.close, 5.0)
            if left:
                log.warning("%d Kafka records were still queued at shutdown", left)

    # -- ``wirebeat test output`` ---------------------------------------------------------------

    async def check_cluster(self, timeout: float) -> Any:
        """All-topic metadata (brokers, topics); ConnectError when the cluster is unreachable."""
        return await self._metadata(None, timeout)

    def test_topics(self) -> list[str]:
        """The topics a ``test output`` can name without an event: constant selectors only."""
        return [self.selector.const] if self.selector.const else []


def _delivered(batch: _Batch, i: int, err: Any, _msg: Any) -> None:
    """librdkafka's delivery report (poller thread)."""
    if err is None:
        batch.status[i] = _OK
    else:
        batch.status[i] = _FAIL
        batch.errors[i] = f"{err.name()}: {err.str()}"
    with batch.lock:
        batch.reported += 1
        complete = batch.sealed and batch.reported == batch.expected
    if complete:
        batch.loop.call_soon_threadsafe(_resolve, batch.done)


def _fields(event: Any) -> Mapping[str, Any]:
    """The event as a dict, for format strings and conditions (not cached on the event:
    the queue keeps only the encoded form)."""
    if isinstance(event, EncodedEvent):
        d: dict[str, Any] = orjson.loads(event.data)
        if event.meta:
            d["@metadata"] = event.meta
        return d
    return event if isinstance(event, Mapping) else {}


def _timestamp_ms(event: Any) -> int:
    """The record timestamp: the event's ``@timestamp`` (libbeat, Kafka >= 0.10); 0 lets
    the client use the current time."""
    ts: Any = None
    if isinstance(event, EncodedEvent):
        data = event.data
        if data.startswith(b'{"@timestamp":"'):
            end = data.find(b'"', 15)
            ts = data[15:end].decode() if end > 0 else None
    elif isinstance(event, Mapping):
        ts = event.get("@timestamp")
    if not isinstance(ts, str):
        return 0
    dt = parse_timestamp(ts)
    if dt is None:
        return 0
    return int((dt - _EPOCH) / datetime.timedelta(milliseconds=1))


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _read_pem(value: str) -> str:
    if value.lstrip().startswith("-----BEGIN"):
        return value
    with open(value, encoding="ascii") as fh:
        return fh.read()


def _ssl_conf(cfg: SslSettings) -> dict[str, Any]:
    """``ssl.*`` → librdkafka properties (PEM passed inline; files read here)."""
    out: dict[str, Any] = {}
    try:
        if cfg.certificate_authorities:
            out["ssl.ca.pem"] = "\n".join(_read_pem(ca) for ca in cfg.certificate_authorities)
        else:
            out["ssl.ca.location"] = "probe"
        if cfg.certificate:
            out["ssl.certificate.pem"] = _read_pem(cfg.certificate)
            out["ssl.key.pem"] = _read_pem(cfg.key)
            if cfg.key_passphrase:
                out["ssl.key.password"] = cfg.key_passphrase
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("output.kafka.ssl", f"cannot read {getattr(exc, 'filename', '')}: {exc}") from None
    if cfg.verification_mode == "none":
        out["enable.ssl.certificate.verification"] = False
        out["ssl.endpoint.identification.algorithm"] = "none"
    else:
        out["enable.ssl.certificate.verification"] = True
        out["ssl.endpoint.identification.algorithm"] = (
            "https" if cfg.verification_mode in ("full", "strict") else "none"
        )
    if cfg.cipher_suites:
        out["ssl.cipher.suites"] = ":".join(cfg.cipher_suites)
    return out


def create(config: KafkaConfig, ctx: OutputContext) -> KafkaOutput:
    return KafkaOutput(config, ctx)
