"""Queue names to URLs, and creating queues with their dead-letter queues."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from src.application.queue_limits import MAX_RETENTION_S, MAX_VISIBILITY_TIMEOUT_S
from src.domain.errors import ReelqueueError
from src.infrastructure.sqs.client import aws_errors, error_code

log = logging.getLogger(__name__)

DLQ_SUFFIX = "-dlq"
MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


class QueueDirectory:
    """Maps a logical queue (``video``) to its URL (``{prefix}video``); URLs are cached."""

    def __init__(
        self, client: Any, *, prefix: str, max_receive_count: int, visibility_timeout_s: int
    ) -> None:
        if not 0 <= visibility_timeout_s <= MAX_VISIBILITY_TIMEOUT_S:
            raise ReelqueueError(f"visibility timeout must be 0-{MAX_VISIBILITY_TIMEOUT_S} s")
        self.client = client
        self.prefix = prefix
        self.max_receive_count = max_receive_count
        self.visibility_timeout_s = visibility_timeout_s
        self._urls: dict[str, str] = {}

    def url(self, name: str) -> str:
        return self._lookup(self.prefix + name)

    def dlq_url(self, name: str) -> str:
        return self._lookup(self.prefix + name + DLQ_SUFFIX)

    def _lookup(self, full_name: str) -> str:
        if full_name not in self._urls:
            try:
                with aws_errors(f"look up queue {full_name}"):
                    self._urls[full_name] = self.client.get_queue_url(QueueName=full_name)["QueueUrl"]
            except ReelqueueError as exc:
                cause = exc.__cause__
                if isinstance(cause, ClientError) and error_code(cause) in MISSING_QUEUE_CODES:
                    message = f"SQS queue {full_name} does not exist (create it with ensure)"
                    raise ReelqueueError(message) from cause
                raise
        return self._urls[full_name]

    def ensure(self, names: Iterable[str]) -> None:
        """Create each queue and its dead-letter queue (idempotent; updates their attributes)."""
        for name in names:
            dlq_attributes = {"MessageRetentionPeriod": str(MAX_RETENTION_S)}
            dlq_url = self._create(self.prefix + name + DLQ_SUFFIX, dlq_attributes)
            with aws_errors(f"read the ARN of {name}{DLQ_SUFFIX}"):
                attributes = self.client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
            policy = {"deadLetterTargetArn": attributes["Attributes"]["QueueArn"],
                      "maxReceiveCount": self.max_receive_count}
            self._create(self.prefix + name, {"RedrivePolicy": json.dumps(policy),
                                              "VisibilityTimeout": str(self.visibility_timeout_s)})
            log.info("queue %s%s ready with dead-letter queue", self.prefix, name)

    def _create(self, full_name: str, attributes: dict[str, str]) -> str:
        with aws_errors(f"create queue {full_name}"):
            url = str(self.client.create_queue(QueueName=full_name)["QueueUrl"])
            self.client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        self._urls[full_name] = url
        return url
