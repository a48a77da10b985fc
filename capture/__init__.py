"""Sources of raw frames: capture files and live interfaces.

Every source is an iterator of ``(ts_ns, linktype, frame, wire_len)``.
"""

from capture.errors import CaptureError
from capture.pcapfile import CaptureFile, Packet, read_packets
from capture.pcapwriter import PcapWriter

__all__ = ["CaptureError", "CaptureFile", "Packet", "PcapWriter", "read_packets"]
