"""reelqueue's side of the drain benchmarks: real adapters, the real worker runtime, a no-op job.

    python -m bench.noop_worker seed --jobs 500 ...    # job rows in the database + one message each
    python -m bench.noop_worker run --concurrency 4 ...  # one worker process until SIGTERM

The worker is what ``python -m src.interfaces.workers.video.main`` runs (composition by
``src.bootstrap.build``, :class:`src.interfaces.workers.runtime.Worker`, the SQS or SQL consumer,
the job repository, the idempotency lock and progress store), with the video handler replaced by
:class:`NoopHandler`: lock, load, queued -> processing, processing -> succeeded, release, ack.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from dataclasses import replace

from src.application.handlers.base import JobHandler, Stopper
from src.application.messages import JobMessage
from src.application.outcomes import Outcome
from src.bootstrap import Adapters, build, retry_policy
from src.config import Settings
from src.domain.jobs import JobKind, VideoJob
from src.interfaces.workers.runtime import Worker
from src.interfaces.workers.signals import stop_on_signals

QUEUE = "video"
OWNER = "bench"


class NoopHandler(JobHandler[VideoJob]):
    """Does every bookkeeping step of a real job and no processing."""

    def run(self, job: VideoJob, should_stop: Stopper) -> Outcome:
        job = self.start(job)
        now = self.clock.now()
        self.finish(job, lambda j: j.succeed((), now))
        return Outcome.ack("succeeded")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        database_url=args.database_url, redis_url=args.redis_url, queue_backend=args.queue_backend,
        sqs_endpoint_url=args.sqs_endpoint, sqs_queue_prefix=args.sqs_prefix, aws_region="us-east-1",
        concurrency=args.concurrency, prefetch=args.prefetch, visibility_timeout_s=300,
        log_level="WARNING",
    )


def adapters_for(settings: Settings, redis_prefix: str) -> Adapters:
    """``build(settings)``, with Redis keys under a prefix of the benchmark's own."""
    adapters = build(settings)
    if settings.redis_url:
        import redis

        from src.infrastructure.cache.idempotency import RedisIdempotency
        from src.infrastructure.cache.progress import RedisProgress

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        adapters = replace(
            adapters,
            locks=RedisIdempotency(client, prefix=redis_prefix + "lock:"),
            progress=RedisProgress(client, ttl_s=settings.progress_ttl_s, prefix=redis_prefix + "progress:"),
        )
        adapters.closers.append(client.close)
    return adapters


def seed(args: argparse.Namespace) -> None:
    """Insert ``--jobs`` queued video jobs and publish one message each (SQS: to moto directly)."""
    from src.infrastructure.db.migrations import upgrade

    upgrade(args.database_url)
    settings = settings_from(args)
    if args.queue_backend == "sqs":
        settings = replace(settings, sqs_endpoint_url=args.seed_endpoint or args.sqs_endpoint)
    adapters = build(settings)
    try:
        if args.queue_backend == "sqs":
            _ensure_queue(settings)
        now = adapters.clock.now()
        for start in range(0, args.jobs, 500):
            jobs = [VideoJob(owner_id=OWNER, source=f"bench/{start + i}.mp4", created_at=now, updated_at=now)
                    for i in range(min(500, args.jobs - start))]
            adapters.video_jobs.add(jobs, [])
            adapters.publisher.publish([JobMessage.for_job(job) for job in jobs])
    finally:
        adapters.close()


def _ensure_queue(settings: Settings) -> None:
    from src.infrastructure.sqs.client import make_sqs_client
    from src.infrastructure.sqs.queues import QueueDirectory

    client = make_sqs_client(region=settings.aws_region, endpoint_url=settings.sqs_endpoint_url)
    directory = QueueDirectory(client, prefix=settings.sqs_queue_prefix,
                               max_receive_count=settings.max_receive_count,
                               visibility_timeout_s=settings.visibility_timeout_s)
    directory.ensure([QUEUE])


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = settings_from(args)
    adapters = adapters_for(settings, args.redis_prefix)
    handler = NoopHandler(jobs=adapters.video_jobs, locks=adapters.locks, progress=adapters.progress,
                          clock=adapters.clock, retry_policy=retry_policy(settings),
                          lock_ttl_ms=settings.lock_ttl_ms)
    worker = _worker_class()(adapters.consumer_factory(QUEUE), {JobKind.VIDEO: handler}, adapters.publisher,
                    concurrency=settings.concurrency, prefetch=settings.prefetch,
                    visibility_timeout_s=settings.visibility_timeout_s,
                    shutdown_deadline_s=10)
    try:
        with stop_on_signals(worker.stop):
            worker.run()
    finally:
        adapters.close()


def _worker_class() -> type[Worker]:
    """The runtime's Worker; ``BENCH_WORKER_CLASS=path/to/file.py:Name`` swaps in a variant (profiling)."""
    spec = os.environ.get("BENCH_WORKER_CLASS", "")
    if not spec:
        return Worker
    path, name = spec.rsplit(":", 1)
    loader = importlib.util.spec_from_file_location("bench_worker_variant", path)
    module = importlib.util.module_from_spec(loader)  # type: ignore[arg-type]
    loader.loader.exec_module(module)  # type: ignore[union-attr]
    return getattr(module, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("seed", "run"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--queue-backend", choices=("sqs", "sql"), required=True)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--redis-prefix", default="rq-bench:")
    parser.add_argument("--sqs-endpoint", default="")
    parser.add_argument("--seed-endpoint", default="", help="SQS endpoint for seeding (moto, not the proxy)")
    parser.add_argument("--sqs-prefix", default="rq-bench-")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=0, help="REELQUEUE_PREFETCH of the worker")
    parser.add_argument("--jobs", type=int, default=500)
    args = parser.parse_args()
    seed(args) if args.command == "seed" else run(args)


if __name__ == "__main__":
    main()
