"""``output.logstash``: the Beats protocol (Lumberjack v2) with libbeat's options and defaults.

Layout, as in libbeat: ``worker`` connections per host (every host with
``loadbalance: true``; one host at a time, switching on failure, without), each with up
to ``pipelining`` windows in flight. The pipeline runs ``concurrency`` publish calls at
once; each borrows one in-flight slot of one connection.

A batch is sent as windows of ``bulk_max_size`` events (or the slow-start window). When a
window fails, the acknowledged prefix counts and the rest goes back to the front of the
queue (lumberjack.md §2 "Behaviour on ACKs"): only the unacknowledged tail is resent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import Any

import attrs

from protocols.common.config import Duration
from shipper.agent.config import ConfigError, at_least, between, greater_than
from shipper.agent.settings import SslSettings
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import (
    ConnectError,
    EventEncodingError,
    Output,
    OutputContext,
    OutputError,
    encode_event,
)
from shipper.outputs.hosts import format_host, parse_host
from shipper.outputs.lumberjack.client import LumberjackClient, LumberjackError
from shipper.outputs.tlsconfig import TLSConfigError, client_context

log = logging.getLogger("logstash")

DEFAULT_PORT = 5044
SLOW_START_WINDOW = 10


def _hosts(_inst: Any, _attr: attrs.Attribute[Any], value: list[str]) -> None:
    if not value:
        raise ValueError("hosts: at least one host is required")
    for h in value:
        parse_host(h, DEFAULT_PORT)


def _no_proxy(_inst: Any, _attr: attrs.Attribute[Any], value: str) -> None:
    if value:
        raise ValueError("proxy_url: SOCKS5 proxies are not supported by wirebeat")


@attrs.frozen
class BackoffSettings:
    init: Duration = attrs.field(default=Duration(1.0), validator=greater_than(0))
    max: Duration = attrs.field(default=Duration(60.0), validator=greater_than(0))


@attrs.frozen
class LogstashConfig:
    enabled: bool = True
    hosts: list[str] = attrs.field(factory=list, validator=_hosts)
    loadbalance: bool = False
    #: Connections per host; libbeat has no upper bound, wirebeat keeps it sane.
    worker: int = attrs.field(default=1, validator=between(1, 1024))
    pipelining: int = attrs.field(default=2, validator=between(0, 1024))
    #: <= 0: the queue's batches are sent unsplit (libbeat).
    bulk_max_size: int = 2048
    slow_start: bool = False
    compression_level: int = attrs.field(default=3, validator=between(0, 9))
    timeout: Duration = attrs.field(default=Duration(30.0), validator=greater_than(0))
    ttl: Duration = attrs.field(default=Duration(0.0), validator=at_least(0))
    #: -1: retry for ever (libbeat validate:"min=-1"). Connection failures never count.
    max_retries: int = attrs.field(default=3, validator=at_least(-1))
    backoff: BackoffSettings = BackoffSettings()
    escape_html: bool = False
    index: str = ""
    ssl: SslSettings | None = None
    #: libbeat's SOCKS5 proxy: refused rather than ignored, so traffic never bypasses it.
    proxy_url: str = attrs.field(default="", validator=_no_proxy)
    proxy_use_local_resolver: bool = attrs.field(default=False, metadata={"ignored": True})


CONFIG = LogstashConfig


class WindowSize:
    """libbeat's slow start: 10 events, ×1.5 per success up to bulk_max_size, halved on error."""

    def __init__(self, bulk_max_size: int, slow_start: bool) -> None:
        self.max = bulk_max_size
        self.slow = slow_start
        self.current = (
            min(SLOW_START_WINDOW, bulk_max_size) if slow_start and bulk_max_size > 0 else bulk_max_size
        )

    def take(self, remaining: int) -> int:
        if self.current <= 0:
            return remaining
        return min(self.current, remaining)

    def success(self, sent: int) -> None:
        if self.slow and self.max > 0 and sent >= self.current:
            self.current = min(self.max, math.ceil(self.current * 1.5))

    def failure(self) -> None:
        if self.slow and self.max > 0:
            self.current = max(1, self.current // 2)

    def reset(self) -> None:
        if self.slow and self.max > 0:
            self.current = min(SLOW_START_WINDOW, self.max)


class _Failover:
    """One active host for all workers (``loadbalance: false``); the next one after a failure."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.index = random.randrange(n) if n > 1 else 0

    def failed(self, index: int) -> None:
        if index == self.index and self.n > 1:
            self.index = (self.index + 1) % self.n


class Worker:
    """One connection (libbeat's client) with its own window size and TTL."""

    def __init__(self, output: LogstashOutput, host_index: int, failover: _Failover | None) -> None:
        self.output = output
        self.fixed = host_index
        self.failover = failover
        self.client: LumberjackClient | None = None
        self.host_index = host_index
        self.window = WindowSize(output.config.bulk_max_size, output.config.slow_start)
        self._lock: asyncio.Lock | None = None

    def _target(self) -> int:
        return self.failover.index if self.failover is not None else self.fixed

    async def ensure_connected(self) -> LumberjackClient:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            c = self.client
            cfg = self.output.config
            # ttl only applies to the synchronous client, as in libbeat (§2).
            expired = cfg.ttl > 0 and cfg.pipelining == 0 and c is not None and c.connected
            if expired and c is not None and c.clock() - c.connected_at >= cfg.ttl:
                log.debug("ttl of %gs expired: reconnecting to %s", cfg.ttl, c.address)
                await c.close()
                self.window.reset()
                c = None
            if c is not None and c.connected:
                return c
            if c is not None:
                await c.close()
                self.client = None
            idx = self._target()
            host, port = self.output.hosts[idx]
            c = LumberjackClient(
                host,
                port,
                timeout=cfg.timeout,
                compression_level=cfg.compression_level,
                ssl_context=self.output.ssl_context,
                stats=self.output.stats,
            )
            log.info("Connecting to %s", self.output.url(idx))
            try:
                await c.connect()
            except LumberjackError as exc:
                self.output.stats.incr("output.connect_errors")
                if self.failover is not None:
                    self.failover.failed(idx)
                # Nothing was sent: the pipeline cancels the batch without charging a retry.
                raise ConnectError(f"failed to connect to {self.output.url(idx)}: {exc}") from exc
            log.info("Connection to %s established", self.output.url(idx))
            self.client, self.host_index = c, idx
            return c

    async def publish(self, events: list[dict[str, Any]]) -> int:
        client = await self.ensure_connected()
        stats = self.output.stats
        escape = self.output.config.escape_html
        total = len(events)
        acked = 0
        while acked < total:
            n = self.window.take(total - acked)
            window = events[acked : acked + n]
            payloads, kept = _encode_window(window, escape, stats)
            if not payloads:  # every event of the window was unencodable (dropped, counted)
                acked += n
                continue
            try:
                got = await client.send(payloads)
            except LumberjackError as exc:
                # The acknowledged prefix of the window, mapped back to its events.
                done = kept[exc.acked - 1] + 1 if exc.acked else 0
                acked += done
                self.window.failure()
                stats.incr("output.window_errors")
                if self.failover is not None:
                    self.failover.failed(self.host_index)
                await client.close()
                # The connection broke with the window in flight (libbeat's sync/async
                # clients call batch.RetryEvents here: one retry charged). Sent but not
                # acknowledged: the receiver may have them, so the resend can duplicate
                # them (at-least-once; counted by the pipeline as output.unacked).
                unacked = len(payloads) - exc.acked if exc.written else 0
                if not exc.written and acked == 0:
                    # The connection was already gone: nothing of the batch left us.
                    raise ConnectError(f"{self.output.url(self.host_index)}: {exc}") from exc
                where = f"{self.output.url(self.host_index)}: {exc}"
                if acked:
                    where += f" ({acked} of {total} events acknowledged; resending the rest)"
                raise OutputError(where, retriable=True, acked=acked, unacked=unacked) from exc
            acked += n
            self.window.success(got)
        return acked

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


def _encode_window(window: list[Any], escape: bool, stats: Any) -> tuple[list[bytes], list[int]]:
    """The window's payloads and, for each, the index of its event; an event that cannot
    be encoded (only possible for plain dicts, never for the pipeline's events) is
    dropped and counted (``output.dropped_unencodable``)."""
    payloads: list[bytes] = []
    kept: list[int] = []
    for i, e in enumerate(window):
        try:
            payloads.append(encode_event(e, escape_html=escape))
        except EventEncodingError as exc:
            stats.incr("output.dropped_unencodable")
            log.warning("dropping an event that cannot be encoded: %s", exc)
            continue
        kept.append(i)
    return payloads, kept


class LogstashOutput(Output):
    name = "logstash"

    def __init__(self, config: LogstashConfig, ctx: OutputContext) -> None:
        self.config = config
        self.ctx = ctx
        self.stats = ctx.stats
        self.hosts = [parse_host(h, DEFAULT_PORT) for h in config.hosts]
        try:
            self.ssl_context = client_context(config.ssl)
        except TLSConfigError as exc:
            raise ConfigError("output.logstash", str(exc)) from None
        self.scheme = "tls" if self.ssl_context is not None else "tcp"
        self.batch_size = max(0, config.bulk_max_size)
        self.max_retries = config.max_retries
        self.backoff = Backoff(config.backoff.init, config.backoff.max)
        failover = None if config.loadbalance or len(self.hosts) == 1 else _Failover(len(self.hosts))
        targets = range(len(self.hosts)) if config.loadbalance else [failover.index if failover else 0]
        self.workers = [Worker(self, i, failover) for _ in range(config.worker) for i in targets]
        self.depth = max(1, config.pipelining)
        self.concurrency = len(self.workers) * self.depth
        if config.ttl > 0 and config.pipelining > 0:
            log.warning("output.logstash.ttl only applies with pipelining: 0 (as in libbeat); ignored")
        self._slots: asyncio.Queue[Worker] | None = None

    def url(self, index: int) -> str:
        host, port = self.hosts[index]
        return f"{self.scheme}://{format_host(host, port)}"

    def describe(self) -> str:
        return f"logstash({', '.join(self.url(i) for i in range(len(self.hosts)))})"

    def _slot_queue(self) -> asyncio.Queue[Worker]:
        if self._slots is None:
            q: asyncio.Queue[Worker] = asyncio.Queue()
            # Interleaved, so concurrent batches spread over hosts before they stack up.
            for _ in range(self.depth):
                for w in self.workers:
                    q.put_nowait(w)
            self._slots = q
        return self._slots

    async def connect(self) -> None:
        await asyncio.gather(*(w.ensure_connected() for w in self.workers))

    async def publish(self, events: list[dict[str, Any]]) -> int:
        if not events:
            return 0
        slots = self._slot_queue()
        worker = await slots.get()
        try:
            return await worker.publish(events)
        finally:
            slots.put_nowait(worker)

    async def close(self) -> None:
        for w in self.workers:
            await w.close()


def create(config: LogstashConfig, ctx: OutputContext) -> LogstashOutput:
    return LogstashOutput(config, ctx)
