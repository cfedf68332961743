"""What both worker entry points share: arguments, wiring, signals, exit status.

Nothing here imports an adapter at import time, so ``--help`` needs no service and no driver.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import replace

from src.application.queue_limits import MAX_RECEIVE
from src.config import Settings
from src.domain.jobs import JobKind

log = logging.getLogger(__name__)

EXIT_ABANDONED = 1  # the shutdown deadline passed with jobs still running


def default_queue(kind: JobKind, worker_type: str) -> str:
    if kind is JobKind.VIDEO:
        return "video"
    return "ai-gpu" if worker_type == "gpu" else "ai-remote"


def parse_args(kind: JobKind, argv: Sequence[str] | None, settings: Settings) -> Settings:
    """Command-line options over ``REELQUEUE_*`` variables; returns the settings to run with."""
    parser = argparse.ArgumentParser(
        prog=f"python -m src.interfaces.workers.{kind.value}.main",
        description=f"Consume {kind.value} jobs. Every option defaults to its REELQUEUE_* variable.",
    )
    parser.add_argument("--queue", default=settings.queue,
                        help="queue to consume (REELQUEUE_QUEUE; empty: by worker kind and type)")
    parser.add_argument("--concurrency", type=int, default=settings.concurrency,
                        help="jobs run at once (REELQUEUE_CONCURRENCY; default %(default)s)")
    parser.add_argument("--prefetch", type=int, default=settings.prefetch,
                        help="messages received ahead of free slots, 0-10 (REELQUEUE_PREFETCH; "
                             "default %(default)s: only as many as free slots)")
    if kind is JobKind.AI:
        parser.add_argument("--worker-type", choices=("gpu", "remote"), default=settings.worker_type,
                            help="gpu: local Wan; remote: Runway and Luma (REELQUEUE_WORKER_TYPE)")
        parser.add_argument("--path-concurrency", default=settings.path_concurrency,
                            help="per production path limits, e.g. cinema=1,fashion=4")
    parser.add_argument("--metrics-port", type=int, default=settings.metrics_port,
                        help="Prometheus metrics and /healthz port; 0 disables (REELQUEUE_METRICS_PORT)")
    parser.add_argument("--health-file", default=settings.health_file,
                        help="file touched every loop turn, for probes (REELQUEUE_HEALTH_FILE)")
    parser.add_argument("--log-level", default=settings.log_level, help="(REELQUEUE_LOG_LEVEL)")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not 0 <= args.prefetch <= MAX_RECEIVE:
        parser.error(f"--prefetch must be between 0 and {MAX_RECEIVE}")
    worker_type = getattr(args, "worker_type", settings.worker_type)
    return replace(
        settings, queue=args.queue or default_queue(kind, worker_type), concurrency=args.concurrency,
        prefetch=args.prefetch, worker_type=worker_type, metrics_port=args.metrics_port,
        health_file=args.health_file, log_level=args.log_level,
        path_concurrency=getattr(args, "path_concurrency", settings.path_concurrency),
    )


def main(kind: JobKind, argv: Sequence[str] | None = None) -> int:
    settings = parse_args(kind, argv, Settings.from_env())
    from src.infrastructure.observability.logs import configure_logging, secrets_of

    configure_logging(log_format=settings.log_format, log_level=settings.log_level,
                      secrets=secrets_of(settings))
    from src.interfaces.workers.wiring import run_worker

    abandoned = run_worker(kind, settings)
    if abandoned:
        logging.shutdown()
        os._exit(EXIT_ABANDONED)  # their threads are still inside a job: do not wait for them
    return 0
