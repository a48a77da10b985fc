"""Periodic metrics (libbeat's "Non-zero metrics in the last 30s" line) and snapshots."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("monitoring")

Source = Callable[[], dict[str, int]]


class Monitor:
    """Collects counters from several sources; logs the non-zero deltas every period."""

    def __init__(self, period: float = 30.0) -> None:
        self.period = period
        self.sources: dict[str, Source] = {}
        self._last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.monotonic()

    def add(self, name: str, source: Source) -> None:
        self.sources[name] = source

    def snapshot(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for prefix, src in list(self.sources.items()):
            try:
                values = src()
            except Exception as exc:  # a broken source must not stop the others
                log.debug("metrics source %s failed: %r", prefix, exc)
                continue
            for k, v in values.items():
                out[f"{prefix}.{k}" if prefix else k] = v
        return out

    def deltas(self) -> dict[str, int]:
        snap = self.snapshot()
        d = {k: v - self._last.get(k, 0) for k, v in snap.items() if v - self._last.get(k, 0)}
        self._last = snap
        return d

    def log_now(self, final: bool = False) -> None:
        d = self.deltas()
        if final:
            log.info("Total metrics", extra={"fields": {"monitoring": {"metrics": self._last}}})
        elif d:
            log.info(
                "Non-zero metrics in the last %ds",
                int(self.period),
                extra={"fields": {"monitoring": {"metrics": d}}},
            )

    def start(self) -> None:
        if self.period <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.log_now()

    def stop(self) -> None:
        self._stop.set()
