"""NFS options and defaults (Packetbeat ``packetbeat.protocols: - type: nfs``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ByteSize, Duration, ProtocolConfig, non_negative, positive

DEFAULT_PORTS = (2049,)


@attrs.frozen
class NfsConfig(ProtocolConfig):
    #: Packetbeat's NFS default (``protos/nfs/config.go``): calls wait a minute for a reply.
    transaction_timeout: Duration = attrs.field(default=Duration(60.0), validator=non_negative)
    #: Calls waiting for a reply, all connections together; past it the oldest is published
    #: unanswered (``nfs.evicted_calls``). Not a Packetbeat option.
    max_pending: int = attrs.field(default=65536, validator=non_negative)
    #: Bytes of each RPC record kept for decoding (the header and the start of the
    #: arguments); the rest of a large READ reply or WRITE call is skipped. Not a
    #: Packetbeat option.
    max_record_head: ByteSize = attrs.field(default=ByteSize(65536), validator=positive)
    #: A record (all its fragments) longer than this means the framing is lost (a lying
    #: fragment length); the stream then looks for the next record header. Packetbeat drops
    #: a TCP stream that buffers 10 MiB. Not a Packetbeat option.
    max_record_size: ByteSize = attrs.field(default=ByteSize(16 << 20), validator=positive)
