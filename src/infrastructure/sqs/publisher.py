"""Publishing job messages to SQS, ten to a request."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from src.application.messages import JobMessage
from src.application.queue_limits import MAX_BATCH, MAX_BODY_BYTES, MAX_DELAY_S
from src.domain.errors import ReelqueueError
from src.infrastructure.sqs.client import aws_errors
from src.infrastructure.sqs.queues import QueueDirectory

log = logging.getLogger(__name__)



def batches(entries: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive batches of at most ten entries and 1 MiB of bodies."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        body_bytes = len(entry["MessageBody"].encode())
        if batch and (len(batch) == MAX_BATCH or size + body_bytes > MAX_BODY_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += body_bytes
    if batch:
        yield batch


def check_body(body: str) -> None:
    size = len(body.encode())
    if size > MAX_BODY_BYTES:
        raise ReelqueueError(f"message body is {size} bytes; SQS accepts at most {MAX_BODY_BYTES} bytes")


class SqsPublisher:
    def __init__(self, client: Any, directory: QueueDirectory) -> None:
        self.client = client
        self.directory = directory

    def publish(self, messages: Sequence[JobMessage], *, delay_s: int = 0) -> None:
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise ReelqueueError(f"delay must be 0-{MAX_DELAY_S} s, got {delay_s}")
        by_queue: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            body = message.encode()
            check_body(body)
            entries = by_queue.setdefault(message.queue, [])
            entries.append({"Id": str(len(entries)), "MessageBody": body, "DelaySeconds": delay_s})
        for queue, entries in by_queue.items():
            self.send_entries(queue, entries, url=self.directory.url(queue))

    def send_entries(self, queue: str, entries: Sequence[dict[str, Any]], *, url: str) -> None:
        """Send prepared ``SendMessageBatch`` entries; failed entries are retried once, then raised."""
        for batch in batches(entries):
            failed = self._send(url, batch)
            if failed:
                log.warning("queue %s: %d of %d messages failed, retrying once",
                            queue, len(failed), len(batch))
                failed = self._send(url, [entry for entry in batch if entry["Id"] in failed])
            if failed:
                details = "; ".join(f"{code}: {text}" for code, text in failed.values())
                raise ReelqueueError(f"queue {queue}: {len(failed)} messages not sent ({details})")

    def _send(self, url: str, batch: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
        with aws_errors("send messages"):
            response = self.client.send_message_batch(QueueUrl=url, Entries=batch)
        return {f["Id"]: (f.get("Code", ""), f.get("Message", "")) for f in response.get("Failed", [])}
