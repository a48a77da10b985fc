"""Live capture that is really running before the workload starts.

``tests.helpers.tcpdump`` returns once tcpdump prints "listening on", but on this kernel
the first packets after that can still be missed. Probe with bare TCP connections to the
server until the capture file shows them.

Every capture made here is registered for the suite's Packetbeat comparison
(``tests/oracle/recordings.py``): ``protocol`` and ``options`` say how packetbeat.yml decodes it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import tcpdump
from tests.oracle.recordings import record_for_oracle

PCAP_HEADER = 24


@contextlib.contextmanager
def live_capture(path: Path, port: int, *, protocol: str, **options: Any) -> Iterator[Path]:
    """Capture TCP traffic on ``port`` while the block runs; ``protocol`` (``http``, ``mysql``...)
    and ``options`` (packetbeat.yml protocol options) register it for the Packetbeat comparison."""
    with tcpdump(path, f"tcp port {port}", settle=1.0) as p:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
            time.sleep(0.2)
            if os.path.exists(path) and os.path.getsize(path) > PCAP_HEADER:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("tcpdump never captured the probe connections")
        yield p
    record_for_oracle(path, [{"type": protocol, "ports": [port], **options}])
