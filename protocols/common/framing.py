"""Cutting a byte stream into length-prefixed frames, bounded.

Shared by the MySQL packet and PostgreSQL message splitters: bytes that do not yet make
a whole frame wait in ``buf`` until ``need`` bytes are there; a frame larger than the
limit is handed over as its first ``prefix`` bytes and the rest is skipped (``skip``)
without being buffered.
"""

from __future__ import annotations


class FramedStream:
    __slots__ = ("buf", "need", "oversized", "prefix", "skip")

    def __init__(self, prefix: int = 64 << 10) -> None:
        self.buf = bytearray()
        self.need = 0
        self.skip = 0
        self.prefix = prefix
        #: Frames handed over cut to their prefix (the handler counts them).
        self.oversized = 0

    def reset(self) -> None:
        self.buf = bytearray()
        self.need = 0
        self.skip = 0

    @property
    def pending(self) -> int:
        return len(self.buf) + self.skip

    def _take(self, data: bytes) -> bytes | None:
        """Skip what an oversized frame left, join with what waits; None if still short."""
        if self.skip:
            if len(data) <= self.skip:
                self.skip -= len(data)
                return None
            data = data[self.skip :]
            self.skip = 0
        if self.buf:
            self.buf += data
            if len(self.buf) < self.need:
                return None
            data = bytes(self.buf)
            self.buf = bytearray()
        return data

    def _keep(self, data: bytes, pos: int, header: int) -> None:
        """Keep the unconsumed tail; at least a ``header`` is needed to go on."""
        if pos < len(data):
            self.buf = bytearray(data[pos:])
            if len(self.buf) < header:
                self.need = header
