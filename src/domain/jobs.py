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


class ProviderCancel(str, Enum):
    """Where stopping a cancelled job's paid task at its remote provider stands."""

    REQUESTED = "requested"
    """The job was cancelled after a paid submission; a worker still has to tell the provider."""
    CONFIRMED = "confirmed"
    """The provider accepted the cancel (Runway: cancelled or deleted; Luma: deleted)."""
    GONE = "gone"
    """The provider no longer knew the task (404): nothing was left to stop."""
    FAILED = "failed"
    """The provider could not be told; ``provider_cancel_detail`` says why. Check its dashboard."""


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
    provider_cancel: ProviderCancel | None = None  # None: nothing to stop at the provider
    provider_cancel_detail: str | None = None  # the provider's answer, or why it could not be told
    provider_cancel_tries: int = 0  # failed tries to reach the provider (transient errors)

    kind: JobKind = dataclasses.field(init=False, default=JobKind.AI)

    @property
    def must_stop_at_provider(self) -> bool:
        """Cancelled, and the provider still has to be told (a worker does it, never the API)."""
        return self.status is JobStatus.CANCELLED and self.provider_cancel is ProviderCancel.REQUESTED

    def cancel(self, now: datetime, reason: str = "cancelled on request") -> AIJob:
        """A job whose paid submission was sent (or may have been) must also stop at the provider."""
        job = super().cancel(now, reason)
        if self.provider_task_id or self.submitted_at is not None:
            job = replace(job, provider_cancel=ProviderCancel.REQUESTED, provider_cancel_detail=None,
                          provider_cancel_tries=0)
        return job

    def cancelled_by_provider(self, now: datetime) -> AIJob:
        """The provider reports the task cancelled (e.g. from its dashboard): nothing to tell it."""
        job = super().cancel(now, "cancelled at the provider")
        return replace(job, provider_cancel=ProviderCancel.CONFIRMED,
                       provider_cancel_detail=f"{self.provider} reported the task cancelled")

    def cancelled_with_task(self, task_id: str, now: datetime) -> AIJob:
        """The submission answered after the job was cancelled: keep its task id, to stop it."""
        if self.status is not JobStatus.CANCELLED or self.provider_task_id:
            raise IllegalTransition(self.id, self.status.value, "cancelled with a task id")
        return replace(self, provider_task_id=task_id, provider_cancel=ProviderCancel.REQUESTED,
                       provider_cancel_detail=None, provider_cancel_tries=0, updated_at=now)

    def provider_cancel_ended(self, outcome: ProviderCancel, detail: str, now: datetime) -> AIJob:
        """Record the provider's final answer to the cancel (confirmed, gone or failed)."""
        if not self.must_stop_at_provider or outcome is ProviderCancel.REQUESTED:
            raise IllegalTransition(self.id, self.status.value, f"provider cancel {outcome.value}")
        return replace(self, provider_cancel=outcome, provider_cancel_detail=detail, updated_at=now)

    def provider_cancel_failed_once(self, detail: str, now: datetime) -> AIJob:
        """A transient error on the cancel: counted; the worker tries again later."""
        if not self.must_stop_at_provider:
            raise IllegalTransition(self.id, self.status.value, "provider cancel retry")
        return replace(self, provider_cancel_tries=self.provider_cancel_tries + 1,
                       provider_cancel_detail=detail, updated_at=now)

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
        """A new attempt; refused while the old paid task is still being stopped at the provider."""
        if self.must_stop_at_provider:
            raise IllegalTransition(self.id, "cancelled (its provider task is still being cancelled)",
                                    JobStatus.QUEUED.value)
        job = super().retry(now)
        return replace(job, provider_task_id=None, submitted_at=None, quota_wait_since=None,
                       provider_cancel=None, provider_cancel_detail=None, provider_cancel_tries=0)
