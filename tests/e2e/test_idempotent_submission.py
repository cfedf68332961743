"""Requests racing with one ``Idempotency-Key`` over HTTP create exactly one job.

The API runs under gunicorn (two processes of four threads each) on Postgres and on SQLite, with
the SQL lease queue; many client threads send the same POST with the same key at once. Every one
is answered 202 with the same job (or batch), and the database holds one job and one message.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.tables import batches, jobs, queue_messages
from tests.e2e.stack import ROOT, free_port, fresh_database

CLIENTS = 12
T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "a red fox in snow", "duration_s": 5}


@dataclass
class Api:
    url: str
    database_url: str
    token: str

    def post(self, path: str, body: object, key: str) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", "Idempotency-Key": key}
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=60)

    def counts(self) -> tuple[int, int, int]:
        """Batches, jobs and queued messages in the database."""
        return self.count(batches), self.count(jobs), self.count(queue_messages)

    def count(self, table: sa.Table) -> int:
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar())
        finally:
            engine.dispose()


@contextlib.contextmanager
def database(kind: str, pg_admin_url: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/reelqueue.sqlite3"
        return
    with fresh_database(pg_admin_url) as url:
        yield url


def api_env(database_url: str, port: int, workdir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("REELQUEUE_")}
    env.update({
        "REELQUEUE_DATABASE_URL": database_url, "REELQUEUE_QUEUE_BACKEND": "sql",
        "REELQUEUE_STORAGE_BACKEND": "local", "REELQUEUE_STORAGE_ROOT": str(workdir / "storage"),
        "REELQUEUE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "REELQUEUE_SECRET_KEY": secrets.token_urlsafe(32),
        "REELQUEUE_THROTTLE_USER_POSTS": "100000/minute", "REELQUEUE_LOG_LEVEL": "WARNING",
    })
    return env


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def api(request, tmp_path_factory) -> Iterator[Api]:
    tmp_path = tmp_path_factory.mktemp(f"api-{request.param}")
    pg_admin_url = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else ""
    with database(request.param, pg_admin_url, tmp_path) as database_url:
        port = free_port()
        env = api_env(database_url, port, tmp_path)
        run(env, "-m", "src.interfaces.cli", "migrate")
        run(env, "-m", "apps.manage", "migrate", "--no-input", "-v", "0")
        token = run(env, "-m", "apps.manage", "create_api_token", "alice").split()[-1]
        log = (tmp_path / "gunicorn.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "apps.reelqueue_api.wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--worker-class", "gthread",
             "--no-control-socket"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_until_answering(f"http://127.0.0.1:{port}", server)
            yield Api(f"http://127.0.0.1:{port}/api/v1", database_url, token)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
            log.close()


def wait_until_answering(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert server.poll() is None, "gunicorn exited"
        try:
            requests.get(f"{url}/api/v1/jobs", timeout=5)  # 401: it answers
            return
        except requests.RequestException:
            assert time.monotonic() < deadline, "the API did not answer"
            time.sleep(0.1)


def race(api: Api, path: str, body: object, key: str) -> list[requests.Response]:
    barrier, answers, lock = threading.Barrier(CLIENTS), [], threading.Lock()

    def send() -> None:
        barrier.wait()
        answer = api.post(path, body, key)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def added(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(after, before, strict=True))


def test_requests_racing_with_one_key_create_exactly_one_job(api):
    before = api.counts()

    answers = race(api, "/ai-jobs", T2V, "race-1")

    assert [a.status_code for a in answers] == [202] * CLIENTS, [a.text[:300] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == CLIENTS - 1
    assert added(before, api.counts()) == (0, 1, 1)


def test_batches_racing_with_one_key_create_exactly_one_batch(api):
    body, before = {"items": [T2V, {**T2V, "prompt": "a grey owl"}]}, api.counts()

    answers = race(api, "/ai-jobs/batch", body, "race-2")

    assert [a.status_code for a in answers] == [202] * CLIENTS, [a.text[:300] for a in answers]
    assert len({json.dumps([j["id"] for j in a.json()["jobs"]]) for a in answers}) == 1
    assert added(before, api.counts()) == (1, 2, 2)


def test_retries_racing_with_one_key_make_exactly_one_new_attempt(api):
    job_id = api.post("/ai-jobs", T2V, "to-retry").json()["id"]
    assert api.post(f"/jobs/{job_id}/cancel", None, "cancel-1").status_code == 200
    before = api.counts()

    answers = race(api, f"/jobs/{job_id}/retry", None, "race-3")

    assert [a.status_code for a in answers] == [202] * CLIENTS, [a.text[:300] for a in answers]
    assert {a.json()["id"] for a in answers} == {job_id}
    assert added(before, api.counts()) == (0, 0, 1)
