"""The IdempotencyKeys contract: the in-memory fake, SQLite and Postgres agree.

A key's answer commits with the jobs it names (``add(..., answer=)``) or the retried job's save
(``save(..., answer=)``): a job never exists without its key's answer, nor an answer without its
job. Each case runs with messages as outbox rows and as rows of the SQL lease queue in the same
database (on Postgres the one-statement insert, which a keyed add must not take).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import pytest

from src.application.messages import JobMessage
from src.application.ports import IdempotentRequest, KeptAnswer
from src.domain.errors import ConcurrentUpdate, IdempotencyKeyTaken, ReelqueueError
from src.domain.jobs import VideoJob, new_id
from src.domain.status import JobStatus
from src.infrastructure.db.idempotency_keys import SqlAlchemyIdempotencyKeys
from src.infrastructure.db.queue import SqlQueuePublisher
from src.infrastructure.db.repository import QueueWriter, SqlAlchemyJobRepository
from src.infrastructure.memory import (
    FakeClock,
    InMemoryBroker,
    InMemoryDatabase,
    InMemoryIdempotencyKeys,
    InMemoryJobRepository,
)
from tests.contract.backends import empty_tables, postgres_schema_engine, sqlite_engine, unique

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY_S = 24 * 3600


@dataclass
class Subject:
    keys: object
    videos: object
    clock: FakeClock


@pytest.fixture(scope="module")
def pg_engine(postgres_url):
    with postgres_schema_engine(postgres_url, "contract_idempotency_keys") as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture(params=["outbox", "queue"])
def subject(request, backend, tmp_path) -> Subject:
    clock = FakeClock(T0)
    queue = request.param == "queue"
    if backend == "memory":
        db = InMemoryDatabase(clock, broker=InMemoryBroker(clock) if queue else None)
        return Subject(InMemoryIdempotencyKeys(db), InMemoryJobRepository(db, VideoJob), clock)
    engine = sqlite_engine(tmp_path) if backend == "sqlite" else request.getfixturevalue("pg_engine")
    empty_tables(engine, "rq_idempotency_keys", "rq_outbox", "rq_queue_messages", "rq_jobs")
    writer = QueueWriter(SqlQueuePublisher(engine, clock=clock)) if queue else None
    return Subject(SqlAlchemyIdempotencyKeys(engine),
                   SqlAlchemyJobRepository(engine, kind=VideoJob, clock=clock, messages=writer), clock)


def request_for(owner: str | None = None, key: str | None = None, **changes) -> IdempotentRequest:
    values = {"owner_id": owner or unique("owner-"), "key": key or unique("key-"),
              "endpoint": "POST /api/v1/video-jobs", "fingerprint": "f" * 64, **changes}
    return IdempotentRequest(**values)


def answer_for(request: IdempotentRequest, *, at: datetime = T0, ttl_s: float = DAY_S,
               **kept) -> KeptAnswer:
    return request.answered(now=at, ttl_s=ttl_s, **kept)


def video(owner: str = "owner", *, at: datetime = T0, **changes) -> VideoJob:
    return VideoJob(owner_id=owner, source="uploads/in.mov", preset="480p", poster_offset_s=1.0,
                    created_at=at, updated_at=at, **changes)


def add_job(subject: Subject, request: IdempotentRequest, **changes) -> VideoJob:
    job = video(request.owner_id, **changes)
    subject.videos.add([job], [JobMessage.for_job(job)], answer=answer_for(request, resource_id=job.id))
    return job


def stored_ids(subject: Subject) -> list[str]:
    return [job.id for job in subject.videos.list(limit=1000)]


def test_a_key_never_used_has_no_answer(subject):
    assert subject.keys.find(unique(), unique(), now=T0) is None


def test_a_kept_answer_is_found_by_its_owner_and_key_with_every_field(subject):
    request = request_for()
    answer = answer_for(request, body={"key": "uploads/1/a.png", "headers": {"Content-Type": "image/png"},
                                       "expires_in_s": 900})

    subject.keys.add(answer)

    assert subject.keys.find(request.owner_id, request.key, now=T0 + timedelta(hours=1)) == answer


def test_another_owners_key_of_the_same_text_is_a_different_key(subject):
    first = request_for(key="shared-key")
    subject.keys.add(answer_for(first, resource_id=new_id()))
    second = request_for(key="shared-key")

    assert subject.keys.find(second.owner_id, "shared-key", now=T0) is None
    subject.keys.add(answer_for(second, resource_id=new_id()))
    assert subject.keys.find(second.owner_id, "shared-key", now=T0).owner_id == second.owner_id


def test_a_key_with_an_answer_cannot_keep_a_second_one(subject):
    request = request_for()
    first = answer_for(request, resource_id=new_id())
    subject.keys.add(first)

    with pytest.raises(IdempotencyKeyTaken):
        subject.keys.add(answer_for(request, at=T0 + timedelta(minutes=1), resource_id=new_id()))

    assert subject.keys.find(request.owner_id, request.key, now=T0) == first


def test_an_expired_answer_is_not_found_and_its_key_can_be_used_again(subject):
    request = request_for()
    subject.keys.add(answer_for(request, ttl_s=60, resource_id=new_id()))
    later = T0 + timedelta(seconds=60)

    assert subject.keys.find(request.owner_id, request.key, now=later) is None
    again = answer_for(request, at=later, resource_id=new_id())
    subject.keys.add(again)
    assert subject.keys.find(request.owner_id, request.key, now=later) == again


def test_purge_deletes_only_expired_answers(subject):
    old, fresh = request_for(), request_for()
    subject.keys.add(answer_for(old, ttl_s=60, resource_id=new_id()))
    subject.keys.add(answer_for(fresh, ttl_s=3600, resource_id=new_id()))

    assert subject.keys.purge(now=T0 + timedelta(seconds=61)) == 1

    assert subject.keys.find(fresh.owner_id, fresh.key, now=T0) is not None
    assert subject.keys.find(old.owner_id, old.key, now=T0) is None  # gone, not just expired
    assert subject.keys.purge(now=T0 + timedelta(seconds=61)) == 0


def test_a_job_added_with_its_keys_answer_stores_both(subject):
    request = request_for()

    job = add_job(subject, request)

    assert subject.videos.get(job.id) == job
    assert subject.keys.find(request.owner_id, request.key, now=T0).resource_id == job.id


def test_a_job_whose_key_already_has_an_answer_is_not_stored(subject):
    request = request_for()
    first = add_job(subject, request)

    with pytest.raises(IdempotencyKeyTaken):
        add_job(subject, request)

    assert stored_ids(subject) == [first.id]
    assert subject.keys.find(request.owner_id, request.key, now=T0).resource_id == first.id


def test_an_answer_whose_jobs_cannot_be_stored_is_not_kept(subject):
    taken = add_job(subject, request_for())
    request = request_for()

    with pytest.raises(ReelqueueError):
        add_job(subject, request, id=taken.id)  # the job id exists: the whole add rolls back

    assert subject.keys.find(request.owner_id, request.key, now=T0) is None


def test_a_save_keeps_its_answer_with_it(subject):
    job = add_job(subject, request_for())
    cancelled = job.cancel(T0)
    subject.videos.save(cancelled, expected=JobStatus.QUEUED)
    retried, request = cancelled.retry(T0), request_for(owner=job.owner_id)

    subject.videos.save(retried, expected=JobStatus.CANCELLED, messages=[JobMessage.for_job(retried)],
                        answer=answer_for(request, resource_id=job.id))

    assert subject.videos.get(job.id) == retried
    assert subject.keys.find(request.owner_id, request.key, now=T0).resource_id == job.id


def test_a_save_that_finds_another_status_keeps_no_answer(subject):
    job = add_job(subject, request_for())
    request = request_for(owner=job.owner_id)

    with pytest.raises(ConcurrentUpdate):
        subject.videos.save(replace(job, attempts=9), expected=JobStatus.FAILED,
                            answer=answer_for(request, resource_id=job.id))

    assert subject.keys.find(request.owner_id, request.key, now=T0) is None
    assert subject.videos.get(job.id) == job


def test_a_save_whose_key_already_has_an_answer_changes_nothing(subject):
    job = add_job(subject, request_for())
    cancelled = job.cancel(T0)
    subject.videos.save(cancelled, expected=JobStatus.QUEUED)
    request = request_for(owner=job.owner_id)
    subject.keys.add(answer_for(request, resource_id=new_id()))

    with pytest.raises(IdempotencyKeyTaken):
        subject.videos.save(cancelled.retry(T0), expected=JobStatus.CANCELLED,
                            answer=answer_for(request, resource_id=job.id))

    assert subject.videos.get(job.id) == cancelled


def test_of_requests_racing_with_one_key_exactly_one_job_is_stored(subject):
    request, barrier = request_for(), threading.Barrier(8)
    outcomes: list[object] = []

    def race() -> None:
        barrier.wait()
        try:
            outcomes.append(add_job(subject, request).id)
        except IdempotencyKeyTaken as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    won = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert len(outcomes) == 8 and len(won) == 1
    assert stored_ids(subject) == won
    assert subject.keys.find(request.owner_id, request.key, now=T0).resource_id == won[0]
