"""Wrong settings stop every process at start-up: the worker entry points, the operator CLI, Django's
``manage`` and gunicorn print one message naming each wrong variable and exit with status 2,
without a traceback and before anything is created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "key_runway_0123456789abcdef"


def run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REELQUEUE_")}
    base.update({"REELQUEUE_DATABASE_URL": f"sqlite:///{tmp_path}/rq.sqlite3",
                 "REELQUEUE_STORAGE_ROOT": str(tmp_path / "storage"),
                 "REELQUEUE_SECRET_KEY": "tests-only-key"})
    base.update(env)
    return subprocess.run(args, cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


def assert_refused(done: subprocess.CompletedProcess[str], *names: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    for name in names:
        assert name in done.stderr


@pytest.mark.parametrize("module", ["src.interfaces.workers.video.main", "src.interfaces.workers.ai.main"])
def test_a_worker_with_a_wrong_variable_exits_2_naming_it_before_it_starts(module, tmp_path):
    done = run([sys.executable, "-m", module],
               {"REELQUEUE_QUEUE_BACKEND": "sqss", "REELQUEUE_CONCURRENCY": "-2",
                "REELQUEUE_RUNWAY_API_KEY": SECRET}, tmp_path)

    assert_refused(done, "REELQUEUE_QUEUE_BACKEND='sqss'", "sql, sqs, memory", "REELQUEUE_CONCURRENCY='-2'")
    assert SECRET not in done.stderr
    assert not (tmp_path / "rq.sqlite3").exists() and not (tmp_path / "storage").exists()


def test_a_remote_ai_worker_without_a_provider_key_does_not_start(tmp_path):
    done = run([sys.executable, "-m", "src.interfaces.workers", "ai", "--worker-type", "remote"], {},
               tmp_path)

    assert_refused(done, "REELQUEUE_RUNWAY_API_KEY and REELQUEUE_LUMA_API_KEY are both empty")


def test_the_cli_with_sqs_but_no_region_exits_2(tmp_path):
    done = run([sys.executable, "-m", "src.interfaces.cli", "migrate"], {"REELQUEUE_QUEUE_BACKEND": "sqs"},
               tmp_path)

    assert_refused(done, "REELQUEUE_AWS_REGION is empty")
    assert not (tmp_path / "rq.sqlite3").exists()


def test_the_api_refuses_to_start_with_a_wrong_variable(tmp_path):
    wrong = {"REELQUEUE_STORAGE_BACKEND": "s4", "REELQUEUE_THROTTLE_USER_POSTS": "60/minit",
             "REELQUEUE_DATABASE_URL": "postgresql+psycopg2://jobs:hunter2hunter2@db:5x32/jobs"}
    done = run([sys.executable, "-m", "apps.manage", "check"], wrong, tmp_path)

    assert_refused(done, "REELQUEUE_STORAGE_BACKEND='s4'", "local, s3", "REELQUEUE_THROTTLE_USER_POSTS",
                   "REELQUEUE_DATABASE_URL")
    assert "hunter2" not in done.stderr
    assert run([sys.executable, "-m", "apps.manage", "check"], {}, tmp_path).returncode == 0


def test_the_api_without_a_secret_key_exits_2_unless_in_development(tmp_path):
    manage = [sys.executable, "-m", "apps.manage", "check"]

    assert_refused(run(manage, {"REELQUEUE_SECRET_KEY": ""}, tmp_path), "REELQUEUE_SECRET_KEY is empty")
    assert run(manage, {"REELQUEUE_SECRET_KEY": "", "REELQUEUE_DEBUG": "1"}, tmp_path).returncode == 0


def test_gunicorn_stops_before_any_worker_boots(tmp_path):
    gunicorn = Path(sys.executable).parent / "gunicorn"
    done = run([str(gunicorn), "-c", "apps/reelqueue_api/gunicorn_conf.py", "--bind", "127.0.0.1:0"],
               {"REELQUEUE_QUEUE_BACKEND": "memory"}, tmp_path)

    assert_refused(done, "REELQUEUE_QUEUE_BACKEND='memory'", "allowed: sql, sqs")
