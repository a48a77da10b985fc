"""``output.console``: one JSON event per line on stdout."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import attrs

from shipper.outputs.base import CodecSettings, Output, OutputContext, encode_event


@attrs.frozen
class ConsoleConfig:
    enabled: bool = True
    pretty: bool = False
    codec: CodecSettings = CodecSettings()
    bulk_max_size: int = 2048


CONFIG = ConsoleConfig


class ConsoleOutput(Output):
    name = "console"

    def __init__(self, config: ConsoleConfig, ctx: OutputContext, stream: BinaryIO | None = None) -> None:
        self.config = config
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.pretty = config.pretty or config.codec.json.pretty
        self.escape = config.codec.json.escape_html
        self.batch_size = config.bulk_max_size

    async def publish(self, events: list[dict[str, Any]]) -> int:
        out = self.stream
        pretty, escape = self.pretty, self.escape
        out.write(b"".join(encode_event(e, pretty, escape) + b"\n" for e in events))
        out.flush()
        return len(events)


def create(config: ConsoleConfig, ctx: OutputContext) -> ConsoleOutput:
    return ConsoleOutput(config, ctx)
