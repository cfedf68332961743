"""Exponential, capped, jittered waits after an outage (broker, database, Redis)."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """``delay_s()`` doubles with each consecutive failure up to ``max_s``; a success resets it.

    Full jitter: the wait is drawn between half the step and the step, so a fleet of workers
    that lost the same service does not come back in lockstep.
    """

    def __init__(self, *, base_s: float = 1.0, max_s: float = 60.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.rng = rng
        self.failures = 0

    def failed(self) -> None:
        self.failures += 1

    def succeeded(self) -> None:
        self.failures = 0

    @property
    def pending(self) -> bool:
        return self.failures > 0

    def delay_s(self) -> float:
        if not self.failures:
            return 0.0
        step_s = min(self.max_s, self.base_s * 2 ** (self.failures - 1))
        return float(step_s / 2 + step_s / 2 * self.rng())
