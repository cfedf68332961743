from __future__ import annotations

import threading
from datetime import timedelta

from src.application.ports import Progress
from src.application.ports.clock import Clock


class InMemoryProgress:
    """Live progress per job with a TTL; percent never goes backwards within a stage."""

    def __init__(self, clock: Clock, *, ttl_s: int = 24 * 3600) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._items: dict[str, Progress] = {}
        self.history: dict[str, list[Progress]] = {}  # inspection helper for tests
        self._mutex = threading.Lock()

    def record(self, job_id: str, *, stage: str, percent: float, message: str = "") -> None:
        percent = max(0.0, min(100.0, float(percent)))
        with self._mutex:
            current = self._live(job_id)
            if current is not None and current.stage == stage and percent < current.percent:
                return
            item = Progress(stage=stage, percent=percent, message=message, updated_at=self.clock.now())
            self._items[job_id] = item
            self.history.setdefault(job_id, []).append(item)

    def read(self, job_id: str) -> Progress | None:
        with self._mutex:
            return self._live(job_id)

    def flush(self, job_id: str) -> Progress | None:
        return self.read(job_id)

    def _live(self, job_id: str) -> Progress | None:
        item = self._items.get(job_id)
        if item is not None and self.clock.now() - item.updated_at > timedelta(seconds=self.ttl_s):
            del self._items[job_id]
            return None
        return item
