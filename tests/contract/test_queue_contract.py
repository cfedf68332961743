"""One contract for the job queue, run against the fake, the SQL queue (SQLite, Postgres) and SQS (moto)."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from src.application.messages import JobMessage
from src.application.ports import JobConsumer, JobPublisher, QueueAdmin, ReceivedMessage
from src.application.queue_limits import MAX_BODY_BYTES, MAX_DELAY_S, MAX_RECEIVE
from src.domain.errors import ReelqueueError
from src.domain.jobs import JobKind
from src.infrastructure.memory import (
    FakeClock,
    InMemoryBroker,
    InMemoryConsumer,
    InMemoryPublisher,
    InMemoryQueueAdmin,
)
from src.interfaces import cli

VISIBILITY_S = 1
MAX_RECEIVES = 2
PAST_VISIBILITY_S = VISIBILITY_S + 0.3


@dataclass
class QueueRig:
    publisher: JobPublisher
    consumer: Callable[[str], JobConsumer]
    advance: Callable[[float], None]  # let time pass: a fake clock moves, SQS really waits
    admin: QueueAdmin
    new_queue: Callable[[], str]
    # A stale receipt handle (one from before a redelivery) does nothing. Real SQS only says such a
    # delete "might not" delete, and moto honours old handles, so SQS cannot promise this.
    stale_handles_ignored: bool = True


def _unique_queue() -> str:
    return f"q{uuid.uuid4().hex[:12]}"


def memory_rig() -> QueueRig:
    clock = FakeClock()
    broker = InMemoryBroker(clock, visibility_timeout_s=VISIBILITY_S, max_receive_count=MAX_RECEIVES)
    return QueueRig(
        publisher=InMemoryPublisher(broker), consumer=lambda queue: InMemoryConsumer(broker, queue),
        advance=clock.advance, admin=InMemoryQueueAdmin(broker), new_queue=_unique_queue,
    )


def sql_rig(engine: Any) -> QueueRig:
    from src.infrastructure.db.queue import SqlQueueAdmin, SqlQueueConsumer, SqlQueuePublisher

    clock = FakeClock()
    admin = SqlQueueAdmin(engine, clock=clock)
    return QueueRig(
        publisher=SqlQueuePublisher(engine, clock=clock),
        consumer=lambda queue: SqlQueueConsumer(engine, queue, clock=clock, visibility_timeout_s=VISIBILITY_S,
                                                max_receive_count=MAX_RECEIVES),
        advance=clock.advance, admin=admin, new_queue=_unique_queue,
    )


def sqs_rig(client: Any) -> QueueRig:
    from src.infrastructure.sqs.admin import SqsQueueAdmin
    from src.infrastructure.sqs.consumer import SqsConsumer
    from src.infrastructure.sqs.publisher import SqsPublisher
    from src.infrastructure.sqs.queues import QueueDirectory

    directory = QueueDirectory(client, prefix=f"c{uuid.uuid4().hex[:8]}-", max_receive_count=MAX_RECEIVES,
                               visibility_timeout_s=VISIBILITY_S)
    admin = SqsQueueAdmin(client, directory, wait_s=0)

    def new_queue() -> str:
        name = _unique_queue()
        directory.ensure([name])
        return name

    return QueueRig(
        publisher=SqsPublisher(client, directory),
        consumer=lambda queue: SqsConsumer(client, directory, queue),
        advance=time.sleep,
        admin=admin, new_queue=new_queue, stale_handles_ignored=False,
    )


@pytest.fixture(params=["memory", "sqlite", "postgres", "sqs"])
def rig(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[QueueRig]:
    if request.param == "memory":
        yield memory_rig()
    elif request.param == "sqlite":
        from src.infrastructure.db.engine import make_engine
        from src.infrastructure.db.migrations import upgrade

        engine = make_engine(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
        upgrade(engine)
        yield sql_rig(engine)
        engine.dispose()
    elif request.param == "postgres":
        yield sql_rig(request.getfixturevalue("postgres_engine"))
    else:
        yield sqs_rig(request.getfixturevalue("sqs_client"))


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Any]:
    from src.infrastructure.db.engine import make_engine
    from src.infrastructure.db.migrations import upgrade

    engine = make_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def message(queue: str) -> JobMessage:
    return JobMessage(kind=JobKind.VIDEO, job_id=uuid.uuid4().hex, queue=queue)


def receive_one(consumer: JobConsumer) -> ReceivedMessage:
    got = consumer.receive(max_messages=10, wait_s=1)
    assert len(got) == 1, got
    return got[0]


def nothing_visible(consumer: JobConsumer) -> bool:
    return consumer.receive(max_messages=10, wait_s=0) == []


def test_a_published_message_is_received_once_and_gone_after_ack(rig: QueueRig) -> None:
    queue = rig.new_queue()
    sent = message(queue)
    rig.publisher.publish([sent])
    consumer = rig.consumer(queue)

    got = receive_one(consumer)
    consumer.ack([got])
    rig.advance(PAST_VISIBILITY_S)

    assert (got.queue, got.body, got.receive_count) == (queue, sent.encode(), 1)
    assert JobMessage.decode(got.body, queue=queue) == sent
    assert nothing_visible(consumer)


def test_a_batch_of_25_is_received_exactly_once(rig: QueueRig) -> None:
    queue = rig.new_queue()
    sent = [message(queue) for _ in range(25)]
    rig.publisher.publish(sent)
    consumer = rig.consumer(queue)

    received: list[str] = []
    for _ in range(10):
        got = consumer.receive(max_messages=10, wait_s=1)
        assert len(got) <= 10
        consumer.ack(got)
        received += [JobMessage.decode(m.body, queue=queue).job_id for m in got]
        if len(received) >= 25:
            break

    assert sorted(received) == sorted(m.job_id for m in sent)


def test_an_unacked_message_comes_back_after_the_visibility_timeout(rig: QueueRig) -> None:
    queue = rig.new_queue()
    rig.publisher.publish([message(queue)])
    consumer = rig.consumer(queue)

    first = receive_one(consumer)
    hidden = nothing_visible(consumer)
    rig.advance(PAST_VISIBILITY_S)
    again = receive_one(consumer)

    assert hidden
    assert again.message_id == first.message_id
    assert (first.receive_count, again.receive_count) == (1, 2)


def test_a_released_message_is_handed_back_at_once(rig: QueueRig) -> None:
    queue = rig.new_queue()
    rig.publisher.publish([message(queue)])
    consumer = rig.consumer(queue)

    first = receive_one(consumer)
    consumer.release(first)
    again = receive_one(consumer)

    assert again.message_id == first.message_id
    assert again.receive_count == 2


def test_an_extended_message_stays_hidden(rig: QueueRig) -> None:
    queue = rig.new_queue()
    rig.publisher.publish([message(queue)])
    consumer = rig.consumer(queue)

    got = receive_one(consumer)
    consumer.extend(got, visibility_timeout_s=4)
    rig.advance(PAST_VISIBILITY_S)

    assert nothing_visible(consumer)


def test_a_delayed_message_is_delivered_only_after_the_delay(rig: QueueRig) -> None:
    queue = rig.new_queue()
    rig.publisher.publish([message(queue)], delay_s=1)
    consumer = rig.consumer(queue)

    early = nothing_visible(consumer)
    rig.advance(1.3)

    assert early
    assert receive_one(consumer).receive_count == 1


def test_a_message_received_too_often_is_dead_lettered(rig: QueueRig) -> None:
    queue = rig.new_queue()
    sent = message(queue)
    rig.publisher.publish([sent])
    consumer = rig.consumer(queue)

    counts = []
    for _ in range(MAX_RECEIVES):
        got = receive_one(consumer)
        counts.append(got.receive_count)
        consumer.release(got)

    assert counts == [1, 2]
    assert nothing_visible(consumer)
    assert [letter.body for letter in rig.admin.dead_letters(queue)] == [sent.encode()]


def test_dead_letter_moves_the_message_with_its_reason(rig: QueueRig) -> None:
    queue = rig.new_queue()
    sent = message(queue)
    rig.publisher.publish([sent])
    consumer = rig.consumer(queue)

    consumer.dead_letter(receive_one(consumer), reason="unknown message version 7")
    rig.advance(PAST_VISIBILITY_S)

    assert nothing_visible(consumer)
    dead = rig.admin.dead_letters(queue)
    assert [(letter.body, letter.reason) for letter in dead] == [(sent.encode(), "unknown message version 7")]


def dead_lettered(rig: QueueRig, queue: str, count: int) -> list[JobMessage]:
    sent = [message(queue) for _ in range(count)]
    rig.publisher.publish(sent)
    consumer = rig.consumer(queue)
    for got in receive_all(consumer, count):
        consumer.dead_letter(got, reason="no such job")
    return sent


def receive_all(consumer: JobConsumer, count: int) -> list[ReceivedMessage]:
    got: list[ReceivedMessage] = []
    for _ in range(10):
        got += consumer.receive(max_messages=10, wait_s=1)
        if len(got) >= count:
            break
    assert len(got) == count, got
    return got


def test_listed_dead_letters_stay_dead_until_redriven_back_to_their_queue(rig: QueueRig) -> None:
    queue = rig.new_queue()
    sent = dead_lettered(rig, queue, 2)

    listed = rig.admin.dead_letters(queue)
    listed_again = rig.admin.dead_letters(queue)
    redriven = rig.admin.redrive(queue)
    consumer = rig.consumer(queue)
    back = receive_all(consumer, 2)

    assert sorted(letter.body for letter in listed) == sorted(m.encode() for m in sent)
    assert {letter.reason for letter in listed} == {"no such job"}
    assert len({letter.message_id for letter in listed}) == 2 and len(listed_again) == 2
    assert redriven == 2 and rig.admin.dead_letters(queue) == []
    assert sorted(m.body for m in back) == sorted(m.encode() for m in sent)
    assert {m.receive_count for m in back} == {1}


def test_purged_dead_letters_are_gone_and_the_queue_is_untouched(rig: QueueRig) -> None:
    queue = rig.new_queue()
    dead_lettered(rig, queue, 2)
    rig.publisher.publish([message(queue)])

    purged = rig.admin.purge_dead(queue)

    assert purged == 2 and rig.admin.dead_letters(queue) == []
    assert rig.admin.purge_dead(queue) == 0
    assert receive_one(rig.consumer(queue)) is not None


def test_the_cli_dead_letter_commands_answer_alike_on_every_backend(rig: QueueRig) -> None:
    queue = rig.new_queue()
    (sent,) = dead_lettered(rig, queue, 1)

    def run(action: str) -> str:
        out = io.StringIO()
        assert cli.run_dlq(rig.admin, action, queue, out=out) == 0
        return out.getvalue()

    (line,) = run("list").splitlines()
    listed = json.loads(line)
    assert listed["body"] == sent.encode() and listed["reason"] == "no such job"
    assert isinstance(listed["id"], str) and listed["id"]
    assert run("redrive") == f"moved 1 message(s) back to {queue}\n"
    rig.consumer(queue).dead_letter(receive_one(rig.consumer(queue)), reason="still bad")
    assert run("purge") == f"deleted 1 dead letter(s) of {queue}\n"
    assert run("list") == ""


def test_a_stale_handle_after_redelivery_cannot_ack_or_release(rig: QueueRig) -> None:
    queue = rig.new_queue()
    sent = message(queue)
    rig.publisher.publish([sent])
    consumer = rig.consumer(queue)
    stale = receive_one(consumer)
    rig.advance(PAST_VISIBILITY_S)
    current = receive_one(consumer)

    consumer.ack([stale])  # never raises
    consumer.release(stale)
    if not rig.stale_handles_ignored:
        consumer.ack([current])  # SQS: only the weaker promise, nothing raises
        return
    still_leased = nothing_visible(consumer)
    consumer.dead_letter(current, reason="proves the current handle still holds it")

    assert still_leased
    assert [letter.body for letter in rig.admin.dead_letters(queue)] == [sent.encode()]


def test_one_ack_of_a_batch_deletes_its_current_leases_and_skips_a_stale_one(rig: QueueRig) -> None:
    queue = rig.new_queue()
    rig.publisher.publish([message(queue) for _ in range(3)])
    consumer = rig.consumer(queue)
    first = consumer.receive(max_messages=10, wait_s=1)
    rig.advance(PAST_VISIBILITY_S)
    second = consumer.receive(max_messages=2, wait_s=1)  # two of the three leased again
    renewed = {m.message_id for m in second}
    stale = [m for m in first if m.message_id in renewed][:1]

    consumer.ack([*stale, *second])
    rig.advance(PAST_VISIBILITY_S)

    assert len(first) == 3 and len(second) == 2
    left = consumer.receive(max_messages=10, wait_s=1)
    assert [m.message_id for m in left] == [m.message_id for m in first if m.message_id not in renewed]


def test_a_receive_asking_for_more_than_the_sqs_limit_gets_at_most_ten(rig: QueueRig) -> None:
    queue = rig.new_queue()
    rig.publisher.publish([message(queue) for _ in range(MAX_RECEIVE + 2)])

    got = rig.consumer(queue).receive(max_messages=50, wait_s=1)

    assert 1 <= len(got) <= MAX_RECEIVE == 10


def test_the_body_and_delay_limits_are_exactly_the_sqs_ones(rig: QueueRig) -> None:
    queue = rig.new_queue()
    envelope = len(message(queue).encode().encode()) - 32  # the body without its job id
    largest = JobMessage(kind=JobKind.VIDEO, job_id="x" * (MAX_BODY_BYTES - envelope), queue=queue)
    too_big = JobMessage(kind=JobKind.VIDEO, job_id="x" * (MAX_BODY_BYTES - envelope + 1), queue=queue)

    rig.publisher.publish([largest])
    rig.publisher.publish([message(queue)], delay_s=MAX_DELAY_S)

    with pytest.raises(ReelqueueError):
        rig.publisher.publish([too_big])
    with pytest.raises(ReelqueueError):
        rig.publisher.publish([message(queue)], delay_s=MAX_DELAY_S + 1)
    assert (MAX_BODY_BYTES, MAX_DELAY_S) == (1024 * 1024, 900)


def test_a_body_over_one_mebibyte_or_a_long_delay_is_refused(rig: QueueRig) -> None:
    queue = rig.new_queue()
    huge = JobMessage(kind=JobKind.VIDEO, job_id="x" * (1024 * 1024), queue=queue)

    with pytest.raises(ReelqueueError):
        rig.publisher.publish([huge])
    with pytest.raises(ReelqueueError):
        rig.publisher.publish([message(queue)], delay_s=901)
