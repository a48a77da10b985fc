"""Network flows (``packetbeat.flows``): per-packet counters and periodic/final reports.

Flows see every packet (the decoder hands each frame to the table before decoding it) and
report on capture time; the reports come out of ``Decoder.feed/tick/flush`` with the
transactions, as event dicts with ``type: flow``.
"""

from protocols.flows.config import FlowConfig, FlowConfigError
from protocols.flows.report import encode_flow_id, flow_event
from protocols.flows.table import Flow, FlowTable

__all__ = ["Flow", "FlowConfig", "FlowConfigError", "FlowTable", "encode_flow_id", "flow_event"]
