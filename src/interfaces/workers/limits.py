"""Per-production-path concurrency limits of one worker process (``cinema=1,fashion=4``)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

from src.domain.paths import parse_path_limits as parse_path_limits  # where the rule lives


class PathSlots:
    """Counts running jobs per path; a path without a limit is only bound by the worker's pool."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._running: Counter[str] = Counter()
        self._mutex = threading.Lock()

    def try_take(self, path: str) -> bool:
        with self._mutex:
            limit = self.limits.get(path)
            if limit is not None and self._running[path] >= limit:
                return False
            self._running[path] += 1
            return True

    def give_back(self, path: str) -> None:
        with self._mutex:
            self._running[path] -= 1

    def running(self, path: str) -> int:
        with self._mutex:
            return self._running[path]
