"""Job storage. Status changes are conditional: a save names the status it expects to replace."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from src.application.messages import JobMessage
from src.application.ports.idempotency_keys import KeptAnswer
from src.domain.jobs import AIJob, Job, VideoJob
from src.domain.status import JobStatus

J = TypeVar("J", bound=Job)


class JobRepository(Protocol[J]):
    def add(self, jobs: Sequence[J], messages: Sequence[JobMessage], *,
            answer: KeptAnswer | None = None) -> list[int]:
        """Insert jobs and their messages in one transaction (all or nothing).

        Returns the outbox entry ids of ``messages``, in order: the entries still to send. Empty
        when the adapter wrote the messages straight into the queue in that same transaction
        (the SQL lease queue in the jobs' database): they are already queued.

        ``answer``: the idempotency key's answer, kept in that same transaction; raises
        :class:`IdempotencyKeyTaken` (nothing written) while another answer holds the key.
        """
        ...

    def get(self, job_id: str) -> J:
        """The job, or :class:`JobNotFound` (also for a job of the other kind)."""
        ...

    def list(
        self, *, owner_id: str | None = None, status: JobStatus | None = None,
        batch_id: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[J]:
        """Newest first."""
        ...

    def save(self, job: J, *, expected: JobStatus, messages: Sequence[JobMessage] = (),
             answer: KeptAnswer | None = None) -> builtins.list[int]:  # ``list`` is a method here
        """Store ``job`` only if the stored one is still in status ``expected``.

        Raises :class:`ConcurrentUpdate` otherwise, so two racing workers cannot both win.
        ``messages`` (a retried job's new message) and ``answer`` (its idempotency key's) commit
        in the same transaction, only with a successful save; the return value is as for
        :meth:`add`.
        """
        ...


class VideoJobRepository(JobRepository[VideoJob], Protocol):
    pass


class AIJobRepository(JobRepository[AIJob], Protocol):
    pass


@dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    id: int
    message: JobMessage
    created_at: datetime


class Outbox(Protocol):
    """Messages committed with their jobs and not yet known to be sent."""

    def pending(self, *, limit: int, older_than: datetime | None = None) -> list[OutboxEntry]:
        ...

    def mark_sent(self, entry_ids: Sequence[int]) -> None:
        ...

    def add(self, messages: Sequence[JobMessage]) -> list[int]:
        """Record messages to send for jobs that already exist; returns their entry ids."""
        ...


class OutboxRelay(Protocol):
    """Takes committed outbox entries to the queue and marks them sent."""

    def hand_off(self, entries: Sequence[OutboxEntry]) -> None:
        """Send ``entries`` (committed, not yet sent) now or very soon.

        Never raises for a queue outage: an entry not sent stays pending in the outbox, where
        the reconciler finds it. An entry may be sent twice at worst, never lost.
        """
        ...
