"""Backoff policies: how long to wait before attempt N+1."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class RetryStrategy(StrEnum):
    """How the delay grows between retries: not at all (no retries), linearly, exponentially."""

    NONE = "none"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how often a failed unit of work is tried again.

    ``max_retries`` counts retries, so a task runs at most ``max_retries + 1`` times.
    ``jitter`` spreads each delay uniformly over ``[delay * (1 - jitter), delay]``.
    """

    strategy: RetryStrategy = RetryStrategy.EXPONENTIAL
    max_retries: int = 3
    interval_ms: int = 1000
    backoff_rate: float = 2.0
    max_interval_ms: int = 30_000
    jitter: float = 0.2

    def allows(self, retries_done: int) -> bool:
        """True when another retry is permitted after ``retries_done`` retries."""
        return self.strategy is not RetryStrategy.NONE and retries_done < self.max_retries

    def delay_ms(self, retry_number: int, spread: float | None = None) -> float:
        """Delay before retry number ``retry_number`` (1-based). ``spread`` in [0, 1)
        places it within the jitter band (0: the full delay); None draws it at random.
        The engine passes a value derived from the execution, so replays agree."""
        if self.strategy is RetryStrategy.NONE:
            return 0.0
        base: float
        if self.strategy is RetryStrategy.LINEAR:
            base = self.interval_ms * retry_number
        else:
            base = self.interval_ms * self.backoff_rate ** (retry_number - 1)
        base = min(base, float(self.max_interval_ms))
        if self.jitter <= 0:
            return base
        r = random.random() if spread is None else spread
        return base * (1.0 - self.jitter * r)
