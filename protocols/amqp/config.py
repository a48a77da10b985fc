"""AMQP options and defaults (Packetbeat ``packetbeat.protocols: - type: amqp``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ByteSize, ProtocolConfig, non_negative, positive

DEFAULT_PORTS = (5672,)


@attrs.frozen
class AmqpConfig(ProtocolConfig):
    #: Bytes of a message body shown in ``request``/``response``; longer ones end in `` [...]``.
    max_body_length: int = attrs.field(default=1000)
    #: Decode the content properties (content type, headers, delivery mode, ...).
    parse_headers: bool = True
    #: Decode the ``arguments`` table of declare, bind and consume methods.
    parse_arguments: bool = True
    #: Leave out connection.start/tune/open, channel.open/flow, basic.qos and normal closes.
    hide_connection_information: bool = True
    #: Largest method or content-header frame decoded (Packetbeat's stream limit, 10 MiB);
    #: body frames are never buffered, whatever their size.
    max_frame_size: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=positive)
    #: Channels with a request waiting for its reply, per connection; past it the oldest
    #: request is dropped (counted).
    max_pending_requests: int = attrs.field(default=1024, validator=non_negative)
