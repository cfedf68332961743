"""Inference providers: a local generator (Wan on this machine's GPU) or a remote API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from src.domain.jobs import AIJob


@dataclass(frozen=True, kw_only=True)
class GeneratedVideo:
    path: Path
    num_frames: int
    width: int
    height: int
    fps: int


class LocalGenerator(Protocol):
    def generate(
        self,
        job: AIJob,
        *,
        workdir: Path,
        on_progress: Callable[[float], None],
        should_stop: Callable[[], bool],
    ) -> GeneratedVideo:
        """Run the model; raise :class:`Interrupted` at a step boundary when ``should_stop()``."""
        ...


class RemoteState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
class RemoteTask:
    task_id: str
    state: RemoteState
    progress: float = 0.0  # 0-100
    output_urls: Sequence[str] = ()
    failure: str | None = None  # the provider's own code and text, for operators (logs)
    user_error: str | None = None  # what the job's ``error`` tells its owner
    retryable: bool = False  # a failed task worth a new task, within the job's attempts


class RemoteProvider(Protocol):
    def submit(self, job: AIJob, *, input_image_url: str | None, callback_url: str | None) -> str:
        """Start a paid generation; returns the provider's task id.

        ``input_image_url`` serves providers that fetch the image by URL (a presigned GET for a
        stored image); one that cannot (Runway HEADs first) reads ``job.input_image`` itself.

        :class:`TransientError` only when the provider surely created nothing (a refused
        connection); :class:`QuotaExhausted` for a 429 (nothing created, wait for the quota);
        :class:`SubmissionOutcomeUnknown` when it may have created a task (a timeout after
        sending, any 5xx, a success without a readable id).
        """
        ...

    def poll(self, task_id: str) -> RemoteTask:
        ...

    def cancel(self, task_id: str) -> bool:
        """Ask the provider to stop (or delete) a task: True when it accepted, False when it no
        longer knew the task (404, nothing left to stop). :class:`TransientError` when it could
        not be reached or was busy (worth trying again), :class:`PermanentError` when it refused."""
        ...

    def download(self, url: str, dest: Path) -> int:
        """Copy an output (their URLs expire) to ``dest``; returns its size.

        :class:`OutputExpired` when the URL no longer serves it (poll again for a fresh one)."""
        ...
