"""Captures the live tests record from real servers, kept for the Packetbeat comparison.

A live test opts in by recording through ``tests.integration.capture.live_capture(...,
protocol=...)`` (TCP servers on one port), or by calling ``record_for_oracle`` once its own
capture is closed. ``tests/oracle/test_live_recordings.py`` runs last in the session
(``tests/conftest.py`` moves it there) and compares every recording with Packetbeat 9.3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Recording:
    pcap: Path
    #: ``packetbeat.protocols`` entries (``type``, ``ports`` and options) that decode it.
    protocols: tuple[Mapping[str, Any], ...]
    label: str

    @property
    def types(self) -> set[str]:
        return {str(p["type"]) for p in self.protocols}


RECORDINGS: list[Recording] = []


def record_for_oracle(pcap: str | Path, protocols: Sequence[Mapping[str, Any]], label: str = "") -> None:
    """Register a finished live capture: ``protocols`` as in packetbeat.yml, e.g.
    ``[{"type": "redis", "ports": [port]}]``. The same file may be registered several times
    with different protocol options (Thrift's transport types) under different labels."""
    path = Path(pcap)
    entry = Recording(path, tuple(dict(p) for p in protocols), label or path.name)
    if entry.label in {r.label for r in RECORDINGS}:
        entry = Recording(path, entry.protocols, f"{entry.label}#{len(RECORDINGS)}")
    RECORDINGS.append(entry)
