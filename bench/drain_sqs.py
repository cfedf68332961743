"""Drain pre-queued no-op jobs from SQS (moto's server): reelqueue vs Celery 5 vs a raw boto3 loop.

    python -m bench.drain_sqs [--jobs 500] [--concurrency 1 4]
                              [--sides raw reelqueue reelqueue-prefetch celery]

All three sides talk to the same moto server through the same counting proxy
(``tests/fakes/sqs_proxy.py``), so SQS requests are counted alike on every side. Each side gets
a fresh queue holding ``--jobs`` messages, sent straight to moto (not counted), then one worker
process drains it:

- **reelqueue**: ``bench/noop_worker.py`` -- the real runtime and SqsConsumer; each job is a real
  row in a fresh Postgres database, locked in Redis, moved queued -> processing -> succeeded,
  its progress flushed from Redis; worker concurrency 1 and 4; with the default settings
  (receives only for free slots) and, as ``reelqueue-prefetch``, with ``--prefetch 10`` (each
  receive asks for ten messages, held until a slot frees);
- **Celery 5.7** (``bench/peer_celery.py``, in ``bench/.venv-peers``): its SQS broker, a no-op task,
  prefork pool with ``-c`` 1 and 4, defaults otherwise;
- **raw boto3 loop**: ReceiveMessage (10, long poll) then DeleteMessageBatch, one thread -- moto's
  own cost per call is the ceiling.

Time runs from the first ReceiveMessage reaching the proxy to the last delete reaching it (worker
start-up is left out); requests are every SQS request the worker made until the queue was empty.
Not a test: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from bench import peers
from bench.harness import (
    REDIS_URL,
    Result,
    TimedSqsProxy,
    delete_redis_keys,
    log,
    moto_server,
    postgres_database,
    redis_prefix,
    spawn,
    sqlalchemy_url,
    stop,
    table,
)

BENCH = "drain_sqs"
DRAIN_CAP_S = 30.0  # a side still draining then is stopped; its rate is over what it drained
DELETES = ("DeleteMessageBatch", "DeleteMessage")


@dataclass
class Run:
    """What one benchmark run shares: moto, the proxy, the peers' python."""

    moto_url: str
    proxy: TimedSqsProxy
    jobs: int
    peers_python: str = ""

    def client(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.moto_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


# --- sides -----------------------------------------------------------------------------------------


def raw_side(run: Run, concurrency: int) -> Result:
    client = run.client()
    name = f"raw-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=name)["QueueUrl"]
    for start in range(0, run.jobs, 10):
        entries = [{"Id": str(i), "MessageBody": f'{{"n":{start + i}}}'}
                   for i in range(min(10, run.jobs - start))]
        client.send_message_batch(QueueUrl=url, Entries=entries)
    command = [sys.executable, "-m", "bench.drain_sqs", "raw-worker", "--endpoint", run.proxy.url,
               "--queue-url", url]
    return _drain(run, "raw boto3 loop", "1 thread", url, command, env={})


def reelqueue_side(run: Run, concurrency: int, prefetch: int = 0) -> Result:
    prefix = f"rq-{uuid.uuid4().hex[:8]}-"
    keys = redis_prefix("drain-sqs")
    with postgres_database() as db:
        url = sqlalchemy_url(db)
        common = ["--database-url", url, "--queue-backend", "sqs", "--sqs-prefix", prefix,
                  "--redis-url", REDIS_URL, "--redis-prefix", keys]
        seed = spawn([sys.executable, "-m", "bench.noop_worker", "seed", "--jobs", str(run.jobs),
                      "--sqs-endpoint", run.moto_url, *common], quiet=False)
        if seed.wait(120) != 0:
            raise RuntimeError("seeding reelqueue's jobs failed")
        queue_url = run.client().get_queue_url(QueueName=prefix + "video")["QueueUrl"]
        command = [sys.executable, "-m", "bench.noop_worker", "run", "--concurrency", str(concurrency),
                   "--prefetch", str(prefetch), "--sqs-endpoint", run.proxy.url, *common]
        side = f"reelqueue, prefetch {prefetch}" if prefetch else "reelqueue"
        result = _drain(run, side, str(concurrency), queue_url, command, env={})
        result.note = "; ".join(filter(None, [_check_jobs(url, result.jobs), result.note]))
    delete_redis_keys(keys)
    return result


def celery_side(run: Run, concurrency: int) -> Result:
    name = f"celery-{uuid.uuid4().hex[:8]}"
    url = run.client().create_queue(QueueName=name)["QueueUrl"]
    enqueue = spawn([run.peers_python, "-m", "bench.peer_celery", "enqueue", str(run.jobs)],
                    env={"BENCH_SQS_ENDPOINT": run.moto_url, "BENCH_CELERY_QUEUE": name}, quiet=False)
    if enqueue.wait(120) != 0:
        raise RuntimeError("enqueueing Celery's tasks failed")
    command = [run.peers_python, "-m", "celery", "-A", "bench.peer_celery", "worker", "-P", "prefork",
               "-c", str(concurrency), "-Q", name, "-l", "warning", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]
    env = {"BENCH_SQS_ENDPOINT": run.proxy.url, "BENCH_CELERY_QUEUE": name}
    return _drain(run, "Celery 5.7 (SQS broker)", str(concurrency), url, command, env=env)


def reelqueue_prefetch_side(run: Run, concurrency: int) -> Result:
    return reelqueue_side(run, concurrency, prefetch=10)


SIDES: dict[str, Callable[[Run, int], Result]] = {
    "raw": raw_side, "reelqueue": reelqueue_side, "reelqueue-prefetch": reelqueue_prefetch_side,
    "celery": celery_side,
}


def _drain(run: Run, side: str, concurrency: str, queue_url: str, command: list[str],
           env: dict[str, str]) -> Result:
    """Start the worker, wait for the queue to empty (or the cap), stop it; time and count at the proxy."""
    client = run.client()
    if _depth(client, queue_url, wait_for=run.jobs, timeout_s=30) != run.jobs:
        raise RuntimeError(f"{side}: the queue does not hold {run.jobs} messages")
    run.proxy.reset()
    process = spawn(command, env=env, quiet=False)
    try:
        left = _depth(client, queue_url, wait_for=0, timeout_s=DRAIN_CAP_S, process=process)
        with run.proxy._lock:
            counts = dict(run.proxy.requests)
            first = run.proxy.first.get("ReceiveMessage", 0.0)
            last = max((run.proxy.last.get(a, 0.0) for a in DELETES), default=0.0)
    finally:
        stop(process)
    client.delete_queue(QueueUrl=queue_url)
    drained = run.jobs - left
    detail = ", ".join(f"{action} {n}" for action, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    note = f"capped at {DRAIN_CAP_S:.0f} s: {drained} of {run.jobs} drained" if left else ""
    log(f"{side} c={concurrency}: {drained / (last - first):.0f} jobs/s; requests: {detail} {note}")
    return Result(BENCH, side, concurrency, drained, last - first, sqs_requests=sum(counts.values()),
                  detail=detail, note=note)


def _depth(client: Any, queue_url: str, *, wait_for: int, timeout_s: float, process: Any = None) -> int:
    """Poll moto (not through the proxy) until ``wait_for`` messages are left or time is up."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline = time.monotonic() + timeout_s
    while True:
        attributes = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        depth = sum(int(attributes[n]) for n in names)
        if depth == wait_for or time.monotonic() >= deadline:
            return depth
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the worker exited early with status {process.returncode}")
        time.sleep(0.05)


def _check_jobs(database_url: str, expected: int) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, count(*) FROM rq_jobs GROUP BY status")).all()
    finally:
        engine.dispose()
    counts = {status: n for status, n in rows}
    if counts.get("succeeded") != expected:
        return f"JOB ROWS: {counts}"
    return f"{expected} job rows succeeded"


# --- the raw loop ----------------------------------------------------------------------------------


def raw_worker(endpoint: str, queue_url: str) -> None:
    """ReceiveMessage 10 (long poll), DeleteMessageBatch, forever (until SIGTERM)."""
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    while True:
        messages = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=10).get("Messages", [])
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            client.delete_message_batch(QueueUrl=queue_url, Entries=entries)


# --- running and reporting -------------------------------------------------------------------------


def run_all(*, jobs: int = 500, concurrencies: tuple[int, ...] = (1, 4),
            sides: tuple[str, ...] = ("raw", "reelqueue", "reelqueue-prefetch", "celery")) -> list[Result]:
    peers_python = peers.python() if "celery" in sides else ""
    results: list[Result] = []
    with moto_server() as moto_url:
        proxy = TimedSqsProxy(moto_url)
        run = Run(moto_url=moto_url, proxy=proxy, jobs=jobs, peers_python=peers_python)
        try:
            for concurrency in concurrencies:
                for side in sides:
                    results.append(SIDES[side](run, concurrency))
        finally:
            proxy.stop()
    return results


def render(results: list[Result]) -> str:
    raws = [r for r in results if r.side.startswith("raw")]
    rows = []
    for r in results:
        baseline = _nearest_raw(r, results, raws)
        ratio = f"{r.jobs_per_s / baseline:.2f}x" if baseline else "-"
        rows.append([r.side, r.concurrency, r.jobs, f"{r.seconds:.2f}", f"{r.jobs_per_s:.0f}", ratio,
                     f"{r.requests_per_job:.3f}", r.detail, r.note])
    headers = ["side", "concurrency", "jobs", "drain s", "jobs/s", "vs raw loop", "SQS requests/job",
               "requests by action", "note"]
    return table(headers, rows)


def _nearest_raw(result: Result, results: list[Result], raws: list[Result]) -> float | None:
    """The raw loop measured in the same round (just before), the fairest ceiling on a busy machine."""
    index = results.index(result)
    before = [r for r in raws if results.index(r) <= index]
    chosen = before[-1] if before else (raws[0] if raws else None)
    return chosen.jobs_per_s if chosen else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="bench", choices=("bench", "raw-worker"))
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=list(SIDES))
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--queue-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.command == "raw-worker":
        raw_worker(args.endpoint, args.queue_url)
        return
    results = run_all(jobs=args.jobs, concurrencies=tuple(args.concurrency), sides=tuple(args.sides))
    print(render(results))


if __name__ == "__main__":
    main()
