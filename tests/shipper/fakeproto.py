"""A stand-in protocol plugin, so config tests can configure two protocols on one port
whatever decoders this checkout has. ``enable()`` registers it as ``echoproto``."""

from __future__ import annotations

from typing import ClassVar

from protocols import registry
from protocols.handler import Plugin

NAME = "echoproto"


class EchoPlugin(Plugin):
    name: ClassVar[str] = NAME
    default_ports: ClassVar[tuple[int, ...]] = (7,)


registry.register(EchoPlugin)


def enable() -> None:
    registry.register_module(NAME, __name__)
