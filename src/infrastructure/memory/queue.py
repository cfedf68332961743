from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from src.application.messages import JobMessage
from src.application.ports import DeadLetter, ReceivedMessage
from src.application.ports.clock import Clock
from src.application.queue_limits import MAX_BODY_BYTES, MAX_DELAY_S, MAX_RECEIVE, MAX_RECEIVE_REASON
from src.domain.errors import ReelqueueError


@dataclass
class _Stored:
    id: str
    body: str
    visible_at: datetime
    receive_count: int = 0
    receipt: str | None = None
    reason: str | None = None


class InMemoryBroker:
    """Queues with visibility timeouts, delays, receive counts and a dead-letter queue each."""

    def __init__(
        self, clock: Clock, *, visibility_timeout_s: int = 30, max_receive_count: int = 5
    ) -> None:
        self.clock = clock
        self.visibility_timeout_s = visibility_timeout_s
        self.max_receive_count = max_receive_count
        self.queues: dict[str, dict[str, _Stored]] = {}
        self.dead: dict[str, list[_Stored]] = {}
        self.requests = 0  # inspection: calls made, as SQS would bill them
        self._ids = itertools.count(1)
        self._mutex = threading.Lock()

    def send(self, queue: str, body: str, *, delay_s: int = 0) -> None:
        if len(body.encode()) > MAX_BODY_BYTES:
            raise ReelqueueError(f"message body over {MAX_BODY_BYTES} bytes")
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise ReelqueueError(f"delay must be 0-{MAX_DELAY_S} s")
        with self._mutex:
            message_id = f"m{next(self._ids)}"
            visible_at = self.clock.now() + timedelta(seconds=delay_s)
            self.queues.setdefault(queue, {})[message_id] = _Stored(message_id, body, visible_at)

    def receive(self, queue: str, max_messages: int) -> list[ReceivedMessage]:
        with self._mutex:
            self.requests += 1
            now = self.clock.now()
            got: list[ReceivedMessage] = []
            for stored in list(self.queues.get(queue, {}).values()):
                if len(got) >= max_messages:
                    break
                if stored.visible_at > now:
                    continue
                if stored.receive_count >= self.max_receive_count:
                    self._to_dlq(queue, stored, MAX_RECEIVE_REASON)
                    continue
                stored.receive_count += 1
                stored.receipt = f"r{next(self._ids)}"
                stored.visible_at = now + timedelta(seconds=self.visibility_timeout_s)
                got.append(ReceivedMessage(queue=queue, body=stored.body, message_id=stored.id,
                                           receive_count=stored.receive_count,
                                           handle=stored.receipt))
            return got

    def _find(self, message: ReceivedMessage) -> _Stored | None:
        stored = self.queues.get(message.queue, {}).get(message.message_id)
        if stored is None or stored.receipt != message.handle:
            return None  # a stale receipt handle does nothing, as in SQS
        return stored

    def delete(self, message: ReceivedMessage) -> None:
        with self._mutex:
            if self._find(message) is not None:
                del self.queues[message.queue][message.message_id]

    def change_visibility(self, message: ReceivedMessage, timeout_s: int) -> None:
        with self._mutex:
            stored = self._find(message)
            if stored is not None:
                stored.visible_at = self.clock.now() + timedelta(seconds=timeout_s)

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        with self._mutex:
            stored = self._find(message)
            if stored is not None:
                self._to_dlq(message.queue, stored, reason)

    def _to_dlq(self, queue: str, stored: _Stored, reason: str) -> None:
        del self.queues[queue][stored.id]
        stored.reason = reason
        self.dead.setdefault(queue, []).append(stored)

    # inspection helpers
    def depth(self, queue: str) -> int:
        return len(self.queues.get(queue, {}))

    def bodies(self, queue: str) -> list[str]:
        return [s.body for s in self.queues.get(queue, {}).values()]

    def dead_letters(self, queue: str) -> list[tuple[str, str]]:
        return [(s.body, s.reason or "") for s in self.dead.get(queue, [])]

    def dead_messages(self, queue: str, *, take: bool = False) -> list[DeadLetter]:
        """The dead letters of ``queue``, oldest first; ``take`` removes them."""
        with self._mutex:
            dead = self.dead.pop(queue, []) if take else list(self.dead.get(queue, []))
        return [DeadLetter(message_id=s.id, body=s.body, reason=s.reason or "") for s in dead]


class InMemoryQueueAdmin:
    """The :class:`~src.application.ports.QueueAdmin` of the in-memory queue."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self.broker = broker

    def depth(self, queue: str) -> int:
        return self.broker.depth(queue)

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        return self.broker.dead_messages(queue)

    def redrive(self, queue: str) -> int:
        taken = self.broker.dead_messages(queue, take=True)
        for letter in taken:
            self.broker.send(queue, letter.body)
        return len(taken)

    def purge_dead(self, queue: str) -> int:
        return len(self.broker.dead_messages(queue, take=True))


class InMemoryPublisher:
    def __init__(self, broker: InMemoryBroker) -> None:
        self.broker = broker
        self.down = False  # tests flip this to simulate an outage

    def publish(self, messages: Sequence[JobMessage], *, delay_s: int = 0) -> None:
        if self.down:
            raise ReelqueueError("queue unreachable")
        for message in messages:
            self.broker.send(message.queue, message.encode(), delay_s=delay_s)


class InMemoryConsumer:
    def __init__(self, broker: InMemoryBroker, queue: str) -> None:
        self.broker = broker
        self.queue = queue

    def receive(self, *, max_messages: int, wait_s: float) -> list[ReceivedMessage]:
        deadline = time.monotonic() + min(wait_s, 20)
        while True:
            got = self.broker.receive(self.queue, min(max_messages, MAX_RECEIVE))
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(0.01)

    def ack(self, messages: Sequence[ReceivedMessage]) -> None:
        for message in messages:
            self.broker.delete(message)

    def release(self, message: ReceivedMessage) -> None:
        self.broker.change_visibility(message, 0)

    def extend(self, message: ReceivedMessage, *, visibility_timeout_s: int) -> None:
        self.broker.change_visibility(message, visibility_timeout_s)

    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        self.broker.dead_letter(message, reason)
