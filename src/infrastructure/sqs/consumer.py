"""Receiving job messages from SQS: long polling, batched deletes, visibility changes, dead letters."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from src.application.ports import ReceivedMessage
from src.application.queue_limits import MAX_BATCH, MAX_RECEIVE, MAX_VISIBILITY_TIMEOUT_S, MAX_WAIT_S
from src.domain.errors import ReelqueueError
from src.infrastructure.sqs.client import aws_errors, error_code
from src.infrastructure.sqs.queues import QueueDirectory

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 4096
REASON_ATTRIBUTE = "reason"
STALE_HANDLE_CODES = {
    "ReceiptHandleIsInvalid",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
}


def chunks(items: Sequence[Any], size: int = MAX_BATCH) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class SqsConsumer:
    def __init__(self, client: Any, directory: QueueDirectory, queue: str) -> None:
        self.client = client
        self.directory = directory
        self.queue = queue

    def receive(self, *, max_messages: int, wait_s: float) -> list[ReceivedMessage]:
        with aws_errors(f"receive from {self.queue}"):
            response = self.client.receive_message(
                QueueUrl=self.directory.url(self.queue),
                MaxNumberOfMessages=max(1, min(max_messages, MAX_RECEIVE)),
                WaitTimeSeconds=int(max(0, min(wait_s, MAX_WAIT_S))),
                AttributeNames=["ApproximateReceiveCount"],
            )
        return [
            ReceivedMessage(queue=self.queue, body=m["Body"], message_id=m["MessageId"],
                            receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                            handle=m["ReceiptHandle"])
            for m in response.get("Messages", [])
        ]

    def ack(self, messages: Sequence[ReceivedMessage]) -> None:
        delete_batch(self.client, self.directory.url(self.queue), [m.handle for m in messages])

    def release(self, message: ReceivedMessage) -> None:
        self._change_visibility(message, 0)

    def extend(self, message: ReceivedMessage, *, visibility_timeout_s: int) -> None:
        self._change_visibility(message, min(visibility_timeout_s, MAX_VISIBILITY_TIMEOUT_S))

    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        """Send the body to the dead-letter queue with ``reason``, then delete the original."""
        if not self._change_visibility(message, self.directory.visibility_timeout_s):
            return  # no longer ours: whoever holds it now decides
        attributes = {REASON_ATTRIBUTE: {"DataType": "String",
                                         "StringValue": (reason or "unspecified")[:MAX_REASON_CHARS]}}
        with aws_errors(f"dead-letter a message of {self.queue}"):
            self.client.send_message(QueueUrl=self.directory.dlq_url(self.queue), MessageBody=message.body,
                                     MessageAttributes=attributes)
        self.ack([message])
        log.warning("queue %s: message %s dead-lettered: %s", self.queue, message.message_id, reason)

    def _change_visibility(self, message: ReceivedMessage, timeout_s: int) -> bool:
        try:
            with aws_errors(f"change the visibility of a message of {self.queue}"):
                self.client.change_message_visibility(
                    QueueUrl=self.directory.url(self.queue), ReceiptHandle=message.handle,
                    VisibilityTimeout=timeout_s,
                )
        except ReelqueueError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in STALE_HANDLE_CODES:
                log.info("queue %s: message %s: stale receipt handle ignored", self.queue, message.message_id)
                return False
            raise
        return True


def delete_batch(client: Any, url: str, handles: Sequence[str]) -> None:
    """Delete messages ten to a request; stale receipt handles are ignored, as SQS does."""
    for chunk in chunks(handles):
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)]
        with aws_errors("delete messages"):
            response = client.delete_message_batch(QueueUrl=url, Entries=entries)
        for failed in response.get("Failed", []):
            if failed.get("Code") not in STALE_HANDLE_CODES:
                code, text = failed.get("Code"), failed.get("Message")
                raise ReelqueueError(f"SQS refused to delete a message: {code}: {text}")
            log.info("delete of a stale receipt handle ignored: %s", failed.get("Message", ""))

