"""Poison messages on SQS (moto's server): decode or look up fails, the message goes to the DLQ."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from src.application.messages import JobMessage, UndecodableMessage
from src.application.ports import JobConsumer
from src.domain.errors import JobNotFound
from src.domain.jobs import VideoJob
from src.infrastructure.memory import FakeClock, InMemoryDatabase, InMemoryJobRepository
from src.infrastructure.sqs.admin import SqsQueueAdmin
from src.infrastructure.sqs.consumer import SqsConsumer
from src.infrastructure.sqs.publisher import SqsPublisher
from src.infrastructure.sqs.queues import QueueDirectory

QUEUE = "video"


def drain_once(consumer: JobConsumer, jobs: InMemoryJobRepository[VideoJob]) -> list[str]:
    """The consumer loop's guard, reduced: decode, load the job, dead-letter what cannot be handled."""
    handled = []
    for message in consumer.receive(max_messages=10, wait_s=1):
        try:
            job = jobs.get(JobMessage.decode(message.body, queue=consumer.queue).job_id)
        except (UndecodableMessage, JobNotFound) as exc:
            consumer.dead_letter(message, reason=str(exc))
            continue
        handled.append(job.id)
        consumer.ack([message])
    return handled


@pytest.fixture
def directory(sqs_client: Any) -> QueueDirectory:
    directory = QueueDirectory(sqs_client, prefix=f"p{uuid.uuid4().hex[:8]}-", max_receive_count=3,
                               visibility_timeout_s=30)
    directory.ensure([QUEUE])
    return directory


def test_poison_messages_go_to_the_dlq_with_a_reason_while_valid_ones_are_delivered(
    sqs_client: Any, directory: QueueDirectory
) -> None:
    clock = FakeClock()
    jobs = InMemoryJobRepository(InMemoryDatabase(clock), VideoJob)
    job = VideoJob(owner_id="u1", source="inputs/a.mp4", created_at=clock.now(), updated_at=clock.now())
    jobs.add([job], [])
    poison = {
        "not json {": "body is not JSON",
        json.dumps({"v": 99, "kind": "video", "job_id": "abc"}): "unknown message version 99",
        JobMessage(kind=job.kind, job_id="0" * 32, queue=QUEUE).encode(): f"job {'0' * 32} does not exist",
    }
    url = directory.url(QUEUE)
    for body in poison:
        sqs_client.send_message(QueueUrl=url, MessageBody=body)
    SqsPublisher(sqs_client, directory).publish([JobMessage.for_job(job)])
    consumer = SqsConsumer(sqs_client, directory, QUEUE)

    handled = drain_once(consumer, jobs) + drain_once(consumer, jobs)
    dead = SqsQueueAdmin(sqs_client, directory, wait_s=0).dead_letters(QUEUE)

    assert handled == [job.id]
    assert sorted(letter.body for letter in dead) == sorted(poison)
    for letter in dead:
        assert poison[letter.body] in letter.reason
    assert consumer.receive(max_messages=10, wait_s=0) == []
