"""``queue.disk``: a queue whose events survive a crash or restart until acknowledged.

Layout of ``queue.disk.path`` (default ``<path.data>/diskqueue``):

* ``NNNNNNNNNN.seg`` — append-only segment files of records ``u32 length, u32 crc32,
  JSON``. A new segment is started at every start and whenever the current one would
  exceed ``segment_size`` (default ``max_size / 10``, libbeat's default).
* ``state`` — the acknowledgement frontier ``(segment, offset)``: every record before it
  is acknowledged. Written with write-to-temp + rename after each acknowledgement.
* ``lock`` — an ``flock``, so two processes never share a queue.

Durability policy. Every ``put`` hands its record to the kernel with ``write(2)`` before
returning, so a process crash (SIGKILL, OOM kill, a bug) loses nothing that ``put``
accepted. ``fsync`` runs on segment roll, on close and at most once per
``FSYNC_INTERVAL`` (1 s) otherwise: a power loss or kernel crash may lose up to that
much, which bounds the cost (an fsync per event would cap the queue at a few thousand
events/s). After such a crash the ``state`` file may be older than the data: that only
resends acknowledged events (at-least-once); a torn record at the end of a segment is
detected by its length and CRC, cut off and counted (``queue.disk.corrupt_bytes``).

Space: ``max_size`` bounds the bytes of all segment files. A segment is deleted once all
its records are acknowledged. When full, ``put`` blocks (capture-file replay) or drops
and counts (``queue.dropped_full``, live capture), like the memory queue.

Acknowledgements may arrive out of order (several batches in flight); the frontier only
moves over a contiguous acknowledged prefix, so a restart resends what lies beyond it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from protocols.stats import Counters
from shipper.agent.config import ConfigError
from shipper.agent.settings import DiskQueueSettings
from shipper.outputs.base import EncodedEvent, json_default
from shipper.pipeline.queue import Entry, Queue, QueueClosed

log = logging.getLogger("diskqueue")

_REC = struct.Struct(">II")
_STATE = struct.Struct(">4sQQ")
_MAGIC = b"WBQ1"
FSYNC_INTERVAL = 1.0
READ_CHUNK = 1 << 20
MIN_SEGMENT = 64 * 1024


class DiskQueueError(ConfigError):
    """The queue directory cannot be used (reported like a config error: ``queue.disk: …``)."""

    def __init__(self, message: str) -> None:
        super().__init__("queue.disk", message)


class _Slot:
    """Where one handed-out record ends; ``done`` once acknowledged (or dropped)."""

    __slots__ = ("done", "end", "seg")

    def __init__(self, seg: int, end: int) -> None:
        self.seg = seg
        self.end = end
        self.done = False


class DiskQueue(Queue):
    def __init__(
        self,
        settings: DiskQueueSettings,
        data_path: Path | str,
        stats: Counters | None = None,
        *,
        clock: Any = time.monotonic,
    ) -> None:
        self.stats = stats if stats is not None else Counters()
        self.dir = Path(settings.path) if settings.path else Path(data_path) / "diskqueue"
        self.max_size = int(settings.max_size)
        if self.max_size <= 0:
            raise DiskQueueError("queue.disk.max_size must be > 0")
        seg = int(settings.segment_size) or self.max_size // 10
        self.segment_size = max(MIN_SEGMENT, min(seg, self.max_size))
        self.clock = clock
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self._empty = threading.Condition(self._lock)
        self._closed = False
        self._waiting = 0
        self._retry: deque[Entry] = deque()
        self._outstanding: deque[_Slot] = deque()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise DiskQueueError(f"cannot use disk queue directory {self.dir}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise DiskQueueError(f"disk queue {self.dir} is in use by another process") from None
        #: segment id → size in bytes (all segment files on disk).
        self._segments: dict[int, int] = {}
        self._count = 0
        self._open_existing()
        self._wseg = max(self._segments, default=self._ack_seg - 1) + 1
        self._wsize = 0
        self._wfd = self._create_segment(self._wseg)
        self._last_sync = self.clock()
        self._rfd: int | None = None
        self._rfd_seg = -1
        if self._count:
            log.info("disk queue %s: %d unacknowledged events from an earlier run", self.dir, self._count)
            self.stats.incr("queue.disk.restored", self._count)

    # -- startup --------------------------------------------------------------------------

    def _seg_path(self, seg: int) -> Path:
        return self.dir / f"{seg:010d}.seg"

    def _open_existing(self) -> None:
        ack_seg, ack_off = 0, 0
        try:
            raw = (self.dir / "state").read_bytes()
            magic, ack_seg, ack_off = _STATE.unpack(raw)
            if magic != _MAGIC:
                raise ValueError("bad magic")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, struct.error) as exc:
            log.warning("disk queue state file unreadable (%s); resending everything on disk", exc)
            ack_seg, ack_off = 0, 0
        ids = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        for sid in ids:
            path = self._seg_path(sid)
            if sid < ack_seg:
                path.unlink(missing_ok=True)
                continue
            start = ack_off if sid == ack_seg else 0
            size, n = self._scan(path, start)
            if size == 0 and n == 0 and start == 0:
                path.unlink(missing_ok=True)
                continue
            self._segments[sid] = size
            self._count += n
        if ack_seg not in self._segments:
            ack_off = 0
            ack_seg = min(self._segments, default=ack_seg)
        self._ack_seg, self._ack_off = ack_seg, ack_off
        self._rseg, self._roff = ack_seg, ack_off

    def _scan(self, path: Path, start: int) -> tuple[int, int]:
        """Validate records from ``start``; cut off a torn or corrupt tail. (size, records)."""
        data = path.read_bytes()
        pos, n = start, 0
        if start > len(data):
            return len(data), 0
        while pos + _REC.size <= len(data):
            length, crc = _REC.unpack_from(data, pos)
            body = data[pos + _REC.size : pos + _REC.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            pos += _REC.size + length
            n += 1
        if pos < len(data):
            self.stats.incr("queue.disk.corrupt_bytes", len(data) - pos)
            log.warning("disk queue: cutting %d bytes of a torn record off %s", len(data) - pos, path.name)
            with open(path, "r+b") as fh:
                fh.truncate(pos)
        return pos, n

    def _create_segment(self, seg: int) -> int:
        fd = os.open(self._seg_path(seg), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments[seg] = 0
        return fd

    # -- producer ---------------------------------------------------------------------------

    def _disk_bytes(self) -> int:
        return sum(self._segments.values())

    def put(self, event: Mapping[str, Any], block: bool = True, timeout: float | None = None) -> bool:
        if isinstance(event, EncodedEvent):
            body = event.json()
        else:
            body = orjson.dumps(event, default=json_default, option=orjson.OPT_NON_STR_KEYS)
        rec = _REC.pack(len(body), zlib.crc32(body)) + body
        with self._lock:
            if self._closed:
                raise QueueClosed("queue is closed")
            if len(rec) > self.max_size:
                self.stats.incr("queue.dropped_too_large")
                return False
            if self._disk_bytes() + len(rec) > self.max_size:
                if not block:
                    self.stats.incr("queue.dropped_full")
                    return False
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._disk_bytes() + len(rec) > self.max_size and not self._closed:
                    if self._abandoned():
                        self.stats.incr("queue.dropped_stopping")
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        self.stats.incr("queue.dropped_full")
                        return False
                    self._not_full.wait(self._room_wait(1.0 if remaining is None else min(remaining, 1.0)))
                if self._closed:
                    raise QueueClosed("queue is closed")
            if self._wsize and self._wsize + len(rec) > self.segment_size:
                self._roll()
            try:
                written = os.write(self._wfd, rec)
            except OSError as exc:
                written, err = 0, exc.strerror
            else:
                err = "short write"
            if written != len(rec):
                # Disk full or failing: drop and count, like a full queue; a partial record
                # is cut off (by its CRC) at the next start.
                self.stats.incr("queue.dropped_write_error")
                if self.stats["queue.dropped_write_error"] % 1000 == 1:
                    log.error("disk queue %s: write failed (%s); events are being dropped", self.dir, err)
                if written:
                    self._roll()
                return False
            self._wsize += len(rec)
            self._segments[self._wseg] = self._wsize
            self._count += 1
            self.stats.incr("queue.published")
            self._maybe_sync()
            if self._waiting:
                self._not_empty.notify()
            return True

    def _roll(self) -> None:
        os.fsync(self._wfd)
        os.close(self._wfd)
        self._wseg += 1
        self._wsize = 0
        self._wfd = self._create_segment(self._wseg)
        self._last_sync = self.clock()

    def _maybe_sync(self) -> None:
        now = self.clock()
        if now - self._last_sync >= FSYNC_INTERVAL:
            self._last_sync = now
            os.fsync(self._wfd)

    # -- consumer ---------------------------------------------------------------------------

    def _unread(self) -> bool:
        return (self._rseg, self._roff) < (self._wseg, self._wsize)

    def get(self, max_events: int, timeout: float | None = None) -> list[Entry]:
        with self._lock:
            deadline = time.monotonic() + (1.0 if timeout is None else timeout)
            while not self._retry and not self._unread() and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._waiting += 1
                try:
                    self._not_empty.wait(remaining)
                finally:
                    self._waiting -= 1
            limit = max_events if max_events > 0 else 4096
            batch: list[Entry] = []
            while self._retry and len(batch) < limit:
                batch.append(self._retry.popleft())
            if len(batch) < limit and self._unread():
                batch.extend(self._read(limit - len(batch)))
            return batch

    def _read(self, limit: int) -> list[Entry]:
        out: list[Entry] = []
        while len(out) < limit and self._unread():
            size = self._segments.get(self._rseg, 0)
            if self._roff >= size:
                if self._rseg >= self._wseg:
                    break
                self._rseg = min(s for s in self._segments if s > self._rseg)
                self._roff = 0
                continue
            if self._rfd_seg != self._rseg:
                if self._rfd is not None:
                    os.close(self._rfd)
                self._rfd = os.open(self._seg_path(self._rseg), os.O_RDONLY)
                self._rfd_seg = self._rseg
            assert self._rfd is not None
            chunk = os.pread(self._rfd, min(READ_CHUNK, size - self._roff), self._roff)
            pos = 0
            while len(out) < limit and pos + _REC.size <= len(chunk):
                length, _crc = _REC.unpack_from(chunk, pos)
                end = pos + _REC.size + length
                if end > len(chunk):
                    if pos == 0:  # a record larger than the chunk
                        chunk = os.pread(self._rfd, _REC.size + length, self._roff)
                        continue
                    break
                event = orjson.loads(chunk[pos + _REC.size : end])
                out.append(Entry(event, _Slot(self._rseg, self._roff + end)))
                self._outstanding.append(out[-1].key)
                pos = end
            self._roff += pos
        return out

    def _settle(self, entries: list[Entry]) -> None:
        for e in entries:
            e.key.done = True
        self._count -= len(entries)
        moved = False
        while self._outstanding and self._outstanding[0].done:
            s = self._outstanding.popleft()
            self._ack_seg, self._ack_off = s.seg, s.end
            moved = True
        if moved:
            self._write_state()
            self._collect()
        self._not_full.notify_all()
        if not self._count:
            self._empty.notify_all()

    def _write_state(self) -> None:
        tmp = self.dir / "state.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _STATE.pack(_MAGIC, self._ack_seg, self._ack_off))
            if self.clock() - self._last_sync >= FSYNC_INTERVAL:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.dir / "state")

    def _collect(self) -> None:
        """Delete segments whose records are all acknowledged."""
        for sid in sorted(self._segments):
            if sid > self._ack_seg:
                break
            full = sid < self._ack_seg or self._ack_off >= self._segments[sid]
            if not full:
                break
            if sid == self._wseg:
                if self._wsize == 0:
                    break
                self._roll()  # everything written is acknowledged: start afresh
            if self._rfd_seg == sid and self._rfd is not None:
                os.close(self._rfd)
                self._rfd, self._rfd_seg = None, -1
            self._seg_path(sid).unlink(missing_ok=True)
            del self._segments[sid]
            if self._rseg == sid:
                self._rseg = min(self._segments)
                self._roff = 0

    def ack(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            self.stats.incr("queue.acked", len(entries))
            self._settle(entries)

    def drop(self, entries: list[Entry], reason: str) -> None:
        if not entries:
            return
        with self._lock:
            self.stats.incr(f"queue.dropped_{reason}", len(entries))
            self._settle(entries)

    def nack(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            self._retry.extendleft(reversed(entries))
            self.stats.incr("queue.retried", len(entries))
            self._not_empty.notify()

    def close(self) -> None:
        """Stop accepting events; what is unacknowledged stays on disk for the next run."""
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    os.fsync(self._wfd)
                except OSError:
                    pass
            self._not_empty.notify_all()
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        with self._lock:
            return self._count

    def wait_empty(self, timeout: float | None = None) -> bool:
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._count:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._empty.wait(remaining if remaining is not None else 1.0)
            return True

    def release(self) -> None:
        """Close the files and the lock (tests; the process exit does the same)."""
        with self._lock:
            for fd in (self._wfd, self._rfd):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._rfd = None
            os.close(self._lock_fd)
