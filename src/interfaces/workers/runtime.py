"""The consumer loop: receive in batches, run jobs on a bounded pool, act on each outcome.

One main thread receives and dispatches; the work is shared by parts with one job each:

- receiving (:mod:`.receiving`): one receive call, a long poll unless acks wait, and the
  prefetched messages. By default the loop never receives more messages than it has free slots;
  ``prefetch`` lets it hold up to that many more, received ahead and started as slots free up
  (fewer receives per job for short jobs; keep it 0 for long ones, whose queued neighbours
  should go to idle workers instead);
- dispatching (:mod:`.dispatching`): a message becomes a running job or is settled at once;
- the job pool (:mod:`.pool`): at most ``concurrency`` job threads fed through a queue, and the
  per-path limits;
- settling (:mod:`.settling`): a job's outcome becomes an ack, a delayed copy or a hand-back;
- acknowledging (:mod:`.acks`): deletes in batches, sent beside the loop;
- the heartbeat (:mod:`.heartbeat`): keeps running jobs' and prefetched messages invisible, and
  running jobs' idempotency locks alive.

No part holds a lock while it calls the broker, a database or a lock store, or while it sleeps:
it collects what to send under its lock and sends it outside.
Outages (broker, database, Redis) are logged and waited out with a backoff; the process stays up.

Shutdown (:meth:`Worker.stop`, safe to call from a signal handler): stop receiving, hand
received-but-unstarted (prefetched) messages back, let running jobs reach a checkpoint within
``shutdown_deadline_s`` (handlers then save the job as queued and return RELEASE), flush acks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from src.application.backoff import Backoff
from src.application.ports import JobConsumer, JobPublisher, ReceivedMessage
from src.application.queue_limits import MAX_RECEIVE
from src.domain.jobs import JobKind
from src.infrastructure.observability.health import Health
from src.infrastructure.observability.metrics import WorkerMetrics
from src.interfaces.workers.acks import AckBatcher
from src.interfaces.workers.delivery import Delivery, Describe, Handler, JobLabels, kind_only
from src.interfaces.workers.dispatching import Dispatcher
from src.interfaces.workers.heartbeat import Heartbeat, KeepAlive
from src.interfaces.workers.outages import Outages
from src.interfaces.workers.pool import JobPool
from src.interfaces.workers.receiving import Prefetched, Receiver
from src.interfaces.workers.settling import Settler

__all__ = ["Delivery", "Describe", "Handler", "JobLabels", "Worker", "kind_only"]

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waiting loop looks at the stop flag


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
        if not 0 <= prefetch <= MAX_RECEIVE:
            raise ValueError(f"prefetch must be 0-{MAX_RECEIVE}")
        self.consumer = consumer
        self.prefetch = prefetch
        self.shutdown_deadline_s = shutdown_deadline_s
        self.backoff = backoff or Backoff()
        self.metrics = metrics or WorkerMetrics()
        self.health = health or Health()
        self._stopping = False  # a plain flag: set from a signal handler, read everywhere
        outages = Outages(backoff=self.backoff, metrics=self.metrics)
        self.acks = AckBatcher(consumer, linger_s=ack_linger_s, outages=outages)
        self.receiver = Receiver(consumer, self.acks, wait_s=receive_wait_s, metrics=self.metrics,
                                 outages=outages)
        self.prefetched = Prefetched()
        self.settler = Settler(consumer, publisher, acks=self.acks, metrics=self.metrics,
                               outages=outages, shutting_down=self.shutting_down)
        self.pool = JobPool(concurrency=concurrency, path_limits=path_limits or {},
                            run=lambda delivery, handler: self.settler.work(self.pool, delivery, handler),
                            after=lambda: self.dispatcher.start_next_waiting())
        self.dispatcher = Dispatcher(queue=consumer.queue, handlers=dict(handlers), describe=describe,
                                     pool=self.pool, prefetched=self.prefetched, settler=self.settler,
                                     metrics=self.metrics, outages=outages, shutting_down=self.shutting_down)
        self.keep_alive = KeepAlive(consumer, self.pool, self.prefetched, dict(handlers),
                                    visibility_timeout_s=visibility_timeout_s, outages=outages)
        self.heartbeat = Heartbeat(self.keep_alive.beat,
                                   interval_s=heartbeat_interval_s or visibility_timeout_s / 3)

    def stop(self) -> None:
        """Ask the loop to stop; running jobs see ``shutting_down()`` become True."""
        self._stopping = True

    def shutting_down(self) -> bool:
        return self._stopping

    def run(self) -> list[str]:
        """Consume until stopped; returns the ids of jobs still running at the deadline."""
        log.info("worker started on queue %s with %d slot(s)", self.consumer.queue, self.pool.concurrency)
        self.heartbeat.start()
        try:
            while not self._stopping:
                self.turn()
            log.info("stopping: no new messages; %d running job(s) get up to %ss to reach a checkpoint",
                     self.running_count(), self.shutdown_deadline_s)
            for message in self.prefetched.take(len(self.prefetched)):  # back to other workers now
                self.settler.release(message, "shutting down before it started")
            return self.drain()
        finally:
            self.heartbeat.stop()
            self.pool.close()

    def turn(self) -> None:
        """One loop turn: beat, flush due acks, wait out a backoff, start prefetched messages or
        receive what free slots (and the prefetch allowance) can take."""
        self.health.beat()
        self.acks.flush(due_only=True)
        if self.backoff.pending and _pause(self.backoff.delay_s(), self.shutting_down):
            return
        free = self.pool.free(wait_s=POLL_S)
        if self._stopping:
            return
        if len(self.prefetched):
            if free:
                self.dispatch(self.prefetched.take(free))
            return
        if not free and not self.prefetch:
            return
        # with prefetch, the next messages are received while the last ones still run
        messages = self.receive(free + self.prefetch)
        if not messages:
            self.acks.flush()
        self.dispatch(messages[:free])
        self.prefetched.add(messages[free:])

    def drain(self) -> list[str]:
        deadline_s = time.monotonic() + self.shutdown_deadline_s
        self.pool.wait_until_idle(deadline_s, poll_s=POLL_S)
        self.acks.flush()
        self.acks.join(deadline_s)  # batches still on their way out
        abandoned = sorted(d.job.job_id for d in self.pool.snapshot())
        if abandoned:
            log.warning("shutdown deadline passed; abandoning running job(s) %s: their messages "
                        "come back after the visibility timeout", ", ".join(abandoned))
        else:
            log.info("stopped cleanly")
        return abandoned

    def receive(self, free: int) -> list[ReceivedMessage]:
        return self.receiver.receive(free)

    def dispatch(self, messages: Sequence[ReceivedMessage]) -> None:
        if self.dispatcher.dispatch(messages):
            _pause(1.0, self.shutting_down)  # everything was for a full path: don't spin on them

    def extend_running(self) -> None:
        """One heartbeat: keep running and prefetched messages invisible, renew jobs' locks."""
        self.keep_alive.beat()

    def running_count(self) -> int:
        return len(self.pool.snapshot())

    @property
    def _running(self) -> set[Delivery]:
        return self.pool.running


def _pause(seconds: float, stopping: Callable[[], bool]) -> bool:
    """Sleep in short steps (no lock held); True if a stop was requested meanwhile."""
    end_s = time.monotonic() + seconds
    while not stopping() and time.monotonic() < end_s:
        time.sleep(min(POLL_S, max(end_s - time.monotonic(), 0)))
    return stopping()
