"""Dispatching: a received message becomes a running job, or is settled at once (dead-letter
queue for one that can never run, handed back for a path at its limit or a shutdown)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from src.application.handlers import Stopper
from src.application.messages import JobMessage, UndecodableMessage
from src.application.ports import ReceivedMessage
from src.domain.errors import JobNotFound, ReelqueueError
from src.domain.jobs import JobKind
from src.infrastructure.observability.metrics import DeadLetter, WorkerMetrics
from src.interfaces.workers.delivery import Delivery, Describe, Handler
from src.interfaces.workers.outages import Outages
from src.interfaces.workers.pool import JobPool
from src.interfaces.workers.receiving import Prefetched
from src.interfaces.workers.settling import Settler

log = logging.getLogger(__name__)


class NoHandler(ReelqueueError):
    """A decodable message of a kind this worker does not run (a routing mistake)."""


def _dead_letter_kind(exc: Exception) -> DeadLetter:
    if isinstance(exc, JobNotFound):
        return DeadLetter.NO_JOB
    if isinstance(exc, NoHandler):
        return DeadLetter.NO_HANDLER
    return DeadLetter.UNDECODABLE


class Dispatcher:
    def __init__(self, *, queue: str, handlers: Mapping[JobKind, Handler], describe: Describe,
                 pool: JobPool, prefetched: Prefetched, settler: Settler, metrics: WorkerMetrics,
                 outages: Outages, shutting_down: Stopper) -> None:
        self.queue = queue
        self.handlers = handlers
        self.describe = describe
        self.pool = pool
        self.prefetched = prefetched
        self.settler = settler
        self.metrics = metrics
        self.outages = outages
        self.shutting_down = shutting_down

    def dispatch(self, messages: Sequence[ReceivedMessage]) -> bool:
        """Start or settle each message; True when every one was handed back for its path."""
        deferred = [m for m in messages if not self.dispatch_one(m)]
        return bool(deferred) and len(deferred) == len(messages)

    def dispatch_one(self, message: ReceivedMessage) -> bool:
        """Start one message, or settle it at once; False when it was handed back for its path.
        A slot is claimed first, so the job's loading (a database read) runs with no lock held."""
        if self.shutting_down():
            self.settler.release(message, "shutting down before it started")
            return True
        if not self.pool.claim():  # a job thread took the slot for a prefetched message
            self.prefetched.add([message], first=True)
            return True
        prepared = self._prepare(message)
        if prepared is None:
            self.pool.unclaim()
            return True
        delivery, handler = prepared
        path = delivery.labels.production_path
        if not self.pool.paths.try_take(path):
            self.pool.unclaim()
            self.metrics.path_deferrals.labels(path).inc()
            self.settler.release(message, f"path {path} is at its limit")
            return False
        self._start(delivery, handler)
        return True

    def start_next_waiting(self) -> None:
        """A job thread that just finished starts the next prefetched message itself, without
        waiting for the loop to wake up and hand it over."""
        if self.shutting_down() or not len(self.prefetched) or not self.pool.free():
            return
        for message in self.prefetched.take(1):
            self.dispatch_one(message)

    def _prepare(self, message: ReceivedMessage) -> tuple[Delivery, Handler] | None:
        """The job, its handler and its labels; None when the message was settled instead."""
        try:
            job = JobMessage.decode(message.body, queue=message.queue)
            handler = self._handler_for(job)
            labels = self.describe(job)
        except (UndecodableMessage, JobNotFound, NoHandler) as exc:
            self.settler.dead_letter(message, _dead_letter_kind(exc), str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - left invisible: it comes back after an outage
            self.outages.record("load job", exc)
            return None
        return Delivery(message, job, labels), handler

    def _handler_for(self, job: JobMessage) -> Handler:
        handler = self.handlers.get(job.kind)
        if handler is None:
            raise NoHandler(f"no handler for {job.kind.value} jobs on queue {self.queue}")
        return handler

    def _start(self, delivery: Delivery, handler: Handler) -> None:
        self.metrics.started.labels(*delivery.labels.values()).inc()
        self.metrics.in_flight.inc()
        log.info("job started",
                 extra={**delivery.log_fields(), "receive_count": delivery.message.receive_count})
        self.pool.start(delivery, handler)

