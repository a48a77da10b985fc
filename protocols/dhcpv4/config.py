"""DHCPv4 options and defaults (Packetbeat ``packetbeat.protocols: - type: dhcpv4``).

Packetbeat is the one protocol with ports in its code: a ``- type: dhcpv4`` entry without
``ports`` listens on 67 and 68, and a ``ports`` list replaces them. The decoder has no options
of its own (``send_request``/``send_response`` and ``transaction_timeout`` are accepted and,
as in Packetbeat, have no effect: every message is its own event).
"""

from __future__ import annotations

import attrs

from protocols.common.config import ProtocolConfig, validate_ports

#: Server and client ports (RFC 2131 §4.1), Packetbeat's code default and shipped config.
DEFAULT_PORTS = (67, 68)


@attrs.frozen
class Dhcpv4Config(ProtocolConfig):
    ports: list[int] = attrs.field(factory=lambda: list(DEFAULT_PORTS), validator=validate_ports)
