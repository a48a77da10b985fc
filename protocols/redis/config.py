"""Redis options and defaults (Packetbeat ``packetbeat.protocols: - type: redis``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ByteSize, ProtocolConfig, non_negative

DEFAULT_PORTS = (6379,)


@attrs.frozen
class RedisConfig(ProtocolConfig):
    #: Bytes of requests waiting for a reply per connection (0 = no limit); the oldest
    #: request is evicted past it.
    queue_max_bytes: ByteSize = attrs.field(default=ByteSize(1024 * 1024), validator=non_negative)
    #: Requests waiting for a reply per connection (0 = no limit).
    queue_max_messages: int = attrs.field(default=20000, validator=non_negative)
    #: Largest message whose content is kept; beyond it values are dropped (the message is
    #: still followed to its end, so pairing survives) and the event says so.
    max_message_size: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=non_negative)
