"""What both worker entry points share: arguments, wiring, signals, exit status.

Nothing here imports an adapter at import time, so ``--help`` needs no service and no driver.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, get_args

from src.config import MAX_PREFETCH, LogLevel, Process, QueueName, Settings, SettingsError, variable
from src.domain.jobs import JobKind

log = logging.getLogger(__name__)

EXIT_ABANDONED = 1  # the shutdown deadline passed with jobs still running
EXIT_BAD_SETTINGS = 2  # a variable or an option is wrong: nothing started


def default_queue(kind: JobKind, worker_type: str) -> QueueName:
    if kind is JobKind.VIDEO:
        return "video"
    return "ai-gpu" if worker_type == "gpu" else "ai-remote"


def parse_options(kind: JobKind, argv: Sequence[str] | None) -> dict[str, Any]:
    """The command-line options given (each wins over its ``REELQUEUE_*`` variable)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m src.interfaces.workers.{kind.value}.main", argument_default=argparse.SUPPRESS,
        description=f"Consume {kind.value} jobs. Every option defaults to its REELQUEUE_* variable; "
                    "a wrong variable or option stops the worker before it starts (exit status 2).",
    )
    parser.add_argument("--queue", choices=[name for name in get_args(QueueName) if name],
                        help="queue to consume (REELQUEUE_QUEUE; default: by worker kind and type)")
    parser.add_argument("--concurrency", type=int, help="jobs run at once (REELQUEUE_CONCURRENCY; default 1)")
    parser.add_argument("--prefetch", type=int,
                        help="messages received ahead of free slots, 0-10 (REELQUEUE_PREFETCH; "
                             "default 0: only as many as free slots)")
    if kind is JobKind.AI:
        parser.add_argument("--worker-type", choices=("gpu", "remote"),
                            help="gpu: local Wan; remote: Runway and Luma (REELQUEUE_WORKER_TYPE; "
                                 "default remote)")
        parser.add_argument("--path-concurrency",
                            help="per production path limits, e.g. cinema=1,fashion=4 "
                                 "(REELQUEUE_PATH_CONCURRENCY)")
    parser.add_argument("--metrics-port", type=int,
                        help="Prometheus metrics and /healthz port; 0 disables (REELQUEUE_METRICS_PORT)")
    parser.add_argument("--health-file",
                        help="file touched every loop turn, for probes (REELQUEUE_HEALTH_FILE)")
    parser.add_argument("--log-level", type=str.upper, choices=get_args(LogLevel),
                        help="(REELQUEUE_LOG_LEVEL; default INFO)")
    options = vars(parser.parse_args(argv))
    if options.get("concurrency", 1) < 1:
        parser.error("--concurrency must be at least 1")
    if not 0 <= options.get("prefetch", 0) <= MAX_PREFETCH:
        parser.error(f"--prefetch must be between 0 and {MAX_PREFETCH}")
    return options


def parse_args(kind: JobKind, argv: Sequence[str] | None, settings: Settings) -> Settings:
    """Command-line options over ``settings``; returns the settings to run with."""
    return with_queue(kind, replace(settings, **parse_options(kind, argv)))


def with_queue(kind: JobKind, settings: Settings) -> Settings:
    return replace(settings, queue=settings.queue or default_queue(kind, settings.worker_type))


def load_settings(kind: JobKind, argv: Sequence[str] | None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Options and variables, checked together in one pass: raises :class:`SettingsError`."""
    options = parse_options(kind, argv)
    process = Process.VIDEO_WORKER if kind is JobKind.VIDEO else Process.AI_WORKER
    try:
        return with_queue(kind, Settings.from_env(environ, process=process, **options))
    except SettingsError as exc:
        raise SettingsError([_by_option(problem, options) for problem in exc.problems]) from None


def _by_option(problem: str, options: Mapping[str, Any]) -> str:
    """A problem with a value an option gave names the option, not its variable."""
    for name in options:
        if problem.startswith(f"{variable(name)}="):
            return "--" + name.replace("_", "-") + problem[len(variable(name)):]
    return problem


def main(kind: JobKind, argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(kind, argv)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    from src.infrastructure.observability.logs import configure_logging, secrets_of

    configure_logging(log_format=settings.log_format, log_level=settings.log_level,
                      secrets=secrets_of(settings))
    from src.interfaces.workers.wiring import run_worker

    abandoned = run_worker(kind, settings)
    if abandoned:
        logging.shutdown()
        os._exit(EXIT_ABANDONED)  # their threads are still inside a job: do not wait for them
    return 0
