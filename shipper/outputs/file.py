"""``output.file``: ndjson files with size-based rotation, as libbeat 8.x names them.

The active file is ``<filename>-<YYYYMMDD>.ndjson``; rotating starts
``<filename>-<YYYYMMDD>-1.ndjson``, ``-2`` ... and only the newest ``number_of_files``
are kept.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from shipper.agent.config import PATH_KIND, at_least, between
from shipper.outputs.base import CodecSettings, EventCodec, Output, OutputContext, OutputError


def _filename(_inst: Any, _attr: Any, value: str) -> None:
    if "/" in value or value in (".", ".."):
        raise ValueError(f"must be a file name without '/' (got {value!r})")


@attrs.frozen
class FileConfig:
    enabled: bool = True
    #: The directory (created if missing; it, or the parent it is created in, must be writable).
    path: str = attrs.field(default="", metadata={PATH_KIND: "dir"})
    filename: str = attrs.field(default="", validator=_filename)
    #: libbeat: validate:"min=1".
    rotate_every_kb: int = attrs.field(default=10 * 1024, validator=at_least(1))
    #: libbeat's limits.
    number_of_files: int = attrs.field(default=7, validator=between(2, 1024))
    permissions: int = attrs.field(default=0o600, validator=between(0, 0o777))
    rotate_on_startup: bool = True
    codec: CodecSettings = CodecSettings()
    bulk_max_size: int = 2048


CONFIG = FileConfig


class FileOutput(Output):
    name = "file"

    def __init__(self, config: FileConfig, ctx: OutputContext) -> None:
        self.config = config
        self.stats = ctx.stats
        self.dir = Path(config.path or ctx.data_path)
        self.base = config.filename or ctx.index
        self.limit = config.rotate_every_kb * 1024
        self.batch_size = max(0, config.bulk_max_size)
        self.codec = EventCodec(config.codec, ctx.stats)
        self._fh: BinaryIO | None = None
        self._size = 0
        self.current: Path | None = None
        # Like libbeat, fail at startup (not by retrying forever) when the directory is unusable.
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.dir}: {exc.strerror}", retriable=False) from exc
        if not os.access(self.dir, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write to {self.dir}: Permission denied", retriable=False)

    def _pattern(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.base) + r"-(\d{8})(?:-(\d+))?\.ndjson$")

    def _existing(self) -> list[tuple[str, int, Path]]:
        pat = self._pattern()
        found = []
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                m = pat.match(p.name)
                if m:
                    found.append((m.group(1), int(m.group(2) or 0), p))
        return sorted(found)

    def _open_next(self) -> None:
        if self._fh is not None:
            self._fh.close()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.dir}: {exc.strerror}", retriable=False) from exc
        day = datetime.datetime.now().strftime("%Y%m%d")
        existing = self._existing()
        same_day = [n for d, n, _ in existing if d == day]
        if self.current is None and not self.config.rotate_on_startup and same_day:
            idx = max(same_day)
        else:
            idx = max(same_day) + 1 if same_day else 0
        name = f"{self.base}-{day}.ndjson" if idx == 0 else f"{self.base}-{day}-{idx}.ndjson"
        path = self.dir / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.config.permissions)
        except OSError as exc:
            raise OutputError(f"cannot open {path}: {exc.strerror}", retriable=False) from exc
        self._fh = os.fdopen(fd, "ab")
        self._size = path.stat().st_size
        self.current = path
        # Keep only the newest number_of_files.
        files = [p for _d, _n, p in self._existing()]
        for old in files[: max(0, len(files) - self.config.number_of_files)]:
            try:
                old.unlink()
            except OSError:
                pass

    async def publish(self, events: list[dict[str, Any]]) -> int:
        if self._fh is None:
            self._open_next()
        parts, sizes = self.codec.batch(events)
        data = b"".join(parts)
        if self._size + len(data) <= self.limit:
            self._write(data)  # no rotation within this batch: one write
        else:
            view = memoryview(data)
            off = 0
            for n in sizes:
                if self._size and self._size + n > self.limit:
                    self._open_next()
                self._write(view[off : off + n])
                off += n
        self.stats.incr("output.write_bytes", len(data))
        assert self._fh is not None
        self._fh.flush()
        return len(events)

    def _write(self, data: bytes | memoryview) -> None:
        assert self._fh is not None
        try:
            self._fh.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write {self.current}: {exc.strerror}") from exc
        self._size += len(data)

    async def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def create(config: FileConfig, ctx: OutputContext) -> FileOutput:
    return FileOutput(config, ctx)
