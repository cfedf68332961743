"""Luma's callback wakes the worker; it never changes the job, and a wrong token changes nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from src import bootstrap
from src.config import Settings
from src.domain.status import JobStatus
from src.infrastructure.db.tables import queue_messages

LUMA = {"model": "ray-2", "mode": "t2v", "prompt": "neon city", "duration_s": 5}


def waiting_luma_job(api: Any, library: Any) -> Any:
    job_id = api.post("/api/v1/ai-jobs", LUMA, format="json").json()["id"]
    job = library.ai_jobs.get(job_id)
    now = library.clock.now()
    waiting = job.start(now).wait_for_provider("luma-task-1", now)
    library.ai_jobs.save(waiting, expected=JobStatus.QUEUED)
    return waiting


def messages(library: Any) -> list[dict[str, Any]]:
    with library.extras["engine"].connect() as conn:
        bodies = conn.execute(sa.select(queue_messages.c.body).order_by(queue_messages.c.id)).scalars()
        return [json.loads(body) for body in bodies]


def test_the_right_token_relays_a_check_message_and_leaves_the_job_alone(api, client, library):
    job = waiting_luma_job(api, library)

    response = client.post(f"/api/v1/webhooks/luma/{job.id}/{job.callback_token}",
                           {"id": "luma-task-1", "state": "completed"}, content_type="application/json")

    assert response.status_code == 200
    assert [m["job_id"] for m in messages(library)] == [job.id, job.id]  # submission, then the relay
    assert library.ai_jobs.get(job.id) == job


def test_the_callback_url_workers_build_from_the_default_settings_reaches_this_view(api, client, library):
    job = waiting_luma_job(api, library)
    url = bootstrap.luma_callback_url("https://jobs.example.com", Settings().luma_callback_path, job)

    response = client.post(urlsplit(url).path, {"id": "luma-task-1", "state": "completed"},
                           content_type="application/json")

    assert response.status_code == 200
    assert [m["job_id"] for m in messages(library)] == [job.id, job.id]


def test_a_wrong_token_is_404_and_changes_nothing(api, client, library):
    job = waiting_luma_job(api, library)

    last = job.callback_token[-1]
    wrong = job.callback_token[:-1] + ("y" if last == "x" else "x")  # differs in its last character

    response = client.post(f"/api/v1/webhooks/luma/{job.id}/{wrong}")

    assert response.status_code == 404
    assert len(messages(library)) == 1
    assert library.ai_jobs.get(job.id) == job


def test_an_unknown_job_is_404(client):
    assert client.post("/api/v1/webhooks/luma/" + "0" * 32 + "/token").status_code == 404


def test_a_callback_for_a_finished_job_sends_nothing(api, client, library):
    job = waiting_luma_job(api, library)
    library.ai_jobs.save(job.cancel(library.clock.now()), expected=JobStatus.WAITING_PROVIDER)

    response = client.post(f"/api/v1/webhooks/luma/{job.id}/{job.callback_token}")

    assert response.status_code == 200
    assert len(messages(library)) == 1
