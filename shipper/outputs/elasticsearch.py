"""``output.elasticsearch``: the ``_bulk`` API over plain HTTP (Elasticsearch 7-9 and OpenSearch).

Every event becomes a ``create`` action (required for data streams, and on a plain index
it simply adds a document). ``@metadata`` is not indexed: it names the index
(``@metadata.raw_index`` or the ``index`` format, default
``%{[@metadata][beat]}-%{[@metadata][version]}``, the same index the bundled Logstash
pipeline writes), the ingest ``pipeline`` and the ``_id``.

Results per document (libbeat's rules):

- 2xx → indexed; 409 on ``create`` → a duplicate (already indexed): done, counted;
- 429 and 5xx → retried;
- other 4xx (mapping conflicts, a missing pipeline ...) → cannot ever be indexed: dropped,
  counted and logged.

Acknowledging with the pipeline's prefix contract: ``publish`` returns how many events
*from the start* are finished (indexed, duplicate or dropped). Events after the first one
that must be retried may already be indexed; they are remembered (by object identity,
bounded) so that when the pipeline hands the same entries back, they are acknowledged
without being sent again. No duplicates, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from protocols.common.config import Duration, one_of
from shipper.agent.config import ConfigError, at_least, between, greater_than
from shipper.agent.settings import SslSettings
from shipper.outputs.backoff import Backoff
from shipper.outputs.base import (
    ConnectError,
    EncodedEvent,
    EventEncodingError,
    Output,
    OutputContext,
    OutputError,
    encode_event,
)
from shipper.outputs.http import HttpClient, TransportError, normalize_host

log = logging.getLogger("elasticsearch")

DEFAULT_INDEX = "%{[@metadata][beat]}-%{[@metadata][version]}"


@attrs.frozen
class BackoffSettings:
    init: Duration = attrs.field(default=Duration(1.0), validator=greater_than(0))
    max: Duration = attrs.field(default=Duration(60.0), validator=greater_than(0))


def _hosts(_inst: Any, _attr: Any, value: list[str]) -> None:
    if not value:
        raise ValueError("at least one host is required")
    for h in value:
        normalize_host(h, "http", 9200)  # ValueError names the bad entry


@attrs.frozen
class ElasticsearchConfig:
    enabled: bool = True
    hosts: list[str] = attrs.field(factory=lambda: ["localhost:9200"], validator=_hosts)
    protocol: str = attrs.field(default="http", validator=one_of("http", "https"))
    path: str = ""
    username: str = ""
    password: str = ""
    api_key: str = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    parameters: dict[str, Any] = attrs.field(factory=dict)
    ssl: SslSettings = SslSettings()
    #: The target index (format string); named ``index`` in the config.
    target_index: str = attrs.field(default="", metadata={"key": "index"})
    pipeline: str = ""
    worker: int = attrs.field(default=1, validator=between(1, 1024))
    #: <= 0: the queue's batches are sent unsplit (libbeat).
    bulk_max_size: int = 1600
    #: balanced | throughput | scale | latency | custom: applied while loading
    #: (:func:`shipper.agent.settings.apply_preset`); kept here for ``export config``.
    preset: str = attrs.field(
        default="", validator=one_of("", "custom", "balanced", "throughput", "scale", "latency")
    )
    #: A connection idle this long is closed rather than reused (0: never; libbeat: 3s).
    idle_connection_timeout: Duration = attrs.field(default=Duration(3.0), validator=at_least(0))
    #: -1: retry for ever. Connection failures never count; documents Elasticsearch
    #: rejects for good (4xx other than 429) are dropped at once, as in libbeat.
    max_retries: int = attrs.field(default=3, validator=at_least(-1))
    backoff: BackoffSettings = BackoffSettings()
    timeout: Duration = attrs.field(default=Duration(90.0), validator=greater_than(0))
    compression_level: int = attrs.field(default=1, validator=between(0, 9))
    escape_html: bool = False
    allow_older_versions: bool = attrs.field(default=True, metadata={"ignored": True})
    proxy_url: str = attrs.field(default="", metadata={"ignored": True})
    loadbalance: bool = attrs.field(default=True, metadata={"ignored": True})


CONFIG = ElasticsearchConfig

_FIELD_RE = re.compile(r"%\{(\[[^}]*\])\}|%\{\+([^}]*)\}")
_JODA = (("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


class IndexFormat:
    """libbeat format strings: ``%{[field][path]}``/``%{[a.b]}`` from the event, ``%{+yyyy.MM.dd}``
    from ``@timestamp``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[tuple[str, Any]] = []
        pos = 0
        for m in _FIELD_RE.finditer(text):
            if m.start() > pos:
                self.parts.append(("lit", text[pos : m.start()]))
            if m.group(1):
                keys = [k for k in re.split(r"\]\[|\[|\]", m.group(1)) if k]
                path = [p for k in keys for p in k.split(".")] if len(keys) == 1 else keys
                self.parts.append(("field", path))
            else:
                fmt = m.group(2)
                for joda, py in _JODA:
                    fmt = fmt.replace(joda, py)
                self.parts.append(("time", fmt))
            pos = m.end()
        if pos < len(text):
            self.parts.append(("lit", text[pos:]))

    def __call__(self, event: Mapping[str, Any]) -> str:
        out = []
        for kind, arg in self.parts:
            if kind == "lit":
                out.append(arg)
            elif kind == "field":
                node: Any = event
                for k in arg:
                    node = node.get(k) if isinstance(node, Mapping) else None
                if node is None or isinstance(node, dict | list):
                    raise KeyError(".".join(arg))
                out.append(str(node))
            else:
                ts = str(event.get("@timestamp", ""))[:19]
                try:
                    t = time.strptime(ts, "%Y-%m-%dT%H:%M:%S")
                except ValueError:
                    t = time.gmtime()
                out.append(time.strftime(arg, t))
        return "".join(out).lower()


def http_client(
    cfg: ElasticsearchConfig,
    timeout: float | None = None,
    params: dict[str, Any] | None = None,
    maxsize: int = 4,
) -> HttpClient:
    """The HTTP client for ``output.elasticsearch``'s hosts (the output and ``setup`` share it)."""
    return HttpClient(
        cfg.hosts,
        scheme=cfg.protocol,
        path=cfg.path,
        username=cfg.username,
        password=cfg.password,
        api_key=cfg.api_key,
        headers=cfg.headers,
        params=params,
        ssl_settings=cfg.ssl,
        timeout=timeout or cfg.timeout,
        maxsize=maxsize,
        idle_timeout=cfg.idle_connection_timeout,
    )


# Outcome of one document in a bulk response.
_DONE, _DROP, _RETRY = 0, 1, 2


class ElasticsearchOutput(Output):
    name = "elasticsearch"

    def __init__(
        self, config: ElasticsearchConfig, ctx: OutputContext, client: HttpClient | None = None
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.stats = ctx.stats
        self.batch_size = max(0, config.bulk_max_size)
        self.max_retries = config.max_retries
        self.concurrency = config.worker * max(1, len(config.hosts))
        #: ``backoff.init``/``backoff.max`` for a pipeline that asks its output for the back-off.
        self.backoff = Backoff(config.backoff.init, config.backoff.max)
        try:
            self.client = client or http_client(
                config, params=config.parameters, maxsize=max(2, self.concurrency)
            )
        except (TransportError, ValueError) as exc:
            raise ConfigError("output.elasticsearch", getattr(exc, "message", None) or str(exc)) from None
        if isinstance(self.client, HttpClient) and self.client.stats is None:
            self.client.stats = self.stats
        self.index = IndexFormat(config.target_index or DEFAULT_INDEX)
        self._rr = itertools.count()
        #: Events indexed while an earlier one in their batch still waits for a retry.
        self._done: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._done_cap = max(4 * self.batch_size * self.concurrency, 1024)

    def describe(self) -> str:
        return f"elasticsearch({', '.join(self.client.urls)})"

    # -- encoding ----------------------------------------------------------------------

    def _action(self, event: Mapping[str, Any]) -> bytes:
        meta = event.get("@metadata") or {}
        index = meta.get("raw_index") or self.index(event)
        action: dict[str, Any] = {"_index": index}
        if meta.get("_id"):
            action["_id"] = meta["_id"]
        pipeline = meta.get("pipeline") or self.config.pipeline
        if pipeline:
            action["pipeline"] = pipeline
        op = "index" if meta.get("op_type") == "index" else "create"
        if isinstance(event, EncodedEvent):
            body = event.data  # already without @metadata
            if self.config.escape_html:
                body = encode_event(EncodedEvent(body, {}), escape_html=True)
        else:
            doc = {k: v for k, v in event.items() if k != "@metadata"}
            body = encode_event(doc, escape_html=self.config.escape_html)
        return orjson.dumps({op: action}) + b"\n" + body + b"\n"

    # -- publishing --------------------------------------------------------------------

    async def publish(self, events: list[dict[str, Any]]) -> int:
        outcome: list[int | None] = [None] * len(events)
        lines: list[bytes] = []
        sent: list[int] = []
        for i, e in enumerate(events):
            if self._done.get(id(e)) is e:
                outcome[i] = _DONE
                continue
            try:
                lines.append(self._action(e))
            except (KeyError, TypeError, ValueError, EventEncodingError) as exc:
                outcome[i] = _DROP
                self.stats.incr("output.elasticsearch.events.not_indexable")
                log.error("cannot encode event for the bulk request (dropped): %s", _brief(exc))
                continue
            sent.append(i)
        if sent:
            results = await self._bulk(lines, [events[i] for i in sent])
            if results is None:
                # 413: the server wants smaller requests. Send the first half only; the
                # pipeline hands the rest back.
                half = max(1, len(sent) // 2)
                self.batch_size = max(1, min(self.batch_size, half))
                log.warning("request too large (413); bulk_max_size lowered to %d", self.batch_size)
                return await self.publish(events[: sent[half - 1] + 1])
            for i, res in zip(sent, results, strict=True):
                outcome[i] = res
        acked = 0
        while acked < len(events) and outcome[acked] in (_DONE, _DROP):
            acked += 1
        for e in events[:acked]:
            self._done.pop(id(e), None)
        for i in range(acked, len(events)):
            if outcome[i] in (_DONE, _DROP):
                self._remember(events[i])
        return acked

    def _remember(self, event: dict[str, Any]) -> None:
        self._done[id(event)] = event
        self._done.move_to_end(id(event))
        while len(self._done) > self._done_cap:
            self._done.popitem(last=False)

    async def _bulk(self, lines: list[bytes], events: list[dict[str, Any]]) -> list[int] | None:
        body = b"".join(lines)
        headers = {"Content-Type": "application/x-ndjson"}
        if self.config.compression_level > 0:
            body = gzip.compress(body, self.config.compression_level)
            headers["Content-Encoding"] = "gzip"
        loop = asyncio.get_running_loop()
        host = next(self._rr)
        try:
            resp = await loop.run_in_executor(
                None, lambda: self.client.request("POST", "/_bulk", body, headers=headers, host_index=host)
            )
        except TransportError as exc:
            self.stats.incr("output.elasticsearch.connection_errors")
            if exc.connect_failed:
                # Nothing was sent (libbeat: Connect fails, the batch is cancelled).
                raise ConnectError(f"bulk request failed: {exc.message}") from None
            # The request may have been indexed before the connection broke: a resend
            # can duplicate these events (libbeat: RetryEvents, one retry charged).
            raise OutputError(
                f"bulk request failed: {exc.message}", retriable=True, unacked=len(events)
            ) from None
        if resp.status == 413 and len(events) > 1:
            return None
        if not resp.ok:
            retriable = resp.status in (408, 429) or resp.status >= 500
            self.stats.incr(f"output.elasticsearch.bulk_status_{resp.status}")
            raise OutputError(
                f"bulk request rejected with HTTP {resp.status}: {resp.error_reason()}", retriable=retriable
            )
        data = resp.json()
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(events):
            raise OutputError("bulk response does not list one result per document", retriable=True)
        if not data.get("errors"):
            self.stats.incr("output.elasticsearch.events.acked", len(events))
            return [_DONE] * len(events)
        return self._results(items)

    def _results(self, items: list[Any]) -> list[int]:
        out = []
        logged = 0
        counts = {"acked": 0, "duplicates": 0, "not_indexable": 0, "retried": 0}
        for item in items:
            res = next(iter(item.values())) if isinstance(item, dict) and item else {}
            status = res.get("status", 0) if isinstance(res, dict) else 0
            if not isinstance(status, int) or isinstance(status, bool):
                status = 0  # a garbled answer: retried
            if 200 <= status < 300:
                out.append(_DONE)
                counts["acked"] += 1
            elif status == 409:
                out.append(_DONE)
                counts["duplicates"] += 1
            elif status == 429 or status >= 500 or status == 0:
                out.append(_RETRY)
                counts["retried"] += 1
            else:
                out.append(_DROP)
                counts["not_indexable"] += 1
                if logged < 5:
                    logged += 1
                    err = res.get("error") if isinstance(res, dict) else None
                    log.warning(
                        "cannot index event into %s (status=%d, dropped): %s",
                        res.get("_index", "?") if isinstance(res, dict) else "?",
                        status,
                        _error_text(err),
                    )
        for k, n in counts.items():
            if n:
                self.stats.incr(f"output.elasticsearch.events.{k}", n)
        if counts["not_indexable"] > logged:
            log.warning("%d more events could not be indexed (dropped)", counts["not_indexable"] - logged)
        if counts["retried"]:
            log.info("%d events will be retried (429/5xx per document)", counts["retried"])
        return out

    async def close(self) -> None:
        self.client.close()


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        text = f"{err.get('type', 'error')}: {err.get('reason', '')}"
        caused = err.get("caused_by")
        if isinstance(caused, dict) and caused.get("reason"):
            text += f" ({caused['reason']})"
        return text
    return str(err)


def _brief(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"the index format refers to a missing field {exc.args[0]}"
    return str(exc)


def create(config: ElasticsearchConfig, ctx: OutputContext) -> ElasticsearchOutput:
    return ElasticsearchOutput(config, ctx)
