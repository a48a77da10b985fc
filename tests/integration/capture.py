"""Live capture that is really running before the workload starts.

``tests.helpers.tcpdump`` returns once tcpdump prints "listening on", but on this kernel
the first packets after that can still be missed. Probe with bare TCP connections to the
server until the capture file shows them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import tcpdump

PCAP_HEADER = 24


@contextlib.contextmanager
def live_capture(path: Path, port: int) -> Iterator[Path]:
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
