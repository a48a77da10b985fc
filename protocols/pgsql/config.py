"""PostgreSQL options and defaults (Packetbeat ``packetbeat.protocols: - type: pgsql``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ProtocolConfig, non_negative

DEFAULT_PORTS = (5432,)


@attrs.frozen
class PgsqlConfig(ProtocolConfig):
    #: Rows of a result kept for ``response`` (the count is always exact).
    max_rows: int = attrs.field(default=10, validator=non_negative)
    #: Characters of one row kept for ``response``.
    max_row_length: int = attrs.field(default=1024, validator=non_negative)
