"""ProcessAIJobHandler: local generation (Wan) or a remote provider (Runway, Luma).

Remote providers generate for minutes; a worker never waits for them. It submits once,
saves the provider's task id before anything else, and comes back with a delayed message
(or a relayed callback) to poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TypeVar, Unpack

from src.application.backoff import ExponentialBackoff, Jitter
from src.application.handlers.base import HandlerDependencies, JobHandler, Stopper
from src.application.logs import job_log
from src.application.outcomes import Ending, Outcome
from src.application.ports import LocalGenerator, RemoteProvider, RemoteState, RemoteTask, Storage
from src.application.queue_limits import MAX_DELAY_S
from src.application.retry import GiveUp
from src.application.workflows import workflow_for
from src.domain.catalogue import CATALOGUE, WorkerType
from src.domain.errors import (
    ConcurrentUpdate,
    Interrupted,
    OutputExpired,
    PermanentError,
    QuotaExhausted,
    ServiceUnavailable,
    SubmissionOutcomeUnknown,
    TransientError,
)
from src.domain.jobs import AIJob, Output, ProviderCancel
from src.domain.sources import is_url
from src.domain.status import JobStatus

log = logging.getLogger(__name__)

P = TypeVar("P", LocalGenerator, RemoteProvider)
# between tries to record a provider's task id: 0.2 s, 0.4 s, 0.8 s ... up to 5 s, no jitter
TASK_ID_SAVE_BACKOFF = ExponentialBackoff(base_s=0.2, max_s=5.0, jitter=Jitter.NONE)


@dataclass(frozen=True, kw_only=True)
class PollSchedule:
    """How soon to check a remote task again: a quarter of its age, within bounds."""

    min_delay_s: int = 5
    max_delay_s: int = MAX_DELAY_S

    def next_delay_s(self, age_s: float) -> int:
        return int(min(self.max_delay_s, max(self.min_delay_s, age_s / 4)))


@dataclass(frozen=True, kw_only=True)
class QuotaWait:
    """How a job waits for a provider's used-up quota: re-checked when the provider says (its
    Retry-After), else every ``recheck_s``; failed once it has waited ``max_wait_s``."""

    max_wait_s: float = 24 * 3600
    recheck_s: int = 300
    max_delay_s: int = MAX_DELAY_S

    def delay_s(self, retry_after_s: float | None) -> int:
        wanted = self.recheck_s if retry_after_s is None else retry_after_s
        return int(min(self.max_delay_s, max(1, wanted)))


class ProcessAIJobHandler(JobHandler[AIJob]):
    def __init__(
        self,
        *,
        storage: Storage,
        local: Mapping[str, LocalGenerator] | None = None,
        remote: Mapping[str, RemoteProvider] | None = None,
        callback_url: Callable[[AIJob], str | None] = lambda job: None,
        poll_schedule: PollSchedule = PollSchedule(),
        input_url_expires_s: int = 3600,
        task_id_save_s: float = 120.0,
        quota_wait: QuotaWait = QuotaWait(),
        output_url_refreshes: int = 2,
        **base: Unpack[HandlerDependencies[AIJob]],
    ) -> None:
        super().__init__(**base)
        self.quota_wait = quota_wait
        self.output_url_refreshes = output_url_refreshes
        self.task_id_save_s = task_id_save_s
        self.storage = storage
        self.local = dict(local or {})
        self.remote = dict(remote or {})
        self.callback_url = callback_url
        self.poll_schedule = poll_schedule
        self.input_url_expires_s = input_url_expires_s

    def settled(self, job: AIJob) -> bool:
        return job.status.is_terminal and not job.must_stop_at_provider

    def run(self, job: AIJob, should_stop: Stopper) -> Outcome:
        if job.must_stop_at_provider:
            return self.stop_at_provider(job)
        spec = CATALOGUE.get(job.model)
        if spec is None:
            return self._fail_now(job, PermanentError(f"model {job.model!r} is not in the catalogue"))
        if spec.worker_type is WorkerType.GPU:
            return self.run_local(job, should_stop)
        return self.run_remote(job)

    # --- local (Wan) ---------------------------------------------------------------------------

    def run_local(self, job: AIJob, should_stop: Stopper) -> Outcome:
        job = self.start(job)
        return self.produce(job, lambda tmp: self.generate(job, tmp, should_stop))

    def generate(self, job: AIJob, tmp: Path, should_stop: Stopper) -> tuple[Output, ...]:
        generator = self._provider(self.local, job)
        prepared = workflow_for(job).prepare(job)
        video = generator.generate(
            prepared, workdir=tmp, on_progress=self.report(job, "generating"), should_stop=should_stop,
        )
        output = self._store(job, video.path)
        return (replace(output, width=video.width, height=video.height,
                        duration_s=video.num_frames / video.fps),)

    # --- remote (Runway, Luma) -----------------------------------------------------------------

    def run_remote(self, job: AIJob) -> Outcome:
        if job.provider_task_id:
            return self.check(job)  # a check-back, a relayed callback or a redelivery: never resubmit
        if job.status is JobStatus.PROCESSING and job.submitted_at is not None:
            return self._fail_now(job, SubmissionOutcomeUnknown(
                f"a submission to {job.provider} was started at {job.submitted_at.isoformat()} "
                "but its outcome was never recorded; not sending it again to avoid paying twice. "
                "Check the provider's dashboard, then retry the job if nothing was created."
            ))
        return self.submit(self.start(job))

    def submit(self, job: AIJob) -> Outcome:
        try:
            provider = self._provider(self.remote, job)
            prepared = workflow_for(job).prepare(job)
            image_url = self._input_image_url(job)
        except Exception as exc:  # noqa: BLE001
            return self.settle_failure(job, exc)
        job = self.transition(job, job.mark_submitting(self.clock.now()))
        try:
            task_id = provider.submit(prepared, input_image_url=image_url,
                                      callback_url=self.callback_url(job))
        except QuotaExhausted as exc:  # nothing was created: wait for the quota, spend no attempt
            return self._wait_for_quota(job, exc)
        except TransientError as exc:  # the provider surely created nothing
            job = self.transition(job, replace(job, submitted_at=None))
            return self.settle_failure(job, exc)
        except Exception as exc:  # noqa: BLE001 - SubmissionOutcomeUnknown and the like
            return self.settle_failure(job, exc)
        job_log(log, job).info("submitted to %s as task %s", job.provider, task_id)
        job = self._save_task_id(job, task_id)
        if job.must_stop_at_provider:  # cancelled while the submission was on its way
            return self.stop_at_provider(job)
        self.progress.record(job.id, stage="generating", percent=0)
        return Outcome.retry_later(self.poll_schedule.min_delay_s, "waiting for the provider")

    def check(self, job: AIJob) -> Outcome:
        provider = self._provider(self.remote, job)
        assert job.provider_task_id is not None
        try:
            task = provider.poll(job.provider_task_id)
        except TransientError as exc:
            job_log(log, job).warning("could not poll the provider: %s", exc)
            return self._check_back(job, reason=str(exc))
        except PermanentError as exc:
            return self._fail_now(job, exc)
        if task.state in (RemoteState.PENDING, RemoteState.RUNNING):
            self.progress.record(job.id, stage="generating", percent=task.progress)
            return self._check_back(job, reason=f"provider task {task.state.value}")
        if task.state is RemoteState.CANCELLED:
            now = self.clock.now()
            self.finish(job, lambda j: j.cancelled_by_provider(now))
            return Outcome.ack("cancelled at the provider")
        if task.state is RemoteState.FAILED:
            return self._task_failed(job, task)
        current = self.jobs.get(job.id)
        if current.must_stop_at_provider:  # cancelled while polling: fetch nothing, stop the task
            return self.stop_at_provider(current)
        return self.collect(job, provider, task)

    def collect(self, job: AIJob, provider: RemoteProvider, task: RemoteTask) -> Outcome:
        """Copy the provider's output into our storage at once (their URLs expire)."""
        if job.status is not JobStatus.PROCESSING:  # waiting, or queued again after a failed copy
            job = self.start(job)

        def copy(tmp: Path) -> tuple[Output, ...]:
            self._unless_cancelled(job)
            self.progress.record(job.id, stage="uploading", percent=0)
            self._download(job, provider, task, tmp / "video.mp4")
            self._unless_cancelled(job)
            return (self._store(job, tmp / "video.mp4"),)

        return self.produce(job, copy)

    def _download(self, job: AIJob, provider: RemoteProvider, task: RemoteTask, dest: Path) -> None:
        """Download the output; an expired URL makes us fetch the task again for a fresh one."""
        for refresh in range(self.output_url_refreshes + 1):
            if task.state is not RemoteState.SUCCEEDED:
                raise PermanentError(f"{job.provider} no longer offers the output (task {task.state.value})")
            if not task.output_urls:
                raise PermanentError(f"{job.provider} reported success without an output")
            try:
                provider.download(task.output_urls[0], dest)
                return
            except OutputExpired as exc:
                if refresh == self.output_url_refreshes:
                    raise
                job_log(log, job).warning("output URL expired, fetching task %s again: %s",
                                          task.task_id, exc)
            task = provider.poll(task.task_id)

    def _task_failed(self, job: AIJob, task: RemoteTask) -> Outcome:
        """The provider's own code and text go to the log; the job's owner reads a plain reason.
        A failure worth a new task starts one on the next delivery, within the attempt budget."""
        job_log(log, job).warning("%s task %s failed: %s", job.provider, task.task_id, task.failure)
        reason = task.user_error or f"{job.provider} could not generate the video"
        if not task.retryable:
            return self._fail_now(job, PermanentError(reason))
        job = self.start(job) if job.status is JobStatus.WAITING_PROVIDER else job
        now = self.clock.now()
        decision = self.retry_policy.decide(job.attempts, TransientError(reason))
        if isinstance(decision, GiveUp):
            return self._fail_now(job, PermanentError(decision.reason))
        self.transition(job, job.abandon_task(now, reason))
        job_log(log, job).warning("a new %s task in %ss: %s", job.provider, decision.delay_s, reason)
        return Outcome.retry_later(decision.delay_s, reason)

    def _wait_for_quota(self, job: AIJob, exc: QuotaExhausted) -> Outcome:
        now = self.clock.now()
        waited_s = (now - (job.quota_wait_since or now)).total_seconds()
        if waited_s >= self.quota_wait.max_wait_s:
            hours = self.quota_wait.max_wait_s / 3600
            unsent = replace(job, submitted_at=None, attempts=max(job.attempts - 1, 0))
            return self._fail_now(unsent, PermanentError(
                f"{job.provider}'s daily quota stayed used up for {hours:g} h; nothing was submitted "
                "and nothing was charged. Retry the job later."
            ))
        delay_s = self.quota_wait.delay_s(exc.retry_after_s)
        said_s = delay_s if exc.retry_after_s is None else min(exc.retry_after_s, self.quota_wait.max_wait_s)
        until = now + timedelta(seconds=said_s)
        reason = (f"waiting for {job.provider}'s daily quota until about "
                  f"{until.strftime('%Y-%m-%d %H:%M:%S')} UTC; nothing was submitted yet")
        level = logging.WARNING if job.quota_wait_since is None else logging.INFO  # quiet re-checks
        self.transition(job, job.wait_for_quota(now, reason))
        job_log(log, job).log(level, "%s (checked again in %ss): %s", reason, delay_s, exc)
        return Outcome.retry_later(delay_s, reason)

    def _unless_cancelled(self, job: AIJob) -> None:
        """A job cancelled meanwhile fetches and stores nothing (its cancel message stops the task)."""
        if self.jobs.get(job.id).status is JobStatus.CANCELLED:
            raise Interrupted("the job was cancelled")

    # --- cancel at the provider ----------------------------------------------------------------

    def stop_at_provider(self, job: AIJob) -> Outcome:
        """Tell the provider to stop (or delete) a cancelled job's paid task; record its answer.

        A transient error is tried again later, a bounded number of times (the retry policy),
        then recorded as failed; nothing here escapes to the worker loop.
        """
        if not job.provider_task_id:
            return self._cancel_ended(job, ProviderCancel.FAILED, (
                f"a submission to {job.provider} was started but its task id was never recorded; "
                "nothing could be cancelled. Check the provider's dashboard."
            ))
        try:
            accepted = self._provider(self.remote, job).cancel(job.provider_task_id)
        except PermanentError as exc:
            return self._cancel_ended(job, ProviderCancel.FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - transient or unexpected: tried again, bounded
            return self._cancel_again_later(job, exc)
        if accepted:
            return self._cancel_ended(job, ProviderCancel.CONFIRMED,
                                      f"{job.provider} accepted the DELETE of task {job.provider_task_id}")
        return self._cancel_ended(job, ProviderCancel.GONE,
                                  f"{job.provider} no longer knew task {job.provider_task_id}")

    def _cancel_ended(self, job: AIJob, outcome: ProviderCancel, detail: str) -> Outcome:
        self.transition(job, job.provider_cancel_ended(outcome, detail, self.clock.now()))
        log_ = job_log(log, job)
        if outcome is ProviderCancel.FAILED:
            log_.error("could not cancel the task at %s: %s", job.provider, detail)
        else:
            log_.info("provider cancel %s: %s", outcome.value, detail)
        return Outcome.ack(f"provider cancel {outcome.value}")

    def _cancel_again_later(self, job: AIJob, exc: Exception) -> Outcome:
        error = exc if isinstance(exc, TransientError) else TransientError(
            f"unexpected {type(exc).__name__}: {exc}"
        )
        decision = self.retry_policy.decide(job.provider_cancel_tries + 1, error)
        if isinstance(decision, GiveUp):
            return self._cancel_ended(job, ProviderCancel.FAILED, decision.reason)
        self.transition(job, job.provider_cancel_failed_once(str(error), self.clock.now()))
        job_log(log, job).warning("could not cancel the task at %s yet, retrying in %ss: %s",
                                  job.provider, decision.delay_s, error)
        return Outcome.retry_later(decision.delay_s, f"provider cancel: {error}")

    # --- helpers -------------------------------------------------------------------------------

    def _save_task_id(self, job: AIJob, task_id: str) -> AIJob:
        """Record the provider's task id, trying again through a database outage.

        The task exists (and is paid for) from now on, and its id lives only in this process:
        giving up at the first error would leave the job failing as "outcome unknown" on its
        redelivery. The worker's heartbeat keeps the lock and the message while this waits.
        """
        waiting = job.wait_for_provider(task_id, self.clock.now())
        failures = 1
        delay_s = TASK_ID_SAVE_BACKOFF.delay_s(failures)
        deadline_s = time.monotonic() + self.task_id_save_s
        while True:
            try:
                return self.transition(job, waiting)
            except ServiceUnavailable as exc:
                if time.monotonic() + delay_s > deadline_s:
                    job_log(log, job).error("could not record %s task %s: %s", job.provider, task_id, exc)
                    raise
                job_log(log, job).warning("could not record %s task %s yet, retrying in %.1fs: %s",
                                          job.provider, task_id, delay_s, exc)
            except ConcurrentUpdate:
                # an earlier try may have committed before its connection broke
                current = self.jobs.get(job.id)
                if current.provider_task_id == task_id:
                    return current
                if current.status is JobStatus.CANCELLED and not current.provider_task_id:
                    # cancelled while the submission was on its way: keep the id to stop the task
                    return self.transition(current, current.cancelled_with_task(task_id, self.clock.now()))
                raise
            time.sleep(delay_s)
            failures += 1
            delay_s = TASK_ID_SAVE_BACKOFF.delay_s(failures)

    def _check_back(self, job: AIJob, *, reason: str) -> Outcome:
        if job.status is JobStatus.PROCESSING:  # a redelivery found the task id: wait again
            job = self.transition(job, job.wait_for_provider(job.provider_task_id or "", self.clock.now()))
        since = job.submitted_at or job.updated_at
        age_s = (self.clock.now() - since).total_seconds()
        return Outcome.retry_later(self.poll_schedule.next_delay_s(age_s), reason)

    def _fail_now(self, job: AIJob, exc: PermanentError) -> Outcome:
        now = self.clock.now()
        self.finish(job, lambda j: j.fail(str(exc), now))
        job_log(log, job).error("failed: %s", exc)
        return Outcome.failed(Ending.FAILED)

    def _store(self, job: AIJob, path: Path) -> Output:
        self.progress.record(job.id, stage="uploading", percent=50)
        key = f"outputs/{job.id}/video.mp4"
        size = self.storage.upload(key, path, content_type="video/mp4")
        self.progress.record(job.id, stage="uploading", percent=100)
        return Output(key=key, role="video", content_type="video/mp4", size_bytes=size, codec="h264")

    def _input_image_url(self, job: AIJob) -> str | None:
        if not job.input_image:
            return None
        if is_url(job.input_image):
            return job.input_image
        if not self.storage.exists(job.input_image):
            raise PermanentError(f"input image {job.input_image!r} is not in storage")
        return self.storage.presigned_get(job.input_image, expires_s=self.input_url_expires_s)

    @staticmethod
    def _provider(registry: Mapping[str, P], job: AIJob) -> P:
        try:
            return registry[job.provider]
        except KeyError:
            raise PermanentError(
                f"this worker has no {job.provider!r} provider configured"
            ) from None
