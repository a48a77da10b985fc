"""``output.console``: one event per line on stdout (JSON, or ``codec.format.string``)."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import attrs

from shipper.outputs.base import (
    CodecSettings,
    EventCodec,
    Output,
    OutputClosed,
    OutputContext,
    OutputError,
)


@attrs.frozen
class ConsoleConfig:
    enabled: bool = True
    #: libbeat's older spelling of ``codec.json.pretty``.
    pretty: bool = False
    codec: CodecSettings = CodecSettings()
    bulk_max_size: int = 2048


CONFIG = ConsoleConfig


class ConsoleOutput(Output):
    name = "console"

    def __init__(self, config: ConsoleConfig, ctx: OutputContext, stream: BinaryIO | None = None) -> None:
        self.config = config
        self.stats = ctx.stats
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.codec = EventCodec(config.codec, ctx.stats, pretty=config.pretty)
        self.batch_size = max(0, config.bulk_max_size)

    async def publish(self, events: list[dict[str, Any]]) -> int:
        out = self.stream
        data = b"".join(self.codec.batch(events)[0])
        try:
            out.write(data)
            out.flush()
            self.stats.incr("output.write_bytes", len(data))
        except BrokenPipeError:
            # The reader went away (``| head``): nothing can ever be written again.
            raise OutputClosed("stdout was closed by its reader") from None
        except ValueError as exc:  # the stream object itself was closed
            raise OutputClosed(f"stdout is closed: {exc}") from None
        except OSError as exc:
            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from exc
        return len(events)


def create(config: ConsoleConfig, ctx: OutputContext) -> ConsoleOutput:
    return ConsoleOutput(config, ctx)
