"""Counters for drops and anomalies: every bounded buffer counts what it sheds."""

from __future__ import annotations


class Counters(dict[str, int]):
    """A dict of named monotonic counters (``tcp.gaps``, ``http.unmatched_responses`` ...)."""

    def incr(self, name: str, n: int = 1) -> None:
        self[name] = self.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        return dict(self)
