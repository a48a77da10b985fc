"""ICMP options (Packetbeat ``packetbeat.protocols: - type: icmp``).

ICMP has no ports; ``send_request``/``send_response`` are accepted like Packetbeat does
(it has no raw request or response to send). ``transaction_timeout`` (10s) is how long an
echo (or timestamp, information, address mask) request waits for its reply.
"""

from __future__ import annotations

import attrs

from protocols.common.config import ProtocolConfig

DEFAULT_PORTS: tuple[int, ...] = ()


@attrs.frozen
class IcmpConfig(ProtocolConfig):
    #: wirebeat: requests waiting for a reply (all hosts together); past it the oldest is
    #: published as unanswered, as on expiry.
    max_pending: int = attrs.field(default=100_000)

    @max_pending.validator
    def _positive(self, _attr: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"must be >= 1, got {value!r}")
