"""MongoDB options and defaults (Packetbeat ``packetbeat.protocols: - type: mongodb``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ByteSize, ProtocolConfig, non_negative, positive

DEFAULT_PORTS = (27017,)


@attrs.frozen
class MongodbConfig(ProtocolConfig):
    #: Documents of a reply put in ``response`` (0 = all); past it a line ``[...]``.
    max_docs: int = attrs.field(default=10)
    #: Characters of each document in ``response`` (0 = no limit); longer ones end in `` ...``.
    max_doc_length: int = attrs.field(default=5000)
    #: Largest message decoded (Packetbeat's stream limit, 10 MiB); longer ones are skipped
    #: without being buffered. Also the limit on a compressed message's decompressed size.
    max_message_size: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=positive)
    #: Requests waiting for a reply per connection; past it the oldest is dropped (counted).
    max_pending_requests: int = attrs.field(default=10000, validator=non_negative)
