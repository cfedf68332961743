"""The rhythm every job handler shares: lock, load, one transition, save, release."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from src.application.logs import job_log
from src.application.outcomes import Ending, Outcome
from src.application.ports import Clock, Idempotency, JobRepository, Lock, ProgressStore
from src.application.retry import GiveUp, RetryPolicy
from src.domain.errors import (
    ConcurrentUpdate,
    Interrupted,
    PermanentError,
    ServiceUnavailable,
    TransientError,
)
from src.domain.jobs import Job, Output
from src.domain.status import JobStatus

log = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)

Stopper = Callable[[], bool]
"""Returns True when the worker is shutting down and running work should stop at a checkpoint."""


def _never() -> bool:
    return False


class JobHandler(Generic[J]):
    """Runs one delivery of one job. Subclasses implement :meth:`run`."""

    def __init__(
        self,
        *,
        jobs: JobRepository[J],
        locks: Idempotency,
        progress: ProgressStore,
        clock: Clock,
        retry_policy: RetryPolicy,
        lock_ttl_ms: int = 15 * 60 * 1000,
        cancel_check_interval_s: float = 2.0,
        locked_recheck_s: int = 60,
        workdir: Path | None = None,
    ) -> None:
        self.jobs = jobs
        self.locks = locks
        self.progress = progress
        self.clock = clock
        self.retry_policy = retry_policy
        self.lock_ttl_ms = lock_ttl_ms
        self.cancel_check_interval_s = cancel_check_interval_s
        self.locked_recheck_s = locked_recheck_s
        self.workdir = workdir  # where per-job temporary directories go (None: the system's)
        self._held: dict[str, Lock] = {}  # job id -> the lock of a delivery running now

    def handle(self, job_id: str, *, shutting_down: Stopper = _never) -> Outcome:
        """Handle one delivery. Raises :class:`JobNotFound` for a message naming no job."""
        lock = self.locks.acquire(f"job:{job_id}", ttl_ms=self.lock_ttl_ms)
        if lock is None:
            return self._locked_elsewhere(job_id)
        self._held[job_id] = lock
        try:
            job = self.jobs.get(job_id)
            if self.settled(job):
                return Outcome.ack(f"already {job.status.value}")
            return self.run(job, self._stopper(job_id, shutting_down))
        except ConcurrentUpdate as exc:
            return Outcome.ack(f"changed by someone else ({exc})")
        finally:
            self._held.pop(job_id, None)
            self._release(lock)

    def _release(self, lock: Lock) -> None:
        """Release the lock, best effort: the job's outcome stands even if the lock store is down
        (an unreleased lock expires after its TTL; a redelivery meanwhile is checked again later)."""
        try:
            self.locks.release(lock)
        except ServiceUnavailable as exc:
            log.warning("could not release the lock %s (it expires by itself): %s", lock.key, exc)

    def _locked_elsewhere(self, job_id: str) -> Outcome:
        """Never run a job twice at once; but if its holder died, its lock only expires later,
        so a job that is not finished is checked again then instead of being dropped."""
        job = self.jobs.get(job_id)
        if self.settled(job):
            return Outcome.ack(f"already {job.status.value}")
        return Outcome.retry_later(self.locked_recheck_s, "another worker holds this job")

    def renew_lock(self, job_id: str) -> bool:
        """Extend the lock of a job being handled now (the worker's heartbeat calls this)."""
        lock = self._held.get(job_id)
        return lock is not None and self.locks.extend(lock, ttl_ms=self.lock_ttl_ms)

    def settled(self, job: J) -> bool:
        """Nothing left to do for this job: a delivery is acknowledged untouched."""
        return job.status.is_terminal

    def run(self, job: J, should_stop: Stopper) -> Outcome:
        """Handle a job that is not :meth:`settled`."""
        raise NotImplementedError

    # --- shared steps -----------------------------------------------------------------------

    def start(self, job: J) -> J:
        """queued -> processing; a job left in processing by a lost worker starts a new attempt."""
        if job.status is JobStatus.PROCESSING:
            lost = job.requeue(self.clock.now(), "the previous worker stopped without finishing")
            self.jobs.save(lost, expected=JobStatus.PROCESSING)
            job_log(log, lost).warning("resuming a job its previous worker left unfinished")
            job = lost
        return self.transition(job, job.start(self.clock.now()))

    def transition(self, old: J, new: J) -> J:
        self.jobs.save(new, expected=old.status)
        return new

    def report(self, job: Job, stage: str) -> Callable[[float], None]:
        def record(percent: float) -> None:
            self.progress.record(job.id, stage=stage, percent=percent)

        return record

    def finish(self, job: J, outcome: Callable[[J], J]) -> J:
        """Save a final state, with the last progress the store saw."""
        last = self.progress.flush(job.id)
        if last is not None:
            job = job.with_progress(last.stage, last.percent)
        return self.transition(job, outcome(job))

    def produce(self, job: J, make: Callable[[Path], tuple[Output, ...]]) -> Outcome:
        """Run ``make`` in a per-job temporary directory, removed whatever happens; save the
        outputs as the job's success, or settle the failure."""
        tmp = Path(tempfile.mkdtemp(prefix=f"reelqueue-{job.id}-", dir=self.workdir))
        try:
            outputs = make(tmp)
        except Exception as exc:  # noqa: BLE001 - every failure is settled, none escapes
            return self.settle_failure(job, exc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        now = self.clock.now()
        self.finish(job, lambda j: j.succeed(outputs, now))
        return Outcome.succeeded()

    def settle_failure(self, job: J, exc: Exception) -> Outcome:
        """Turn an exception from processing into a saved state and an outcome."""
        now = self.clock.now()
        log_ = job_log(log, job)
        if isinstance(exc, Interrupted):
            self.transition(job, job.requeue(now, "worker shut down; will resume"))
            log_.info("stopped at a checkpoint; handing the job back")
            return Outcome.release("shutdown")
        if isinstance(exc, PermanentError):
            self.finish(job, lambda j: j.fail(str(exc), now))
            log_.error("failed: %s", exc)
            return Outcome.failed(Ending.FAILED)
        error = exc if isinstance(exc, TransientError) else TransientError(
            f"unexpected {type(exc).__name__}: {exc}"
        )
        decision = self.retry_policy.decide(job.attempts, error)
        if isinstance(decision, GiveUp):
            self.finish(job, lambda j: j.fail(decision.reason, now))
            log_.error("failed: %s", decision.reason)
            return Outcome.failed(Ending.EXHAUSTED)
        self.transition(job, job.requeue(now, str(error)))
        log_.warning("transient failure, retrying in %ss: %s", decision.delay_s, error)
        return Outcome.retry_later(decision.delay_s, str(error))

    def _stopper(self, job_id: str, shutting_down: Stopper) -> Stopper:
        """Stop when the worker shuts down or the job was cancelled (checked every few seconds)."""
        last_check = [time.monotonic()]

        def should_stop() -> bool:
            if shutting_down():
                return True
            now = time.monotonic()
            if now - last_check[0] < self.cancel_check_interval_s:
                return False
            last_check[0] = now
            return self.jobs.get(job_id).status is JobStatus.CANCELLED

        return should_stop
