from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Lock:
    key: str
    token: str


class Idempotency(Protocol):
    """A lock per job so a duplicate delivery never runs the job twice at once."""

    def acquire(self, key: str, *, ttl_ms: int) -> Lock | None:
        """Take the lock, or ``None`` if someone else holds it. It expires after ``ttl_ms``."""
        ...

    def extend(self, lock: Lock, *, ttl_ms: int) -> bool:
        """Renew the lock; ``False`` if it is no longer ours."""
        ...

    def release(self, lock: Lock) -> bool:
        """Free the lock only if we still hold it; ``False`` otherwise."""
        ...
