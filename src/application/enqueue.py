"""Use cases of the publisher: validate, record with an outbox entry, publish after commit."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from src.application.commands import SubmitAIJob, SubmitVideoJob
from src.application.messages import JobMessage
from src.application.ports import AIJobRepository, Clock, JobPublisher, Outbox, VideoJobRepository
from src.domain.catalogue import GenerationParams, validate_generation
from src.domain.errors import ReelqueueError, ValidationError
from src.domain.jobs import AIJob, Job, Mode, VideoJob, new_id
from src.domain.paths import UnknownPathPolicy, resolve_path
from src.domain.sources import check_source
from src.domain.status import JobStatus

log = logging.getLogger(__name__)

VIDEO_PRESETS = ("1080p", "720p", "480p")
MAX_BATCH = 100

UrlGuard = Callable[[str, str], None]
"""``guard(field, url)`` raises :class:`ValidationError` for a URL the system must not fetch."""


def _no_guard(field: str, url: str) -> None:
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
        outbox: Outbox,
        publisher: JobPublisher,
        clock: Clock,
        path_policy: UnknownPathPolicy = UnknownPathPolicy.USE_DEFAULT,
        url_guard: UrlGuard = _no_guard,
    ) -> None:
        self.video_jobs = video_jobs
        self.ai_jobs = ai_jobs
        self.outbox = outbox
        self.publisher = publisher
        self.clock = clock
        self.path_policy = path_policy
        self.url_guard = url_guard

    # --- create --------------------------------------------------------------------------------

    def submit_video(self, command: SubmitVideoJob) -> VideoJob:
        job = self.build_video(command)
        self._record(self.video_jobs, [job])
        return job

    def submit_ai(self, command: SubmitAIJob) -> AIJob:
        job = self.build_ai(command)
        self._record(self.ai_jobs, [job])
        return job

    def submit_ai_batch(self, commands: Sequence[SubmitAIJob]) -> Batch:
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
        self._record(self.ai_jobs, jobs)
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
            num_frames=command.num_frames,
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
            seed=command.seed, num_frames=command.num_frames, batch_id=batch_id,
            callback_token=secrets.token_urlsafe(24), created_at=now, updated_at=now,
        )

    # --- change --------------------------------------------------------------------------------

    def cancel(self, job: Job) -> Job:
        """Cancel a queued or waiting job, or ask a running one to stop at its next checkpoint."""
        cancelled = job.cancel(self.clock.now())
        self._repo(job).save(cancelled, expected=job.status)
        return cancelled

    def retry(self, job: Job) -> Job:
        """A failed or cancelled job gets a new attempt: queued again, with a new message."""
        retried = job.retry(self.clock.now())
        message = JobMessage.for_job(retried)
        self._repo(job).save(retried, expected=job.status)
        self._flush(self.outbox.add([message]), [message])
        return retried

    def relay_callback(self, job: AIJob) -> None:
        """A provider called back: wake the worker to re-fetch the task. Changes nothing itself."""
        if job.status in (JobStatus.WAITING_PROVIDER, JobStatus.PROCESSING):
            self._send([JobMessage.for_job(job)])

    # --- publish -------------------------------------------------------------------------------

    def _record(self, repo: VideoJobRepository | AIJobRepository, jobs: Sequence[Job]) -> None:
        messages = [JobMessage.for_job(job) for job in jobs]
        self._flush(repo.add(jobs, messages), messages)  # type: ignore[arg-type]

    def _flush(self, entry_ids: Sequence[int], messages: Sequence[JobMessage]) -> None:
        """Send what was just committed; if the queue is down the reconciler sends it later."""
        if self._send(messages):
            self.outbox.mark_sent(entry_ids)

    def _send(self, messages: Sequence[JobMessage]) -> bool:
        try:
            self.publisher.publish(messages)
        except ReelqueueError as exc:
            log.warning("queue unavailable, %d message(s) stay in the outbox: %s", len(messages), exc)
            return False
        return True

    def _repo(self, job: Job) -> VideoJobRepository | AIJobRepository:
        return self.ai_jobs if isinstance(job, AIJob) else self.video_jobs


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
            self.publisher.publish([e.message for e in entries])
            self.outbox.mark_sent([e.id for e in entries])
            sent += len(entries)
            if len(entries) < self.batch_size:
                return sent
