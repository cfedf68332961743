"""The heartbeat: a daemon thread that calls ``beat`` every ``interval_s`` until stopped, and
:class:`KeepAlive`, the beat of a worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from src.application.ports import JobConsumer, ReceivedMessage
from src.domain.jobs import JobKind
from src.interfaces.workers.delivery import Delivery, Handler
from src.interfaces.workers.outages import Outages
from src.interfaces.workers.pool import JobPool
from src.interfaces.workers.receiving import Prefetched

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, beat: Callable[[], None], *, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.beat = beat
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 5)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a failed beat must not end the heartbeat
                log.exception("heartbeat failed")


class KeepAlive:
    """What each beat does: keep prefetched and running jobs' messages invisible, and running
    jobs' idempotency locks alive. Each call goes out with no lock held; the job (or the held
    message) is only marked as being extended, so its release waits for that one call."""

    def __init__(self, consumer: JobConsumer, pool: JobPool, prefetched: Prefetched,
                 handlers: Mapping[JobKind, Handler], *, visibility_timeout_s: int,
                 outages: Outages) -> None:
        self.consumer = consumer
        self.pool = pool
        self.prefetched = prefetched
        self.handlers = handlers
        self.visibility_timeout_s = visibility_timeout_s
        self.outages = outages

    def beat(self) -> None:
        for message in self.prefetched.snapshot():
            with self.prefetched.extending(message) as held:
                if held:
                    self._extend(message)
        for delivery in self.pool.snapshot():
            self._keep(delivery)

    def _keep(self, delivery: Delivery) -> None:
        with self.pool.extending(delivery) as running:
            if not running:
                return  # finished while earlier ones were extended: its message is settled
            self._extend(delivery.message, delivery.log_fields())
        try:
            renewed = self.handlers[delivery.job.kind].renew_lock(delivery.job.job_id)
        except Exception as exc:  # noqa: BLE001 - try again on the next beat
            self.outages.record("extend", exc, delivery.log_fields(), back_off=False)
            return
        # a job that finished meanwhile released its lock: nothing was lost then
        if not renewed and delivery in self.pool.snapshot():
            log.warning("could not renew the job's lock", extra=delivery.log_fields())

    def _extend(self, message: ReceivedMessage, fields: Mapping[str, str] | None = None) -> None:
        try:
            self.consumer.extend(message, visibility_timeout_s=self.visibility_timeout_s)
        except Exception as exc:  # noqa: BLE001 - try again on the next beat
            self.outages.record("extend", exc, fields, back_off=False)
