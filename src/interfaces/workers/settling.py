"""Running one job on a job thread and acting on its outcome: ack (batched), a delayed copy,
or hand the message back; and the two ways a message leaves without running (hand back,
dead-letter queue)."""

from __future__ import annotations

import logging
import time

from src.application.handlers import Stopper
from src.application.outcomes import Action, Outcome
from src.application.ports import JobConsumer, JobPublisher, ReceivedMessage
from src.application.queue_limits import MAX_DELAY_S
from src.domain.errors import JobNotFound
from src.infrastructure.observability.metrics import DeadLetter, Handled, WorkerMetrics
from src.interfaces.workers.acks import AckBatcher
from src.interfaces.workers.delivery import Delivery, Handler
from src.interfaces.workers.outages import Outages
from src.interfaces.workers.pool import JobPool

log = logging.getLogger(__name__)



class Settler:
    def __init__(self, consumer: JobConsumer, publisher: JobPublisher, *, acks: AckBatcher,
                 metrics: WorkerMetrics, outages: Outages, shutting_down: Stopper) -> None:
        self.consumer = consumer
        self.publisher = publisher
        self.acks = acks
        self.metrics = metrics
        self.outages = outages
        self.shutting_down = shutting_down

    def work(self, pool: JobPool, delivery: Delivery, handler: Handler) -> None:
        """Run one job (on a job thread); whatever happens, it leaves the pool and is counted."""
        outcome: Outcome | None = None
        try:
            outcome = handler.handle(delivery.job.job_id, shutting_down=self.shutting_down)
        except JobNotFound as exc:
            self.dead_letter(delivery.message, DeadLetter.NO_JOB, str(exc))
        except Exception as exc:  # noqa: BLE001 - left un-acked: it is redelivered later
            self.outages.record("handle", exc, delivery.log_fields())
        finally:
            pool.finish(delivery)
            try:
                self._finished(delivery, outcome)
            finally:
                pool.settled()

    def settle(self, delivery: Delivery, outcome: Outcome) -> None:
        """ACK -> batched delete; RETRY_LATER -> a delayed copy, then delete; RELEASE -> hand back."""
        try:
            if outcome.action is Action.RETRY_LATER:
                delay_s = max(0, min(int(outcome.delay_s), MAX_DELAY_S))
                self.publisher.publish([delivery.job], delay_s=delay_s)
            if outcome.action is Action.RELEASE:
                self.consumer.release(delivery.message)
            else:
                self.acks.add(delivery.message)
        except Exception as exc:  # noqa: BLE001 - the message comes back after its visibility timeout
            self.outages.record(f"settle ({outcome.action.value})", exc, delivery.log_fields())

    def release(self, message: ReceivedMessage, why: str) -> None:
        try:
            self.consumer.release(message)
        except Exception as exc:  # noqa: BLE001 - it comes back after its visibility timeout anyway
            self.outages.record("release", exc)
            return
        log.debug("message %s handed back: %s", message.message_id, why)

    def dead_letter(self, message: ReceivedMessage, kind: DeadLetter, reason: str) -> None:
        try:
            self.consumer.dead_letter(message, reason=reason)
        except Exception as exc:  # noqa: BLE001
            self.outages.record("dead-letter", exc)
            return
        self.metrics.dead_lettered.labels(kind.value).inc()
        log.warning("message %s moved to the dead-letter queue: %s", message.message_id, reason,
                    extra={"queue": message.queue})

    def _finished(self, delivery: Delivery, outcome: Outcome | None) -> None:
        self.metrics.in_flight.dec()
        duration_s = time.monotonic() - delivery.started_s
        self.metrics.handled(delivery.labels.values(), outcome, duration_s=duration_s)
        log.info("job handled: %s (%s)", Handled.of(outcome).value, outcome.reason if outcome else "error",
                 extra={**delivery.log_fields(), "duration_ms": int(duration_s * 1000)})
        if outcome is not None:
            self.outages.backoff.succeeded()
            self.settle(delivery, outcome)
