"""The real video worker process on the embedded stack (SQL queue, SQLite, local storage, PyAV),
stopped with real signals in the middle of a real transcode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from src import bootstrap
from src.application.commands import SubmitVideoJob
from src.config import Settings
from src.domain.status import JobStatus
from src.infrastructure.db.migrations import upgrade
from src.infrastructure.media.samples import make_clip

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    values = {
        "REELQUEUE_DATABASE_URL": f"sqlite:///{tmp_path}/rq.sqlite3",
        "REELQUEUE_QUEUE_BACKEND": "sql",
        "REELQUEUE_REDIS_URL": "",
        "REELQUEUE_STORAGE_BACKEND": "local",
        "REELQUEUE_STORAGE_ROOT": str(tmp_path / "storage"),
        "REELQUEUE_WORK_DIR": str(tmp_path),
        "REELQUEUE_VISIBILITY_TIMEOUT_S": "120",
        "REELQUEUE_SHUTDOWN_DEADLINE_S": "30",
        "REELQUEUE_HEALTH_FILE": str(tmp_path / "healthy"),
        "REELQUEUE_LOG_FORMAT": "json",
    }
    upgrade(values["REELQUEUE_DATABASE_URL"])
    return values


@pytest.fixture
def adapters(env) -> Iterator[bootstrap.Adapters]:
    built = bootstrap.build(Settings.from_env(env))
    yield built
    built.close()


def start_worker(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    log = (tmp_path / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "src.interfaces.workers.video.main"],
                            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log)


def log_lines(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines() if line]


def submit_long_transcode(adapters: bootstrap.Adapters, tmp_path: Path) -> str:
    clip = make_clip(tmp_path / "clip.mp4", width=640, height=360, duration_s=30, speed="ultrafast")
    adapters.storage.upload("in/clip.mp4", clip, content_type="video/mp4")
    command = SubmitVideoJob(owner_id="u1", source="in/clip.mp4", preset="480p")
    return bootstrap.job_service(adapters).submit_video(command).id


def transcoding(adapters: bootstrap.Adapters, job_id: str) -> bool:
    progress = adapters.progress.read(job_id)
    return progress is not None and progress.stage == "transcoding" and progress.percent >= 1


def test_sigterm_mid_job_stops_at_a_checkpoint_requeues_the_job_and_exits_0(env, adapters, tmp_path):
    job_id = submit_long_transcode(adapters, tmp_path)
    worker = start_worker(env, tmp_path)
    try:
        wait_for(lambda: transcoding(adapters, job_id), 60, "the transcode to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()
    job = adapters.video_jobs.get(job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 1
    kept = adapters.progress.read(job_id)
    assert kept is not None and kept.stage == "transcoding" and 0 < kept.percent < 100
    (message,) = adapters.consumer_factory("video").receive(max_messages=10, wait_s=0)
    assert message.receive_count == 2 and job_id in message.body  # handed back at once, not re-read
    lines = log_lines(tmp_path)  # every line is JSON
    assert any(line["message"] == "stopped cleanly" for line in lines)
    assert (tmp_path / "healthy").exists()


def test_the_requeued_job_is_finished_by_the_next_worker(env, adapters, tmp_path):
    job_id = submit_long_transcode(adapters, tmp_path)
    worker = start_worker(env, tmp_path)
    try:
        wait_for(lambda: transcoding(adapters, job_id), 60, "the transcode to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        worker = start_worker(env, tmp_path)
        wait_for(lambda: adapters.video_jobs.get(job_id).status is JobStatus.SUCCEEDED, 90, "success")
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()
    assert adapters.video_jobs.get(job_id).attempts == 2


def test_a_second_signal_exits_at_once(env, tmp_path):
    worker = start_worker(env, tmp_path)
    try:
        wait_for(lambda: (tmp_path / "healthy").exists(), 30, "the loop to start")
        worker.send_signal(signal.SIGTERM)  # the loop is in a 10 s long poll: a graceful stop waits
        time.sleep(0.3)
        started_s = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=5) == 128 + signal.SIGTERM
        assert time.monotonic() - started_s < 2
    finally:
        worker.kill()
