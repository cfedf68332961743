"""The operator CLI against a real SQLite database and the SQL queue (and moto's SQS for the DLQ)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from src import bootstrap
from src.application.commands import SubmitVideoJob
from src.application.messages import JobMessage
from src.application.ports import IdempotentRequest
from src.config import Settings
from src.domain.jobs import JobKind
from src.domain.status import JobStatus
from src.infrastructure.db.migrations import current
from src.interfaces import cli
from tests.fakes import FakeLuma, FakeRunway
from tests.integration.provider_helpers import frame_count


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures the root logger, as a process should; put it back for the next tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    env = {"REELQUEUE_DATABASE_URL": f"sqlite:///{tmp_path}/rq.sqlite3", "REELQUEUE_QUEUE_BACKEND": "sql",
           "REELQUEUE_STORAGE_ROOT": str(tmp_path / "storage"), "REELQUEUE_REDIS_URL": ""}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def adapters(settings):
    assert run("migrate") == (0, "database is up to date\n")
    built = bootstrap.build(settings)
    yield built
    built.close()


def submit(adapters) -> str:
    return bootstrap.job_service(adapters).submit_video(
        SubmitVideoJob(owner_id="u1", source="in/clip.mp4")).id


def test_migrate_creates_the_schema(settings):
    assert run("migrate")[0] == 0
    assert current(settings.database_url) is not None


def test_requeue_puts_a_stuck_processing_job_back_in_the_queue(adapters):
    job_id = submit(adapters)
    consumer = adapters.consumer_factory("video")
    consumer.ack(consumer.receive(max_messages=10, wait_s=0))  # the worker took it, then died
    job = adapters.video_jobs.get(job_id)
    adapters.video_jobs.save(job.start(adapters.clock.now()), expected=JobStatus.QUEUED)
    assert run("requeue", job_id) == (0, f"job {job_id} (queued): message sent\n")
    assert adapters.video_jobs.get(job_id).status is JobStatus.QUEUED
    (message,) = consumer.receive(max_messages=10, wait_s=0)
    assert JobMessage.decode(message.body, queue="video").job_id == job_id


def test_requeue_refuses_finished_jobs_and_unknown_ids(adapters, capsys):
    job_id = submit(adapters)
    job = adapters.video_jobs.get(job_id)
    adapters.video_jobs.save(job.cancel(adapters.clock.now()), expected=JobStatus.QUEUED)
    assert run("requeue", job_id)[0] == 1
    assert run("requeue", "nope")[0] == 1
    assert "job nope does not exist" in capsys.readouterr().err


def test_dlq_list_redrive_and_purge_on_the_sql_queue(adapters):
    submit(adapters)
    consumer = adapters.consumer_factory("video")
    (message,) = consumer.receive(max_messages=10, wait_s=0)
    consumer.dead_letter(message, reason="poison: body is not JSON")
    code, listed = run("dlq", "list", "--queue", "video")
    assert code == 0 and json.loads(listed)["reason"] == "poison: body is not JSON"
    assert run("dlq", "redrive", "--queue", "video") == (0, "moved 1 message(s) back to video\n")
    (again,) = consumer.receive(max_messages=10, wait_s=0)
    consumer.dead_letter(again, reason="still bad")
    assert run("dlq", "purge", "--queue", "video") == (0, "deleted 1 dead letter(s) of video\n")
    assert run("dlq", "list", "--queue", "video") == (0, "")


def test_reconcile_sends_outbox_messages_that_never_left(adapters):
    message = JobMessage(kind=JobKind.VIDEO, job_id="j1", queue="video")
    adapters.outbox.add([message])
    assert run("reconcile", "--grace-s", "0") == (0, "sent 1 message(s)\n")
    assert run("reconcile", "--grace-s", "0") == (0, "sent 0 message(s)\n")
    (received,) = adapters.consumer_factory("video").receive(max_messages=10, wait_s=0)
    assert received.body == message.encode()


def test_purge_idempotency_keys_deletes_only_expired_ones(adapters):
    now = datetime.now(timezone.utc)
    old, fresh = (IdempotentRequest(owner_id="u1", key=key, endpoint="POST /api/v1/uploads", fingerprint="f")
                  for key in ("old", "fresh"))
    adapters.idempotency_keys.add(old.answered(now=now - timedelta(days=2), ttl_s=86400, body={"n": 1}))
    adapters.idempotency_keys.add(fresh.answered(now=now, ttl_s=86400, body={"n": 2}))

    assert run("purge-idempotency-keys") == (0, "1 expired idempotency key(s) deleted\n")

    assert adapters.idempotency_keys.find("u1", "fresh", now=now).body == {"n": 2}
    assert run("purge-idempotency-keys") == (0, "0 expired idempotency key(s) deleted\n")


def test_dlq_commands_work_on_sqs(moto_server, monkeypatch, tmp_path):
    prefix = f"rq-{uuid.uuid4().hex[:8]}-"
    for name, value in {"REELQUEUE_QUEUE_BACKEND": "sqs", "REELQUEUE_SQS_ENDPOINT_URL": moto_server,
                        "REELQUEUE_AWS_REGION": "us-east-1", "REELQUEUE_SQS_QUEUE_PREFIX": prefix,
                        "REELQUEUE_DATABASE_URL": f"sqlite:///{tmp_path}/rq.sqlite3"}.items():
        monkeypatch.setenv(name, value)
    assert run("ensure-queues")[0] == 0
    adapters = bootstrap.build(Settings.from_env())
    adapters.publisher.publish([JobMessage(kind=JobKind.VIDEO, job_id="j1", queue="video")])
    consumer = adapters.consumer_factory("video")
    (message,) = consumer.receive(max_messages=10, wait_s=1)
    consumer.dead_letter(message, reason="no such job")
    code, listed = run("dlq", "list", "--queue", "video")
    assert code == 0 and json.loads(listed)["reason"] == "no such job"
    assert run("dlq", "redrive", "--queue", "video") == (0, "moved 1 message(s) back to video\n")
    assert len(consumer.receive(max_messages=10, wait_s=1)) == 1


def test_ensure_queues_has_nothing_to_do_for_the_sql_queue(settings):
    assert run("ensure-queues") == (0, "nothing to create: the sql queue needs no setup\n")


def test_the_memory_backend_has_no_dead_letters_to_administer(monkeypatch, capsys):
    monkeypatch.setenv("REELQUEUE_QUEUE_BACKEND", "memory")
    assert run("dlq", "list", "--queue", "video")[0] == 1
    assert "no dead-letter administration" in capsys.readouterr().err


def test_help_needs_no_service():
    result = subprocess.run([sys.executable, "-m", "src.interfaces.cli", "--help"],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0 and "requeue" in result.stdout


# --- smoke: the operators' paid check, here against the fake APIs over real sockets -------------

SMOKE_KEYS = {"runway": "key_runway-smoke-0123456789abcdef", "luma": "luma-smoke-0123456789abcdef"}


@pytest.fixture
def smoke_env(monkeypatch, tmp_path):
    """Both fakes with their keys, reached only through the base URL settings."""
    with FakeRunway(api_key=SMOKE_KEYS["runway"], generation_s=0.2, queue_s=0.05) as runway, \
            FakeLuma(api_key=SMOKE_KEYS["luma"], generation_s=0.2, queue_s=0.05) as luma:
        for name, value in {"REELQUEUE_RUNWAY_BASE_URL": runway.base_url,
                            "REELQUEUE_RUNWAY_API_KEY": SMOKE_KEYS["runway"],
                            "REELQUEUE_LUMA_BASE_URL": luma.base_url,
                            "REELQUEUE_LUMA_API_KEY": SMOKE_KEYS["luma"],
                            "REELQUEUE_PROVIDER_TIMEOUT_S": "2"}.items():
            monkeypatch.setenv(name, value)
        yield {"runway": runway, "luma": luma}


def smoke(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["smoke", *argv, "--poll-s", "0.05", "--timeout-s", "10"], out=out,
                    stdin=io.StringIO(stdin))
    return code, out.getvalue()


@pytest.mark.parametrize("provider", ["runway", "luma"])
def test_smoke_submits_the_cheapest_job_polls_and_saves_the_video(smoke_env, provider, tmp_path):
    dest = tmp_path / f"{provider}.mp4"

    code, transcript = smoke(provider, "--yes", "--output", str(dest))

    assert code == 0, transcript
    assert f"video saved: {dest.resolve()} ({dest.stat().st_size} bytes)" in transcript
    assert frame_count(dest) == (8, 32, 32)
    assert SMOKE_KEYS[provider] not in transcript
    assert "Authorization: [REDACTED]" in transcript
    assert ">>> POST " in transcript and "<<< 200 OK" in transcript and "state: succeeded" in transcript
    assert smoke_env[provider].create_count() == 1


def test_smoke_asks_for_the_cheapest_valid_requests(smoke_env, tmp_path):
    assert smoke("luma", "--yes", "--output", str(tmp_path / "l.mp4"))[0] == 0
    assert smoke("runway", "--yes", "--output", str(tmp_path / "r.mp4"))[0] == 0

    luma_body = smoke_env["luma"].create_bodies[0]
    assert {k: luma_body[k] for k in ("model", "duration", "resolution")} == {
        "model": "ray-flash-2", "duration": "5s", "resolution": "540p"}
    runway_body = smoke_env["runway"].create_bodies[0]
    assert (runway_body["model"], runway_body["duration"]) == ("gen4_turbo", 2)
    assert runway_body["promptImage"].startswith("data:image/png;base64,")
    assert "callback_url" not in luma_body


def test_smoke_spends_nothing_without_a_confirmation(smoke_env, capsys):
    assert smoke("luma", stdin="no\n")[0] == 2
    assert smoke("luma", stdin="")[0] == 2
    assert "not confirmed" in capsys.readouterr().err
    assert smoke_env["luma"].create_count() == 0


def test_smoke_goes_on_when_stdin_confirms(smoke_env, tmp_path):
    code, transcript = smoke("luma", "--output", str(tmp_path / "v.mp4"), stdin="yes\n")

    assert code == 0 and "type yes to go on" in transcript and "video saved:" in transcript


def test_smoke_without_a_key_names_the_setting_and_sends_nothing(smoke_env, monkeypatch, capsys):
    monkeypatch.setenv("REELQUEUE_LUMA_API_KEY", "")

    assert smoke("luma", "--yes")[0] == 1
    assert "REELQUEUE_LUMA_API_KEY is not set" in capsys.readouterr().err
    assert smoke_env["luma"].requests == []


@pytest.mark.parametrize("provider", ["runway", "luma"])
def test_smoke_with_a_refused_key_fails_clearly_and_never_prints_it(smoke_env, provider, monkeypatch,
                                                                   capsys):
    wrong = f"{provider}-wrong-key-0123456789"
    monkeypatch.setenv(f"REELQUEUE_{provider.upper()}_API_KEY", wrong)

    code, transcript = smoke(provider, "--yes")

    err = capsys.readouterr().err
    assert code == 1 and "401" in err and f"REELQUEUE_{provider.upper()}_API_KEY" in err
    assert "<<< 401" in transcript
    assert wrong not in transcript + err
    assert smoke_env[provider].create_count() == 0


def test_smoke_masks_key_like_fields_but_keeps_keyframes():
    from src.interfaces.smoke import _mask_fields

    masked = _mask_fields({"api_key": "k", "apiKey": "k", "token": "t", "client-secret": "s",
                           "keyframes": {"frame0": {"type": "image", "url": "https://cdn.example/a"}}})

    assert masked == {"api_key": "[REDACTED]", "apiKey": "[REDACTED]", "token": "[REDACTED]",
                      "client-secret": "[REDACTED]",
                      "keyframes": {"frame0": {"type": "image", "url": "https://cdn.example/a"}}}
