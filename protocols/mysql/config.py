"""MySQL options and defaults (Packetbeat ``packetbeat.protocols: - type: mysql``)."""

from __future__ import annotations

import attrs

from protocols.common.config import Duration, ProtocolConfig, non_negative

DEFAULT_PORTS = (3306, 3307)


@attrs.frozen
class MysqlConfig(ProtocolConfig):
    #: Rows of a result set kept for ``response`` (the count is always exact).
    max_rows: int = attrs.field(default=10, validator=non_negative)
    #: Characters of one row kept for ``response``.
    max_row_length: int = attrs.field(default=1024, validator=non_negative)
    #: How long prepared statements are remembered per connection (capture time).
    statement_timeout: Duration = attrs.field(default=Duration(3600.0), validator=non_negative)
