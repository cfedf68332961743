"""What the peer benchmarks share: services of their own, processes, timing, the Markdown table.

Every benchmark starts its own moto server (on a free port), creates a fresh Postgres database
(``rq_bench_<random>``, dropped afterwards) and uses unique Redis key prefixes, so a run never
touches anything another run or test session uses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.fakes.sqs_proxy import SqsProxy, _Handler, _ProxyServer

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
STOP_GRACE_S = 10.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: object, *, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():  # type: ignore[operator]
                return
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not ready within {timeout_s}s")


# --- processes -------------------------------------------------------------------------------------


def spawn(command: Sequence[str], *, env: dict[str, str] | None = None, quiet: bool = True
          ) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own (so its children can be stopped with it)."""
    full_env = {**os.environ, **AWS_ENV, "PYTHONPATH": str(ROOT), **(env or {})}
    output = subprocess.DEVNULL if quiet else sys.stderr  # stdout is the report
    return subprocess.Popen(list(command), cwd=ROOT, env=full_env, stdout=output, stderr=output,
                            start_new_session=True)


def stop(process: subprocess.Popen[bytes], *, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group we started, then SIGKILL it after ``grace_s``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group (pool children)
    process.wait(5)


# --- services --------------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1; yields its URL. Fake AWS credentials from here on."""
    for name, value in AWS_ENV.items():
        os.environ.setdefault(name, value)
    port = free_port()
    process = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/moto-api/", timeout=1).ok, timeout_s=30, what="moto")
        yield url
    finally:
        stop(process)


class _PromptHandler(_Handler):
    # The response goes out as two writes (headers, body): with Nagle's algorithm on, the body
    # waits for the client's delayed ACK, ~40 ms per request on Linux, which would swamp moto.
    disable_nagle_algorithm = True


class _QuietServer(_ProxyServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return  # a worker stopped mid-request resets its connection: expected here


class TimedSqsProxy(SqsProxy):
    """The counting proxy, also noting when each action was first and last seen."""

    def __init__(self, upstream: str) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        super().__init__(upstream)

    def count(self, target: str | None, body: bytes) -> None:
        now = time.perf_counter()
        super().count(target, body)
        action = target.rsplit(".", 1)[-1] if target else "other"
        with self._lock:
            self.first.setdefault(action, now)
            self.last[action] = now

    def start(self) -> None:
        server = _QuietServer(("127.0.0.1", self.port), _PromptHandler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.first.clear()
            self.last.clear()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the machine's Postgres; yields its libpq URL; dropped afterwards."""
    import psycopg2

    name = f"rq_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+psycopg2://", 1)


def redis_prefix(label: str) -> str:
    return f"rq-bench:{label}:{uuid.uuid4().hex[:8]}:"


def delete_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Result:
    bench: str
    side: str
    concurrency: str
    jobs: int
    seconds: float
    sqs_requests: int | None = None
    note: str = ""
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0

    @property
    def requests_per_job(self) -> float | None:
        return None if self.sqs_requests is None else self.sqs_requests / self.jobs


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPU ({cpu}), Python {sys.version.split()[0]}, load average {load}"
