"""Use cases of the publisher: validate, record each job with its message, hand the message on.

A job and its message commit together. With the SQL lease queue in the jobs' database the
message row is the queue entry itself: one transaction, nothing more to do. Otherwise it is an
outbox entry, handed to an :class:`OutboxRelay` after commit (the API's sends it from a
background thread); the :class:`Reconciler` sends whatever stayed pending.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from src.application.commands import SubmitAIJob, SubmitVideoJob
from src.application.messages import JobMessage
from src.application.ports import (
    AIJobRepository,
    Clock,
    IdempotentRequest,
    JobPublisher,
    JobRepository,
    KeptAnswer,
    Outbox,
    OutboxEntry,
    OutboxRelay,
    VideoJobRepository,
)
from src.domain.catalogue import GenerationParams, validate_generation
from src.domain.errors import ReelqueueError, ValidationError
from src.domain.jobs import AIJob, Job, Mode, VideoJob, new_id
from src.domain.paths import UnknownPathPolicy, resolve_path
from src.domain.sources import check_source
from src.domain.status import JobStatus

log = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)

VIDEO_PRESETS = ("1080p", "720p", "480p")
MAX_BATCH = 100

UrlGuard = Callable[[str, str], None]
"""``guard(field, url)`` raises :class:`ValidationError` for a URL the system must not fetch."""


def no_url_guard(field: str, url: str) -> None:
    """The guard of a service that checks no URL (the library's own tests and tools)."""
    return None


@dataclass(frozen=True)
class Batch:
    id: str
    jobs: tuple[AIJob, ...]


class JobService:
    """Creates jobs and hands their messages to the queue without ever losing one."""

    def __init__(
        self,
        *,
        video_jobs: VideoJobRepository,
        ai_jobs: AIJobRepository,
        relay: OutboxRelay,
        publisher: JobPublisher,
        clock: Clock,
        path_policy: UnknownPathPolicy = UnknownPathPolicy.USE_DEFAULT,
        url_guard: UrlGuard = no_url_guard,
        idempotency_key_ttl_s: float = 24 * 3600,
    ) -> None:
        self.video_jobs = video_jobs
        self.ai_jobs = ai_jobs
        self.relay = relay
        self.publisher = publisher  # callbacks only: they wake a worker and record nothing
        self.clock = clock
        self.path_policy = path_policy
        self.url_guard = url_guard
        self.idempotency_key_ttl_s = idempotency_key_ttl_s

    # --- create --------------------------------------------------------------------------------

    # ``request``: the creating request's idempotency key, whose answer (the job or batch id)
    # commits with what it created; :class:`IdempotencyKeyTaken` if another request's did first.

    def submit_video(self, command: SubmitVideoJob, *, request: IdempotentRequest | None = None) -> VideoJob:
        job = self.build_video(command)
        self._record(self.video_jobs, [job], self._answer(request, job.id))
        return job

    def submit_ai(self, command: SubmitAIJob, *, request: IdempotentRequest | None = None) -> AIJob:
        job = self.build_ai(command)
        self._record(self.ai_jobs, [job], self._answer(request, job.id))
        return job

    def submit_ai_batch(self, commands: Sequence[SubmitAIJob], *,
                        request: IdempotentRequest | None = None) -> Batch:
        """All or nothing: one invalid item rejects the batch, naming the item."""
        if not commands:
            raise ValidationError({"items": "a batch needs at least one item"})
        if len(commands) > MAX_BATCH:
            raise ValidationError({"items": f"at most {MAX_BATCH} items per batch"})
        batch_id = new_id()
        jobs, errors = [], {}
        for index, command in enumerate(commands):
            try:
                jobs.append(self.build_ai(command, batch_id=batch_id))
            except ValidationError as exc:
                for name, messages in exc.fields.items():
                    errors[f"items[{index}].{name}"] = messages
        if errors:
            raise ValidationError(errors)
        self._record(self.ai_jobs, jobs, self._answer(request, batch_id))
        return Batch(batch_id, tuple(jobs))

    def build_video(self, command: SubmitVideoJob) -> VideoJob:
        errors: dict[str, list[str]] = {}
        try:
            check_source("source", command.source)
            if "://" in command.source:
                self.url_guard("source", command.source)
        except ValidationError as exc:
            errors.update(exc.fields)
        if command.preset not in VIDEO_PRESETS:
            errors["preset"] = [f"choose one of: {', '.join(VIDEO_PRESETS)}"]
        if not 0 <= command.poster_offset_s <= 3600:
            errors["poster_offset_s"] = ["must be between 0 and 3600 seconds"]
        if errors:
            raise ValidationError(errors)
        now = self.clock.now()
        return VideoJob(
            owner_id=command.owner_id, source=command.source, preset=command.preset,
            poster_offset_s=command.poster_offset_s, created_at=now, updated_at=now,
        )

    def build_ai(self, command: SubmitAIJob, *, batch_id: str | None = None) -> AIJob:
        errors: dict[str, list[str]] = {}
        try:
            mode = Mode(command.mode)
        except ValueError:
            raise ValidationError({"mode": "choose t2v (text-to-video) or i2v (image-to-video)"}) from None
        params = GenerationParams(
            model=command.model, mode=mode, prompt=command.prompt, input_image=command.input_image,
            duration_s=command.duration_s, ratio=command.ratio, seed=command.seed,
            num_frames=command.num_frames, audio=command.audio,
        )
        spec = None
        try:
            spec = validate_generation(params)
        except ValidationError as exc:
            errors.update(exc.fields)
        if command.input_image and "input_image" not in errors:
            try:
                check_source("input_image", command.input_image)
                if "://" in command.input_image:
                    self.url_guard("input_image", command.input_image)
            except ValidationError as exc:
                errors.update(exc.fields)
        try:
            resolved = resolve_path(command.production_path, self.path_policy)
        except ValidationError as exc:
            errors.update(exc.fields)
        if errors or spec is None:
            raise ValidationError(errors)
        if resolved.warning:
            log.warning("%s", resolved.warning)
        now = self.clock.now()
        return AIJob(
            owner_id=command.owner_id, model=spec.name, provider=spec.provider,
            production_path=resolved.path.value, mode=mode, prompt=command.prompt,
            input_image=command.input_image, duration_s=command.duration_s, ratio=command.ratio,
            seed=command.seed, num_frames=command.num_frames, audio=bool(command.audio),
            batch_id=batch_id,
            callback_token=secrets.token_urlsafe(24), created_at=now, updated_at=now,
        )

    # --- change --------------------------------------------------------------------------------

    def cancel(self, job: Job) -> Job:
        """Cancel a queued or waiting job, or ask a running one to stop at its next checkpoint.

        A job with a paid task at a remote provider also gets a message, committed with the
        cancel: a worker tells the provider (this process never calls one).
        """
        cancelled = job.cancel(self.clock.now())
        stop = isinstance(cancelled, AIJob) and cancelled.must_stop_at_provider
        messages = [JobMessage.for_job(cancelled)] if stop else []
        self._hand_off(self._save(cancelled, expected=job.status, messages=messages), messages)
        return cancelled

    def retry(self, job: Job, *, request: IdempotentRequest | None = None) -> Job:
        """A failed or cancelled job gets a new attempt: queued again, with a new message."""
        retried = job.retry(self.clock.now())
        message = JobMessage.for_job(retried)
        entry_ids = self._save(retried, expected=job.status, messages=[message],
                               answer=self._answer(request, job.id))
        self._hand_off(entry_ids, [message])
        return retried

    def requeue(self, job: Job) -> Job:
        """An operator's repair: a job stuck in processing (its worker was killed) goes back to
        queued; a queued or waiting one keeps its state. Either way it gets a new message, which
        commits with a save conditional on the status read."""
        requeued = job
        if job.status is JobStatus.PROCESSING:
            requeued = job.requeue(self.clock.now(), "requeued by an operator")
        elif job.status not in (JobStatus.QUEUED, JobStatus.WAITING_PROVIDER):
            raise ValueError(f"job {job.id} is {job.status.value}; only processing, queued or "
                             "waiting_provider jobs can be requeued (retry failed or cancelled ones)")
        message = JobMessage.for_job(requeued)
        self._hand_off(self._save(requeued, expected=job.status, messages=[message]), [message])
        return requeued

    def relay_callback(self, job: AIJob) -> None:
        """A provider called back: wake the worker to re-fetch the task. Changes nothing itself."""
        if job.status not in (JobStatus.WAITING_PROVIDER, JobStatus.PROCESSING):
            return
        try:
            self.publisher.publish([JobMessage.for_job(job)])
        except ReelqueueError as exc:  # the worker's own delayed check-back still comes
            log.warning("queue unavailable, callback for job %s not relayed: %s", job.id, exc)

    # --- publish -------------------------------------------------------------------------------

    def _record(self, repo: JobRepository[J], jobs: Sequence[J], answer: KeptAnswer | None = None) -> None:
        messages = [JobMessage.for_job(job) for job in jobs]
        self._hand_off(repo.add(jobs, messages, answer=answer), messages)

    def _answer(self, request: IdempotentRequest | None, resource_id: str) -> KeptAnswer | None:
        if request is None:
            return None
        return request.answered(now=self.clock.now(), ttl_s=self.idempotency_key_ttl_s,
                                resource_id=resource_id)

    def _hand_off(self, entry_ids: Sequence[int], messages: Sequence[JobMessage]) -> None:
        """Committed outbox entries go to the relay; no ids: the messages committed straight
        into the queue with their jobs."""
        if entry_ids:
            now = self.clock.now()
            self.relay.hand_off([OutboxEntry(id=entry_id, message=message, created_at=now)
                                 for entry_id, message in zip(entry_ids, messages, strict=True)])

    def _save(self, job: Job, *, expected: JobStatus, messages: Sequence[JobMessage] = (),
              answer: KeptAnswer | None = None) -> list[int]:
        """A conditional save in the repository of the job's own kind."""
        if isinstance(job, AIJob):
            return self.ai_jobs.save(job, expected=expected, messages=messages, answer=answer)
        if isinstance(job, VideoJob):
            return self.video_jobs.save(job, expected=expected, messages=messages, answer=answer)
        raise TypeError(f"no repository for {type(job).__name__}")


def send_entries(entries: Sequence[OutboxEntry], *, outbox: Outbox, publisher: JobPublisher) -> None:
    """Publish committed outbox entries, then mark them sent in one statement.

    A failure in between leaves them pending: they are sent again later (twice at worst).
    """
    publisher.publish([entry.message for entry in entries])
    outbox.mark_sent([entry.id for entry in entries])


class InlineRelay:
    """The :class:`OutboxRelay` that sends in the caller's thread, right after commit (the CLI,
    single-process use, tests). A queue outage is logged; the reconciler sends the entries later."""

    def __init__(self, *, outbox: Outbox, publisher: JobPublisher) -> None:
        self.outbox = outbox
        self.publisher = publisher

    def hand_off(self, entries: Sequence[OutboxEntry]) -> None:
        try:
            send_entries(entries, outbox=self.outbox, publisher=self.publisher)
        except ReelqueueError as exc:
            log.warning("queue unavailable, %d message(s) stay in the outbox: %s", len(entries), exc)


class Reconciler:
    """Sends outbox messages that were committed but never sent (the queue was down)."""

    def __init__(self, *, outbox: Outbox, publisher: JobPublisher, clock: Clock,
                 grace_s: float = 30.0, batch_size: int = 100) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.clock = clock
        self.grace_s = grace_s
        self.batch_size = batch_size

    def run_once(self) -> int:
        """Send one round of stale pending messages; returns how many were sent."""
        older_than = self.clock.now() - timedelta(seconds=self.grace_s)
        sent = 0
        while True:
            entries = self.outbox.pending(limit=self.batch_size, older_than=older_than)
            if not entries:
                return sent
            send_entries(entries, outbox=self.outbox, publisher=self.publisher)
            sent += len(entries)
            if len(entries) < self.batch_size:
                return sent
