"""The job state machine."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    QUEUED = "queued"
    """Recorded and waiting for a worker (also after a transient failure, for the next attempt)."""
    PROCESSING = "processing"
    """A worker holds the job and is running it."""
    WAITING_PROVIDER = "waiting_provider"
    """A remote provider accepted the job and is generating; no worker is busy with it."""
    SUCCEEDED = "succeeded"
    """Finished; the outputs are in storage."""
    FAILED = "failed"
    """Gave up: a permanent error, or every attempt failed. ``error`` says why."""
    CANCELLED = "cancelled"
    """Stopped on request; never run again unless retried."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    def can_become(self, target: JobStatus) -> bool:
        return target in TRANSITIONS[self]


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.CANCELLED}),
    JobStatus.PROCESSING: frozenset(
        {
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.WAITING_PROVIDER,
            JobStatus.QUEUED,  # a transient failure or a shutdown: try again later
        }
    ),
    JobStatus.WAITING_PROVIDER: frozenset(
        {JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    # A user's retry starts a new attempt of the same job.
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED}),
    JobStatus.SUCCEEDED: frozenset(),
}
