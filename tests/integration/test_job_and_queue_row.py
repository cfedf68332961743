"""A job and its message in the SQL lease queue of the same database: both rows or neither.

On Postgres (psycopg2) a single job and its message are one statement, sent in autocommit (one
round trip, no BEGIN or COMMIT); batches and SQLite take a transaction of several statements.
"""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg2.extensions
import pytest
import sqlalchemy as sa

from src.application.messages import JobMessage
from src.domain.errors import JobNotFound, ReelqueueError
from src.domain.jobs import AIJob, Mode, VideoJob
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import upgrade
from src.infrastructure.db.queue import SqlQueueConsumer, SqlQueuePublisher
from src.infrastructure.db.repository import QueueWriter, SqlAlchemyJobRepository
from src.infrastructure.db.tables import batches, queue_messages
from src.infrastructure.memory import FakeClock
from tests.fixtures.services import with_driver

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class CountingCursor(psycopg2.extensions.cursor):
    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's own parameter name
        self.connection.sent.append((" ".join(str(query).split()[:2]), self.connection.autocommit))
        return super().execute(query, vars)


class CountingConnection(psycopg2.extensions.connection):
    """Records every statement sent through a cursor, and every commit, with the autocommit flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, bool]] = []

    def cursor(self, *args, **kwargs):
        kwargs.setdefault("cursor_factory", CountingCursor)
        return super().cursor(*args, **kwargs)

    def commit(self):
        self.sent.append(("COMMIT", self.autocommit))
        return super().commit()


def counting_postgres_engine(postgres_url: str) -> sa.Engine:
    """One pooled psycopg2 connection that records what it sends, on empty job and queue tables."""
    url = with_driver(postgres_url, "psycopg2")  # whichever driver the session's URL names
    engine = make_engine(url, pool_size=1, max_overflow=0,
                         connect_args={"connection_factory": CountingConnection})
    upgrade(engine)
    with engine.begin() as conn:
        for table in ("rq_queue_messages", "rq_batches", "rq_jobs"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    return engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/jobs.sqlite3")
    else:
        engine = counting_postgres_engine(request.getfixturevalue("postgres_url"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres_url):
    engine = counting_postgres_engine(postgres_url)
    yield engine
    engine.dispose()


def repositories(engine: sa.Engine) -> tuple[SqlAlchemyJobRepository, SqlAlchemyJobRepository]:
    clock = FakeClock(T0)
    writer = QueueWriter(SqlQueuePublisher(engine, clock=clock))
    return (SqlAlchemyJobRepository(engine, kind=VideoJob, clock=clock, messages=writer),
            SqlAlchemyJobRepository(engine, kind=AIJob, clock=clock, messages=writer))


def queued(engine: sa.Engine, queue: str) -> list[str]:
    consumer = SqlQueueConsumer(engine, queue, clock=FakeClock(T0), visibility_timeout_s=30,
                                max_receive_count=5)
    got = consumer.receive(max_messages=10, wait_s=0)
    return [JobMessage.decode(m.body, queue=queue).job_id for m in got]


def every_field_ai(**changes) -> AIJob:
    return AIJob(owner_id="u1", model="wan_local", provider="wan", production_path="cartoon",
                 mode=Mode.IMAGE_TO_VIDEO, prompt="a kite", input_image="uploads/u1/kite.png",
                 duration_s=None, ratio="832:480", seed=2**40, num_frames=33, callback_token="tok",
                 created_at=T0, updated_at=T0, **changes)


def test_an_ai_job_and_a_video_job_each_read_back_with_their_queued_message(engine):
    videos, ais = repositories(engine)
    video = VideoJob(owner_id="u1", source="uploads/u1/in.mov", created_at=T0, updated_at=T0)
    ai = every_field_ai()

    assert videos.add([video], [JobMessage.for_job(video)]) == []
    assert ais.add([ai], [JobMessage.for_job(ai)]) == []

    assert (videos.get(video.id), ais.get(ai.id)) == (video, ai)
    assert (queued(engine, "video"), queued(engine, "ai-gpu")) == ([video.id], [ai.id])


def test_a_message_the_queue_table_refuses_leaves_no_job(postgres_url):
    engine = make_engine(postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    upgrade(engine)
    videos, _ = repositories(engine)
    job = VideoJob(owner_id="u1", source="uploads/u1/in.mov", created_at=T0, updated_at=T0)
    refused = JobMessage(kind=job.kind, job_id=job.id, queue="q" * 65)  # the column holds 64

    with pytest.raises((ReelqueueError, sa.exc.DBAPIError)):
        videos.add([job], [refused])

    with pytest.raises(JobNotFound):
        videos.get(job.id)
    mine = sa.select(sa.func.count()).where(queue_messages.c.body.contains(job.id))
    with engine.connect() as conn:
        assert conn.execute(mine).scalar() == 0
    engine.dispose()


def test_on_postgres_a_job_and_its_message_are_one_statement_in_autocommit(postgres_engine):
    engine = postgres_engine  # SQLite has no INSERT inside a WITH: a transaction of two INSERTs there
    videos, _ = repositories(engine)
    warm = VideoJob(owner_id="u1", source="uploads/u1/in.mov", created_at=T0, updated_at=T0)
    videos.add([warm], [JobMessage.for_job(warm)])  # connects; the dialect's own set-up queries
    with engine.connect() as conn:
        sent = conn.connection.dbapi_connection.sent
    sent.clear()
    job = VideoJob(owner_id="u1", source="uploads/u1/in.mov", created_at=T0, updated_at=T0)

    videos.add([job], [JobMessage.for_job(job)])

    assert sent == [("WITH j", True)]  # one statement, its own transaction: no BEGIN, no COMMIT
    assert queued(engine, "video") == [warm.id, job.id]


def test_a_job_of_a_batch_records_its_batch_and_its_message(engine):
    _, ais = repositories(engine)
    job = every_field_ai(batch_id="b" * 32)

    ais.add([job], [JobMessage.for_job(job)])

    assert ais.get(job.id) == job and queued(engine, "ai-gpu") == [job.id]
    with engine.connect() as conn:
        assert conn.execute(sa.select(batches.c.id, batches.c.size)).all() == [("b" * 32, 1)]
