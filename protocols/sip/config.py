"""SIP options and defaults (Packetbeat ``packetbeat.protocols: - type: sip``).

Packetbeat's options keep their code defaults (``parse_authorization``, ``parse_body`` and
``keep_original`` on, ``transport_protocol`` udp). The limits below are wirebeat's own:
Packetbeat parses each UDP datagram and each TCP segment on its own and so never holds
more than one packet.
"""

from __future__ import annotations

from typing import Any

import attrs

from protocols.common.config import ByteSize, ProtocolConfig, positive

DEFAULT_PORTS = (5060,)


def _transport(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    # Packetbeat compares lower-cased and refuses anything else at startup.
    if not isinstance(value, str) or value.lower() not in ("tcp", "udp"):
        raise ValueError(f"unsupported transport_protocol: {value!r} (tcp or udp)")


@attrs.frozen
class SipConfig(ProtocolConfig):
    #: Parse the ``Authorization`` header into ``sip.auth.*`` and ``user.name``.
    parse_authorization: bool = True
    #: Parse an ``application/sdp`` body into ``sip.sdp.*``.
    parse_body: bool = True
    #: Keep the message as it was sent in ``event.original``.
    keep_original: bool = True
    #: Packetbeat writes this value into ``network.transport`` whatever the packet's
    #: transport; wirebeat accepts it and labels each event with the transport it really
    #: came over (docs/differences.md, sip/transport-from-packet).
    transport_protocol: str = attrs.field(default="udp", validator=_transport)
    #: Longest start line plus header block of a message over TCP; past it the stream is
    #: resynchronised at the next segment (counted as ``sip.headers_too_long``).
    max_header_size: ByteSize = attrs.field(default=ByteSize(64 * 1024), validator=positive)
    #: Largest body kept for a message over TCP; a longer one is skipped by its
    #: Content-Length without being buffered (counted as ``sip.oversized_messages``).
    max_message_size: ByteSize = attrs.field(default=ByteSize(1024 * 1024), validator=positive)
