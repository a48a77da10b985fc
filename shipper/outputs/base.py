"""The queue → output seam: ``await output.publish(batch) -> acked_count``."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from protocols.stats import Counters
from shipper.backoff import Backoff


class OutputError(Exception):
    """Publishing failed. ``retriable`` says whether trying again can help."""

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


@attrs.frozen
class OutputContext:
    beat_name: str
    version: str
    stats: Counters
    data_path: Path
    #: ``@metadata.beat`` default (the index prefix): "packetbeat".
    index: str = "packetbeat"


@attrs.frozen
class JsonCodec:
    pretty: bool = False
    escape_html: bool = False


@attrs.frozen
class CodecSettings:
    json: JsonCodec = JsonCodec()


_HTML = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))


_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


class EncodedEvent(Mapping[str, Any]):
    """A published event, already JSON: what the queue holds and the outputs receive.

    The publisher encodes each event once, right after the envelope, so the dict graph
    (dozens of small objects) is freed while it is still in the cache and the queue holds
    one compact object per event. ``data`` is the event without ``@metadata`` (what
    Elasticsearch indexes); ``meta`` is ``@metadata``. Reading it as a mapping decodes it
    lazily (tests, index format strings); ``@metadata`` alone never needs decoding.
    """

    __slots__ = ("_decoded", "data", "meta")

    def __init__(self, data: bytes, meta: dict[str, Any]) -> None:
        self.data = data
        self.meta = meta
        self._decoded: dict[str, Any] | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> EncodedEvent:
        """Encode ``event`` (it loses its ``@metadata`` key to the new object)."""
        meta = event.pop("@metadata", None) or {}
        try:
            data = orjson.dumps(event, option=orjson.OPT_SORT_KEYS, default=json_default)
        except TypeError:  # a non-string key somewhere (rare): the slower option copes
            data = orjson.dumps(event, option=_OPTS, default=json_default)
        return cls(data, meta)

    def json(self) -> bytes:
        """The whole event as sorted-key JSON, ``@metadata`` included (it sorts first)."""
        if not self.meta:
            return self.data
        head = _meta_prefix(orjson.dumps(self.meta, option=_OPTS))
        return head + self.data[1:] if len(self.data) > 2 else head[:-1] + b"}"

    def as_dict(self) -> dict[str, Any]:
        if self._decoded is None:
            d: dict[str, Any] = orjson.loads(self.data)
            if self.meta:
                d["@metadata"] = self.meta
            self._decoded = d
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        if key == "@metadata" and self.meta:
            return self.meta
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedEvent):
            return self.data == other.data and self.meta == other.meta
        if isinstance(other, dict):
            return self.as_dict() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EncodedEvent({self.json()[:80]!r}...)"


@functools.lru_cache(maxsize=256)
def _meta_prefix(meta_json: bytes) -> bytes:
    return b'{"@metadata":' + meta_json + b","


def encode_event(event: Mapping[str, Any], pretty: bool = False, escape_html: bool = False) -> bytes:
    """One event as JSON (keys sorted, like libbeat's encoder)."""
    if isinstance(event, EncodedEvent):
        data = event.json()
        if pretty:
            data = orjson.dumps(orjson.loads(data), option=_OPTS | orjson.OPT_INDENT_2)
    else:
        opts = _OPTS | orjson.OPT_INDENT_2 if pretty else _OPTS
        data = orjson.dumps(event, option=opts, default=json_default)
    if escape_html:
        # Inside JSON these characters only occur in strings, so replacing them is safe.
        for a, b in _HTML:
            data = data.replace(a, b)
    return data


def json_default(obj: Any) -> Any:
    """orjson's fallback for the few non-JSON types an event may carry."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


class Output:
    """Base class; subclasses implement ``publish``."""

    name = ""
    #: How many ``publish`` calls may be in flight at once (workers × hosts × pipelining).
    concurrency = 1
    #: Events per batch (``bulk_max_size``); 0 = the queue's batches as they come.
    batch_size = 2048
    #: Failed attempts before a batch is dropped; -1 = retry forever.
    max_retries = -1
    #: The output's reconnect back-off (``backoff.init``/``backoff.max``); None: the pipeline's default.
    backoff: Backoff | None = None

    async def connect(self) -> None:
        return None

    async def publish(self, events: list[Any]) -> int:
        """Send ``events`` (``EncodedEvent`` from the pipeline, or plain dicts); return how
        many (from the start) were acknowledged."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return self.name
