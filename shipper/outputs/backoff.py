"""Exponential back-off as a swappable policy (tenacity's wait strategies)."""

from __future__ import annotations

from typing import Any

import tenacity


class Backoff:
    """``next()`` returns the next delay; ``reset()`` after a success (libbeat's WithBackoff)."""

    def __init__(self, init: float = 1.0, maximum: float = 60.0, jitter: bool = True) -> None:
        self.jitter = jitter
        self.init = max(0.0, init)
        self.maximum = max(self.init, maximum)
        wait: Any = tenacity.wait_exponential(
            multiplier=self.init, min=self.init, max=self.maximum, exp_base=2
        )
        if jitter:
            wait = wait + tenacity.wait_random(0, self.init / 2)
        self._wait = wait
        self.attempt = 0

    def next(self) -> float:
        self.attempt += 1
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = self.attempt
        return float(min(self._wait(state), self.maximum * 1.5))

    def reset(self) -> None:
        self.attempt = 0

    def clone(self) -> Backoff:
        """The same policy with its own state (one per connection)."""
        return Backoff(self.init, self.maximum, self.jitter)
