"""Drain pre-queued no-op jobs from Postgres: reelqueue's SQL lease queue vs Procrastinate.

    python -m bench.drain_sql [--jobs 5000] [--concurrency 1 4]
                              [--sides reelqueue reelqueue-prefetch procrastinate]
                              [--state sql|redis]

Each side gets a fresh Postgres database on the machine's server holding ``--jobs`` queued
no-op jobs, then one worker process drains it:

- **reelqueue** (``bench/noop_worker.py``): the real runtime and ``SqlQueueConsumer``; each job is a
  row in ``rq_jobs`` with its message in ``rq_queue_messages``, locked, moved queued -> processing
  -> succeeded, its progress flushed, its message acked; with the default settings and, as
  ``reelqueue-prefetch``, with ``--prefetch 10`` (claims of ten messages). ``--state sql``
  (default) keeps the locks and progress in the same Postgres, so both sides need nothing but
  Postgres; ``--state redis`` puts them in Redis, as the production profile does.
- **Procrastinate 3.10** (``bench/peer_procrastinate.py``, in ``bench/.venv-peers``): an async no-op
  task, ``run_worker(concurrency=N, wait=False)``.

The clock starts when the first job leaves the queued state and stops when none is left queued
or running (both polled every 50 ms in the database; worker start-up is left out).
Not a test: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import sqlalchemy as sa

from bench import peers
from bench.harness import (
    REDIS_URL,
    Result,
    delete_redis_keys,
    log,
    postgres_database,
    redis_prefix,
    spawn,
    sqlalchemy_url,
    stop,
    table,
)

BENCH = "drain_sql"
DRAIN_CAP_S = 40.0  # a side still draining then is stopped; its rate is over what it finished
START_TIMEOUT_S = 60.0
POLL_S = 0.05

REELQUEUE_LEFT = ("SELECT (SELECT count(*) FROM rq_jobs WHERE status = 'queued'),"
                  " (SELECT count(*) FROM rq_queue_messages)")
PROCRASTINATE_LEFT = ("SELECT count(*) FILTER (WHERE status = 'todo'),"
                      " count(*) FILTER (WHERE status IN ('todo', 'doing')) FROM procrastinate_jobs")


def reelqueue_side(jobs: int, concurrency: int, state: str, peers_python: str, prefetch: int = 0) -> Result:
    keys = redis_prefix("drain-sql")
    with postgres_database() as db:
        url = sqlalchemy_url(db)
        common = ["--database-url", url, "--queue-backend", "sql", "--redis-prefix", keys]
        if state == "redis":
            common += ["--redis-url", REDIS_URL]
        seed = spawn([sys.executable, "-m", "bench.noop_worker", "seed", "--jobs", str(jobs), *common],
                     quiet=False)
        if seed.wait(120) != 0:
            raise RuntimeError("seeding reelqueue's jobs failed")
        command = [sys.executable, "-m", "bench.noop_worker", "run", "--concurrency", str(concurrency),
                   "--prefetch", str(prefetch), *common]
        side = f"reelqueue SQL lease queue ({'Postgres + Redis' if state == 'redis' else 'Postgres only'})"
        if prefetch:
            side += f", prefetch {prefetch}"
        result = _drain(url, REELQUEUE_LEFT, jobs, side, concurrency, command)
        result.note = "; ".join(filter(None, [_check_reelqueue(url, result.jobs), result.note]))
    delete_redis_keys(keys)
    return result


def procrastinate_side(jobs: int, concurrency: int, state: str, peers_python: str) -> Result:
    with postgres_database() as db:
        setup = spawn([peers_python, "-m", "bench.peer_procrastinate", "setup", db, str(jobs)], quiet=False)
        if setup.wait(120) != 0:
            raise RuntimeError("deferring Procrastinate's jobs failed")
        command = [peers_python, "-m", "bench.peer_procrastinate", "work", db, str(concurrency)]
        result = _drain(sqlalchemy_url(db), PROCRASTINATE_LEFT, jobs, "Procrastinate 3.10", concurrency,
                        command)
        result.note = "; ".join(filter(None, [_check_procrastinate(sqlalchemy_url(db), result.jobs),
                                              result.note]))
    return result


def reelqueue_prefetch_side(jobs: int, concurrency: int, state: str, peers_python: str) -> Result:
    return reelqueue_side(jobs, concurrency, state, peers_python, prefetch=10)


SIDES: dict[str, Callable[[int, int, str, str], Result]] = {
    "reelqueue": reelqueue_side, "reelqueue-prefetch": reelqueue_prefetch_side,
    "procrastinate": procrastinate_side,
}


def _drain(url: str, left_query: str, jobs: int, side: str, concurrency: int, command: list[str]) -> Result:
    """Start the worker; time from the first job taken to the last one done (or the cap); stop it."""
    engine = sa.create_engine(url, pool_size=1)
    query = sa.text(left_query)
    process = spawn(command, quiet=False)
    started = ended = 0.0
    unfinished = jobs
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with engine.connect() as conn:
            while True:
                waiting, unfinished = conn.execute(query).one()
                conn.commit()
                now = time.perf_counter()
                if not started and waiting < jobs:
                    started = now
                    deadline = time.monotonic() + DRAIN_CAP_S
                if (started and unfinished == 0) or time.monotonic() >= deadline:
                    ended = now
                    break
                if process.poll() not in (None, 0):
                    raise RuntimeError(f"the worker exited with status {process.returncode}")
                time.sleep(POLL_S)
        if not started:
            raise TimeoutError(f"{side} took no job within {START_TIMEOUT_S}s")
    finally:
        stop(process)
        engine.dispose()
    done = jobs - unfinished
    note = f"capped at {DRAIN_CAP_S:.0f} s: {done} of {jobs} done" if unfinished else ""
    log(f"{side} c={concurrency}: {done / (ended - started):.0f} jobs/s {note}")
    return Result(BENCH, side, str(concurrency), done, ended - started, note=note)


def _count(url: str, query: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {status: n for status, n in conn.execute(sa.text(query)).all()}
    finally:
        engine.dispose()


def _check_reelqueue(url: str, jobs: int) -> str:
    counts = _count(url, "SELECT status, count(*) FROM rq_jobs GROUP BY status")
    return f"{jobs} jobs succeeded" if counts.get("succeeded") == jobs else f"jobs: {counts}"


def _check_procrastinate(url: str, jobs: int) -> str:
    counts = _count(url, "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
    return f"{jobs} jobs succeeded" if counts.get("succeeded") == jobs else f"jobs: {counts}"


def run_all(*, jobs: int = 5000, concurrencies: tuple[int, ...] = (1, 4),
            sides: tuple[str, ...] = tuple(SIDES), state: str = "sql") -> list[Result]:
    peers_python = peers.python() if "procrastinate" in sides else ""
    return [SIDES[side](jobs, concurrency, state, peers_python)
            for concurrency in concurrencies for side in sides]


def render(results: list[Result]) -> str:
    peer = {r.concurrency: r.jobs_per_s for r in results if r.side.startswith("Procrastinate")}
    rows = []
    for r in results:
        ratio = f"{r.jobs_per_s / peer[r.concurrency]:.2f}x" if peer.get(r.concurrency) else "-"
        rows.append([r.side, r.concurrency, r.jobs, f"{r.seconds:.2f}", f"{r.jobs_per_s:.0f}", ratio, r.note])
    return table(["side", "concurrency", "jobs", "drain s", "jobs/s", "vs Procrastinate", "check"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=list(SIDES))
    parser.add_argument("--state", choices=("sql", "redis"), default="sql")
    args = parser.parse_args()
    results = run_all(jobs=args.jobs, concurrencies=tuple(args.concurrency), sides=tuple(args.sides),
                      state=args.state)
    print(render(results))


if __name__ == "__main__":
    main()
