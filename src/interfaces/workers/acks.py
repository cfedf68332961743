"""Acknowledgements in batches: SQS bills per request, and a delete costs a round trip.

Acks wait until ten are pending (then sent at once from a thread of their own, beside the loop),
the oldest is ``linger_s`` old, or a receive finds the queue empty. While some wait, the loop's
receive is a short poll; one queued while the loop sits in a long poll gets a timer, so it goes
out ``linger_s`` later instead of when the poll ends. Nothing is sent while the lock is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from src.application.ports import JobConsumer, ReceivedMessage
from src.application.queue_limits import MAX_BATCH
from src.interfaces.workers.outages import Outages


class AckBatcher:
    def __init__(self, consumer: JobConsumer, *, linger_s: float, outages: Outages) -> None:
        self.consumer = consumer
        self.linger_s = linger_s
        self.outages = outages
        self._mutex = threading.Lock()
        self._pending: list[ReceivedMessage] = []
        self._since_s = 0.0  # when the oldest pending ack was queued
        self._long_polling = False  # the loop is in a receive that may wait
        self._timer: threading.Timer | None = None
        self._sent = threading.Condition(self._mutex)
        self._senders = 0  # full batches being sent beside the loop

    def add(self, message: ReceivedMessage) -> None:
        with self._mutex:  # senders are registered under the lock: shutdown joins every one
            if not self._pending:
                self._since_s = time.monotonic()
            self._pending.append(message)
            starter = self._sender() if len(self._pending) >= MAX_BATCH else self._linger_timer()
        if starter is not None:
            starter.start()

    def poll_wait_s(self, receive_wait_s: float) -> float:
        """How long the next receive may wait: not at all while acks are pending. An ack
        queued from now on knows the receive may block."""
        with self._mutex:
            self._long_polling = not self._pending and receive_wait_s > 0
            return receive_wait_s if self._long_polling else 0

    def poll_ended(self) -> None:
        with self._mutex:
            self._long_polling = False

    def flush(self, *, due_only: bool = False) -> None:
        with self._mutex:
            if due_only and len(self._pending) < MAX_BATCH and not self._overdue():
                return
            pending, self._pending = self._pending, []
        self._send(pending)

    def join(self, deadline_s: float) -> None:
        """Shutdown: wait for batches still on their way out."""
        with self._sent:  # waiting releases the lock
            self._sent.wait_for(lambda: not self._senders, max(deadline_s - time.monotonic(), 1.0))

    def _send(self, messages: Sequence[ReceivedMessage]) -> None:
        for start in range(0, len(messages), MAX_BATCH):
            try:
                self.consumer.ack(messages[start:start + MAX_BATCH])
            except Exception as exc:  # noqa: BLE001 - redelivered; a finished job is then just acked
                self.outages.record("ack", exc)

    def _sender(self) -> threading.Thread:
        self._senders += 1
        return threading.Thread(target=self._send_beside, daemon=True, name="acks")

    def _send_beside(self) -> None:
        try:
            self.flush()
        finally:
            with self._sent:
                self._senders -= 1
                self._sent.notify_all()

    def _linger_timer(self) -> threading.Timer | None:
        if not self._long_polling or self._timer is not None:
            return None
        self._timer = threading.Timer(self.linger_s, self._flush_late)
        self._timer.daemon = True
        return self._timer

    def _flush_late(self) -> None:
        with self._mutex:
            self._timer = None
        self.flush()

    def _overdue(self) -> bool:
        return bool(self._pending) and time.monotonic() - self._since_s >= self.linger_s
