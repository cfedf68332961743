"""Retry decisions as types: retry after N seconds, or give up."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from src.domain.errors import TransientError

SQS_MAX_DELAY_S = 900


@dataclass(frozen=True)
class Retry:
    delay_s: int


@dataclass(frozen=True)
class GiveUp:
    reason: str


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped at ``max_delay_s``, for ``max_attempts`` attempts."""

    max_attempts: int = 5
    base_delay_s: float = 10.0
    max_delay_s: float = SQS_MAX_DELAY_S
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def decide(self, attempts: int, error: TransientError) -> Retry | GiveUp:
        """``attempts`` is how many attempts have been made, this one included."""
        if attempts >= self.max_attempts:
            return GiveUp(f"gave up after {attempts} attempts: {error}")
        return Retry(self.delay_s(attempts, at_least_s=error.retry_after_s or 0))

    def delay_s(self, attempts: int, *, at_least_s: float = 0) -> int:
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(attempts - 1, 0))
        jittered = ceiling / 2 + self.rng() * ceiling / 2  # "equal jitter": never less than half
        return int(min(self.max_delay_s, max(jittered, at_least_s, 1)))
