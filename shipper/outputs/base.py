"""The queue → output seam: ``await output.publish(batch) -> acked_count``."""

from __future__ import annotations

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


def encode_event(event: dict[str, Any], pretty: bool = False, escape_html: bool = False) -> bytes:
    """One event as JSON (keys sorted, like libbeat's encoder)."""
    opts = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    if pretty:
        opts |= orjson.OPT_INDENT_2
    data = orjson.dumps(event, option=opts, default=_default)
    if escape_html:
        # Inside JSON these characters only occur in strings, so replacing them is safe.
        for a, b in _HTML:
            data = data.replace(a, b)
    return data


def _default(obj: Any) -> Any:
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

    async def publish(self, events: list[dict[str, Any]]) -> int:
        """Send ``events``; return how many (from the start) were acknowledged."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return self.name
