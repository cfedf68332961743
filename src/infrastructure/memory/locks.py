from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

from src.application.ports import Lock
from src.application.ports.clock import Clock


class InMemoryIdempotency:
    """Token locks with a TTL on the given clock, like ``SET NX PX`` plus compare-and-delete."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._held: dict[str, tuple[str, datetime]] = {}
        self._mutex = threading.Lock()

    def acquire(self, key: str, *, ttl_ms: int) -> Lock | None:
        with self._mutex:
            if self._holder(key) is not None:
                return None
            token = secrets.token_hex(16)
            self._held[key] = (token, self._expiry(ttl_ms))
            return Lock(key, token)

    def extend(self, lock: Lock, *, ttl_ms: int) -> bool:
        with self._mutex:
            if self._holder(lock.key) != lock.token:
                return False
            self._held[lock.key] = (lock.token, self._expiry(ttl_ms))
            return True

    def release(self, lock: Lock) -> bool:
        with self._mutex:
            if self._holder(lock.key) != lock.token:
                return False
            del self._held[lock.key]
            return True

    def is_held(self, key: str) -> bool:
        with self._mutex:
            return self._holder(key) is not None

    def _holder(self, key: str) -> str | None:
        entry = self._held.get(key)
        if entry is None:
            return None
        token, expires = entry
        if self.clock.now() >= expires:
            del self._held[key]
            return None
        return token

    def _expiry(self, ttl_ms: int) -> datetime:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        return self.clock.now() + timedelta(milliseconds=ttl_ms)
