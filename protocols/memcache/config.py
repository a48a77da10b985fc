"""memcache options and defaults (Packetbeat ``packetbeat.protocols: - type: memcache``).

The option names are Packetbeat's (``parseunknown``, ``maxvalues``, ``maxbytespervalue``,
``udptransactiontimeout``) and so are the defaults, taken from its code where the
reference config says otherwise (``udptransactiontimeout`` is 10s in the code; the
comments in packetbeat.reference.yml say 200 ms).
"""

from __future__ import annotations

import attrs

from protocols.common.config import ByteSize, Duration, ProtocolConfig, non_negative, positive

DEFAULT_PORTS = (11211,)


@attrs.frozen
class MemcacheConfig(ProtocolConfig):
    #: Accept text commands and responses the parser does not know (as ``UNKNOWN``, the
    #: line kept in ``memcache.request.line``) instead of dropping the stream.
    parseunknown: bool = False
    #: Values kept per message in ``memcache.*.values`` (base64): 0 none, -1 all, N up to N.
    maxvalues: int = 0
    #: Bytes kept of each value (0 or less: no limit but ``max_message_size``).
    maxbytespervalue: int = 0
    #: How long a UDP request waits for its reply (capture time); quiet and ``noreply``
    #: requests are published when it runs out.
    udptransactiontimeout: Duration = attrs.field(default=Duration(10.0), validator=non_negative)
    #: Longest text line, binary header (with extras and key) or buffered binary body
    #: (stat, version and counter replies); past it the stream is dropped (counted). Values
    #: are never buffered whole, so this does not limit their size. Also the most bytes a
    #: UDP message may be reassembled to.
    max_message_size: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=positive)
    #: Requests waiting for a reply per connection; past it the oldest is published unanswered.
    max_pending_requests: int = attrs.field(default=10000, validator=positive)
    #: UDP exchanges waiting for their messages; past it the oldest is published as it is.
    max_udp_transactions: int = attrs.field(default=10000, validator=positive)
