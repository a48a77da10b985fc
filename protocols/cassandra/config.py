"""Cassandra options and defaults (Packetbeat ``packetbeat.protocols: - type: cassandra``)."""

from __future__ import annotations

from typing import Any

import attrs

from protocols.cassandra.parser import OP_CODES
from protocols.common.config import ByteSize, ProtocolConfig, non_negative, one_of, positive

DEFAULT_PORTS = (9042,)


def _ops(_inst: Any, attribute: attrs.Attribute[Any], value: list[str]) -> None:
    for op in value:
        if not isinstance(op, str) or op.strip().upper() not in OP_CODES:
            raise ValueError(f"unknown frame op: {op!r}")


@attrs.frozen
class CassandraConfig(ProtocolConfig):
    #: Packetbeat's code defaults: request and response maps, each with its frame header.
    send_request: bool = True
    send_response: bool = True
    send_request_header: bool = True
    send_response_header: bool = True
    #: The compression of connections whose STARTUP was not seen. Packetbeat knows only
    #: ``snappy``; ``lz4`` is accepted too. Empty: whichever decodes the frame.
    compressor: str = attrs.field(default="", validator=one_of("", "snappy", "lz4"))
    #: Opcodes (``OPTIONS``, ``REGISTER``...) whose transactions are not published.
    ignored_ops: list[str] = attrs.field(factory=list, validator=_ops)
    #: Largest frame body decoded, also the limit on a decompressed body; larger frames keep
    #: their header and their body is skipped unbuffered (Packetbeat's stream limit, 10 MiB).
    max_frame_size: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=positive)
    #: Requests waiting for their response per connection; past it the oldest is dropped.
    max_pending_requests: int = attrs.field(default=10000, validator=non_negative)
