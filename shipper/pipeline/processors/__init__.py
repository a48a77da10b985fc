"""libbeat's processors, compiled once from the config into plain callables.

:func:`compile_list` turns a ``processors:`` list into one function (event dict in, event
dict or None out); :class:`Processing` holds the chains of a run (global, per protocol,
flows) and applies them in libbeat's order. See ``docs/processors.md``.
"""

from __future__ import annotations

from shipper.pipeline.processors import (  # noqa: F401  (each module registers its processors)
    actions,
    dissect,
    dns,
    hostmeta,
    mime,
    process,
    script,
    transform,
)
from shipper.pipeline.processors.base import (
    REGISTRY,
    UNSUPPORTED,
    Context,
    Processor,
    ProcessorError,
    build_list,
    compile_list,
)
from shipper.pipeline.processors.chain import Processing, run_global

__all__ = [
    "REGISTRY",
    "UNSUPPORTED",
    "Context",
    "Processing",
    "Processor",
    "ProcessorError",
    "build_list",
    "compile_list",
    "run_global",
]
