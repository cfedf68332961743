"""API enqueue throughput under gunicorn: reelqueue's API vs a minimal DRF view that only inserts the row.

    python -m bench.api_enqueue [--duration-s 10] [--connections 8] [--workers 4]
                                [--sides baseline reelqueue reelqueue-sql]

Both sides run under the same gunicorn (sync workers, ``--workers``), on a fresh Postgres
database each, with DRF token authentication, and receive the same request: POST
``/api/v1/ai-jobs`` with ``{"model": "gen4.5", "mode": "t2v", "prompt": ...}``.

- **reelqueue** (``apps.reelqueue_api.wsgi:application``, production profile): validate, insert
  the job and its message in one transaction, answer with the job. Run twice: with SQS (this
  benchmark's own moto server, a Python process on the same CPUs) the message is an outbox row
  that the worker process's relay thread sends after the answer (SendMessageBatch) and marks
  sent; with the SQL lease queue it is the queue row itself, and nothing follows the commit.
  The per-user POST throttle is raised out of the way (its Redis check still runs).
- **baseline** (``bench/baseline_api/``): validate, insert one row, answer ``{id, status}``.

The load is closed-loop and bounded: ``--connections`` keep-alive clients on 127.0.0.1 for
``--duration-s`` after a short warm-up, with ``wrk`` when it is installed (``apt-get install wrk``),
else Python threads with ``requests.Session``. Reported: requests/s (2xx only), p50/p99 latency.
Not a test: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.harness import (
    AWS_ENV,
    REDIS_URL,
    ROOT,
    Result,
    free_port,
    log,
    moto_server,
    postgres_database,
    spawn,
    sqlalchemy_url,
    stop,
    table,
    wait_until,
)

BENCH = "api_enqueue"
PATH = "/api/v1/ai-jobs"
BODY = {"model": "gen4.5", "mode": "t2v", "prompt": "a red dress turning in the wind", "duration_s": 5,
        "production_path": "fashion"}
WARMUP_S = 2.0
API_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/13"  # the API's cache keys have a fixed prefix


@dataclass
class Load:
    requests_ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)


# --- the two servers -------------------------------------------------------------------------------


def reelqueue_server(db_url: str, moto_url: str, port: int, workers: int, tmp: Path,
                     queue_backend: str = "sqs") -> tuple[object, str]:
    from src.infrastructure.db.migrations import upgrade
    from src.infrastructure.sqs.client import make_sqs_client
    from src.infrastructure.sqs.queues import QueueDirectory

    prefix = f"api-{port}-"
    url = sqlalchemy_url(db_url)
    upgrade(url)
    directory = QueueDirectory(make_sqs_client(region="us-east-1", endpoint_url=moto_url), prefix=prefix,
                               max_receive_count=5, visibility_timeout_s=300)
    directory.ensure(["video", "ai-gpu", "ai-remote"])
    env = {
        "REELQUEUE_SECRET_KEY": "bench-only", "REELQUEUE_DATABASE_URL": url,
        "REELQUEUE_REDIS_URL": API_REDIS_URL, "REELQUEUE_QUEUE_BACKEND": queue_backend,
        "REELQUEUE_SQS_ENDPOINT_URL": moto_url, "REELQUEUE_SQS_QUEUE_PREFIX": prefix,
        "REELQUEUE_AWS_REGION": "us-east-1",
        "REELQUEUE_STORAGE_ROOT": str(tmp / "storage"), "REELQUEUE_THROTTLE_USER_POSTS": "1000000/minute",
        "REELQUEUE_LOG_LEVEL": "WARNING", "REELQUEUE_LOG_FORMAT": "text",
    }
    _check(spawn([sys.executable, "-m", "apps.manage", "migrate", "--verbosity", "0"], env=env, quiet=False))
    token = _output([sys.executable, "-m", "apps.manage", "create_api_token", "bench"], env)
    server = _gunicorn("apps.reelqueue_api.wsgi:application", port, workers, env)
    return server, token


def reelqueue_sql_server(db_url: str, moto_url: str, port: int, workers: int, tmp: Path
                         ) -> tuple[object, str]:
    return reelqueue_server(db_url, moto_url, port, workers, tmp, queue_backend="sql")


def baseline_server(db_url: str, moto_url: str, port: int, workers: int, tmp: Path) -> tuple[object, str]:
    env = {"BENCH_BASELINE_DATABASE_URL": db_url}
    token = _output([sys.executable, "-m", "bench.baseline_api", "setup"], env)
    return _gunicorn("bench.baseline_api.wsgi:application", port, workers, env), token


def _gunicorn(app: str, port: int, workers: int, env: dict[str, str]) -> object:
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning", app]
    return spawn(command, env=env, quiet=False)


def _output(command: list[str], env: dict[str, str]) -> str:
    """The last line a setup command prints (a token)."""
    full_env = {**os.environ, **AWS_ENV, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run(command, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def _check(process: subprocess.Popen[bytes]) -> None:
    if process.wait(120) != 0:
        raise RuntimeError(f"{process.args} failed")


# --- load --------------------------------------------------------------------------------------------


def drive(base_url: str, token: str, *, duration_s: float, connections: int) -> Load:
    if shutil.which("wrk"):
        _wrk(base_url, token, duration_s=WARMUP_S, connections=connections)
        return _wrk(base_url, token, duration_s=duration_s, connections=connections)
    _threads(base_url, token, duration_s=WARMUP_S, connections=connections)
    return _threads(base_url, token, duration_s=duration_s, connections=connections)


def _wrk(base_url: str, token: str, *, duration_s: float, connections: int) -> Load:
    script = (f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(BODY))}\n'
              f'wrk.headers["Content-Type"] = "application/json"\n'
              f'wrk.headers["Authorization"] = "Token {token}"\n')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--latency", "-s", f.name,
               base_url + PATH]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=True).stdout
    Path(f.name).unlink()
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore[union-attr]
    seconds = _seconds(*re.search(r"requests in ([\d.]+)(\w+)", out).groups())  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    p50 = _ms(*re.search(r"\s50%\s+([\d.]+)(\w+)", out).groups())  # type: ignore[union-attr]
    p99 = _ms(*re.search(r"\s99%\s+([\d.]+)(\w+)", out).groups())  # type: ignore[union-attr]
    return Load(requests_ok=total - (int(bad.group(1)) if bad else 0), errors=errors, seconds=seconds,
                p50_ms=p50, p99_ms=p99)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _seconds(value: str, unit: str) -> float:
    return _ms(value, unit) / 1000


def _threads(base_url: str, token: str, *, duration_s: float, connections: int) -> Load:
    load = Load()
    lock = threading.Lock()
    headers = {"Authorization": f"Token {token}"}
    end = time.perf_counter() + duration_s

    def client() -> None:
        session = requests.Session()
        mine: list[float] = []
        errors = 0
        while (started := time.perf_counter()) < end:
            answer = session.post(base_url + PATH, json=BODY, headers=headers, timeout=30)
            if answer.status_code == 202:
                mine.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1
        with lock:
            load.latencies_ms += mine
            load.errors += errors

    threads = [threading.Thread(target=client) for _ in range(connections)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - began
    load.requests_ok = len(load.latencies_ms)
    ordered = sorted(load.latencies_ms) or [0.0]
    load.p50_ms = ordered[len(ordered) // 2]
    load.p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return load


# --- running and reporting -------------------------------------------------------------------------


SIDES = {"reelqueue": ("reelqueue API, SQS queue (moto)", reelqueue_server),
         "reelqueue-sql": ("reelqueue API, SQL lease queue", reelqueue_sql_server),
         "baseline": ("minimal DRF insert view", baseline_server)}


def run_side(side: str, moto_url: str, *, duration_s: float, connections: int, workers: int) -> Result:
    label, start = SIDES[side]
    port = free_port()
    with postgres_database() as db, tempfile.TemporaryDirectory(prefix="rq-bench-api-") as tmp:
        server, token = start(db, moto_url, port, workers, Path(tmp))
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: requests.get(base_url + PATH, timeout=2).status_code in (401, 403, 405),
                       timeout_s=60, what=f"{side} API")
            load = drive(base_url, token, duration_s=duration_s, connections=connections)
        finally:
            stop(server)  # type: ignore[arg-type]
        rows = _rows(db, "baseline_jobs" if side == "baseline" else "rq_jobs")
    result = Result(BENCH, label, f"{workers} workers / {connections} conns", load.requests_ok, load.seconds,
                    note=f"{rows} rows; {load.errors} errors",
                    extra={"p50_ms": load.p50_ms, "p99_ms": load.p99_ms})
    log(f"{label}: {result.jobs_per_s:.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, "
        f"{result.note}")
    return result


def _rows(db_url: str, name: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(sqlalchemy_url(db_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
    finally:
        engine.dispose()


def run_all(*, duration_s: float = 10.0, connections: int = 8, workers: int = 4,
            sides: tuple[str, ...] = ("baseline", "reelqueue", "reelqueue-sql")) -> list[Result]:
    with moto_server() as moto_url:
        return [run_side(side, moto_url, duration_s=duration_s, connections=connections, workers=workers)
                for side in sides]


def render(results: list[Result]) -> str:
    baseline = next((r.jobs_per_s for r in results if r.side.startswith("minimal")), 0.0)
    rows = [[r.side, r.concurrency, r.jobs, f"{r.jobs_per_s:.0f}",
             f"{r.jobs_per_s / baseline:.2f}x" if baseline else "-",
             f"{r.extra['p50_ms']:.1f}", f"{r.extra['p99_ms']:.1f}", r.note] for r in results]
    headers = ["side", "setup", "2xx responses", "req/s", "vs baseline", "p50 ms", "p99 ms", "check"]
    return table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sides", nargs="+", default=["baseline", "reelqueue", "reelqueue-sql"],
                        choices=list(SIDES))
    args = parser.parse_args()
    print(render(run_all(duration_s=args.duration_s, connections=args.connections, workers=args.workers,
                         sides=tuple(args.sides))))


if __name__ == "__main__":
    main()
