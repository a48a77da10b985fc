"""The queue → output seam: ``await output.publish(batch) -> acked_count``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from protocols.stats import Counters
from shipper.outputs.backoff import Backoff

log = logging.getLogger("output")


class OutputError(Exception):
    """Publishing a batch failed after it was handed to the receiver (or the receiver
    answered with an error). The pipeline charges the failure to the batch: it is
    retried at most ``max_retries`` times (libbeat: ``batch.RetryEvents`` → ``reduceTTL``).

    ``acked``: events from the start of the batch that the receiver acknowledged before
    the failure (they are done). ``unacked``: events after those that were sent and may
    have arrived all the same; resending them may duplicate them (counted in
    ``output.unacked``, the bound on duplicates). ``retriable`` False: the receiver said
    trying again cannot help (counted in ``output.fatal_errors``; still retried up to
    ``max_retries``, as libbeat does).
    """

    def __init__(self, message: str, retriable: bool = True, *, acked: int = 0, unacked: int = 0) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.acked = acked
        self.unacked = unacked


class ConnectError(OutputError):
    """The receiver could not be reached (dial refused or timed out, name resolution,
    TLS handshake, authentication on connect): nothing of the batch was sent.

    The batch is *cancelled*, not failed: it goes back to the front of the queue and no
    retry is charged, however long the receiver stays away (libbeat's
    ``netClientWorker.run``: ``batch.Cancelled()`` while (re)connecting). The pipeline
    waits out the back-off before the next attempt.
    """


class OutputClosed(Exception):
    """The output's destination is gone for good (stdout closed by the reader: ``| head``).

    The pipeline stops at once, quietly; the process ends like a Unix tool whose
    reader went away."""


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
    """``codec.json``: ``pretty`` (indented by two spaces, as libbeat's), ``escape_html``
    (``<``, ``>`` and ``&`` inside strings written ``\u003c``, ``\u003e``, ``\u0026``,
    as Go's encoder writes them)."""

    pretty: bool = False
    escape_html: bool = False
    #: The name libbeat 9 really reads (its Config field has no tag, so go-ucfg lowercases
    #: ``EscapeHTML``); the documented ``escape_html`` is silently ignored there. Either works here.
    escapehtml: bool = False

    def __attrs_post_init__(self) -> None:
        if self.escapehtml:
            object.__setattr__(self, "escape_html", True)


def _format_string(_inst: Any, _attr: Any, value: str) -> None:
    from shipper.outputs.fmtstr import FormatError, compile_format

    try:
        compile_format(value)
    except FormatError as exc:
        raise ValueError(str(exc)) from None


@attrs.frozen
class FormatCodec:
    """``codec.format.string``: each event written as a libbeat format string
    (``%{[@timestamp]} %{[type]} %{[url.full]}``); "" (the default): not set, JSON."""

    string: str = attrs.field(default="", validator=_format_string)


@attrs.frozen
class CodecSettings:
    """libbeat's ``codec``: ``json`` (the default) or ``format``, not both."""

    json: JsonCodec | None = None
    format: FormatCodec | None = None

    def __attrs_post_init__(self) -> None:
        if self.json is not None and self.formatted:
            raise ValueError("more than one codec configured (json and format); choose one")

    @property
    def formatted(self) -> bool:
        return self.format is not None and self.format.string != ""


class EventCodec:
    """What ``output.console`` and ``output.file`` write for each event: its JSON
    (``codec.json.pretty``, ``codec.json.escape_html``) or its ``codec.format.string``,
    then a newline. An event the codec cannot write (a field the format string requires
    is missing, a value JSON cannot carry) is left out, counted
    (``output.dropped_unencodable``) and logged, as libbeat drops what it fails to
    serialize."""

    __slots__ = ("escape_html", "format", "pretty", "stats")

    def __init__(self, codec: CodecSettings, stats: Counters, *, pretty: bool = False) -> None:
        from shipper.outputs.fmtstr import compile_format

        js = codec.json or JsonCodec()
        self.pretty = pretty or js.pretty
        self.escape_html = js.escape_html
        self.format = compile_format(codec.format.string) if codec.formatted and codec.format else None
        self.stats = stats

    def lines(self, events: list[Any]) -> list[bytes]:
        """Each event's bytes and a newline (what is dropped is counted and logged)."""
        if self.format is None:
            return encode_lines(events, self.pretty, self.escape_html, self.stats)
        return [p + b"\n" for p in self.payloads(events)]

    def batch(self, events: list[Any]) -> tuple[list[bytes | memoryview], list[int]]:
        """The batch's lines for one ``b"".join``, and each line's length (see
        :func:`encode_batch`; format strings go through :meth:`lines`)."""
        if self.format is None:
            return encode_batch(events, self.pretty, self.escape_html, self.stats)
        lines = self.lines(events)
        return list(lines), [len(line) for line in lines]

    def payloads(self, events: list[Any]) -> list[bytes]:
        """Each event's bytes, no newline (``output.redis``: one list element each)."""
        from shipper.outputs.fmtstr import FieldMissing

        out = []
        for e in events:
            try:
                if self.format is None:
                    out.append(encode_event(e, self.pretty, self.escape_html))
                    continue
                out.append(self.format.run(e).encode("utf-8", "replace"))
            except FieldMissing as exc:
                self.stats.incr("output.dropped_unencodable")
                log.warning("dropping an event: codec.format.string needs field %s, missing", exc.args[0])
            except EventEncodingError as exc:
                self.stats.incr("output.dropped_unencodable")
                log.warning("dropping an event that cannot be encoded: %s", exc)
        return out


_HTML = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))


#: Keys are written in the order the event was built (libbeat's encoder writes a map in no
#: set order either); sorting them cost 5 % of an event's instructions.
_OPTS = orjson.OPT_NON_STR_KEYS


class EncodedEvent(Mapping[str, Any]):
    """A published event, already JSON: what the queue holds and the outputs receive.

    The publisher encodes each event once, right after the envelope, so the dict graph
    (dozens of small objects) is freed while it is still in the cache and the queue holds
    one compact object per event. ``data`` is the event without ``@metadata`` (what
    Elasticsearch indexes); ``meta`` is ``@metadata``. Reading it as a mapping decodes it
    lazily (tests, index format strings); ``@metadata`` alone never needs decoding.
    """

    __slots__ = ("_decoded", "_head", "data", "meta")

    def __init__(self, data: bytes, meta: dict[str, Any], head: bytes | None = None) -> None:
        self.data = data
        self.meta = meta
        #: ``{"@metadata":{...},`` already encoded (None: encoded on first use).
        self._head = head
        self._decoded: dict[str, Any] | None = None

    @classmethod
    def from_event(
        cls,
        event: dict[str, Any],
        heads: dict[int, bytes] | None = None,
        shared: Mapping[int, Any] | None = None,
    ) -> EncodedEvent:
        """Encode ``event`` (it loses its ``@metadata`` key to the new object).

        ``shared`` holds, by ``id``, ``@metadata`` objects that live as long as the run
        and are never changed (the envelope's, one per index); ``heads`` caches their
        encoded prefix (:func:`metadata_head`), so an event carrying one has its
        ``@metadata`` neither checked nor encoded again.

        Raises :class:`EventEncodingError` for an event JSON cannot carry (see
        :func:`dumps_event`); the caller drops and counts it."""
        meta = event.pop("@metadata", None) or {}
        head = heads.get(id(meta)) if heads else None
        if head is None and not isinstance(meta, dict):
            raise EventEncodingError("@metadata is not an object")
        data = dumps_event(event, 0)
        if head is None and meta:
            head = metadata_head(meta)  # json() needs it later: make sure it encodes
            if heads is not None and shared and shared.get(id(meta)) is meta:
                heads[id(meta)] = head
        return cls(data, meta, head)

    def json(self) -> bytes:
        """The whole event as JSON, ``@metadata`` first."""
        if not self.meta:
            return self.data
        head = self._head
        if head is None:
            head = self._head = metadata_head(self.meta)
        return head + self.data[1:] if len(self.data) > 2 else head[:-1] + b"}"

    def line_parts(self) -> tuple[bytes, memoryview | bytes]:
        """``json()`` as two pieces that ``b"".join`` without an intermediate copy: the
        ``@metadata`` head and the rest of the event, closing brace included."""
        if not self.meta or len(self.data) <= 2:
            return b"", self.json()
        head = self._head
        if head is None:
            head = self._head = metadata_head(self.meta)
        return head, memoryview(self.data)[1:]

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


def metadata_head(meta: dict[str, Any]) -> bytes:
    """``{"@metadata":<meta>,``: how every event line with this ``@metadata`` starts.

    Raises :class:`EventEncodingError` when ``meta`` cannot be encoded."""
    return b'{"@metadata":' + dumps_event(meta, _OPTS) + b","


class EventEncodingError(ValueError):
    """An event JSON cannot carry: dropped and counted by whoever encodes it, never fatal."""


#: Lone surrogates: what ``bytes.decode(..., "surrogateescape")`` makes of invalid UTF-8.
_SURROGATES = re.compile("[\ud800-\udfff]")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1


def dumps_event(obj: Any, option: int = _OPTS) -> bytes:
    """``orjson.dumps`` that copes with what a decoder may leave in an event.

    Strings with lone surrogates (invalid UTF-8 carried through ``surrogateescape``) are
    encoded with U+FFFD in their place, one per byte, as Go's encoder does for libbeat;
    NaN and infinities become ``null`` (orjson's rule); keys that are not strings are
    written as strings. What has no JSON form — integers beyond 64 bits, nesting deeper
    than 254 levels, objects of unknown types — raises :class:`EventEncodingError`.
    """
    try:
        return orjson.dumps(obj, option=option, default=json_default)
    except TypeError:  # orjson.JSONEncodeError: the slower, careful path below
        pass
    try:
        return orjson.dumps(_repaired(obj, 0), option=option | orjson.OPT_NON_STR_KEYS, default=json_default)
    except TypeError as exc:
        raise EventEncodingError(str(exc)) from None


def _repaired(obj: Any, depth: int) -> Any:
    """A copy of ``obj`` without lone surrogates; checks integer ranges and depth."""
    if depth > 250:
        raise EventEncodingError("nested more than 250 levels deep")
    if isinstance(obj, str):
        return _SURROGATES.sub("\ufffd", obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, float):
        return obj
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise EventEncodingError(f"integer {str(obj)[:24]}... exceeds 64 bits")
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str):
                key = k
            elif isinstance(k, int | float | bool) or k is None:
                key = str(k)
            else:
                raise EventEncodingError(f"object key of type {type(k).__name__}")
            out[_SURROGATES.sub("\ufffd", key)] = _repaired(v, depth + 1)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [_repaired(v, depth + 1) for v in obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "replace")
    raise EventEncodingError(f"cannot encode a value of type {type(obj).__name__}")


def encode_event(event: Mapping[str, Any], pretty: bool = False, escape_html: bool = False) -> bytes:
    """One event as JSON: ``@metadata`` first, then the keys in the event's order, as
    :class:`EncodedEvent` writes it.

    Raises :class:`EventEncodingError` for a plain dict JSON cannot carry; an
    :class:`EncodedEvent` (what the pipeline hands outputs) always encodes."""
    if isinstance(event, EncodedEvent):
        data = event.json()
        if pretty:
            data = orjson.dumps(orjson.loads(data), option=_OPTS | orjson.OPT_INDENT_2)
    else:
        if "@metadata" in event and next(iter(event)) != "@metadata":
            event = {"@metadata": event["@metadata"], **{k: v for k, v in event.items() if k != "@metadata"}}
        data = dumps_event(event, _OPTS | orjson.OPT_INDENT_2 if pretty else _OPTS)
    if escape_html:
        # Inside JSON these characters only occur in strings, so replacing them is safe.
        for a, b in _HTML:
            data = data.replace(a, b)
    return data


def encode_batch(
    events: list[Any], pretty: bool, escape_html: bool, stats: Counters
) -> tuple[list[bytes | memoryview], list[int]]:
    """The batch as JSON lines ready for one ``b"".join``: the pieces, and each line's
    length (what rotating outputs need). Events of the pipeline (``EncodedEvent``, plain
    codec) are spliced from their stored encoding without being copied on the way;
    others go through :func:`encode_lines`."""
    if pretty or escape_html:
        lines = encode_lines(events, pretty, escape_html, stats)
        return list(lines), [len(line) for line in lines]
    parts: list[bytes | memoryview] = []
    sizes: list[int] = []
    add = parts.append
    for e in events:
        if type(e) is EncodedEvent:
            head, body = e.line_parts()
            add(head)
            add(body)
            add(b"\n")
            sizes.append(len(head) + len(body) + 1)
            continue
        for line in encode_lines([e], pretty, escape_html, stats):
            add(line)
            sizes.append(len(line))
    return parts, sizes


def encode_lines(events: list[Any], pretty: bool, escape_html: bool, stats: Counters) -> list[bytes]:
    """Each event as one JSON line; an event that cannot be encoded (possible only for
    plain dicts) is left out, counted (``output.dropped_unencodable``) and logged."""
    lines = []
    for e in events:
        try:
            lines.append(encode_event(e, pretty, escape_html) + b"\n")
        except EventEncodingError as exc:
            stats.incr("output.dropped_unencodable")
            log.warning("dropping an event that cannot be encoded: %s", exc)
    return lines


def json_default(obj: Any) -> Any:
    """orjson's fallback for the few non-JSON types an event may carry."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


class Output:
    """Base class; subclasses implement ``publish`` (and ``connect``/``close`` if they hold
    connections).

    The delivery contract every output gets from the pipeline (libbeat's at-least-once,
    ``publisher/pipeline/client_worker.go``, ``ttl_batch.go``, ``consumer.go``):

    * ``publish(events)`` returns how many events *from the start* are done (acknowledged,
      or given up on by the output itself with a counted reason, e.g. a document
      Elasticsearch can never index); the rest goes back to the front of the queue and
      is charged one retry.
    * raising :class:`ConnectError` (nothing was sent: the receiver is down, late, or
      refused the connection) cancels the batch: back to the front, **no retry charged**,
      back-off, try again. A receiver that is down for hours loses nothing.
    * raising :class:`OutputError` (the connection broke with the batch in flight, or the
      receiver answered with an error) acknowledges ``acked`` events and charges one
      retry to the rest; after ``max_retries`` the events are dropped and counted
      (``queue.dropped_max_retries``). ``-1`` retries for ever.
    * ``OSError`` is taken as :class:`OutputError` (a network failure nobody wrapped).
    * raising :class:`OutputClosed` stops the pipeline quietly (console reader gone).
    * any other exception is an internal error: the pipeline stops, says so in one line
      and the process exits non-zero, without waiting on the output again.

    A new network output (Kafka ...) only has to raise :class:`ConnectError` for what
    fails before anything is sent and :class:`OutputError` for the rest.
    """

    name = ""
    #: How many ``publish`` calls may be in flight at once (workers × hosts × pipelining).
    concurrency = 1
    #: Events per batch (``bulk_max_size``); 0 = the queue's batches as they come.
    batch_size = 2048
    #: Failed attempts before a batch is dropped; -1 = retry forever. Connection failures
    #: (:class:`ConnectError`) never count.
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
