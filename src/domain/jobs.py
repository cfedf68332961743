"""Job entities: frozen, keyword-only dataclasses.

A transition returns a new job or raises :class:`IllegalTransition`; nothing mutates.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from src.domain.errors import IllegalTransition
from src.domain.status import JobStatus


class JobKind(str, Enum):
    VIDEO = "video"
    AI = "ai"


class Mode(str, Enum):
    TEXT_TO_VIDEO = "t2v"
    IMAGE_TO_VIDEO = "i2v"


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True)
class Output:
    """One file a job produced, kept in storage under ``key``."""

    key: str
    role: str = "video"  # "video" or "poster"
    content_type: str = "video/mp4"
    size_bytes: int = 0
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Output:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


J = TypeVar("J", bound="Job")


@dataclass(frozen=True, kw_only=True)
class Job:
    """What every job has: identity, owner, status, attempts, outputs, error, timestamps."""

    id: str = field(default_factory=new_id)
    owner_id: str
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    outputs: tuple[Output, ...] = ()
    error: str | None = None
    stage: str | None = None
    percent: float = 0.0
    batch_id: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    kind: JobKind = dataclasses.field(init=False, default=JobKind.VIDEO)

    def _to(self: J, target: JobStatus, now: datetime, **changes: Any) -> J:
        if not self.status.can_become(target):
            raise IllegalTransition(self.id, self.status.value, target.value)
        return replace(self, status=target, updated_at=now, **changes)

    def start(self: J, now: datetime) -> J:
        """queued -> processing (a new attempt), or waiting_provider -> processing (same attempt)."""
        if self.status is JobStatus.WAITING_PROVIDER:
            return self._to(JobStatus.PROCESSING, now)
        return self._to(
            JobStatus.PROCESSING, now, attempts=self.attempts + 1, started_at=now, error=None
        )

    def succeed(self: J, outputs: tuple[Output, ...], now: datetime) -> J:
        return self._to(
            JobStatus.SUCCEEDED, now, outputs=tuple(outputs), finished_at=now, error=None,
            percent=100.0,
        )

    def fail(self: J, error: str, now: datetime) -> J:
        return self._to(JobStatus.FAILED, now, error=error, finished_at=now)

    def cancel(self: J, now: datetime, reason: str = "cancelled on request") -> J:
        return self._to(JobStatus.CANCELLED, now, error=reason, finished_at=now)

    def requeue(self: J, now: datetime, reason: str) -> J:
        """processing -> queued: the attempt ended early (transient error, shutdown, lost worker)."""
        if self.status is not JobStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, JobStatus.QUEUED.value)
        return self._to(JobStatus.QUEUED, now, error=reason)

    def retry(self: J, now: datetime) -> J:
        """failed | cancelled -> queued: a user asks for a new attempt of the same job."""
        if self.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise IllegalTransition(self.id, self.status.value, JobStatus.QUEUED.value)
        return self._to(JobStatus.QUEUED, now, error=None, finished_at=None, outputs=())

    def with_progress(self: J, stage: str | None, percent: float) -> J:
        return replace(self, stage=stage, percent=percent)


@dataclass(frozen=True, kw_only=True)
class VideoJob(Job):
    """Download a source video, transcode it to a preset, make a poster, upload."""

    source: str  # a storage key or an https URL
    preset: str = "720p"
    poster_offset_s: float = 1.0

    kind: JobKind = dataclasses.field(init=False, default=JobKind.VIDEO)


@dataclass(frozen=True, kw_only=True)
class AIJob(Job):
    """Generate a video with an inference provider (local Wan, Runway, Luma)."""

    model: str
    provider: str
    production_path: str
    mode: Mode
    prompt: str = ""
    input_image: str | None = None  # a storage key or an https URL (image-to-video)
    duration_s: int | None = None
    ratio: str | None = None
    seed: int | None = None
    num_frames: int | None = None  # wan_local only
    audio: bool = False  # generate a soundtrack (the Veo 3.1 models only; priced higher)
    provider_task_id: str | None = None
    submitted_at: datetime | None = None  # when a paid submission was attempted
    callback_token: str | None = None  # unguessable, for provider callbacks (Luma)
    provider_task_history: tuple[str, ...] = ()  # every provider task ever created, oldest first
    quota_wait_since: datetime | None = None  # first refusal for a used-up provider quota

    kind: JobKind = dataclasses.field(init=False, default=JobKind.AI)

    def mark_submitting(self, now: datetime) -> AIJob:
        """Record that a paid submission is about to be sent (no idempotency key at Runway)."""
        if self.status is not JobStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, "submitting")
        return replace(self, submitted_at=now, updated_at=now)

    def wait_for_provider(self, task_id: str, now: datetime) -> AIJob:
        """processing -> waiting_provider, keeping the provider's task id (and its history)."""
        history = self.provider_task_history
        if task_id not in history:
            history = (*history, task_id)
        return self._to(JobStatus.WAITING_PROVIDER, now, provider_task_id=task_id,
                        provider_task_history=history, quota_wait_since=None)

    def wait_for_quota(self, now: datetime, reason: str) -> AIJob:
        """processing -> queued: the provider's quota is used up and nothing was created, so
        this attempt does not count; ``quota_wait_since`` keeps the first refusal."""
        if self.status is not JobStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, JobStatus.QUEUED.value)
        return self._to(JobStatus.QUEUED, now, error=reason, attempts=max(self.attempts - 1, 0),
                        submitted_at=None, quota_wait_since=self.quota_wait_since or now)

    def abandon_task(self, now: datetime, reason: str) -> AIJob:
        """processing -> queued: the provider task failed in a way worth a new task (a new
        attempt); its id stays in ``provider_task_history``."""
        if self.status is not JobStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, JobStatus.QUEUED.value)
        return self._to(JobStatus.QUEUED, now, error=reason, provider_task_id=None, submitted_at=None)

    def retry(self, now: datetime) -> AIJob:
        job = super().retry(now)
        return replace(job, provider_task_id=None, submitted_at=None, quota_wait_since=None)
