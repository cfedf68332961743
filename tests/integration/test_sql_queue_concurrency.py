"""The SQL lease queue under competing consumers, and its dead-letter admin, on real databases."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from src.application.messages import JobMessage
from src.domain.errors import ServiceUnavailable
from src.domain.jobs import JobKind, VideoJob
from src.infrastructure.clock import SystemClock
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import upgrade
from src.infrastructure.db.queue import SqlQueueAdmin, SqlQueueConsumer, SqlQueuePublisher
from src.infrastructure.db.repository import SqlAlchemyJobRepository
from src.infrastructure.memory import FakeClock

THREADS = 8
MESSAGES = 200


@pytest.fixture(params=["postgres", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else (
        f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    engine = make_engine(url, pool_size=THREADS + 2) if request.param == "postgres" else make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def publish(engine: Any, queue: str, count: int, clock: Any) -> list[str]:
    sent = [JobMessage(kind=JobKind.VIDEO, job_id=uuid.uuid4().hex, queue=queue) for _ in range(count)]
    SqlQueuePublisher(engine, clock=clock).publish(sent)
    return [m.job_id for m in sent]


def test_competing_consumers_never_receive_the_same_message_twice(engine: Any) -> None:
    queue = f"c{uuid.uuid4().hex[:10]}"
    sent = publish(engine, queue, MESSAGES, SystemClock())
    received: list[list[str]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def consume(mine: list[str]) -> None:
        consumer = SqlQueueConsumer(engine, queue, clock=SystemClock(), visibility_timeout_s=300,
                                    max_receive_count=5)
        try:
            start.wait(timeout=10)
            while got := consumer.receive(max_messages=7, wait_s=0):
                mine += [JobMessage.decode(m.body, queue=queue).job_id for m in got]
                consumer.ack(got)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(mine,)) for mine in received]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [job_id for mine in received for job_id in mine]

    assert errors == []
    assert sum(1 for mine in received if mine) > 1
    assert len(everything) == len(set(everything)) == MESSAGES
    assert sorted(everything) == sorted(sent)
    assert SqlQueueAdmin(engine, clock=SystemClock()).depth(queue) == 0


def test_dead_letters_can_be_listed_redriven_and_purged(engine: Any) -> None:
    clock = FakeClock()
    queue = f"d{uuid.uuid4().hex[:10]}"
    admin = SqlQueueAdmin(engine, clock=clock)
    consumer = SqlQueueConsumer(engine, queue, clock=clock, visibility_timeout_s=30, max_receive_count=1)
    publish(engine, queue, 3, clock)
    first, second, third = consumer.receive(max_messages=10, wait_s=0)
    consumer.dead_letter(first, reason="unknown message version 9")
    consumer.release(second)
    consumer.ack([third])
    consumer.receive(max_messages=10, wait_s=0)  # `second` was received once already: dead

    dead = admin.dead_letters(queue)
    depth_before = admin.depth(queue)
    redriven = admin.redrive(queue)
    again = consumer.receive(max_messages=10, wait_s=0)

    assert [(letter.body, letter.reason) for letter in dead] == [
        (first.body, "unknown message version 9"), (second.body, "maxReceiveCount exceeded")]
    assert depth_before == 0 and redriven == 2
    assert sorted(m.body for m in again) == sorted([first.body, second.body])
    assert {m.receive_count for m in again} == {1}

    for message in again:
        consumer.dead_letter(message, reason="still bad")
    assert admin.purge_dead(queue) == 2
    assert admin.dead_letters(queue) == [] and admin.depth(queue) == 0


def test_an_unreachable_database_is_service_unavailable() -> None:
    engine = make_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    consumer = SqlQueueConsumer(engine, "video", clock=SystemClock(), visibility_timeout_s=30,
                                max_receive_count=3)

    with pytest.raises(ServiceUnavailable):
        consumer.receive(max_messages=1, wait_s=0)


def test_the_queue_and_the_job_repository_report_a_database_outage_alike() -> None:
    engine = make_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    consumer = SqlQueueConsumer(engine, "video", clock=SystemClock(), visibility_timeout_s=30,
                                max_receive_count=3)
    jobs = SqlAlchemyJobRepository(engine, kind=VideoJob)

    with pytest.raises(ServiceUnavailable) as from_queue:
        consumer.receive(max_messages=1, wait_s=0)
    with pytest.raises(ServiceUnavailable) as from_repository:
        jobs.get("0" * 32)

    assert "the queue database (trying to receive) is unavailable" in str(from_queue.value)
    assert "the database is unavailable" in str(from_repository.value)
    assert type(from_queue.value.__cause__) is type(from_repository.value.__cause__)
