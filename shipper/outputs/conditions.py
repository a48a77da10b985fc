"""libbeat's conditions for the outputs (``output.kafka.topics[].when`` …): the pipeline's
condition engine (:mod:`shipper.pipeline.conditions`, the one ``processors`` use) behind
the small interface the selectors use — :func:`compile_condition` → :class:`Condition` with
``check(event) -> bool``, a bad condition raising ValueError with the reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipper.agent.config import ConfigError
from shipper.pipeline import conditions

Event = Mapping[str, Any]


class Condition:
    def __init__(self, check: Callable[[Event], bool], text: str) -> None:
        self.check = check
        self.text = text

    def __repr__(self) -> str:
        return f"Condition({self.text})"


def _as_dict(event: Event) -> dict[str, Any]:
    """The event as the plain dict conditions read (an EncodedEvent decodes once)."""
    if type(event) is dict:
        return event
    as_dict = getattr(event, "as_dict", None)
    if as_dict is not None:
        d: dict[str, Any] = as_dict()
        return d
    return {k: event[k] for k in event}


def compile_condition(raw: Any, where: str = "when") -> Condition:
    """Compile a libbeat condition; ValueError with libbeat's reason (and the key path)."""
    try:
        pred = conditions.compile_condition(raw, where)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None

    def check(event: Event) -> bool:
        return pred(_as_dict(event))

    return Condition(check, repr(raw))
