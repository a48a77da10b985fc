"""The processor chains of one run, in libbeat's order (publisher/processing/default.go):

1. Packetbeat's own fields (the envelope: network.*, client/server, timestamps) and
   ``ignore_outgoing``;
2. ``tags`` then ``fields`` (global and per protocol);
3. the **per-protocol** ``processors`` (``packetbeat.protocols.<p>.processors``, and
   ``packetbeat.flows.processors`` for flow events) — errors are logged, the chain goes on;
4. ``agent.*``, ``ecs.version``, ``host.name`` (not overwriting what step 3 set);
5. the **global** ``processors`` — the first error ends them, the event is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from protocols.stats import Counters
from shipper.pipeline.processors.base import Context, Event, Processor, ProcessorError, compile_list, writes

log = logging.getLogger("processors")

#: Bugs (exceptions that are not a processor's reported failure) logged one by one.
LOGGED_BUGS = 5


class Processing:
    """Compiled chains: ``global_`` (may be None) and one per event ``type``."""

    def __init__(self, global_: Processor | None, per_type: dict[str, Processor], stats: Counters) -> None:
        self.global_ = global_
        self.per_type = per_type
        self.stats = stats
        self._bugs = 0
        #: The top-level keys any chain may change (None: any): what the envelope must
        #: give each event its own copy of.
        self.writes: frozenset[str] | None = writes(
            [p for p in (global_, *per_type.values()) if p is not None]
        )

    @classmethod
    def build(
        cls,
        global_cfg: Any,
        per_type_cfg: dict[str, tuple[str, Any]],
        ctx: Context,
    ) -> Processing | None:
        """Compile everything (ConfigError names the key path of a bad processor). None
        when no processor is configured anywhere: the pipeline's fast path."""
        glob = compile_list(global_cfg, "processors", ctx, group=False)
        per: dict[str, Processor] = {}
        for typ, (where, cfg) in per_type_cfg.items():
            p = compile_list(cfg, where, ctx, group=True)
            if p is not None:
                per[typ] = p
        if glob is None and not per:
            return None
        return cls(glob, per, ctx.stats)

    def client(self, typ: Any, evt: Event) -> Event | None:
        chain = self.per_type.get(typ) if isinstance(typ, str) else None
        if chain is None:
            return evt
        try:
            return chain(evt)
        except ProcessorError as exc:  # pragma: no cover - the group catches these itself
            return exc.event
        except Exception as exc:
            self._bug(exc)
            return evt

    def run_global(self, evt: Event) -> Event | None:
        chain = self.global_
        if chain is None:
            return evt
        try:
            return chain(evt)
        except ProcessorError as exc:
            self.stats.incr("processors.errors")
            log.debug("processor failed: %s", exc)
            return exc.event
        except Exception as exc:
            self._bug(exc)
            return evt

    def _bug(self, exc: BaseException) -> None:
        self.stats.incr("processors.internal_errors")
        if self._bugs < LOGGED_BUGS:
            self._bugs += 1
            log.warning(
                "a processor failed with an internal error (the event goes on unchanged by it): %s: %s",
                type(exc).__name__,
                exc,
                exc_info=exc if log.isEnabledFor(logging.DEBUG) else None,
            )


def run_global(processing: Processing | None, evt: Event) -> Event | None:
    return evt if processing is None else processing.run_global(evt)
