"""Logging in libbeat's manner: ECS JSON lines (or plain text), ``-e`` to stderr,
``-d selectors`` turning on debug for named loggers (``*`` for all)."""

from __future__ import annotations

import datetime
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

import orjson

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        doc: dict[str, Any] = {
            "log.level": record.levelname.lower(),
            "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "log.logger": record.name,
            "log.origin": {"file.name": f"{record.module}.py", "file.line": record.lineno},
            "message": record.getMessage(),
            "service.name": "wirebeat",
            "ecs.version": "1.6.0",
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            doc.update(extra)
        if record.exc_info:
            doc["error.stack_trace"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s\t%(levelname)s\t[%(name)s]\t%(message)s")


#: Loggers given the debug level by the last :func:`setup_logging` (``-d`` selectors).
_selected: set[str] = set()


_tracebacks = False


def tracebacks_enabled() -> bool:
    """``-d '*'``: internal errors come with their traceback."""
    return _tracebacks


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """stderr that may be a pipe whose reader is gone (``2>&1 | head``): stop writing
    instead of reporting a logging error for every record."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, BrokenPipeError | ValueError):
            self.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
            return
        super().handleError(record)


class _FileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file created with ``logging.files.permissions``."""

    def __init__(self, path: Path, *, permissions: int, **kw: Any) -> None:
        self.permissions = permissions
        super().__init__(path, **kw)

    def _open(self) -> Any:
        stream = super()._open()
        os.chmod(self.baseFilename, self.permissions)
        return stream


def setup_logging(
    *,
    level: str = "info",
    selectors: list[str] | None = None,
    to_stderr: bool = False,
    to_files: bool = True,
    json_format: bool = True,
    log_dir: Path | None = None,
    name: str = "wirebeat",
    rotate_bytes: int = 10 * 1024 * 1024,
    keep: int = 7,
    permissions: int = 0o600,
) -> None:
    global _tracebacks
    sels = {s.strip() for s in (selectors or []) if s.strip()}
    _tracebacks = "*" in sels
    # libbeat's -d: debug for the named selectors (each a logger and its children: -d
    # processors covers processors.script), '*' for all, info for the rest. The levels sit
    # on the loggers themselves, so `logger.isEnabledFor(DEBUG)` is true only for a
    # selected one and code can skip building a debug line at no cost (the protocols
    # read it once: `plugin.debug`). A name nothing logs under is harmless.
    for name in _selected:
        logging.getLogger(name).setLevel(logging.NOTSET)
    _selected.clear()
    base = _LEVELS.get(level, logging.INFO)
    if "*" in sels or (level == "debug" and not sels):
        lvl = logging.DEBUG
    else:
        lvl = min(base, logging.INFO) if sels else base
        for name in sels:
            logging.getLogger(name).setLevel(logging.DEBUG)
            _selected.add(name)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(lvl)
    fmt: logging.Formatter = JsonFormatter() if json_format else TextFormatter()
    handler: logging.Handler
    if to_stderr or not to_files or log_dir is None:
        handler = _StderrHandler(sys.stderr)
    else:
        log_dir.mkdir(parents=True, exist_ok=True)
        day = datetime.date.today().strftime("%Y%m%d")
        handler = _FileHandler(
            log_dir / f"{name}-{day}.ndjson", permissions=permissions, maxBytes=rotate_bytes, backupCount=keep
        )
    handler.setFormatter(fmt)
    root.addHandler(handler)
