"""Idempotency keys of creating requests: the answer a key got, kept for a while.

A key's record is written in the same transaction as what the request created (the jobs, a
retried job's save): a job never exists without its key record, nor a record without its job.
Requests that create nothing stored (an upload grant) keep their answer's body instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class IdempotentRequest:
    """A creating request that carries an ``Idempotency-Key``.

    ``endpoint`` names what was asked (``POST /api/v1/ai-jobs``), ``fingerprint`` the request's
    body (a digest): the same key with another endpoint or body is a conflict, not a replay.
    """

    owner_id: str
    key: str
    endpoint: str
    fingerprint: str

    def answered(self, *, now: datetime, ttl_s: float, resource_id: str | None = None,
                 body: Mapping[str, Any] | None = None) -> KeptAnswer:
        return KeptAnswer(owner_id=self.owner_id, key=self.key, endpoint=self.endpoint,
                          fingerprint=self.fingerprint, resource_id=resource_id,
                          body=dict(body) if body is not None else None,
                          created_at=now, expires_at=now + timedelta(seconds=ttl_s))


@dataclass(frozen=True, kw_only=True)
class KeptAnswer:
    """What a key's first request answered: the resource it created (a job or batch id, re-read
    on replay) or, for a request that stored nothing else, the answer's body itself."""

    owner_id: str
    key: str
    endpoint: str
    fingerprint: str
    resource_id: str | None
    body: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime

    def conflict(self, request: IdempotentRequest) -> str | None:
        """Why ``request`` may not replay this answer (``None``: it may)."""
        if request.endpoint != self.endpoint:
            return f"this Idempotency-Key was first used for {self.endpoint}, not {request.endpoint}"
        if request.fingerprint != self.fingerprint:
            return "this Idempotency-Key was first used with a different request body"
        return None


class IdempotencyKeys(Protocol):
    """Kept answers, one per (owner, key) while unexpired. Job repositories write them too, in
    the job's own transaction (``add``/``save`` with ``answer=``)."""

    def find(self, owner_id: str, key: str, *, now: datetime) -> KeptAnswer | None:
        """The unexpired answer kept under the owner's key, or ``None``."""
        ...

    def add(self, answer: KeptAnswer) -> None:
        """Keep ``answer`` (replacing an expired one of the same key); raises
        :class:`IdempotencyKeyTaken` while another unexpired answer holds the key."""
        ...

    def purge(self, *, now: datetime) -> int:
        """Delete every answer expired at ``now``; how many were deleted."""
        ...
