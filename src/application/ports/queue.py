"""The job queue, seen from both sides: a publisher (API) and a consumer (workers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from src.application.messages import JobMessage


class JobPublisher(Protocol):
    def publish(self, messages: Sequence[JobMessage], *, delay_s: int = 0) -> None:
        """Send messages to their queues (``message.queue``); ``delay_s`` up to 900."""
        ...


@dataclass(frozen=True, kw_only=True)
class ReceivedMessage:
    queue: str
    body: str
    message_id: str
    receive_count: int
    handle: Any = field(compare=False, repr=False)  # opaque to the application


class JobConsumer(Protocol):
    queue: str

    def receive(self, *, max_messages: int, wait_s: float) -> list[ReceivedMessage]:
        """Up to ``max_messages`` (at most 10), waiting up to ``wait_s`` (at most 20) for one."""
        ...

    def ack(self, messages: Sequence[ReceivedMessage]) -> None:
        """Delete handled messages."""
        ...

    def release(self, message: ReceivedMessage) -> None:
        """Hand a message back at once (visibility 0), e.g. on shutdown."""
        ...

    def extend(self, message: ReceivedMessage, *, visibility_timeout_s: int) -> None:
        """Keep a running job's message invisible for ``visibility_timeout_s`` from now."""
        ...

    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        """Move a message that can never be handled to the dead-letter queue, with the reason."""
        ...


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    message_id: str
    body: str
    reason: str  # why it was dead-lettered ("maxReceiveCount exceeded" when it was received too often)


class QueueAdmin(Protocol):
    """What an operator does with a queue (the CLI's ``dlq list|redrive|purge``)."""

    def depth(self, queue: str) -> int:
        """Messages in ``queue`` that are not dead letters: ready, delayed or in flight."""
        ...

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The dead letters of ``queue``, oldest first where the backend knows; they stay there."""
        ...

    def redrive(self, queue: str) -> int:
        """Move every dead letter of ``queue`` back to it, as new messages; returns how many."""
        ...

    def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; returns how many."""
        ...
