"""The Outbox contract: the in-memory fake, SQLite and Postgres behave the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from src.application.messages import JobMessage
from src.domain.jobs import JobKind, VideoJob
from src.infrastructure.db.repository import SqlAlchemyJobRepository, SqlAlchemyOutbox
from src.infrastructure.memory import FakeClock, InMemoryDatabase, InMemoryJobRepository, InMemoryOutbox
from tests.contract.backends import empty_tables, postgres_schema_engine, sqlite_engine, unique

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class Subject:
    outbox: object
    videos: object
    clock: FakeClock


@pytest.fixture(scope="module")
def pg_engine(postgres_url):
    with postgres_schema_engine(postgres_url, "contract_outbox") as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def subject(request, tmp_path) -> Subject:
    clock = FakeClock(T0)
    if request.param == "memory":
        db = InMemoryDatabase(clock)
        return Subject(InMemoryOutbox(db), InMemoryJobRepository(db, VideoJob), clock)
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path)
    else:
        engine = request.getfixturevalue("pg_engine")
        empty_tables(engine, "rq_outbox")
    return Subject(SqlAlchemyOutbox(engine, clock=clock),
                   SqlAlchemyJobRepository(engine, kind=VideoJob, clock=clock), clock)


def messages(count: int, queue: str = "ai-remote") -> list[JobMessage]:
    return [JobMessage(kind=JobKind.AI, job_id=unique(), queue=queue) for _ in range(count)]


def test_added_messages_are_pending_in_order_with_their_queue(subject):
    sent = messages(2) + messages(1, queue="video")

    ids = subject.outbox.add(sent)

    pending = subject.outbox.pending(limit=10)
    assert [entry.id for entry in pending] == ids
    assert [entry.message for entry in pending] == sent


def test_a_pending_entry_remembers_when_it_was_recorded(subject):
    subject.outbox.add(messages(1))

    assert subject.outbox.pending(limit=1)[0].created_at == T0


def test_entries_marked_sent_are_no_longer_pending(subject):
    first, second = subject.outbox.add(messages(2))

    subject.outbox.mark_sent([first])

    assert [entry.id for entry in subject.outbox.pending(limit=10)] == [second]


def test_marking_nothing_as_sent_changes_nothing(subject):
    subject.outbox.add(messages(1))

    subject.outbox.mark_sent([])

    assert len(subject.outbox.pending(limit=10)) == 1


def test_pending_returns_at_most_limit_entries_oldest_first(subject):
    ids = subject.outbox.add(messages(5))

    assert [entry.id for entry in subject.outbox.pending(limit=3)] == ids[:3]


def test_older_than_leaves_out_entries_recorded_after_it(subject):
    old = subject.outbox.add(messages(1))
    subject.clock.advance(60)
    subject.outbox.add(messages(1))

    pending = subject.outbox.pending(limit=10, older_than=T0 + timedelta(seconds=30))

    assert [entry.id for entry in pending] == old


def test_messages_added_with_their_jobs_are_pending(subject):
    job = VideoJob(owner_id=unique(), source="uploads/a.mov", created_at=T0, updated_at=T0)

    ids = subject.videos.add([job], [JobMessage.for_job(job)])

    assert [(e.id, e.message.job_id) for e in subject.outbox.pending(limit=10)] == [(ids[0], job.id)]
