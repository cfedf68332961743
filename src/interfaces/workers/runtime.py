"""The consumer loop: receive in batches, run jobs on a bounded pool, act on each outcome.

One main thread receives and dispatches; jobs run on at most ``concurrency`` daemon job threads,
kept for the worker's life and fed through a queue. By default the loop never receives more
messages than it has free slots; ``prefetch`` lets it hold up to that many more, received ahead
and started as slots free up (fewer receives per job for short jobs; keep it 0 for long ones,
whose queued neighbours should go to idle workers instead). A heartbeat thread keeps running jobs' and
prefetched messages invisible, and running jobs' idempotency locks alive.
Outages (broker, database, Redis) are logged and waited out with a backoff; the process stays up.

Shutdown (:meth:`Worker.stop`, safe to call from a signal handler): stop receiving, hand
received-but-unstarted (prefetched) messages back, let running jobs reach a checkpoint within
``shutdown_deadline_s`` (handlers then save the job as queued and return RELEASE), flush acks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from src.application.backoff import Backoff
from src.application.handlers import Stopper
from src.application.messages import JobMessage, UndecodableMessage
from src.application.outcomes import Action, Outcome
from src.application.ports import JobConsumer, JobPublisher, ReceivedMessage
from src.application.queue_limits import MAX_BATCH, MAX_DELAY_S
from src.domain.errors import JobNotFound, ReelqueueError
from src.domain.jobs import JobKind
from src.infrastructure.observability.health import Health
from src.infrastructure.observability.metrics import WorkerMetrics
from src.interfaces.workers.heartbeat import Heartbeat
from src.interfaces.workers.limits import PathSlots

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waiting loop looks at the stop flag


class Handler(Protocol):
    def handle(self, job_id: str, *, shutting_down: Stopper) -> Outcome: ...

    def renew_lock(self, job_id: str) -> bool: ...


@dataclass(frozen=True)
class JobLabels:
    """What logs and metrics say about a job before it runs."""

    kind: str
    provider: str = ""
    production_path: str = ""

    def log_fields(self, message: JobMessage) -> dict[str, str]:
        fields = {"job_id": message.job_id, "kind": self.kind}
        if self.provider:
            fields.update(provider=self.provider, production_path=self.production_path)
        return fields


Describe = Callable[[JobMessage], JobLabels]
"""Loads what a job needs before it can start (its path); raises :class:`JobNotFound`."""


def kind_only(message: JobMessage) -> JobLabels:
    return JobLabels(kind=message.kind.value)


@dataclass(eq=False)
class Delivery:
    message: ReceivedMessage
    job: JobMessage
    labels: JobLabels
    started_s: float = field(default_factory=time.monotonic)
    # held while the heartbeat extends the message, and while the job's end takes it off the
    # running set: an extend can never land after the message was released or acked
    beat: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)


class Worker:
    def __init__(
        self,
        consumer: JobConsumer,
        handlers: Mapping[JobKind, Handler],
        publisher: JobPublisher,
        *,
        concurrency: int = 1,
        describe: Describe = kind_only,
        path_limits: Mapping[str, int] | None = None,
        visibility_timeout_s: int = 300,
        heartbeat_interval_s: float | None = None,
        receive_wait_s: float = 10.0,
        shutdown_deadline_s: float = 60.0,
        backoff: Backoff | None = None,
        metrics: WorkerMetrics | None = None,
        health: Health | None = None,
        ack_linger_s: float = 1.0,
        prefetch: int = 0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 0 <= prefetch <= MAX_BATCH:
            raise ValueError(f"prefetch must be 0-{MAX_BATCH}")
        self.consumer = consumer
        self.handlers = dict(handlers)
        self.publisher = publisher
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.describe = describe
        self.paths = PathSlots(path_limits or {})
        self.visibility_timeout_s = visibility_timeout_s
        self.receive_wait_s = receive_wait_s
        self.shutdown_deadline_s = shutdown_deadline_s
        self.backoff = backoff or Backoff()
        self.metrics = metrics or WorkerMetrics()
        self.health = health or Health()
        self.heartbeat = Heartbeat(self.extend_running,
                                   interval_s=heartbeat_interval_s or visibility_timeout_s / 3)
        self._receive_down = False
        self._stopping = False  # a plain flag: set from a signal handler, read everywhere
        self._running: set[Delivery] = set()
        self._waiting: deque[ReceivedMessage] = deque()  # prefetched, not started yet
        # held while the heartbeat extends prefetched messages and while one is taken off: an
        # extend never lands after a message was handed back
        self._waiting_lock = threading.Lock()
        self._acks: list[ReceivedMessage] = []
        self._acks_since_s = 0.0  # when the oldest pending ack was queued
        self._long_polling = False  # the main thread is in a receive that may wait
        self._ack_timer: threading.Timer | None = None
        self._ack_senders: list[threading.Thread] = []  # full batches being sent beside the loop
        self.ack_linger_s = ack_linger_s
        self._changed = threading.Condition()
        # job threads, at most ``concurrency``, kept for the worker's life and fed through a queue:
        # no thread start per job (a start waits for the new thread to take the GIL)
        self._slots: list[threading.Thread] = []
        self._ready: queue.SimpleQueue[tuple[Delivery, Handler] | None] = queue.SimpleQueue()
        # held while free slots are counted and filled (by the main thread, or by a job thread
        # starting a prefetched message): never more than ``concurrency`` jobs at once
        self._dispatching = threading.Lock()

    # --- control -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop; running jobs see ``shutting_down()`` become True."""
        self._stopping = True

    def shutting_down(self) -> bool:
        return self._stopping

    def run(self) -> list[str]:
        """Consume until stopped; returns the ids of jobs still running at the deadline."""
        log.info("worker started on queue %s with %d slot(s)", self.consumer.queue, self.concurrency)
        self.heartbeat.start()
        try:
            while not self._stopping:
                self.turn()
            log.info("stopping: no new messages; %d running job(s) get up to %ss to reach a checkpoint",
                     len(self._running), self.shutdown_deadline_s)
            self.hand_back_waiting()
            return self.drain()
        finally:
            self.heartbeat.stop()
            for _ in self._slots:  # idle slot threads end; one still running a job ends after it
                self._ready.put(None)

    def turn(self) -> None:
        """One loop turn: beat, flush due acks, wait out a backoff, start prefetched messages or
        receive what free slots (and the prefetch allowance) can take.

        Acks are sent in batches (SQS bills per request): they wait until ten are pending (sent
        at once from a thread of their own, beside the loop), the oldest is ``ack_linger_s`` old,
        or a receive finds the queue empty; while some wait, the receive is a short poll, and
        acks queued during a long poll go out ``ack_linger_s`` later.
        """
        self.health.beat()
        self.flush_acks(due_only=True)
        if self.backoff.pending and self._pause(self.backoff.delay_s()):
            return
        free = self._free_slots()
        if self._stopping:
            return
        if self._waiting:
            if free:
                with self._dispatching:
                    self.dispatch(self._take_waiting(self._free_now()))
            return
        if not free and not self.prefetch:
            return
        # with prefetch, the next messages are received while the last ones still run
        messages = self.receive(free + self.prefetch)
        if not messages:
            self.flush_acks()
        with self._dispatching:  # slots only free up meanwhile: nothing else starts while none wait
            self.dispatch(messages[:free])
            with self._waiting_lock:
                self._waiting.extend(messages[free:])

    def drain(self) -> list[str]:
        deadline_s = time.monotonic() + self.shutdown_deadline_s
        with self._changed:
            while self._running and time.monotonic() < deadline_s:
                self._changed.wait(min(POLL_S, max(deadline_s - time.monotonic(), 0)))
        self.flush_acks()
        for sender in list(self._ack_senders):  # batches still on their way out
            sender.join(max(deadline_s - time.monotonic(), 1.0))
        abandoned = sorted(d.job.job_id for d in list(self._running))
        if abandoned:
            log.warning("shutdown deadline passed; abandoning running job(s) %s: their messages "
                        "come back after the visibility timeout", ", ".join(abandoned))
        else:
            log.info("stopped cleanly")
        return abandoned

    # --- receive and dispatch ------------------------------------------------------------------

    def receive(self, free: int) -> list[ReceivedMessage]:
        started_s = time.monotonic()
        with self._changed:  # an ack queued from now on knows this receive may block
            wait_s = 0 if self._acks else self.receive_wait_s
            self._long_polling = wait_s > 0
        try:
            messages = self.consumer.receive(max_messages=min(free, MAX_BATCH), wait_s=wait_s)
        except Exception as exc:  # noqa: BLE001 - any outage: log, back off, stay up
            self._outage("receive", exc)
            self._receive_down = True
            return []
        finally:
            self._long_polling = False
        self.metrics.receive_latency.observe(time.monotonic() - started_s)
        if self._receive_down:  # the broker is back; a job's success resets other outages
            self._receive_down = False
            self.backoff.succeeded()
        return messages

    def _take_waiting(self, count: int) -> list[ReceivedMessage]:
        with self._waiting_lock:
            return [self._waiting.popleft() for _ in range(min(count, len(self._waiting)))]

    def hand_back_waiting(self) -> None:
        """Shutdown: prefetched messages go back to the queue for other workers at once."""
        for message in self._take_waiting(len(self._waiting)):
            self._release(message, "shutting down before it started")

    def dispatch(self, messages: Sequence[ReceivedMessage]) -> None:
        deferred = [m for m in messages if not self.dispatch_one(m)]
        if deferred and len(deferred) == len(messages):
            self._pause(1.0)  # everything was for a full path: don't spin on the same messages

    def dispatch_one(self, message: ReceivedMessage) -> bool:
        """Start one message, or settle it at once; False when it was handed back for its path."""
        if self._stopping:
            self._release(message, "shutting down before it started")
            return True
        try:
            job = JobMessage.decode(message.body, queue=message.queue)
            handler = self._handler_for(job)
            labels = self.describe(job)
        except (UndecodableMessage, JobNotFound, _NoHandler) as exc:
            self._dead_letter(message, str(exc))
            return True
        except Exception as exc:  # noqa: BLE001 - left invisible: it comes back after an outage
            self._outage("load job", exc)
            return True
        if not self.paths.try_take(labels.production_path):
            self.metrics.path_deferrals.labels(labels.production_path).inc()
            self._release(message, f"path {labels.production_path} is at its limit")
            return False
        self._start(Delivery(message, job, labels), handler)
        return True

    def _handler_for(self, job: JobMessage) -> Handler:
        handler = self.handlers.get(job.kind)
        if handler is None:
            raise _NoHandler(f"no handler for {job.kind.value} jobs on queue {self.consumer.queue}")
        return handler

    # --- running a job -------------------------------------------------------------------------

    def _start(self, delivery: Delivery, handler: Handler) -> None:
        with self._changed:
            self._running.add(delivery)
        self.metrics.started.labels(*self._label_values(delivery)).inc()
        self.metrics.in_flight.inc()
        log.info("job started", extra={**delivery.labels.log_fields(delivery.job),
                                       "receive_count": delivery.message.receive_count})
        if len(self._slots) < self.concurrency:  # slot threads start as the first jobs arrive
            slot = threading.Thread(target=self._slot, daemon=True, name=f"job-slot-{len(self._slots) + 1}")
            self._slots.append(slot)
            slot.start()
        self._ready.put((delivery, handler))

    def _slot(self) -> None:
        """A job thread: runs the jobs handed to it until the worker's run ends (``None``)."""
        while (item := self._ready.get()) is not None:
            self.work(*item)
            self._start_next_waiting()

    def _start_next_waiting(self) -> None:
        """A job thread that just finished starts the next prefetched message itself, without
        waiting for the main thread to wake up and hand it over."""
        if self._stopping or not self._waiting:
            return
        with self._dispatching:
            if self._free_now() and not self._stopping:
                for message in self._take_waiting(1):
                    self.dispatch_one(message)

    def work(self, delivery: Delivery, handler: Handler) -> None:
        outcome: Outcome | None = None
        try:
            outcome = handler.handle(delivery.job.job_id, shutting_down=self.shutting_down)
        except JobNotFound as exc:
            self._dead_letter(delivery.message, str(exc))
        except Exception as exc:  # noqa: BLE001 - left un-acked: it is redelivered later
            self._outage("handle", exc, delivery)
        finally:
            self._finish(delivery, outcome)

    def _finish(self, delivery: Delivery, outcome: Outcome | None) -> None:
        with delivery.beat, self._changed:
            self._running.discard(delivery)
        self.paths.give_back(delivery.labels.production_path)
        self.metrics.in_flight.dec()
        duration_s = time.monotonic() - delivery.started_s
        self._count(delivery, outcome, duration_s)
        if outcome is not None:
            self.backoff.succeeded()
            self.settle(delivery, outcome)
        with self._changed:
            self._changed.notify_all()

    def settle(self, delivery: Delivery, outcome: Outcome) -> None:
        """ACK -> batched delete; RETRY_LATER -> a delayed copy, then delete; RELEASE -> hand back."""
        try:
            if outcome.action is Action.RETRY_LATER:
                delay_s = max(0, min(int(outcome.delay_s), MAX_DELAY_S))
                self.publisher.publish([delivery.job], delay_s=delay_s)
            if outcome.action is Action.RELEASE:
                self.consumer.release(delivery.message)
            else:
                self._queue_ack(delivery.message)
        except Exception as exc:  # noqa: BLE001 - the message comes back after its visibility timeout
            self._outage(f"settle ({outcome.action.value})", exc, delivery)

    def _queue_ack(self, message: ReceivedMessage) -> None:
        """Batch the ack: a full batch is sent at once from a thread beside the loop (its delete
        and the loop's next receive overlap); one queued while the loop sits in a long poll gets
        a timer, so it is not held until the poll ends."""
        with self._changed:  # senders start under the lock: shutdown sees and joins every one
            if not self._acks:
                self._acks_since_s = time.monotonic()
            self._acks.append(message)
            if len(self._acks) >= MAX_BATCH:
                sender = threading.Thread(target=self.flush_acks, daemon=True, name="acks")
                self._ack_senders.append(sender)
                sender.start()
            elif self._long_polling and self._ack_timer is None:
                self._ack_timer = threading.Timer(self.ack_linger_s, self._flush_late_acks)
                self._ack_timer.daemon = True
                self._ack_timer.start()

    def _count(self, delivery: Delivery, outcome: Outcome | None, duration_s: float) -> None:
        labels = self._label_values(delivery)
        self.metrics.duration.labels(*labels).observe(duration_s)
        action = outcome.action.value if outcome else "error"
        self.metrics.outcomes.labels(*labels, action).inc()
        if outcome is None:
            self.metrics.failed.labels(*labels, "error").inc()
        elif outcome.reason == "succeeded":
            self.metrics.succeeded.labels(*labels).inc()
        elif outcome.reason.startswith(("failed", "attempts exhausted")):
            self.metrics.failed.labels(*labels, outcome.reason).inc()
        log.info("job handled: %s (%s)", action, outcome.reason if outcome else "error",
                 extra={**delivery.labels.log_fields(delivery.job), "duration_ms": int(duration_s * 1000)})

    @staticmethod
    def _label_values(delivery: Delivery) -> tuple[str, str, str]:
        labels = delivery.labels
        return labels.kind, labels.provider, labels.production_path

    # --- heartbeat and acks --------------------------------------------------------------------

    def extend_running(self) -> None:
        """Keep each running job's message invisible and its idempotency lock alive, and
        prefetched messages invisible until they start."""
        with self._waiting_lock:
            for message in self._waiting:
                try:
                    self.consumer.extend(message, visibility_timeout_s=self.visibility_timeout_s)
                except Exception as exc:  # noqa: BLE001 - try again on the next beat
                    self._outage("extend", exc, back_off=False)
        with self._changed:
            running = list(self._running)
        for delivery in running:
            try:
                with delivery.beat:
                    if not self._still_running(delivery):
                        continue  # finished while earlier ones were extended: its message is settled
                    self.consumer.extend(delivery.message, visibility_timeout_s=self.visibility_timeout_s)
                handler = self.handlers[delivery.job.kind]
                # a job that finished meanwhile released its lock: nothing was lost then
                if not handler.renew_lock(delivery.job.job_id) and self._still_running(delivery):
                    log.warning("could not renew the job's lock",
                                extra=delivery.labels.log_fields(delivery.job))
            except Exception as exc:  # noqa: BLE001 - try again on the next beat
                self._outage("extend", exc, delivery, back_off=False)

    def _flush_late_acks(self) -> None:
        """Acks queued while the main thread waits in a long poll go out ``ack_linger_s`` later,
        not when the poll ends (up to ``receive_wait_s``)."""
        with self._changed:
            self._ack_timer = None
        self.flush_acks()

    def flush_acks(self, *, due_only: bool = False) -> None:
        with self._changed:
            self._ack_senders = [t for t in self._ack_senders if t.is_alive()]
            if due_only and len(self._acks) < MAX_BATCH and not self._ack_overdue():
                return
            pending, self._acks = self._acks, []
        for start in range(0, len(pending), MAX_BATCH):
            batch = pending[start:start + MAX_BATCH]
            try:
                self.consumer.ack(batch)
            except Exception as exc:  # noqa: BLE001 - redelivered; a finished job is then just acked
                self._outage("ack", exc)

    # --- helpers -------------------------------------------------------------------------------

    def _ack_overdue(self) -> bool:
        return bool(self._acks) and time.monotonic() - self._acks_since_s >= self.ack_linger_s

    def _still_running(self, delivery: Delivery) -> bool:
        with self._changed:
            return delivery in self._running

    def running_count(self) -> int:
        with self._changed:
            return len(self._running)

    def _free_now(self) -> int:
        with self._changed:
            return max(self.concurrency - len(self._running), 0)

    def _free_slots(self) -> int:
        """Free slots, after waiting a moment for one when none is (the condition is reentrant)."""
        with self._changed:
            if len(self._running) >= self.concurrency:
                self._changed.wait(POLL_S)
            return self._free_now()

    def _pause(self, seconds: float) -> bool:
        """Sleep in short steps; True if a stop was requested meanwhile."""
        end_s = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < end_s:
            time.sleep(min(POLL_S, max(end_s - time.monotonic(), 0)))
        return self._stopping

    def _release(self, message: ReceivedMessage, why: str) -> None:
        try:
            self.consumer.release(message)
        except Exception as exc:  # noqa: BLE001 - it comes back after its visibility timeout anyway
            self._outage("release", exc)
            return
        log.debug("message %s handed back: %s", message.message_id, why)

    def _dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        try:
            self.consumer.dead_letter(message, reason=reason)
        except Exception as exc:  # noqa: BLE001
            self._outage("dead-letter", exc)
            return
        self.metrics.dead_lettered.labels(reason.split(":")[0][:60]).inc()
        log.warning("message %s moved to the dead-letter queue: %s", message.message_id, reason,
                    extra={"queue": message.queue})

    def _outage(self, operation: str, exc: Exception, delivery: Delivery | None = None,
                *, back_off: bool = True) -> None:
        self.metrics.queue_errors.labels(operation).inc()
        if back_off:
            self.backoff.failed()
        extra: dict[str, Any] = delivery.labels.log_fields(delivery.job) if delivery else {}
        log.warning("%s failed (%s: %s); backing off %.1fs", operation, type(exc).__name__, exc,
                    self.backoff.delay_s(), extra=extra, exc_info=not _expected(exc))


class _NoHandler(ReelqueueError):
    """A decodable message of a kind this worker does not run (a routing mistake)."""


def _expected(exc: Exception) -> bool:
    """Our own errors say enough in one line; anything else gets its traceback logged."""
    return isinstance(exc, ReelqueueError)
