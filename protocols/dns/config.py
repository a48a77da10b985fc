"""DNS options and defaults (Packetbeat ``packetbeat.protocols: - type: dns``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ProtocolConfig, non_negative

DEFAULT_PORTS = (53,)


@attrs.frozen
class DnsConfig(ProtocolConfig):
    #: Publish the authority section's records as ``dns.authorities`` (the count is
    #: always there). Packetbeat's code default is false; its shipped yml sets true.
    include_authorities: bool = False
    #: Publish the additional section's records (OPT excluded) as ``dns.additionals``.
    include_additionals: bool = False
    #: Queries waiting for an answer, all flows together; past it the oldest is published
    #: unanswered (counted as ``dns.evicted_queries``). Not a Packetbeat option.
    max_pending: int = attrs.field(default=65536, validator=non_negative)
    #: Records kept per zone transfer (AXFR/IXFR over several messages); the count goes on.
    max_transfer_records: int = attrs.field(default=10000, validator=non_negative)
