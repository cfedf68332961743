"""Retry decisions as types: retry after N seconds, or give up."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from src.application.backoff import ExponentialBackoff, Jitter
from src.application.queue_limits import MAX_DELAY_S
from src.domain.errors import TransientError


@dataclass(frozen=True)
class Retry:
    delay_s: int


@dataclass(frozen=True)
class GiveUp:
    reason: str


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with equal jitter (:mod:`src.application.backoff`), capped at
    ``max_delay_s``, for ``max_attempts`` attempts."""

    max_attempts: int = 5
    base_delay_s: float = 10.0
    max_delay_s: float = MAX_DELAY_S
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def decide(self, attempts: int, error: TransientError) -> Retry | GiveUp:
        """``attempts`` is how many attempts have been made, this one included."""
        if attempts >= self.max_attempts:
            return GiveUp(f"gave up after {attempts} attempts: {error}")
        return Retry(self.delay_s(attempts, at_least_s=error.retry_after_s or 0))

    def delay_s(self, attempts: int, *, at_least_s: float = 0) -> int:
        """The :class:`ExponentialBackoff` wait (equal jitter) after ``attempts`` attempts, at
        least ``at_least_s`` (the provider's Retry-After) and 1 s, at most ``max_delay_s``, in
        whole seconds (SQS delays are integers)."""
        backoff = ExponentialBackoff(base_s=self.base_delay_s, max_s=self.max_delay_s,
                                     jitter=Jitter.EQUAL, rng=self.rng)
        return int(min(self.max_delay_s, max(backoff.delay_s(attempts), at_least_s, 1)))
