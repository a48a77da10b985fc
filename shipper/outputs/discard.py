"""``output.discard``: acknowledge and drop (benchmarks, dry runs)."""

from __future__ import annotations

from typing import Any

import attrs

from shipper.outputs.base import Output, OutputContext


@attrs.frozen
class DiscardConfig:
    enabled: bool = True


CONFIG = DiscardConfig


class DiscardOutput(Output):
    name = "discard"
    batch_size = 4096

    def __init__(self) -> None:
        self.events = 0

    async def publish(self, events: list[dict[str, Any]]) -> int:
        self.events += len(events)
        return len(events)


def create(config: DiscardConfig, ctx: OutputContext) -> DiscardOutput:
    return DiscardOutput()
