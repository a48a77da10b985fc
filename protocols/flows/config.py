"""Flow options (``packetbeat.flows``) in the form the flow table uses: integer nanoseconds."""

from __future__ import annotations

import attrs

NS = 1_000_000_000


class FlowConfigError(ValueError):
    """Flow timing that Packetbeat rejects (``timeout`` < 1s, 0 < ``period`` < 1s)."""


@attrs.frozen
class FlowConfig:
    #: A flow idle longer than this (capture time) is reported ``final`` and forgotten.
    timeout_ns: int = 30 * NS
    #: Every flow is reported this often; ``<= 0`` (Packetbeat's ``-1s``): only when it ends.
    period_ns: int = 10 * NS
    #: ``enable_delta_flow_reports``: bytes and packets restart from zero after each report.
    delta: bool = False
    #: ``allow_mismatched_eth``: leave the MAC addresses out of the flow key.
    allow_mismatched_eth: bool = False
    #: wirebeat: most flows tracked at once; past it the oldest flow is reported and dropped.
    max_flows: int = 100_000
    #: The report clock starts at the next multiple of this after the first packet (Packetbeat: 10s).
    align_ns: int = 10 * NS

    def __attrs_post_init__(self) -> None:
        if self.timeout_ns < NS:
            raise FlowConfigError("timeout must be >= 1s")
        if 0 < self.period_ns < NS:
            raise FlowConfigError("period must be -1s (only final reports) or >= 1s")
        if self.max_flows < 1:
            raise FlowConfigError("max_flows must be >= 1")

    @classmethod
    def from_seconds(
        cls,
        timeout: float = 30.0,
        period: float = 10.0,
        *,
        delta: bool = False,
        allow_mismatched_eth: bool = False,
        max_flows: int = 100_000,
    ) -> FlowConfig:
        return cls(
            timeout_ns=round(timeout * NS),
            period_ns=round(period * NS),
            delta=delta,
            allow_mismatched_eth=allow_mismatched_eth,
            max_flows=max_flows,
        )
