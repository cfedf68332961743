from datetime import datetime, timezone
from itertools import product

import pytest

from src.domain.errors import IllegalTransition
from src.domain.jobs import Output, VideoJob
from src.domain.status import TRANSITIONS, JobStatus

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

LEGAL = {
    (JobStatus.QUEUED, JobStatus.PROCESSING),
    (JobStatus.QUEUED, JobStatus.CANCELLED),
    (JobStatus.PROCESSING, JobStatus.SUCCEEDED),
    (JobStatus.PROCESSING, JobStatus.FAILED),
    (JobStatus.PROCESSING, JobStatus.CANCELLED),
    (JobStatus.PROCESSING, JobStatus.WAITING_PROVIDER),
    (JobStatus.PROCESSING, JobStatus.QUEUED),
    (JobStatus.WAITING_PROVIDER, JobStatus.PROCESSING),
    (JobStatus.WAITING_PROVIDER, JobStatus.FAILED),
    (JobStatus.WAITING_PROVIDER, JobStatus.CANCELLED),
    (JobStatus.FAILED, JobStatus.QUEUED),
    (JobStatus.CANCELLED, JobStatus.QUEUED),
}


def job_in(status: JobStatus) -> VideoJob:
    return VideoJob(owner_id="u1", source="in/a.mp4", status=status, created_at=NOW, updated_at=NOW)


def move(job: VideoJob, target: JobStatus) -> VideoJob:
    steps = {
        JobStatus.PROCESSING: lambda: job.start(NOW),
        JobStatus.SUCCEEDED: lambda: job.succeed((Output(key="o/v.mp4"),), NOW),
        JobStatus.FAILED: lambda: job.fail("broken", NOW),
        JobStatus.CANCELLED: lambda: job.cancel(NOW),
        JobStatus.QUEUED: lambda: job.retry(NOW) if job.status.is_terminal else job.requeue(NOW, "again"),
        JobStatus.WAITING_PROVIDER: lambda: job._to(JobStatus.WAITING_PROVIDER, NOW),
    }
    return steps[target]()


def test_the_transition_table_is_exactly_the_documented_one():
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == LEGAL


@pytest.mark.parametrize("current,target", sorted(LEGAL))
def test_a_legal_transition_returns_a_new_job_in_the_target_status(current, target):
    job = job_in(current)
    moved = move(job, target)
    assert moved.status is target
    assert job.status is current  # frozen: the old job is unchanged


ILLEGAL = sorted(set(product(JobStatus, JobStatus)) - LEGAL)


@pytest.mark.parametrize("current,target", ILLEGAL)
def test_every_other_transition_raises_a_domain_error(current, target):
    with pytest.raises(IllegalTransition):
        move(job_in(current), target)


def test_starting_a_queued_job_counts_a_new_attempt():
    assert job_in(JobStatus.QUEUED).start(NOW).attempts == 1


def test_resuming_a_job_from_the_provider_does_not_count_a_new_attempt():
    assert job_in(JobStatus.WAITING_PROVIDER).start(NOW).attempts == 0


def test_a_retried_job_forgets_its_error_and_outputs():
    failed = job_in(JobStatus.PROCESSING).fail("boom", NOW)
    retried = failed.retry(NOW)
    assert (retried.status, retried.error, retried.outputs) == (JobStatus.QUEUED, None, ())


def test_terminal_statuses_are_succeeded_failed_and_cancelled():
    assert {s for s in JobStatus if s.is_terminal} == {
        JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED,
    }


def test_entities_are_frozen():
    with pytest.raises(AttributeError):
        job_in(JobStatus.QUEUED).status = JobStatus.FAILED  # type: ignore[misc]
