"""Per-job bookkeeping through the adapters vs the same work done raw, on Postgres + Redis.

One job's bookkeeping, as a handler does it: acquire the lock, save ``processing``, record
progress three times, save ``succeeded``, release the lock. The raw baseline issues the same
statements straight through psycopg2 and redis-py (SET NX, the repository's UPDATE, the same
progress script three times, the UPDATE again, compare-and-delete) on one connection per thread.

    python -m bench.bookkeeping [--jobs 300] [--threads 1,4] [--rounds 7] [--no-fsync]

Needs PostgreSQL (``REELQUEUE_BENCH_PG_URL``, an admin URL; a scratch database is created and
dropped) and Redis (``REELQUEUE_BENCH_REDIS_URL``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from statistics import median

import psycopg2
import redis
import sqlalchemy as sa

from src.domain.jobs import Output, VideoJob
from src.domain.status import JobStatus
from src.infrastructure.cache.idempotency import RELEASE_LUA, RedisIdempotency
from src.infrastructure.cache.progress import RECORD_LUA, RedisProgress
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import upgrade
from src.infrastructure.db.repository import SqlAlchemyJobRepository

PG_ADMIN_URL = os.environ.get("REELQUEUE_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REELQUEUE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LOCK_TTL_MS = 60_000
PROGRESS_TTL_S = 600
PROGRESS_STEPS = (25.0, 50.0, 75.0)
OUTPUTS = (Output(key="out/video.mp4", size_bytes=1_000_000, duration_s=4.0, width=1280, height=720),)

# The statement the repository issues for a video job: every column, conditional on the status.
SAVE_SQL = (
    "UPDATE rq_jobs SET owner_id = %s, status = %s, attempts = %s, outputs = %s, error = %s,"
    " stage = %s, percent = %s, batch_id = %s, created_at = %s, updated_at = %s, started_at = %s,"
    " finished_at = %s, source = %s, preset = %s, poster_offset_s = %s"
    " WHERE id = %s AND kind = 'video' AND status = %s"
)


def now() -> datetime:
    return datetime.now(timezone.utc)


# --- the two ways of doing one job's bookkeeping -------------------------------------------------


class AdapterWay:
    name = "adapters"

    def __init__(self, engine: sa.Engine, client: redis.Redis, prefix: str) -> None:
        self.jobs = SqlAlchemyJobRepository(engine, kind=VideoJob)
        self.locks = RedisIdempotency(client, prefix=prefix + "lock:")
        self.progress = RedisProgress(client, ttl_s=PROGRESS_TTL_S, prefix=prefix + "progress:")

    @contextmanager
    def worker(self) -> Iterator[Callable[[VideoJob], None]]:
        yield self.run

    def run(self, job: VideoJob) -> None:
        lock = self.locks.acquire(f"job:{job.id}", ttl_ms=LOCK_TTL_MS)
        started = job.start(now())
        self.jobs.save(started, expected=JobStatus.QUEUED)
        for percent in PROGRESS_STEPS:
            self.progress.record(job.id, stage="transcoding", percent=percent)
        self.jobs.save(started.succeed(OUTPUTS, now()), expected=JobStatus.PROCESSING)
        self.locks.release(lock)


class RawWay:
    name = "raw psycopg2 + redis-py"

    def __init__(self, dsn: str, client: redis.Redis, prefix: str) -> None:
        self.dsn = dsn
        self.client = client
        self.prefix = prefix
        self.record = client.register_script(RECORD_LUA)
        self.release = client.register_script(RELEASE_LUA)
        self.outputs = json.dumps([output.to_dict() for output in OUTPUTS])

    @contextmanager
    def worker(self) -> Iterator[Callable[[VideoJob], None]]:
        connection = psycopg2.connect(self.dsn)
        try:
            yield lambda job: self.run(connection, job)
        finally:
            connection.close()

    def run(self, connection, job: VideoJob) -> None:  # type: ignore[no-untyped-def]
        key, token = f"{self.prefix}lock:job:{job.id}", secrets.token_hex(16)
        self.client.set(key, token, nx=True, px=LOCK_TTL_MS)
        started_at = now()
        self._save(connection, job, "processing", job.attempts + 1, "[]", None, 0.0, started_at, None,
                   expected="queued")
        progress_key = f"{self.prefix}progress:{job.id}"
        for percent in PROGRESS_STEPS:
            args = ["transcoding", repr(percent), "", now().isoformat(), PROGRESS_TTL_S * 1000]
            self.record(keys=[progress_key], args=args)
        self._save(connection, job, "succeeded", job.attempts + 1, self.outputs, None, 100.0, started_at,
                   now(), expected="processing")
        self.release(keys=[key], args=[token])

    @staticmethod
    def _save(connection, job: VideoJob, status: str, attempts: int, outputs: str,  # type: ignore[no-untyped-def]
              stage: str | None, percent: float, started_at: datetime, finished_at: datetime | None,
              *, expected: str) -> None:
        params = (job.owner_id, status, attempts, outputs, None, stage, percent, job.batch_id,
                  job.created_at, now(), started_at, finished_at, job.source, job.preset,
                  job.poster_offset_s, job.id, expected)
        with connection.cursor() as cursor:
            cursor.execute(SAVE_SQL, params)
            if cursor.rowcount != 1:
                raise RuntimeError("the raw UPDATE matched no row")
        connection.commit()


# --- running ------------------------------------------------------------------------------------


def queued_jobs(engine: sa.Engine, count: int) -> list[VideoJob]:
    at = now()
    jobs = [VideoJob(owner_id="bench", source="uploads/a.mov", created_at=at, updated_at=at)
            for _ in range(count)]
    SqlAlchemyJobRepository(engine, kind=VideoJob).add(jobs, [])
    return jobs


def measure(way, jobs: Sequence[VideoJob], threads: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Jobs per second for ``jobs`` split over ``threads`` workers, and this process's CPU µs per job."""
    slices = [jobs[index::threads] for index in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(mine: Sequence[VideoJob]) -> None:
        with way.worker() as run:
            barrier.wait()
            for job in mine:
                run(job)

    workers = [threading.Thread(target=work, args=(mine,)) for mine in slices]
    for worker in workers:
        worker.start()
    barrier.wait()
    started_s, cpu_started_s = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    cpu_us = (time.process_time() - cpu_started_s) / len(jobs) * 1e6
    return len(jobs) / (time.perf_counter() - started_s), cpu_us


def compare(ways, engine: sa.Engine, count: int, threads: int, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Medians over rounds: raw and adapter jobs/s, the per-round ratio, raw and adapter CPU µs/job."""
    rounds_seen: list[tuple[float, float, float, float]] = []
    for round_number in range(rounds):
        order = ways if round_number % 2 == 0 else ways[::-1]  # alternate who goes first
        seen = {way.name: measure(way, queued_jobs(engine, count), threads) for way in order}
        (raw, raw_cpu), (adapters, adapters_cpu) = seen[ways[0].name], seen[ways[1].name]
        rounds_seen.append((raw, adapters, adapters / raw, raw_cpu, adapters_cpu))
    return [median(column) for column in zip(*rounds_seen, strict=True)]


@contextmanager
def scratch_database(*, durable: bool = True) -> Iterator[str]:
    """A database of its own; ``durable=False`` turns off waiting for the disk at each commit there,
    so a shared machine's disk jitter does not drown what is measured."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"rq_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        if not durable:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs per measurement (max 5000)")
    parser.add_argument("--threads", default="1,4")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the median is reported")
    parser.add_argument("--no-fsync", action="store_true",
                        help="synchronous_commit=off in the scratch database (both sides)")
    args = parser.parse_args(argv)
    count, thread_counts = min(args.jobs, 5000), [int(t) for t in args.threads.split(",")]
    prefix = f"reelqueue-bench:{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL)
    with scratch_database(durable=not args.no_fsync) as url:
        engine = make_engine(url, pool_size=max(thread_counts))
        upgrade(engine)
        dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        ways = [RawWay(dsn, client, prefix), AdapterWay(engine, client, prefix)]
        commits = "synchronous_commit=off" if args.no_fsync else "durable commits"
        print(f"{count} jobs per run, {commits}; median of {args.rounds} rounds, the two ways back to back")
        print("| threads | raw jobs/s | adapters jobs/s | ratio | raw CPU µs/job | adapters CPU µs/job |")
        print("|--:|--:|--:|--:|--:|--:|")
        for threads in thread_counts:
            raw, adapters, ratio, raw_cpu, adapters_cpu = compare(ways, engine, count, threads, args.rounds)
            print(f"| {threads} | {raw:,.0f} | {adapters:,.0f} | {ratio:.2f}x | {raw_cpu:,.0f} |"
                  f" {adapters_cpu:,.0f} |", flush=True)
        engine.dispose()
    _forget(client, prefix)


def _forget(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


if __name__ == "__main__":
    main()
