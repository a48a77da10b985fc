"""Thrift options and defaults (Packetbeat ``packetbeat.protocols: - type: thrift``)."""

from __future__ import annotations

import attrs

from protocols.common.config import ProtocolConfig, non_negative, one_of, positive

DEFAULT_PORTS = (9090,)


@attrs.frozen
class ThriftConfig(ProtocolConfig):
    #: ``socket`` or ``framed``. Each connection's transport is detected from its first
    #: bytes when they say it unambiguously (a strict binary or compact header at offset
    #: 0 or 4); this setting decides only the ambiguous case (old non-strict binary).
    transport_type: str = attrs.field(default="socket", validator=one_of("socket", "framed"))
    #: ``binary`` or ``compact``; detected per connection the same way.
    protocol_type: str = attrs.field(default="binary", validator=one_of("binary", "compact"))
    #: .thrift files read once at start: field names replace ids, methods get a service.
    #: (The loader checks each file exists and is readable: ``path_kind``.)
    idl_files: list[str] = attrs.field(factory=list, metadata={"path_kind": "file"})
    string_max_size: int = attrs.field(default=200, validator=non_negative)
    collection_max_size: int = attrs.field(default=15, validator=non_negative)
    capture_reply: bool = True
    obfuscate_strings: bool = False
    drop_after_n_struct_fields: int = attrs.field(default=500, validator=positive)
