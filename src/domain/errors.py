"""One exception root for the whole library.

Adapters translate their drivers' errors into these with ``raise ... from exc``.
Whether a failure is worth retrying is a type: :class:`TransientError` or
:class:`PermanentError`.
"""

from __future__ import annotations

from collections.abc import Mapping


class ReelqueueError(Exception):
    """Root of every error raised by reelqueue."""


class DomainError(ReelqueueError):
    """A rule of the domain was broken."""


class IllegalTransition(DomainError):
    def __init__(self, job_id: str, current: str, target: str) -> None:
        super().__init__(f"job {job_id}: cannot go from {current} to {target}")
        self.job_id = job_id
        self.current = current
        self.target = target


class ValidationError(DomainError):
    """A request is invalid; ``fields`` maps each field to its messages."""

    def __init__(self, fields: Mapping[str, list[str] | str]) -> None:
        self.fields: dict[str, list[str]] = {
            name: [msgs] if isinstance(msgs, str) else list(msgs) for name, msgs in fields.items()
        }
        summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items())
        super().__init__(summary)


class JobNotFound(ReelqueueError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class ConcurrentUpdate(ReelqueueError):
    """A conditional update lost: the stored job was no longer in the expected state."""

    def __init__(self, job_id: str, expected: str, actual: str | None = None) -> None:
        detail = f", found {actual}" if actual else ""
        super().__init__(f"job {job_id}: expected status {expected}{detail}")
        self.job_id = job_id
        self.expected = expected
        self.actual = actual


class JobFailure(ReelqueueError):
    """Processing a job failed. Subclasses say whether trying again can help."""


class TransientError(JobFailure):
    """Worth retrying later: a network hiccup, a throttled provider, a busy service."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(JobFailure):
    """Retrying cannot help: bad input, a refused prompt, an unreadable file."""


class Interrupted(ReelqueueError):
    """Work stopped at a checkpoint because the job was cancelled or the worker is shutting down."""


class ServiceUnavailable(ReelqueueError):
    """A backing service (database, Redis, queue, storage) cannot be reached right now."""


class SubmissionOutcomeUnknown(PermanentError):
    """A paid submission may or may not have reached the provider; sending it again could pay twice."""


class QuotaExhausted(TransientError):
    """The provider refused a create because a quota is used up (Runway's rolling 24-hour cap,
    Luma's rate limit): nothing was created, so the job waits without spending an attempt."""


class OutputExpired(PermanentError):
    """A provider's output URL no longer serves the file (403/404/410): its signature expired.
    Fetching the task again may hand out a fresh URL."""


class IdempotencyKeyTaken(ReelqueueError):
    """Another request kept its answer under this idempotency key first (two requests raced):
    read that answer and replay it."""

    def __init__(self, owner_id: str, key: str) -> None:
        super().__init__("the idempotency key already has an answer")  # the key itself is not logged
        self.owner_id = owner_id
        self.key = key


class IdempotencyKeyReused(ReelqueueError):
    """An idempotency key came back with another endpoint or another request body."""

    def __init__(self, conflict: str) -> None:
        super().__init__(conflict)
        self.conflict = conflict
