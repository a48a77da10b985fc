"""``output.redis``: events as JSON pushed onto a Redis list (RPUSH) or published on a channel.

The original Packetbeat → Redis → Logstash layout: Logstash's ``redis`` input reads the
list (``data_type => "list"``, BLPOP) or subscribes to the channel. Options and defaults
follow libbeat's ``output.redis``: ``hosts`` (port 6379), ``key`` (default: ``index``,
itself defaulting to the beat name), ``db`` 0, ``password``, ``datatype`` list|channel,
``timeout`` 5 s, ``worker`` 1, ``loadbalance`` true, ``bulk_max_size`` 2048,
``max_retries`` 3, ``backoff.init``/``backoff.max`` 1 s / 60 s.

A whole batch is one ``RPUSH key v1 … vN`` (atomic: all or nothing), or a pipeline of
``PUBLISH`` commands. Redis has no ACK beyond the reply, so a batch whose reply was lost
may be stored twice when resent (at-least-once, like every other output).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from protocols.common.config import Duration, one_of
from shipper.agent.config import at_least, between, greater_than
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import (
    CodecSettings,
    ConnectError,
    EventCodec,
    JsonCodec,
    Output,
    OutputContext,
    OutputError,
)
from shipper.outputs.hosts import format_host, parse_host
from shipper.outputs.logstash import BackoffSettings

log = logging.getLogger("redis")

DEFAULT_PORT = 6379


def _hosts(_inst: Any, _attr: attrs.Attribute[Any], value: list[str]) -> None:
    if not value:
        raise ValueError("hosts: at least one host is required")
    for h in value:
        parse_host(h, DEFAULT_PORT)


@attrs.frozen
class RedisConfig:
    enabled: bool = True
    hosts: list[str] = attrs.field(factory=list, validator=_hosts)
    index: str = ""
    key: str = ""
    password: str = ""
    db: int = attrs.field(default=0, validator=between(0, 1 << 31))
    datatype: str = attrs.field(default="list", validator=one_of("list", "channel"))
    timeout: Duration = attrs.field(default=Duration(5.0), validator=greater_than(0))
    worker: int = attrs.field(default=1, validator=between(1, 1024))
    loadbalance: bool = True
    #: <= 0: the queue's batches are sent unsplit (libbeat).
    bulk_max_size: int = 2048
    #: -1: retry for ever. Connection failures never count.
    max_retries: int = attrs.field(default=3, validator=at_least(-1))
    backoff: BackoffSettings = BackoffSettings()
    #: Older spelling of ``codec.json.escape_html``.
    escape_html: bool = False
    #: libbeat's codec: ``codec.json.{pretty,escape_html}`` or ``codec.format.string``.
    codec: CodecSettings = CodecSettings()


CONFIG = RedisConfig


class _Conn:
    def __init__(self, output: RedisOutput, host_index: int) -> None:
        self.output = output
        self.host_index = host_index
        self.client: aioredis.Redis | None = None

    def _new_client(self) -> aioredis.Redis:
        cfg = self.output.config
        host, port = self.output.hosts[self.host_index]
        return aioredis.Redis(
            host=host,
            port=port,
            db=cfg.db,
            password=cfg.password or None,
            socket_timeout=cfg.timeout,
            socket_connect_timeout=cfg.timeout,
            retry=Retry(NoBackoff(), 0),
            single_connection_client=True,
        )

    async def ensure(self) -> aioredis.Redis:
        """A connected, authenticated client on the right db (libbeat's redis Connect:
        dial, AUTH, SELECT). Failing here sends nothing: :class:`ConnectError`."""
        if self.client is None:
            if self.output.failover is not None:
                self.host_index = self.output.failover
            client = self._new_client()
            try:
                await client.initialize()  # single_connection_client: dials, AUTH, SELECT
            except (RedisError, OSError) as exc:
                self.output.stats.incr("output.redis.connect_errors")
                try:
                    await client.aclose()
                except (RedisError, OSError):
                    pass
                self.output.moved_on(self.host_index)
                retriable = not isinstance(exc, AuthenticationError | ResponseError)
                raise ConnectError(f"{self.output.url(self.host_index)}: {exc}", retriable) from exc
            self.client = client
        return self.client

    async def reset(self) -> None:
        c, self.client = self.client, None
        if c is not None:
            try:
                await c.aclose()
            except (RedisError, OSError):
                pass


class RedisOutput(Output):
    name = "redis"

    def __init__(self, config: RedisConfig, ctx: OutputContext) -> None:
        self.config = config
        self.ctx = ctx
        self.stats = ctx.stats
        codec = config.codec
        if config.escape_html and not codec.formatted:
            js = codec.json or JsonCodec()
            codec = attrs.evolve(codec, json=attrs.evolve(js, escape_html=True))
        self.codec = EventCodec(codec, ctx.stats)
        self.hosts = [parse_host(h, DEFAULT_PORT) for h in config.hosts]
        self.key = config.key or config.index or ctx.index
        self.batch_size = max(0, config.bulk_max_size)
        self.max_retries = config.max_retries
        self.backoff = Backoff(config.backoff.init, config.backoff.max)
        #: Without loadbalance: the index of the one host in use (moves on after a failure).
        self.failover: int | None = None
        if config.loadbalance:
            targets = list(range(len(self.hosts)))
        else:
            self.failover = random.randrange(len(self.hosts))
            targets = [self.failover]
        self.conns = [_Conn(self, i) for _ in range(config.worker) for i in targets]
        self.concurrency = len(self.conns)
        self._slots: asyncio.Queue[_Conn] | None = None

    def url(self, index: int) -> str:
        host, port = self.hosts[index]
        return f"redis://{format_host(host, port)}/{self.config.db}"

    def describe(self) -> str:
        urls = ", ".join(self.url(i) for i in range(len(self.hosts)))
        return f"redis({urls}, {self.config.datatype} {self.key!r})"

    async def ping(self, index: int) -> str:
        """Connect, authenticate, select the db and check the key's type (``test output``)."""
        conn = _Conn(self, index)
        client = conn._new_client()
        try:
            await client.ping()
            if self.config.datatype == "list":
                kind = await client.type(self.key)
                kind = kind.decode() if isinstance(kind, bytes) else str(kind)
                if kind not in ("none", "list"):
                    raise OutputError(f"key {self.key!r} holds a {kind}, not a list", retriable=False)
            return "OK"
        finally:
            await client.aclose()

    async def publish(self, events: list[dict[str, Any]]) -> int:
        if not events:
            return 0
        if self._slots is None:
            self._slots = asyncio.Queue()
            for c in self.conns:
                self._slots.put_nowait(c)
        conn = await self._slots.get()
        try:
            return await self._send(conn, events)
        finally:
            self._slots.put_nowait(conn)

    def moved_on(self, idx: int) -> None:
        """Without loadbalance, the host after ``idx`` is used once ``idx`` failed."""
        if self.failover is not None and len(self.hosts) > 1 and self.failover == idx:
            self.failover = (idx + 1) % len(self.hosts)

    async def _send(self, conn: _Conn, events: list[dict[str, Any]]) -> int:
        payloads = self.codec.payloads(events)
        if not payloads:
            return len(events)
        client = await conn.ensure()
        try:
            if self.config.datatype == "list":
                await client.rpush(self.key, *payloads)
            else:
                pipe = client.pipeline(transaction=False)
                for p in payloads:
                    pipe.publish(self.key, p)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.stats.incr("output.redis.errors")
            idx = conn.host_index
            await conn.reset()
            self.moved_on(idx)
            retriable = not isinstance(exc, AuthenticationError | ResponseError)
            # An error reply stored nothing (RPUSH is atomic); a lost connection may
            # have stored the batch before the reply was lost: a resend duplicates it.
            unacked = 0 if isinstance(exc, ResponseError) else len(payloads)
            raise OutputError(f"{self.url(idx)}: {exc}", retriable=retriable, unacked=unacked) from exc
        self.stats.incr("output.sent", len(events))
        return len(events)

    async def close(self) -> None:
        for c in self.conns:
            await c.reset()


def create(config: RedisConfig, ctx: OutputContext) -> RedisOutput:
    return RedisOutput(config, ctx)
