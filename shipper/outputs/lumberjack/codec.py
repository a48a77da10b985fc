"""Lumberjack v1/v2 frames, sans-IO: bytes in, frames or ACKs out (lumberjack.md §1).

Client side: :func:`encode_batch` builds one window (``W`` uncompressed, then the ``J``
frames, plain or inside one zlib ``C``); :class:`AckReader` turns the server's bytes into
ACK sequence numbers and rejects anything else; :class:`WindowAcks` applies the ACK rules.

Server side (our fault-injecting receiver and the tests): :class:`FrameDecoder` parses
``W``/``J``/``D``/``C`` (and ``A``, when used on the client's side of a conversation)
with wsproto-style commit/rollback: parse as if everything were there, return ``None``
when short, and raise :class:`ProtocolError` for anything a real server would refuse.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from typing import NamedTuple

V1 = 0x31  # '1'
V2 = 0x32  # '2'
WINDOW = 0x57  # 'W'
JSON = 0x4A  # 'J'
DATA = 0x44  # 'D' (v1 key/value)
COMPRESSED = 0x43  # 'C'
ACK = 0x41  # 'A'

_U32 = struct.Struct(">I")
_HDR_U32 = struct.Struct(">BBI")  # version, type, one u32
_HDR_2U32 = struct.Struct(">BBII")  # version, type, two u32
_J_HDR = struct.Struct(">II")

MAX_U32 = 0xFFFFFFFF
#: Java ints on the Logstash side: lengths and sequences above this go negative (§1.4).
MAX_SIGNED = 0x7FFFFFFF


class ProtocolError(Exception):
    """The peer broke the protocol; the only remedy is closing the connection (§1.4)."""


# -- frames -------------------------------------------------------------------------------


class Window(NamedTuple):
    version: int
    size: int


class JsonData(NamedTuple):
    seq: int
    payload: bytes


class KVData(NamedTuple):
    """A v1 ``D`` frame: string pairs (kept as bytes; v1 has no declared encoding)."""

    seq: int
    pairs: list[tuple[bytes, bytes]]


class Ack(NamedTuple):
    version: int
    seq: int


Frame = Window | JsonData | KVData | Ack


# -- encoding -----------------------------------------------------------------------------


def encode_window(size: int, version: int = V2) -> bytes:
    return _HDR_U32.pack(version, WINDOW, size)


def encode_json(seq: int, payload: bytes) -> bytes:
    return _HDR_2U32.pack(V2, JSON, seq, len(payload)) + payload


def encode_kv(seq: int, pairs: Sequence[tuple[bytes, bytes]], version: int = V1) -> bytes:
    parts = [_HDR_2U32.pack(version, DATA, seq, len(pairs))]
    for k, v in pairs:
        parts += [_U32.pack(len(k)), k, _U32.pack(len(v)), v]
    return b"".join(parts)


def encode_compressed(frames: bytes, level: int = 3) -> bytes:
    body = zlib.compress(frames, level)
    return _HDR_U32.pack(V2, COMPRESSED, len(body)) + body


def encode_ack(seq: int, version: int = V2) -> bytes:
    return _HDR_U32.pack(version, ACK, seq)


def encode_json_frames(payloads: Sequence[bytes]) -> bytes:
    """``J`` frames numbered 1..N: the numbering go-lumber and Logstash both accept (§1.3)."""
    pack = _HDR_2U32.pack
    parts: list[bytes] = []
    append = parts.append
    for seq, p in enumerate(payloads, 1):
        append(pack(V2, JSON, seq, len(p)))
        append(p)
    return b"".join(parts)


def encode_batch(payloads: Sequence[bytes], level: int = 3) -> bytes:
    """One window: ``W(N)`` uncompressed, then N ``J`` frames, zlib-wrapped when level > 0.

    An empty window is refused: go-lumber never ACKs one (§1.3, §6).
    """
    if not payloads:
        raise ValueError("an empty window is never sent (go-lumber does not ACK it)")
    if len(payloads) > MAX_SIGNED:
        raise ValueError("window too large")
    frames = encode_json_frames(payloads)
    head = encode_window(len(payloads))
    if level > 0:
        return head + encode_compressed(frames, level)
    return head + frames


# -- client side: ACKs --------------------------------------------------------------------


class AckReader:
    """Server bytes → ACK sequence numbers. Anything but a ``'2' 'A'`` frame is an error.

    Logstash writes version ``'2'`` even on v1 connections and go-lumber's client
    refuses any other header (§1.3), so this is strict too.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[int]:
        """The ACKs in ``data`` (with what was buffered), in order. A foreign frame raises
        :class:`ProtocolError` only after the ACKs before it were taken: an ACK that arrived
        ahead of the garbage still acknowledges its window."""
        buf = self._buf
        buf += data
        n = len(buf) - len(buf) % 6
        off = 0
        try:
            while off < n:
                version, code, seq = _HDR_U32.unpack_from(buf, off)
                if version != V2 or code != ACK:
                    raise ProtocolError(f"expected an ACK frame, got bytes {bytes(buf[off : off + 6])!r}")
                off += 6
                yield seq
        finally:
            del buf[:off]
        # Validate a partial header early: a foreign frame is an error now, not later.
        if buf and (buf[0] != V2 or (len(buf) > 1 and buf[1] != ACK)):
            raise ProtocolError(f"expected an ACK frame, got bytes {bytes(buf)!r}")

    @property
    def buffered(self) -> int:
        return len(self._buf)


class WindowAcks:
    """ACK bookkeeping for one window of N events numbered 1..N (lumberjack.md §1.3, §6).

    ``0`` and values below N are progress (Logstash's and go-lumber's keep-alives, the old
    Ruby server's partial ACKs); N means done; above N is a protocol error. ACKs never
    move backwards: a keep-alive ``0`` after a partial ACK keeps what was acknowledged.
    """

    __slots__ = ("acked", "size")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("a window holds at least one event")
        self.size = size
        self.acked = 0

    def on_ack(self, seq: int) -> bool:
        """Record one ACK; True when the window is complete."""
        if seq > self.size:
            raise ProtocolError(f"invalid sequence number received (seq={seq}, expected={self.size})")
        if seq > self.acked:
            self.acked = seq
        return self.acked == self.size

    @property
    def done(self) -> bool:
        return self.acked == self.size


# -- server side: frames ------------------------------------------------------------------


class FrameDecoder:
    """Client bytes → frames, validated as strictly as Logstash and go-lumber do (§1.1–1.4).

    ``C`` payloads are inflated (up to ``max_inflated`` bytes) and must hold only complete
    frames; nested ``C`` is allowed, as both servers allow it. ``W`` inside ``C`` is
    refused like go-lumber does. ``accept_acks`` lets a client-side tool decode ``A``.
    """

    def __init__(
        self,
        *,
        max_payload: int = 64 * 1024 * 1024,
        max_inflated: int = 256 * 1024 * 1024,
        max_window: int = 0,
        accept_acks: bool = False,
    ) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_payload = max_payload
        self.max_inflated = max_inflated
        self.max_window = max_window
        self.accept_acks = accept_acks
        self._pending: deque[Frame] = deque()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def __iter__(self) -> Iterator[Frame]:
        while True:
            f = self.next_frame()
            if f is None:
                return
            yield f

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None when more bytes are needed."""
        if self._pending:
            return self._pending.popleft()
        frames, used = self._parse(self._buf, self._pos, top=True, limit=1)
        if used == self._pos:
            return None
        self._pos = used
        # Compact lazily so the buffer does not grow without bound.
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        if not frames:  # only empty C frames were consumed
            return self.next_frame()
        self._pending.extend(frames[1:])
        return frames[0]

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def _parse(self, buf: bytes | bytearray, pos: int, *, top: bool, limit: int) -> tuple[list[Frame], int]:
        """Parse frames from ``buf[pos:]``; returns the frames and the new position.

        At the top level, at most ``limit`` frames (a ``C`` counts once but yields many)
        and an incomplete frame rolls back to its start; inside ``C`` everything must
        parse and an incomplete frame is an error.
        """
        out: list[Frame] = []
        end = len(buf)
        while pos < end and (not top or len(out) < limit):
            start = pos
            if end - pos < 2:
                version = buf[pos]
                if version not in (V1, V2):
                    raise ProtocolError(f"invalid protocol version byte {version:#04x}")
                if not top:
                    raise ProtocolError("incomplete frame in compressed content")
                return out, start
            version, code = buf[pos], buf[pos + 1]
            if version not in (V1, V2):
                raise ProtocolError(f"invalid protocol version byte {version:#04x}")
            frame: Frame | None = None
            nested: list[Frame] | None = None
            if code == WINDOW:
                if not top:
                    raise ProtocolError("window frame inside compressed content")
                if end - pos < 6:
                    return out, start
                (size,) = _U32.unpack_from(buf, pos + 2)
                if self.max_window and size > self.max_window:
                    raise ProtocolError(f"window size {size} exceeds the maximum {self.max_window}")
                frame = Window(version, size)
                pos += 6
            elif code == JSON:
                if version != V2:
                    raise ProtocolError("JSON frame with protocol version 1")
                if end - pos < 10:
                    if not top:
                        raise ProtocolError("incomplete frame in compressed content")
                    return out, start
                seq, length = _J_HDR.unpack_from(buf, pos + 2)
                if length == 0 or length > MAX_SIGNED:
                    raise ProtocolError(f"invalid json length {length}")
                if length > self.max_payload:
                    raise ProtocolError(f"json payload of {length} bytes exceeds {self.max_payload}")
                if end - pos - 10 < length:
                    if not top:
                        raise ProtocolError("incomplete frame in compressed content")
                    return out, start
                frame = JsonData(seq, bytes(buf[pos + 10 : pos + 10 + length]))
                pos += 10 + length
            elif code == DATA:
                r = self._parse_kv(buf, pos)
                if r is None:
                    if not top:
                        raise ProtocolError("incomplete frame in compressed content")
                    return out, start
                frame, pos = r
            elif code == COMPRESSED:
                if end - pos < 6:
                    if not top:
                        raise ProtocolError("incomplete frame in compressed content")
                    return out, start
                (length,) = _U32.unpack_from(buf, pos + 2)
                if length > self.max_payload:
                    raise ProtocolError(f"compressed payload of {length} bytes exceeds {self.max_payload}")
                if end - pos - 6 < length:
                    if not top:
                        raise ProtocolError("incomplete frame in compressed content")
                    return out, start
                raw = self._inflate(bytes(buf[pos + 6 : pos + 6 + length]))
                nested, _ = self._parse(raw, 0, top=False, limit=0)
                pos += 6 + length
            elif code == ACK and self.accept_acks:
                if end - pos < 6:
                    return out, start
                (seq,) = _U32.unpack_from(buf, pos + 2)
                frame = Ack(version, seq)
                pos += 6
            else:
                raise ProtocolError(f"invalid frame type {code:#04x}")
            if nested is not None:
                out.extend(nested)
                if top and not nested:
                    # An empty C frame produces nothing; keep parsing.
                    continue
            elif frame is not None:
                out.append(frame)
        return out, pos

    def _parse_kv(self, buf: bytes | bytearray, pos: int) -> tuple[KVData, int] | None:
        end = len(buf)
        if end - pos < 10:
            return None
        seq, count = _J_HDR.unpack_from(buf, pos + 2)
        if count == 0 or count > MAX_SIGNED:
            raise ProtocolError(f"invalid pair count {count}")
        p = pos + 10
        pairs: list[tuple[bytes, bytes]] = []
        for _ in range(count):
            kv: list[bytes] = []
            for _ in range(2):
                if end - p < 4:
                    return None
                (n,) = _U32.unpack_from(buf, p)
                if n > self.max_payload:
                    raise ProtocolError(f"key/value of {n} bytes exceeds {self.max_payload}")
                p += 4
                if end - p < n:
                    return None
                kv.append(bytes(buf[p : p + n]))
                p += n
            pairs.append((kv[0], kv[1]))
        return KVData(seq, pairs), p

    def _inflate(self, data: bytes) -> bytes:
        d = zlib.decompressobj()
        try:
            raw = d.decompress(data, self.max_inflated)
        except zlib.error as exc:
            raise ProtocolError(f"invalid zlib stream: {exc}") from None
        if d.unconsumed_tail:
            raise ProtocolError(f"compressed content inflates beyond {self.max_inflated} bytes")
        if not d.eof:
            raise ProtocolError("truncated zlib stream in compressed frame")
        if d.unused_data:
            raise ProtocolError("trailing bytes after the zlib stream in compressed frame")
        return raw
