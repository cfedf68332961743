"""Workers racing on real Postgres: a conditional save lets exactly one of them start a job."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from src.domain.errors import ConcurrentUpdate
from src.domain.jobs import VideoJob
from src.domain.status import JobStatus
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import upgrade
from src.infrastructure.db.repository import SqlAlchemyJobRepository

WORKERS = 8
JOBS = 20
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def repository(postgres_url):
    engine = make_engine(postgres_url, pool_size=WORKERS)
    upgrade(engine)
    yield SqlAlchemyJobRepository(engine, kind=VideoJob)
    engine.dispose()


def race_to_start(repository, job: VideoJob) -> list[str]:
    """Every worker loads the queued job and tries to move it to processing at the same moment."""
    barrier, outcomes = threading.Barrier(WORKERS), []

    def worker() -> None:
        loaded = repository.get(job.id)
        barrier.wait()
        try:
            repository.save(loaded.start(datetime.now(timezone.utc)), expected=JobStatus.QUEUED)
            outcomes.append("won")
        except ConcurrentUpdate:
            outcomes.append("lost")

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_of_workers_racing_to_start_the_same_job_exactly_one_wins(repository):
    jobs = [VideoJob(owner_id="racer", source="uploads/a.mov", created_at=T0, updated_at=T0)
            for _ in range(JOBS)]
    repository.add(jobs, [])

    for job in jobs:
        outcomes = race_to_start(repository, job)

        assert sorted(outcomes) == ["lost"] * (WORKERS - 1) + ["won"]
        stored = repository.get(job.id)
        assert (stored.status, stored.attempts) == (JobStatus.PROCESSING, 1)
