"""Measuring how much work a decoder does, without a clock.

Two counters make "linear time" a structural property a test can assert:

* Python lines executed (a ``sys.settrace`` line counter): every Python-level loop,
  queue scan or per-element step counts;
* bytes searched by ``find`` on the parsers' buffers: the parser modules' ``bytearray``
  is swapped for a subclass that counts what each search covers, and segments are fed
  as a ``bytes`` subclass that does the same (C-level rescans of a growing buffer show
  up here, not in the line count).

A budget turns a quadratic parser into a fast failure instead of a test that runs for
minutes: past it, ``WorkExceeded`` (a BaseException, so no ``except Exception`` in a
handler swallows it) stops the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, ModuleType
from typing import Any


class WorkExceeded(BaseException):
    pass


class Meter:
    def __init__(self, budget: int = 0) -> None:
        self.lines = 0
        self.scanned = 0
        self.budget = budget

    @property
    def work(self) -> int:
        return self.lines + self.scanned // 16

    def check(self) -> None:
        if self.budget and self.work > self.budget:
            raise WorkExceeded(f"more than {self.budget} units of work")


_METER: Meter | None = None


def _span(length: int, sub: Any, start: Any, end: Any, found: int) -> int:
    s = 0 if start is None else (start if start >= 0 else max(0, length + start))
    e = length if end is None else min(end if end >= 0 else length + end, length)
    if found >= 0:
        e = min(e, found + len(sub) if not isinstance(sub, int) else found + 1)
    return max(0, e - s)


class CountingBytearray(bytearray):
    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        found = super().find(sub, start, end)
        if _METER is not None:
            _METER.scanned += _span(len(self), sub, start, end, found)
            _METER.check()
        return found


class CountingBytes(bytes):
    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        found = super().find(sub, start, end)
        if _METER is not None:
            _METER.scanned += _span(len(self), sub, start, end, found)
            _METER.check()
        return found


@contextmanager
def metered(modules: list[ModuleType], budget: int = 0) -> Iterator[Meter]:
    """Count the work done inside the block (lines run, bytes searched in ``modules``'
    buffers)."""
    global _METER
    meter = Meter(budget)
    saved = {m: m.__dict__.get("bytearray") for m in modules}
    for m in modules:
        m.bytearray = CountingBytearray  # type: ignore[attr-defined]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            meter.lines += 1
            if meter.budget and meter.lines > meter.budget:
                raise WorkExceeded(f"more than {meter.budget} lines")
        return local

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        return local

    _METER = meter
    old = sys.gettrace()
    sys.settrace(trace)
    try:
        yield meter
    finally:
        sys.settrace(old)
        _METER = None
        for m, v in saved.items():
            if v is None:
                del m.bytearray  # type: ignore[attr-defined]
            else:
                m.bytearray = v  # type: ignore[attr-defined]
