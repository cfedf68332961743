from __future__ import annotations

import builtins
import itertools
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

from src.application.messages import JobMessage
from src.application.ports import KeptAnswer, OutboxEntry
from src.application.ports.clock import Clock
from src.application.queue_limits import MAX_BODY_BYTES
from src.domain.errors import ConcurrentUpdate, IdempotencyKeyTaken, JobNotFound, ReelqueueError
from src.domain.jobs import Job
from src.domain.status import JobStatus
from src.infrastructure.memory.queue import InMemoryBroker

J = TypeVar("J", bound=Job)


class InMemoryDatabase:
    """Jobs of every kind, the outbox and idempotency keys' answers, shared by the repositories
    built on it.

    With a ``broker``, messages committed with jobs go straight into it, as the SQL lease
    queue's do in the jobs' own database: no outbox entry, nothing left to send.
    """

    def __init__(self, clock: Clock, *, broker: InMemoryBroker | None = None) -> None:
        self.clock = clock
        self.broker = broker
        self.jobs: dict[str, Job] = {}
        self.outbox: dict[int, tuple[JobMessage, datetime, datetime | None]] = {}
        self.answers: dict[tuple[str, str], KeptAnswer] = {}
        self._ids = itertools.count(1)
        self.lock = threading.RLock()

    def commit_messages(self, messages: Sequence[JobMessage]) -> list[int]:
        """A job's messages, committed with it: queued at once, or outbox entries (their ids)."""
        if self.broker is None:
            return self.add_outbox(messages)
        for message in messages:  # sizes checked (check_queueable) before the job was written
            self.broker.send(message.queue, message.encode())
        return []

    def check_queueable(self, messages: Sequence[JobMessage]) -> None:
        """Refuse before anything is written, as the SQL queue's transaction would roll back."""
        if self.broker is not None and any(len(m.encode().encode()) > MAX_BODY_BYTES for m in messages):
            raise ReelqueueError(f"message body over {MAX_BODY_BYTES} bytes")

    def check_key_free(self, answer: KeptAnswer | None) -> None:
        """Refuse before anything is written while an unexpired answer holds the key."""
        if answer is None:
            return
        kept = self.answers.get((answer.owner_id, answer.key))
        if kept is not None and kept.expires_at > answer.created_at:
            raise IdempotencyKeyTaken(answer.owner_id, answer.key)

    def keep_answer(self, answer: KeptAnswer | None) -> None:
        if answer is not None:
            self.answers[(answer.owner_id, answer.key)] = answer

    def add_outbox(self, messages: Sequence[JobMessage]) -> list[int]:
        now = self.clock.now()
        ids = []
        for message in messages:
            entry_id = next(self._ids)
            self.outbox[entry_id] = (message, now, None)
            ids.append(entry_id)
        return ids


class InMemoryJobRepository(Generic[J]):
    def __init__(self, db: InMemoryDatabase, kind: type[J]) -> None:
        self.db = db
        self.kind = kind

    def add(self, jobs: Sequence[J], messages: Sequence[JobMessage], *,
            answer: KeptAnswer | None = None) -> list[int]:
        with self.db.lock:
            self.db.check_key_free(answer)
            ids = [job.id for job in jobs]
            if len(set(ids)) != len(ids) or any(i in self.db.jobs for i in ids):
                raise ReelqueueError("duplicate job id")
            for job in jobs:
                if not isinstance(job, self.kind):
                    raise TypeError(f"{type(job).__name__} is not a {self.kind.__name__}")
            self.db.check_queueable(messages)  # a job is stored with its messages or not at all
            self.db.keep_answer(answer)
            self.db.jobs.update((job.id, job) for job in jobs)
            return self.db.commit_messages(messages)

    def get(self, job_id: str) -> J:
        job = self.db.jobs.get(job_id)
        if not isinstance(job, self.kind):
            raise JobNotFound(job_id)
        return job

    def save(self, job: J, *, expected: JobStatus, messages: Sequence[JobMessage] = (),
             answer: KeptAnswer | None = None) -> list[int]:
        with self.db.lock:
            self.db.check_key_free(answer)
            stored = self.get(job.id)
            if stored.status is not expected:
                raise ConcurrentUpdate(job.id, expected.value, stored.status.value)
            self.db.check_queueable(messages)
            self.db.keep_answer(answer)
            self.db.jobs[job.id] = job
            return self.db.commit_messages(messages)

    def list(
        self, *, owner_id: str | None = None, status: JobStatus | None = None,
        batch_id: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[J]:
        found = [
            job for job in self.db.jobs.values()
            if isinstance(job, self.kind)
            and (owner_id is None or job.owner_id == owner_id)
            and (status is None or job.status is status)
            and (batch_id is None or job.batch_id == batch_id)
        ]
        found.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        return found[offset:offset + limit]

    # inspection helpers for tests
    def all(self) -> builtins.list[J]:  # ``list`` is a method name here
        return [job for job in self.db.jobs.values() if isinstance(job, self.kind)]


class InMemoryOutbox:
    def __init__(self, db: InMemoryDatabase) -> None:
        self.db = db

    def add(self, messages: Sequence[JobMessage]) -> list[int]:
        with self.db.lock:
            return self.db.add_outbox(messages)

    def pending(self, *, limit: int, older_than: datetime | None = None) -> list[OutboxEntry]:
        with self.db.lock:
            entries = [
                OutboxEntry(id=entry_id, message=message, created_at=created)
                for entry_id, (message, created, sent) in sorted(self.db.outbox.items())
                if sent is None and (older_than is None or created <= older_than)
            ]
        return entries[:limit]

    def mark_sent(self, entry_ids: Sequence[int]) -> None:
        with self.db.lock:
            now = self.db.clock.now()
            for entry_id in entry_ids:
                message, created, _ = self.db.outbox[entry_id]
                self.db.outbox[entry_id] = (message, created, now)


class InMemoryIdempotencyKeys:
    """The :class:`IdempotencyKeys` port on an :class:`InMemoryDatabase` (the job repositories
    built on it keep answers with their jobs)."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self.db = db

    def find(self, owner_id: str, key: str, *, now: datetime) -> KeptAnswer | None:
        with self.db.lock:
            answer = self.db.answers.get((owner_id, key))
        return answer if answer is not None and answer.expires_at > now else None

    def add(self, answer: KeptAnswer) -> None:
        with self.db.lock:
            self.db.check_key_free(answer)
            self.db.keep_answer(answer)

    def purge(self, *, now: datetime) -> int:
        with self.db.lock:
            expired = [key for key, answer in self.db.answers.items() if answer.expires_at <= now]
            for key in expired:
                del self.db.answers[key]
        return len(expired)

    # inspection helper for tests
    def all(self) -> list[KeptAnswer]:
        with self.db.lock:
            return list(self.db.answers.values())
