"""Write classic pcap files (used by ``-dump``, the tests and the benchmarks)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import BinaryIO

from capture.errors import CaptureError


class PcapWriter:
    """Write frames to a pcap file with nanosecond timestamps (or microseconds if asked)."""

    def __init__(self, path: str, linktype: int, snaplen: int = 262144, nanosecond: bool = True) -> None:
        try:
            self._fh: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise CaptureError(f"cannot write {path}: {exc.strerror}") from exc
        self.linktype = linktype
        self.nanosecond = nanosecond
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._rec = struct.Struct("<IIII")
        self.packets = 0

    def write(self, ts_ns: int, frame: bytes, wire_len: int | None = None) -> None:
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not self.nanosecond:
            frac //= 1000
        n = len(frame)
        self._fh.write(self._rec.pack(sec, frac, n, n if wire_len is None else wire_len))
        self._fh.write(frame)
        self.packets += 1

    def write_all(self, packets: Iterable[tuple[int, bytes]]) -> None:
        for ts, frame in packets:
            self.write(ts, frame)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
