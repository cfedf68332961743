"""Dead-letter queue inspection and handling for operators (the CLI)."""

from __future__ import annotations

import logging
from typing import Any

from src.application.ports import DeadLetter
from src.application.queue_limits import MAX_RECEIVE, MAX_RECEIVE_REASON
from src.infrastructure.sqs.client import aws_errors
from src.infrastructure.sqs.consumer import REASON_ATTRIBUTE, chunks, delete_batch
from src.infrastructure.sqs.publisher import SqsPublisher
from src.infrastructure.sqs.queues import QueueDirectory

log = logging.getLogger(__name__)

HOLD_S = 30  # how long listed or moved dead letters stay hidden from other readers


class SqsQueueAdmin:
    def __init__(self, client: Any, directory: QueueDirectory, *, wait_s: int = 1) -> None:
        self.client = client
        self.directory = directory
        self.wait_s = wait_s  # per receive: short polls may miss messages on real SQS

    def depth(self, queue: str) -> int:
        """Messages in ``queue``: ready, delayed or in flight (approximate, as SQS counts them)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        with aws_errors(f"count the messages of {queue}"):
            url = self.directory.url(queue)
            response = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        return sum(int(response["Attributes"].get(name, 0)) for name in names)

    def dead_letters(self, queue: str, max_messages: int = 100) -> list[DeadLetter]:
        """Up to ``max_messages`` dead letters; they stay in the DLQ."""
        url = self.directory.dlq_url(queue)
        seen: dict[str, DeadLetter] = {}
        handles: list[str] = []
        while len(seen) < max_messages:
            messages = self._receive(url, min(MAX_RECEIVE, max_messages - len(seen)))
            if not messages:
                break
            for m in messages:
                seen[m["MessageId"]] = _dead_letter(m)
                handles.append(m["ReceiptHandle"])
        self._show_again(url, handles)
        return list(seen.values())

    def redrive(self, queue: str) -> int:
        """Move every dead letter back to ``queue`` (as new messages); returns how many."""
        publisher = SqsPublisher(self.client, self.directory)
        return self._drain(queue, lambda bodies: publisher.send_entries(
            queue, [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
            url=self.directory.url(queue)))

    def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; returns how many."""
        return self._drain(queue, lambda bodies: None)

    def _drain(self, queue: str, forward: Any) -> int:
        url = self.directory.dlq_url(queue)
        moved = 0
        while messages := self._receive(url, MAX_RECEIVE):
            forward([m["Body"] for m in messages])
            delete_batch(self.client, url, [m["ReceiptHandle"] for m in messages])
            moved += len(messages)
        log.info("queue %s: %d dead letters handled", queue, moved)
        return moved

    def _receive(self, url: str, count: int) -> list[dict[str, Any]]:
        with aws_errors("read the dead-letter queue"):
            response = self.client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=self.wait_s,
                VisibilityTimeout=HOLD_S, MessageAttributeNames=[REASON_ATTRIBUTE],
            )
        return list(response.get("Messages", []))

    def _show_again(self, url: str, handles: list[str]) -> None:
        for chunk in chunks(handles):
            entries = [{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                       for i, handle in enumerate(chunk)]
            with aws_errors("hand dead letters back"):
                self.client.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    return DeadLetter(message_id=message["MessageId"], body=message["Body"], reason=_reason(message))


def _reason(message: dict[str, Any]) -> str:
    attribute = message.get("MessageAttributes", {}).get(REASON_ATTRIBUTE, {})
    return str(attribute.get("StringValue", MAX_RECEIVE_REASON))  # SQS's redrive sets no reason
