"""How every part of the worker reports a failed queue or service call: count, log, back off."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from src.application.backoff import Backoff
from src.domain.errors import ReelqueueError
from src.infrastructure.observability.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class Outages:
    def __init__(self, *, backoff: Backoff, metrics: WorkerMetrics) -> None:
        self.backoff = backoff
        self.metrics = metrics

    def record(self, operation: str, exc: Exception, fields: Mapping[str, str] | None = None,
               *, back_off: bool = True) -> None:
        """``back_off=False`` for calls retried on their own schedule (the heartbeat's)."""
        self.metrics.queue_errors.labels(operation).inc()
        if back_off:
            self.backoff.failed()
        log.warning("%s failed (%s: %s); backing off %.1fs", operation, type(exc).__name__, exc,
                    self.backoff.delay_s(), extra=dict(fields or {}), exc_info=not _expected(exc))


def _expected(exc: Exception) -> bool:
    """Our own errors say enough in one line; anything else gets its traceback logged."""
    return isinstance(exc, ReelqueueError)
