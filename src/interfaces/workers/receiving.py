"""Receiving: one receive call (long poll unless acks wait), and the prefetched messages held
until a slot frees up."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from contextlib import AbstractContextManager
from itertools import islice

from src.application.ports import JobConsumer, ReceivedMessage
from src.application.queue_limits import MAX_RECEIVE
from src.infrastructure.observability.metrics import WorkerMetrics
from src.interfaces.workers.acks import AckBatcher
from src.interfaces.workers.delivery import ExtendMark
from src.interfaces.workers.outages import Outages


class Receiver:
    def __init__(self, consumer: JobConsumer, acks: AckBatcher, *, wait_s: float,
                 metrics: WorkerMetrics, outages: Outages) -> None:
        self.consumer = consumer
        self.acks = acks
        self.wait_s = wait_s
        self.metrics = metrics
        self.outages = outages
        self._down = False

    def receive(self, count: int) -> list[ReceivedMessage]:
        """Up to ``count`` messages (at most ten); an outage is recorded and yields none."""
        started_s = time.monotonic()
        wait_s = self.acks.poll_wait_s(self.wait_s)
        try:
            messages = self.consumer.receive(max_messages=min(count, MAX_RECEIVE), wait_s=wait_s)
        except Exception as exc:  # noqa: BLE001 - any outage: log, back off, stay up
            self.outages.record("receive", exc)
            self._down = True
            return []
        finally:
            self.acks.poll_ended()
        self.metrics.receive_latency.observe(time.monotonic() - started_s)
        if self._down:  # the broker is back; a job's success resets other outages
            self._down = False
            self.outages.backoff.succeeded()
        return messages


class Prefetched:
    """Messages received ahead of free slots, oldest first. The heartbeat extends them one at a
    time outside the lock; a message is taken (to start or hand back) only when no extend of it
    is on its way, so an extend never lands after a message was handed back."""

    def __init__(self) -> None:
        self._messages: deque[ReceivedMessage] = deque()
        self._changed = threading.Condition()
        self._extending = ExtendMark[ReceivedMessage](self._changed)

    def __len__(self) -> int:
        with self._changed:
            return len(self._messages)

    def add(self, messages: Iterable[ReceivedMessage], *, first: bool = False) -> None:
        with self._changed:
            if first:
                self._messages.extendleft(reversed(list(messages)))
            else:
                self._messages.extend(messages)

    def take(self, count: int) -> list[ReceivedMessage]:
        with self._changed:
            self._changed.wait_for(lambda: not self._extending_any(count))
            return [self._messages.popleft() for _ in range(min(count, len(self._messages)))]

    def _extending_any(self, count: int) -> bool:
        """Whether the heartbeat extends one of the first ``count`` messages now (lock held)."""
        item = self._extending.item
        return item is not None and item in islice(self._messages, count)

    def extending(self, message: ReceivedMessage) -> AbstractContextManager[bool]:
        """Marks the message the heartbeat extends now; yields False once it was taken."""
        return self._extending.hold(message, present=lambda: message in self._messages)

    def snapshot(self) -> list[ReceivedMessage]:
        with self._changed:
            return list(self._messages)
