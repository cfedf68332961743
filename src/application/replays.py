"""Idempotency keys of creating requests: find the answer a key got before, keep the answer of
a request that creates no job (an upload grant), purge expired keys.

Job-creating requests keep their answer through :class:`JobService` (``request=``), in the
job's own transaction; this use case only reads those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from src.application.ports import Clock, IdempotencyKeys, IdempotentRequest, KeptAnswer
from src.domain.errors import IdempotencyKeyReused

MAX_KEY_LENGTH = 255


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an idempotency key (``None``: it can): 1-255 printable ASCII
    characters, not starting or ending with a space."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"must be 1 to {MAX_KEY_LENGTH} characters long"
    if any(not " " <= char <= "~" for char in key) or key != key.strip(" "):
        return "must be printable ASCII characters (no control characters, no leading or trailing space)"
    return None


class IdempotentRequests:
    def __init__(self, *, keys: IdempotencyKeys, clock: Clock, ttl_s: float) -> None:
        self.keys = keys
        self.clock = clock
        self.ttl_s = ttl_s

    def previous(self, request: IdempotentRequest) -> KeptAnswer | None:
        """The unexpired answer of this key, to replay; ``None`` for a new key.
        :class:`IdempotencyKeyReused` when the key came with another endpoint or body."""
        answer = self.keys.find(request.owner_id, request.key, now=self.clock.now())
        conflict = None if answer is None else answer.conflict(request)
        if conflict is not None:
            raise IdempotencyKeyReused(conflict)
        return answer

    def keep(self, request: IdempotentRequest, body: Mapping[str, Any]) -> KeptAnswer:
        """Keep ``body`` as the key's answer; :class:`IdempotencyKeyTaken` when a racing request
        with the same key kept its own first (then replay :meth:`previous`)."""
        answer = request.answered(now=self.clock.now(), ttl_s=self.ttl_s, body=body)
        self.keys.add(answer)
        return answer

    def purge(self) -> int:
        """Delete expired keys; how many."""
        return self.keys.purge(now=self.clock.now())
