from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from src.application.ports import GeneratedVideo, RemoteState, RemoteTask
from src.domain.errors import Interrupted, JobFailure, OutputExpired, PermanentError
from src.domain.jobs import AIJob


class FakeLocalGenerator:
    """Pretends to denoise ``steps`` steps, honouring ``should_stop`` between them."""

    def __init__(self, *, steps: int = 4, fail_with: list[JobFailure] | None = None) -> None:
        self.steps = steps
        self.fail_with = list(fail_with or [])
        self.loads = 0
        self.calls: list[AIJob] = []

    def generate(self, job: AIJob, *, workdir: Path, on_progress: Callable[[float], None],
                 should_stop: Callable[[], bool]) -> GeneratedVideo:
        self.calls.append(job)
        if self.fail_with:
            raise self.fail_with.pop(0)
        for step in range(self.steps):
            if should_stop():
                raise Interrupted(f"stopped after {step} of {self.steps} steps")
            on_progress(100 * (step + 1) / self.steps)
        path = workdir / "out.mp4"
        path.write_bytes(b"fake mp4 " + job.prompt.encode())
        frames = job.num_frames or 5
        return GeneratedVideo(path=path, num_frames=frames, width=32, height=32, fps=16)


@dataclass(frozen=True, kw_only=True)
class Failure:
    """How a fake task fails: the provider's code (for operators), the owner's message, and
    whether a new task may help."""

    code: str = "SAFETY.INPUT.TEXT"
    user_error: str = "The request was declined by the provider's content moderation."
    retryable: bool = False


class FakeRemoteProvider:
    """A remote API: tasks finish after ``polls_to_finish`` polls; submissions are counted.

    ``failures``: the next tasks fail, in order, with these (then ``outcome`` applies again);
    ``expired_downloads``: that many downloads find their URL expired (a poll signs a new one).
    """

    def __init__(self, *, polls_to_finish: int = 2, outcome: RemoteState = RemoteState.SUCCEEDED,
                 submit_errors: list[Exception] | None = None, failures: list[Failure] | None = None,
                 expired_downloads: int = 0, cancel_errors: list[Exception] | None = None) -> None:
        self.polls_to_finish = polls_to_finish
        self.outcome = outcome
        self.submit_errors = list(submit_errors or [])
        self.failures = list(failures or [])
        self.expired_downloads = expired_downloads
        self.cancel_errors = list(cancel_errors or [])  # raised by the next cancels, in order
        self.submissions: list[tuple[AIJob, str | None, str | None]] = []
        self.polls: dict[str, int] = {}
        self.task_failures: dict[str, Failure] = {}
        self.downloads: list[str] = []
        self.cancelled: list[str] = []
        self._ids = itertools.count(1)

    def submit(self, job: AIJob, *, input_image_url: str | None, callback_url: str | None) -> str:
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        self.submissions.append((job, input_image_url, callback_url))
        task_id = f"task-{next(self._ids)}"
        self.polls[task_id] = 0
        if self.failures:
            self.task_failures[task_id] = self.failures.pop(0)
        return task_id

    def poll(self, task_id: str) -> RemoteTask:
        if task_id not in self.polls:
            raise PermanentError(f"unknown task {task_id}")
        self.polls[task_id] += 1
        done = self.polls[task_id] >= self.polls_to_finish
        if not done:
            progress = 100 * self.polls[task_id] / self.polls_to_finish
            return RemoteTask(task_id=task_id, state=RemoteState.RUNNING, progress=progress)
        failure = self.task_failures.get(task_id)
        if failure is None and self.outcome is RemoteState.FAILED:
            failure = Failure()
        if failure is not None:
            return RemoteTask(task_id=task_id, state=RemoteState.FAILED, failure=failure.code,
                              user_error=failure.user_error, retryable=failure.retryable)
        if self.outcome is RemoteState.SUCCEEDED:
            signed = self.polls[task_id]  # each poll signs a fresh URL
            return RemoteTask(task_id=task_id, state=self.outcome, progress=100,
                              output_urls=(f"https://provider.example/{task_id}.mp4?sig={signed}",))
        return RemoteTask(task_id=task_id, state=self.outcome)

    def cancel(self, task_id: str) -> bool:
        """Stops and forgets the task (a later poll finds it unknown); False for an unknown one."""
        if self.cancel_errors:
            raise self.cancel_errors.pop(0)
        self.cancelled.append(task_id)
        return self.polls.pop(task_id, None) is not None

    def download(self, url: str, dest: Path) -> int:
        self.downloads.append(url)
        if self.expired_downloads:
            self.expired_downloads -= 1
            raise OutputExpired(f"fake: output is gone (403): {url}")
        dest.write_bytes(b"remote mp4 " + url.encode())
        return dest.stat().st_size
