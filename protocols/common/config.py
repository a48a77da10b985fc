"""Config building blocks for protocol options (pure data; the loader lives in ``shipper``).

Protocol config classes are frozen attrs classes. Field types the loader understands:
``bool``, ``int``, ``float``, ``str``, ``list[...]``, ``dict[str, ...]``, nested attrs
classes, and the markers below (which parse Packetbeat's human forms such as ``10s`` or
``10MiB``). ``metadata={"key": ...}`` names a key that is not a Python identifier.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs

#: A duration in seconds; the config may say ``10s``, ``1m``, ``500ms``, ``1h`` or a number.
Duration = NewType("Duration", float)
#: A size in bytes; the config may say ``10MiB``, ``1KB``, ``512`` ...
ByteSize = NewType("ByteSize", int)


def port_list(value: Any) -> list[int]:
    return list(value)


def validate_ports(_inst: Any, attribute: attrs.Attribute[Any], value: list[int]) -> None:
    for p in value:
        if not isinstance(p, int) or isinstance(p, bool) or not 0 < p < 65536:
            raise ValueError(f"invalid port {p!r}")


def non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"requires value >= 0 (got {value!r})")


def positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"requires value > 0 (got {value!r})")


def one_of(*choices: str) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {value!r}")

    return check


@attrs.frozen
class ProtocolConfig:
    """Options every protocol accepts (``packetbeat.reference.yml``)."""

    enabled: bool = True
    ports: list[int] = attrs.field(factory=list, validator=validate_ports)
    send_request: bool = False
    send_response: bool = False
    transaction_timeout: Duration = attrs.field(default=Duration(10.0), validator=non_negative)
    keep_null: bool = False
    index: str = ""
    #: Extra fields and tags for this protocol's events (libbeat processors-lite).
    fields: dict[str, Any] = attrs.field(factory=dict)
    fields_under_root: bool = False
    tags: list[str] = attrs.field(factory=list)
    #: Accepted for compatibility; processors are applied by the shipper.
    processors: list[Any] = attrs.field(factory=list)
    #: Packetbeat: run this protocol only on ``interface.device``. wirebeat runs every
    #: protocol on every interface (a warning says so).
    interface: dict[str, Any] = attrs.field(factory=dict, metadata={"ignored": True})
