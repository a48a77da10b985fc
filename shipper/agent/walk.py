"""The optional C record walker (``_walk.c``) and a single process's replay through it.

``ext`` is the extension module, or None where it was not built (no C compiler when
installing) or ``WIREBEAT_PURE_PYTHON`` is set: then every reader keeps its Python loop,
with the same results. The extension walks a classic pcap file held in memory
(``CaptureFile.mapped``): for a worker of a replay (little-endian, Ethernet) it passes over
the records of other workers (``workers._read_pass``); for a single process (any byte order,
any link type) it cuts the file into decoder chunks and, with flows off, leaves out the pure
ACKs of Ethernet and Linux cooked frames that ``feed_many`` would only count and hands TCP
segments over parsed (``Decoder.feed_parsed``).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from protocols.compiled import PURE_PYTHON_ENV

if TYPE_CHECKING:
    from capture import CaptureFile
    from capture.pcapfile import PcapMap
    from protocols.decoder import Decoder

#: Records a C walk passes at most per call: between two calls the walk checks that the file
#: was not truncated under its mapping (``PcapMap.progress``).
WALK_LIMIT = 4096

ext: Any = None
if not os.environ.get(PURE_PYTHON_ENV):
    try:
        ext = importlib.import_module("shipper.agent._walk")
    except ImportError:
        pass


def walkable(reader: CaptureFile) -> PcapMap | None:
    """The file in memory if the extension can cut it into chunks: a classic pcap file
    (else None: iterate the reader)."""
    if ext is None:
        return None
    return reader.mapped()


def feeder(decoder: Decoder) -> Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]]:
    """The decoder's method for the chunks ``chunks`` cuts for it."""
    return decoder.feed_parsed if decoder.flows is None else decoder.feed_many


def chunks(
    m: PcapMap, decoder: Decoder, stop: threading.Event, size: int
) -> Generator[list[tuple[Any, ...]], None, None]:
    """Chunks of ``size`` packets from the mapped file for ``feeder(decoder)``, a decoder
    that ticks on the packets' own times. With flows off, the TCP segments of the decoder's
    inline path come parsed (``Decoder.feed_parsed``) and a pure ACK is left out, only before
    the decoder's next tick (which cannot come earlier than when the chunk was cut), so every
    tick happens at the packet it happens at when every packet is fed. The walk's end is
    counted and described as iteration would (``PcapMap.finish``); a stop counts what was
    walked."""
    flows_off = decoder.flows is None
    walker = ext.Walker(m.buf, 1, 0, flows_off, m.ts_mult, m.endian == ">", m.linktype, flows_off)
    m.on_close(walker.release)
    chunk = walker.chunk
    off = 24
    records = 0
    try:
        while not stop.is_set():
            if m.progress(off, records):
                walker.shrink(m.end)  # truncated under the mapping
            off, walked, packets = chunk(off, WALK_LIMIT, size, decoder.next_tick)
            records += walked
            if packets:
                yield packets
            if walked < WALK_LIMIT and len(packets) < size:
                m.finish(off, records)  # the end, or a record that is not whole
                return
        m.progress(off, records)
    finally:
        m.close()
