"""The API process's outbox relay: a daemon thread takes committed outbox entries to the queue.

``hand_off`` only queues the entries in memory and wakes the thread, so a request never waits
for the queue. The thread sends up to ten entries at a time (one ``SendMessageBatch`` per
queue) and marks them sent in one statement; entries handed off meanwhile wait for the next
turn, so under load the batches fill up by themselves.

Nothing is lost: every entry was committed before it was handed off. While the queue (or the
database) is down the thread keeps its entries and backs off; whatever it has not sent when
the process ends (or past ``max_backlog`` during a long outage) stays pending in the outbox, where
the reconciler finds it, or the relay of a later process: each relay scans now and then for
entries pending longer than ``scan_grace_s``.
An entry may be sent twice at worst (a crash between send and mark, a reconciler round during
an outage); the workers are idempotent.

The thread starts on the first hand-off in a process, so a forking server (gunicorn) gets one
per worker process, started after the fork. :meth:`close` sends what is left within a deadline.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta

from src.application.backoff import Backoff
from src.application.ports import Clock, JobPublisher, Outbox, OutboxEntry
from src.application.queue_limits import MAX_BATCH

log = logging.getLogger(__name__)

SCAN_LIMIT = 100  # old pending entries taken per scan
MAX_BACKLOG = 10_000  # entries held in memory; beyond, they wait in the outbox only


class BackgroundRelay:
    """The :class:`OutboxRelay` of long-running processes (the API): sends from its own thread."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        publisher: JobPublisher,
        clock: Clock,
        batch_size: int = MAX_BATCH,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        scan_interval_s: float = 60.0,
        scan_grace_s: float = 60.0,
        close_timeout_s: float = 5.0,
        max_backlog: int = MAX_BACKLOG,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH}")
        self.outbox = outbox
        self.publisher = publisher
        self.clock = clock
        self.batch_size = batch_size
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.scan_interval_s = scan_interval_s
        self.scan_grace_s = scan_grace_s
        self.close_timeout_s = close_timeout_s
        self.max_backlog = max_backlog
        self.rng = rng
        self._reset()

    def _reset(self) -> None:
        """Fresh state for this process (also after a fork: the parent's entries are its own)."""
        self._pid = os.getpid()
        self._wake = threading.Condition()
        self._waiting: deque[OutboxEntry] = deque()
        self._sending = 0  # entries taken off ``_waiting`` for the send under way
        self._unmarked: list[int] = []  # sent, not yet marked sent (the database was down)
        self._thread: threading.Thread | None = None
        self._closing = False
        self._backoff = Backoff(base_s=self.backoff_base_s, max_s=self.backoff_max_s, rng=self.rng)

    # --- the caller's side -----------------------------------------------------------------------

    def hand_off(self, entries: Sequence[OutboxEntry]) -> None:
        if not entries:
            return
        if self._pid != os.getpid():
            self._reset()
        with self._wake:
            self._hold(entries)
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        """Send what is waiting within ``close_timeout_s``; what is left stays in the outbox."""
        with self._wake:
            self._closing = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(self.close_timeout_s)
            if thread.is_alive():
                log.warning("outbox relay: %d message(s) left in the outbox for the reconciler",
                            len(self._waiting))

    @property
    def backlog(self) -> int:
        """Entries handed off and not yet known to be sent (inspection)."""
        with self._wake:
            return len(self._waiting) + self._sending + len(self._unmarked)

    # --- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        next_scan_s = time.monotonic() + self.scan_interval_s * self.rng()
        while True:
            batch = self._next_batch(next_scan_s)
            if batch is None:
                return
            if time.monotonic() >= next_scan_s and not self._closing:
                next_scan_s = time.monotonic() + self.scan_interval_s
                self._take_old_entries(besides=batch)
            if self._turn(batch):
                self._backoff = Backoff(base_s=self.backoff_base_s, max_s=self.backoff_max_s, rng=self.rng)
            elif self._closing:
                return  # no waiting for a queue that is down: the outbox keeps the rest
            else:
                self._backoff.failed()
                self._pause(self._backoff.delay_s())

    def _next_batch(self, next_scan_s: float) -> list[OutboxEntry] | None:
        """Wait for entries (or a scan, or close); ``None`` when closing with nothing left."""
        with self._wake:
            while not (self._waiting or self._unmarked or self._closing):
                remaining_s = next_scan_s - time.monotonic()
                if remaining_s <= 0:
                    break
                self._wake.wait(remaining_s)
            if self._closing and not (self._waiting or self._unmarked):
                return None
            self._sending = min(self.batch_size, len(self._waiting))
            return [self._waiting.popleft() for _ in range(self._sending)]

    def _turn(self, batch: list[OutboxEntry]) -> bool:
        """Send ``batch`` and mark it (and any earlier unmarked entries) sent; False on failure."""
        try:
            if batch:
                self.publisher.publish([entry.message for entry in batch])
        except Exception as exc:  # noqa: BLE001 - an outage or not, the thread must live on
            with self._wake:
                self._waiting.extendleft(reversed(batch))
                self._sending = 0
            self._log_failure("send", len(batch), exc)
            return False
        with self._wake:
            self._unmarked.extend(entry.id for entry in batch)
            self._sending = 0
        try:
            if self._unmarked:
                self.outbox.mark_sent(self._unmarked)
        except Exception as exc:  # noqa: BLE001 - sent already: only the mark is retried
            self._log_failure("mark as sent", len(self._unmarked), exc)
            return False
        self._unmarked.clear()
        return True

    def _take_old_entries(self, *, besides: list[OutboxEntry]) -> None:
        """Queue up entries pending for longer than ``scan_grace_s`` that this relay does not
        hold already (left by a process that ended, or by a failed publish elsewhere)."""
        older_than = self.clock.now() - timedelta(seconds=self.scan_grace_s)
        try:
            old = self.outbox.pending(limit=SCAN_LIMIT, older_than=older_than)
        except Exception as exc:  # noqa: BLE001 - the next scan tries again
            log.warning("outbox relay: scan for old pending entries failed: %s", exc)
            return
        with self._wake:
            held = {e.id for e in self._waiting} | {e.id for e in besides} | set(self._unmarked)
            found = [entry for entry in old if entry.id not in held]
            self._hold(found)
        if found:
            log.info("outbox relay: %d old pending message(s) found, sending them", len(found))

    def _hold(self, entries: Sequence[OutboxEntry]) -> None:
        """Keep ``entries`` to send (the caller holds ``_wake``), up to ``max_backlog``: past it
        (a long outage under load), new entries wait in the outbox alone, for the reconciler."""
        room = self.max_backlog - len(self._waiting)
        if len(entries) > room:
            log.warning("outbox relay: %d message(s) held already, %d left to the reconciler",
                        len(self._waiting), len(entries) - max(room, 0))
        self._waiting.extend(entries[:max(room, 0)])

    def _pause(self, seconds: float) -> None:
        """Back off: new hand-offs do not cut it short (they would hammer a queue that is down),
        close() does."""
        until_s = time.monotonic() + seconds
        with self._wake:
            while not self._closing and (remaining_s := until_s - time.monotonic()) > 0:
                self._wake.wait(remaining_s)

    def _log_failure(self, action: str, count: int, exc: Exception) -> None:
        log.warning("outbox relay: could not %s %d message(s), retrying in the background (attempt %d): %s",
                    action, count, self._backoff.failures + 1, exc)
