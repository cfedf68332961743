"""What only SQS shows: queue setup, batching, failed entries, dead-letter admin, error translation."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from src.application.messages import JobMessage
from src.application.queue_limits import MAX_RETENTION_S
from src.domain.errors import ReelqueueError, ServiceUnavailable
from src.domain.jobs import JobKind
from src.infrastructure.sqs.admin import SqsQueueAdmin
from src.infrastructure.sqs.client import make_sqs_client
from src.infrastructure.sqs.consumer import SqsConsumer
from src.infrastructure.sqs.publisher import SqsPublisher
from src.infrastructure.sqs.queues import QueueDirectory
from tests.fixtures.moto import free_port

QUEUE = "video"


@pytest.fixture
def directory(sqs_client: Any) -> QueueDirectory:
    directory = QueueDirectory(sqs_client, prefix=f"a{uuid.uuid4().hex[:8]}-", max_receive_count=4,
                               visibility_timeout_s=30)
    directory.ensure([QUEUE])
    return directory


def messages(count: int) -> list[JobMessage]:
    return [JobMessage(kind=JobKind.VIDEO, job_id=uuid.uuid4().hex, queue=QUEUE) for _ in range(count)]


class FlakyBatches:
    """A real client whose first ``failures`` batch sends report their last entry as failed, unsent."""

    def __init__(self, client: Any, failures: int) -> None:
        self.client = client
        self.failures = failures

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if self.failures <= 0:
            return self.client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        self.failures -= 1
        response = {"Successful": []}
        if len(Entries) > 1:
            response = self.client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries[:-1])
        failed = {"Id": Entries[-1]["Id"], "SenderFault": False, "Code": "InternalError",
                  "Message": "try again"}
        return {**response, "Failed": [failed]}


def received_ids(consumer: SqsConsumer) -> list[str]:
    ids: list[str] = []
    while got := consumer.receive(max_messages=10, wait_s=0):
        ids += [JobMessage.decode(m.body, queue=QUEUE).job_id for m in got]
        consumer.ack(got)
    return ids


def test_ensure_creates_the_queue_with_a_redrive_policy_and_is_idempotent(
    sqs_client: Any, directory: QueueDirectory
) -> None:
    directory.ensure([QUEUE])
    attributes = sqs_client.get_queue_attributes(QueueUrl=directory.url(QUEUE), AttributeNames=["All"])
    dlq = sqs_client.get_queue_attributes(QueueUrl=directory.dlq_url(QUEUE),
                                          AttributeNames=["All"])["Attributes"]
    dlq_arn = dlq["QueueArn"]

    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq_arn
    assert int(policy["maxReceiveCount"]) == 4
    assert attributes["Attributes"]["VisibilityTimeout"] == "30"
    assert directory.url(QUEUE).endswith(directory.prefix + QUEUE)
    assert int(dlq["MessageRetentionPeriod"]) == MAX_RETENTION_S == 14 * 24 * 3600


def test_an_unknown_queue_is_a_clear_error(sqs_client: Any) -> None:
    directory = QueueDirectory(sqs_client, prefix="missing-", max_receive_count=3, visibility_timeout_s=30)

    with pytest.raises(ReelqueueError, match="does not exist"):
        directory.url("nowhere")


def test_a_failed_batch_entry_is_retried_once(sqs_client: Any, directory: QueueDirectory) -> None:
    sent = messages(12)

    SqsPublisher(FlakyBatches(sqs_client, failures=1), directory).publish(sent)

    assert sorted(received_ids(SqsConsumer(sqs_client, directory, QUEUE))) == sorted(m.job_id for m in sent)


def test_an_entry_that_fails_twice_is_raised(sqs_client: Any, directory: QueueDirectory) -> None:
    with pytest.raises(ReelqueueError, match="1 messages not sent"):
        SqsPublisher(FlakyBatches(sqs_client, failures=2), directory).publish(messages(3))


def test_dead_letters_can_be_listed_redriven_and_purged(sqs_client: Any, directory: QueueDirectory) -> None:
    SqsPublisher(sqs_client, directory).publish(messages(13))
    consumer = SqsConsumer(sqs_client, directory, QUEUE)
    admin = SqsQueueAdmin(sqs_client, directory, wait_s=0)
    while got := consumer.receive(max_messages=10, wait_s=0):
        for message in got:
            consumer.dead_letter(message, reason="bad input")

    listed = admin.dead_letters(QUEUE, max_messages=20)
    listed_again = admin.dead_letters(QUEUE, max_messages=5)
    redriven = admin.redrive(QUEUE)
    back = received_ids(consumer)
    for message in consumer.receive(max_messages=1, wait_s=0):
        consumer.ack([message])

    assert len(listed) == 13 and {letter.reason for letter in listed} == {"bad input"}
    assert len(listed_again) == 5
    assert redriven == 13 and len(back) == 13
    assert admin.dead_letters(QUEUE) == [] and admin.depth(QUEUE) == 0

    SqsPublisher(sqs_client, directory).publish(messages(2))
    for message in consumer.receive(max_messages=10, wait_s=0):
        consumer.dead_letter(message, reason="bad input")
    assert admin.purge_dead(QUEUE) == 2
    assert admin.dead_letters(QUEUE) == []


def test_an_unreachable_endpoint_is_service_unavailable() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    client = make_sqs_client(region="us-east-1", endpoint_url=nowhere, max_attempts=1)
    directory = QueueDirectory(client, prefix="x-", max_receive_count=3, visibility_timeout_s=30)

    with pytest.raises(ServiceUnavailable) as caught:
        SqsConsumer(client, directory, QUEUE).receive(max_messages=1, wait_s=0)
    assert caught.value.__cause__ is not None
