"""Exponential backoff with jitter: the one formula behind every wait after a failure.

For the ``n``-th consecutive failure (``n`` counts from 1; 0 or less counts as 1)::

    step_s  = min(max_s, base_s * 2 ** (n - 1))
    delay_s = step_s                                    Jitter.NONE
    delay_s = step_s / 2 + rng() * step_s / 2           Jitter.EQUAL  (half the step to the step)
    delay_s = rng() * step_s                            Jitter.FULL   (zero to the step)

``rng`` returns a float in [0, 1) (``random.random`` by default); pass a seeded generator's
``random`` method, or a constant, to make the waits reproducible. Jitter keeps a fleet of
workers that lost the same service from coming back in lockstep.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field


class Jitter(enum.Enum):
    NONE = "none"  # the step itself
    EQUAL = "equal"  # between half the step and the step: never much shorter than planned
    FULL = "full"  # between zero and the step: the widest spread


@dataclass(frozen=True, kw_only=True)
class ExponentialBackoff:
    """The wait after the ``n``-th consecutive failure (see the module's formula)."""

    base_s: float
    max_s: float
    jitter: Jitter = Jitter.EQUAL
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def step_s(self, failures: int) -> float:
        """``min(max_s, base_s * 2 ** (failures - 1))``, before jitter."""
        return float(min(self.max_s, self.base_s * 2 ** (max(failures, 1) - 1)))

    def delay_s(self, failures: int) -> float:
        step_s = self.step_s(failures)
        if self.jitter is Jitter.FULL:
            return step_s * self.rng()
        if self.jitter is Jitter.EQUAL:
            return step_s / 2 + step_s / 2 * self.rng()
        return step_s


class Backoff:
    """Counts consecutive failures of one service (broker, database, Redis); ``delay_s()`` is
    the :class:`ExponentialBackoff` wait (equal jitter) for the streak so far, 0 after a success.
    """

    def __init__(self, *, base_s: float = 1.0, max_s: float = 60.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.formula = ExponentialBackoff(base_s=base_s, max_s=max_s, jitter=Jitter.EQUAL, rng=rng)
        self.failures = 0

    def failed(self) -> None:
        self.failures += 1

    def succeeded(self) -> None:
        self.failures = 0

    @property
    def pending(self) -> bool:
        return self.failures > 0

    def delay_s(self) -> float:
        return self.formula.delay_s(self.failures) if self.failures else 0.0
