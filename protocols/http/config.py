"""HTTP options and defaults (Packetbeat ``packetbeat.protocols: - type: http``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ByteSize, ProtocolConfig, positive

DEFAULT_PORTS = (80, 8080, 8000, 5000, 8002)


def _lower_list(values: list[str]) -> list[str]:
    return [str(v).lower() for v in values]


@attrs.frozen
class HttpConfig(ProtocolConfig):
    #: Header names (case-insensitive) to put in ``http.*.headers``.
    send_headers: list[str] = attrs.field(factory=list, converter=_lower_list)
    send_all_headers: bool = False
    split_cookie: bool = False
    real_ip_header: str = attrs.field(default="", converter=lambda v: str(v).lower())
    include_body_for: list[str] = attrs.field(factory=list, converter=_lower_list)
    include_request_body_for: list[str] = attrs.field(factory=list, converter=_lower_list)
    include_response_body_for: list[str] = attrs.field(factory=list, converter=_lower_list)
    hide_keywords: list[str] = attrs.field(factory=list, converter=_lower_list)
    redact_authorization: bool = False
    redact_headers: list[str] = attrs.field(factory=list, converter=_lower_list)
    decode_body: bool = True
    max_message_size: ByteSize = attrs.field(default=ByteSize(10 * 1024 * 1024), validator=positive)
