"""The JobRepository contract: the in-memory fake, SQLite and Postgres behave the same.

Messages commit with their jobs: as outbox entries (``store``), or straight into the queue when
it lives in the jobs' database, the SQL lease queue (``same_db``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from src.application.messages import JobMessage
from src.domain.errors import ConcurrentUpdate, JobNotFound, ReelqueueError, ServiceUnavailable
from src.domain.jobs import AIJob, Mode, Output, ProviderCancel, VideoJob
from src.domain.status import JobStatus
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.queue import SqlQueueConsumer, SqlQueuePublisher
from src.infrastructure.db.repository import QueueWriter, SqlAlchemyJobRepository, SqlAlchemyOutbox
from src.infrastructure.db.tables import batches
from src.infrastructure.memory import (
    FakeClock,
    InMemoryBroker,
    InMemoryConsumer,
    InMemoryDatabase,
    InMemoryJobRepository,
    InMemoryOutbox,
)
from tests.contract.backends import (
    UNREACHABLE_POSTGRES_URL,
    empty_tables,
    postgres_schema_engine,
    sqlite_engine,
    unique,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class Store:
    videos: object
    ais: object
    outbox: object
    clock: FakeClock
    engine: sa.Engine | None = None


@pytest.fixture(scope="module")
def pg_engine(postgres_url):
    with postgres_schema_engine(postgres_url, "contract_jobs") as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request, tmp_path) -> Store:
    clock = FakeClock(T0)
    if request.param == "memory":
        db = InMemoryDatabase(clock)
        return Store(InMemoryJobRepository(db, VideoJob), InMemoryJobRepository(db, AIJob),
                     InMemoryOutbox(db), clock)
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path)
    else:
        engine = request.getfixturevalue("pg_engine")
        empty_tables(engine, "rq_outbox")
    return Store(SqlAlchemyJobRepository(engine, kind=VideoJob, clock=clock),
                 SqlAlchemyJobRepository(engine, kind=AIJob, clock=clock),
                 SqlAlchemyOutbox(engine, clock=clock), clock, engine)


@dataclass
class SameDatabase:
    """Repositories whose messages go straight into the queue, and a reader of that queue."""

    videos: object
    outbox: object
    consumer: object

    def queued(self) -> list[str]:
        got = self.consumer.receive(max_messages=10, wait_s=0)  # type: ignore[attr-defined]
        return [JobMessage.decode(m.body, queue=m.queue).job_id for m in got]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def same_db(request, tmp_path) -> SameDatabase:
    clock = FakeClock(T0)
    if request.param == "memory":
        broker = InMemoryBroker(clock)
        db = InMemoryDatabase(clock, broker=broker)
        return SameDatabase(InMemoryJobRepository(db, VideoJob), InMemoryOutbox(db),
                            InMemoryConsumer(broker, "video"))
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path)
    else:
        engine = request.getfixturevalue("pg_engine")
        empty_tables(engine, "rq_outbox", "rq_queue_messages")
    writer = QueueWriter(SqlQueuePublisher(engine, clock=clock))
    consumer = SqlQueueConsumer(engine, "video", clock=clock, visibility_timeout_s=30, max_receive_count=5)
    return SameDatabase(SqlAlchemyJobRepository(engine, kind=VideoJob, clock=clock, messages=writer),
                        SqlAlchemyOutbox(engine, clock=clock), consumer)


def video(owner: str | None = None, *, at: datetime = T0, **changes) -> VideoJob:
    return VideoJob(owner_id=owner or unique("owner-"), source="uploads/in.mov", preset="480p",
                    poster_offset_s=2.5, created_at=at, updated_at=at, **changes)


def ai(owner: str | None = None, *, at: datetime = T0, **changes) -> AIJob:
    return AIJob(owner_id=owner or unique("owner-"), model="gen4.5", provider="runway",
                 production_path="cinema", mode=Mode.IMAGE_TO_VIDEO, prompt="a red kite",
                 input_image="uploads/kite.png", duration_s=5, ratio="1280:720", seed=4_000_000_000,
                 callback_token="tok", created_at=at, updated_at=at, **changes)


def message(job) -> JobMessage:
    return JobMessage.for_job(job)


def test_a_video_job_reads_back_exactly_as_it_was_added(store):
    job = video()

    store.videos.add([job], [message(job)])

    assert store.videos.get(job.id) == job


def test_an_ai_job_reads_back_with_every_field(store):
    job = ai(batch_id=unique(), submitted_at=T0 + timedelta(seconds=3), provider_task_id="task-2",
             provider_task_history=("task-1", "task-2"), quota_wait_since=T0 + timedelta(hours=1))

    store.ais.add([job], [message(job)])

    assert store.ais.get(job.id) == job


def test_a_saved_ai_job_keeps_its_provider_task_history_and_quota_wait(store):
    job = ai()
    store.ais.add([job], [message(job)])
    started = job.start(T0)
    store.ais.save(started, expected=job.status)
    waiting = started.wait_for_quota(T0, "waiting for runway's daily quota")
    store.ais.save(waiting, expected=started.status)
    assert store.ais.get(job.id).quota_wait_since == T0 and store.ais.get(job.id).attempts == 0
    submitted = waiting.start(T0).wait_for_provider("task-9", T0)
    store.ais.save(submitted, expected=waiting.status)  # queued -> waiting_provider in one save

    found = store.ais.get(job.id)

    assert found.provider_task_history == ("task-9",) and found.quota_wait_since is None
    assert store.ais.get(job.id) == submitted


def test_timestamps_come_back_as_the_same_instant(store):
    paris = timezone(timedelta(hours=1))
    job = video(at=datetime(2026, 3, 1, 13, 30, 15, 123456, tzinfo=paris))

    store.videos.add([job], [])

    in_utc = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
    assert store.videos.get(job.id).created_at == in_utc


def test_add_returns_one_outbox_id_per_message_in_order(store):
    first, second = video(), video()

    ids = store.videos.add([first, second], [message(first), message(second)])

    assert len(ids) == 2 and ids[0] < ids[1]
    pending = {entry.id: entry.message for entry in store.outbox.pending(limit=100)}
    assert [pending[i] for i in ids] == [message(first), message(second)]


def test_adding_a_duplicate_job_stores_nothing_of_that_add(store):
    existing = video()
    store.videos.add([existing], [])
    fresh = video()

    with pytest.raises(ReelqueueError):
        store.videos.add([fresh, existing], [message(fresh)])

    with pytest.raises(JobNotFound):
        store.videos.get(fresh.id)
    assert all(entry.message.job_id != fresh.id for entry in store.outbox.pending(limit=100))


def test_an_unknown_job_is_not_found(store):
    with pytest.raises(JobNotFound):
        store.videos.get(unique())


def test_a_job_of_the_other_kind_is_not_found(store):
    job = ai()
    store.ais.add([job], [])

    with pytest.raises(JobNotFound):
        store.videos.get(job.id)


def test_a_job_of_the_wrong_kind_cannot_be_added(store):
    with pytest.raises(TypeError):
        store.videos.add([ai()], [])


def test_save_stores_a_transition_from_the_expected_status(store):
    job = video()
    store.videos.add([job], [])
    started = job.start(T0 + timedelta(seconds=1))

    store.videos.save(started, expected=JobStatus.QUEUED)

    assert store.videos.get(job.id) == started


def test_save_keeps_outputs_error_and_progress_fields(store):
    job = video()
    store.videos.add([job], [])
    started = job.start(T0)
    store.videos.save(started, expected=JobStatus.QUEUED)
    outputs = (Output(key="out/a.mp4", size_bytes=123, duration_s=4.5, width=1280, height=720,
                      codec="h264"),
               Output(key="out/a.jpg", role="poster", content_type="image/jpeg"))
    done = started.with_progress("uploading", 100.0).succeed(outputs, T0 + timedelta(seconds=9))

    store.videos.save(done, expected=JobStatus.PROCESSING)

    assert store.videos.get(job.id) == done


def test_a_save_that_expects_a_stale_status_raises_concurrent_update(store):
    job = video()
    store.videos.add([job], [])
    store.videos.save(job.start(T0), expected=JobStatus.QUEUED)

    with pytest.raises(ConcurrentUpdate) as caught:
        store.videos.save(job.start(T0), expected=JobStatus.QUEUED)

    assert caught.value.actual == JobStatus.PROCESSING.value


def test_messages_saved_with_a_transition_are_pending_only_when_the_save_succeeds(store):
    job = video()
    store.videos.add([job], [])
    failed = job.start(T0).fail("broken", T0)
    store.videos.save(job.start(T0), expected=JobStatus.QUEUED)

    with pytest.raises(ConcurrentUpdate):
        store.videos.save(failed, expected=JobStatus.QUEUED, messages=[message(job)])
    ids = store.videos.save(failed, expected=JobStatus.PROCESSING, messages=[message(job)])

    assert [(e.id, e.message) for e in store.outbox.pending(limit=10)] == [(ids[0], message(job))]


def test_saving_a_job_that_was_never_added_is_not_found(store):
    with pytest.raises(JobNotFound):
        store.videos.save(video(), expected=JobStatus.QUEUED)


def test_list_shows_the_newest_jobs_first(store):
    owner = unique("owner-")
    jobs = [video(owner, at=T0 + timedelta(minutes=i)) for i in range(3)]
    store.videos.add(jobs, [])

    assert [job.id for job in store.videos.list(owner_id=owner)] == [j.id for j in reversed(jobs)]


def test_list_filters_by_status_and_batch(store):
    owner, batch_id = unique("owner-"), unique()
    in_batch = [ai(owner, batch_id=batch_id, at=T0 + timedelta(seconds=i)) for i in range(2)]
    alone = ai(owner)
    store.ais.add([*in_batch, alone], [])
    store.ais.save(alone.start(T0), expected=JobStatus.QUEUED)

    assert {j.id for j in store.ais.list(batch_id=batch_id)} == {j.id for j in in_batch}
    assert [j.id for j in store.ais.list(owner_id=owner, status=JobStatus.PROCESSING)] == [alone.id]


def test_list_pages_with_limit_and_offset(store):
    owner = unique("owner-")
    jobs = [video(owner, at=T0 + timedelta(seconds=i)) for i in range(5)]
    store.videos.add(jobs, [])

    page = store.videos.list(owner_id=owner, limit=2, offset=1)

    assert [job.id for job in page] == [jobs[3].id, jobs[2].id]


def test_list_shows_only_jobs_of_its_kind(store):
    owner = unique("owner-")
    store.videos.add([video(owner)], [])
    store.ais.add([ai(owner)], [])

    assert [job.kind.value for job in store.ais.list(owner_id=owner)] == ["ai"]


# --- SQL only: the batch row and driver errors ---------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_sql_timestamps_come_back_timezone_aware_in_utc(store):
    job = video(at=datetime(2026, 3, 1, 13, 30, tzinfo=timezone(timedelta(hours=-5))))
    store.videos.add([job], [])

    stored = store.videos.get(job.id)

    assert stored.created_at.tzinfo == timezone.utc
    assert stored.created_at == job.created_at


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_jobs_of_a_batch_record_one_batch_row_with_their_count(store):
    owner, batch_id = unique("owner-"), unique()
    store.ais.add([ai(owner, batch_id=batch_id) for _ in range(3)], [])

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).mappings().all()

    assert [(row["owner_id"], row["size"]) for row in rows] == [(owner, 3)]


def test_an_unreachable_database_is_reported_as_service_unavailable():
    engine = make_engine(UNREACHABLE_POSTGRES_URL)
    repository = SqlAlchemyJobRepository(engine, kind=VideoJob)

    with pytest.raises(ServiceUnavailable) as caught:
        repository.get(unique())

    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)


def test_a_retried_job_saves_cleared_fields(store):
    job = ai()
    store.ais.add([job], [])
    started = job.start(T0)
    store.ais.save(started, expected=JobStatus.QUEUED)
    waiting = started.mark_submitting(T0).wait_for_provider("task-9", T0)
    store.ais.save(waiting, expected=JobStatus.PROCESSING)
    failed = waiting.fail("provider refused", T0)
    store.ais.save(failed, expected=JobStatus.WAITING_PROVIDER)

    retried = failed.retry(T0 + timedelta(seconds=1))
    store.ais.save(retried, expected=JobStatus.FAILED)

    assert store.ais.get(job.id) == retried
    assert store.ais.get(job.id).provider_task_id is None


def test_a_provider_cancel_and_its_outcome_are_stored_with_the_cancelled_job(store):
    job = ai()
    store.ais.add([job], [])
    waiting = job.start(T0).mark_submitting(T0).wait_for_provider("task-7", T0)
    store.ais.save(waiting, expected=JobStatus.QUEUED)
    cancelled = waiting.cancel(T0 + timedelta(seconds=1))
    store.ais.save(cancelled, expected=JobStatus.WAITING_PROVIDER)
    assert store.ais.get(job.id) == cancelled and cancelled.provider_cancel is ProviderCancel.REQUESTED

    trying = cancelled.provider_cancel_failed_once("runway answered 503", T0 + timedelta(seconds=2))
    store.ais.save(trying, expected=JobStatus.CANCELLED)
    later = T0 + timedelta(seconds=3)
    done = trying.provider_cancel_ended(ProviderCancel.CONFIRMED, "runway accepted", later)
    store.ais.save(done, expected=JobStatus.CANCELLED)

    stored = store.ais.get(job.id)
    assert stored == done
    assert (stored.provider_cancel, stored.provider_cancel_tries) == (ProviderCancel.CONFIRMED, 1)


# --- the queue in the jobs' own database ---------------------------------------------------------


def test_with_the_queue_in_the_same_database_added_messages_are_queued_not_pending(same_db):
    first, second = video(), video()

    ids = same_db.videos.add([first, second], [message(first), message(second)])

    assert ids == [] and same_db.outbox.pending(limit=10) == []
    assert same_db.queued() == [first.id, second.id]


def test_with_the_queue_in_the_same_database_a_failed_add_queues_nothing(same_db):
    existing = video()
    same_db.videos.add([existing], [])
    fresh = video()

    with pytest.raises(ReelqueueError):
        same_db.videos.add([fresh, existing], [message(fresh)])

    assert same_db.queued() == []


def test_with_the_queue_in_the_same_database_one_job_and_its_message_are_added_together(same_db):
    job = video()

    assert same_db.videos.add([job], [message(job)]) == []

    assert same_db.videos.get(job.id) == job
    assert same_db.queued() == [job.id] and same_db.outbox.pending(limit=10) == []


def test_with_the_queue_in_the_same_database_a_single_duplicate_job_queues_nothing(same_db):
    existing = video()
    same_db.videos.add([existing], [])
    again = dataclasses.replace(video(), id=existing.id, source="uploads/other.mov")

    with pytest.raises(ReelqueueError):
        same_db.videos.add([again], [message(again)])

    assert same_db.queued() == []
    assert same_db.videos.get(existing.id) == existing


def test_with_the_queue_in_the_same_database_a_job_whose_message_is_refused_is_not_stored(same_db):
    from src.application.queue_limits import MAX_BODY_BYTES

    job = video()
    oversized = dataclasses.replace(message(job), job_id=job.id + "x" * MAX_BODY_BYTES)

    with pytest.raises(ReelqueueError):
        same_db.videos.add([job], [oversized])

    assert same_db.queued() == []
    with pytest.raises(JobNotFound):
        same_db.videos.get(job.id)


def test_with_the_queue_in_the_same_database_a_save_queues_its_messages_only_when_it_succeeds(same_db):
    job = video()
    same_db.videos.add([job], [])
    started = job.start(T0)
    same_db.videos.save(started, expected=JobStatus.QUEUED)

    with pytest.raises(ConcurrentUpdate):
        same_db.videos.save(started, expected=JobStatus.QUEUED, messages=[message(job)])
    assert same_db.queued() == []
    requeued = started.requeue(T0, "operator")
    assert same_db.videos.save(requeued, expected=JobStatus.PROCESSING, messages=[message(job)]) == []

    assert same_db.queued() == [job.id]
