"""Builds a :class:`Worker` from settings and runs it under the signal handlers."""

from __future__ import annotations

import logging

from src import bootstrap
from src.application.handlers import ProcessAIJobHandler, ProcessVideoJobHandler
from src.application.messages import JobMessage
from src.application.ports import AIJobRepository
from src.config import Settings
from src.domain.jobs import JobKind
from src.infrastructure.observability.health import Health, MetricsServer, metrics_app
from src.infrastructure.observability.metrics import WorkerMetrics
from src.interfaces.workers.limits import parse_path_limits
from src.interfaces.workers.runtime import Describe, JobLabels, Worker, kind_only
from src.interfaces.workers.signals import stop_on_signals

log = logging.getLogger(__name__)

PROBE_SILENCE_S = 120.0  # /healthz fails when the loop has not turned for this long


def ai_labels(ai_jobs: AIJobRepository) -> Describe:
    """AI jobs are loaded before they start: their path decides whether a slot is free."""

    def describe(message: JobMessage) -> JobLabels:
        job = ai_jobs.get(message.job_id)
        return JobLabels(kind=job.kind.value, provider=job.provider, production_path=job.production_path)

    return describe


def heartbeat_interval_s(settings: Settings) -> float:
    """A third of the shorter of the visibility timeout and the lock TTL."""
    return min(settings.visibility_timeout_s, settings.lock_ttl_ms / 1000) / 3


def build_worker(kind: JobKind, adapters: bootstrap.Adapters, *, metrics: WorkerMetrics,
                 health: Health) -> Worker:
    settings = adapters.settings
    handlers: dict[JobKind, ProcessVideoJobHandler | ProcessAIJobHandler]  # each a runtime Handler
    if kind is JobKind.VIDEO:
        handlers = {JobKind.VIDEO: bootstrap.video_handler(adapters)}
        describe: Describe = kind_only
    else:
        handlers = {JobKind.AI: bootstrap.ai_handler(adapters)}
        describe = ai_labels(adapters.ai_jobs)
    return Worker(
        adapters.consumer_factory(settings.queue), handlers, adapters.publisher,
        concurrency=settings.concurrency, prefetch=settings.prefetch, describe=describe,
        path_limits=parse_path_limits(settings.path_concurrency),
        visibility_timeout_s=settings.visibility_timeout_s,
        heartbeat_interval_s=heartbeat_interval_s(settings),
        shutdown_deadline_s=settings.shutdown_deadline_s, metrics=metrics, health=health,
    )


def run_worker(kind: JobKind, settings: Settings) -> list[str]:
    """Run until SIGTERM/SIGINT; returns the jobs abandoned at the shutdown deadline."""
    adapters = bootstrap.build(settings)
    metrics = WorkerMetrics()
    health = Health(path=settings.health_file, max_silence_s=PROBE_SILENCE_S)
    server = None
    try:
        worker = build_worker(kind, adapters, metrics=metrics, health=health)
        if settings.metrics_port:
            server = MetricsServer(metrics_app(metrics.registry, health), port=settings.metrics_port).start()
            log.info("metrics and /healthz on port %d", server.port)
        with stop_on_signals(worker.stop):
            return worker.run()
    finally:
        if server is not None:
            server.close()
        adapters.close()
