"""``Idempotency-Key`` on every creating POST: the same user, key and body answer what the first
request answered; another body or endpoint is a 422; a bad key a 400; keys are per user."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from src.domain.status import JobStatus
from src.infrastructure.db.tables import batches, idempotency_keys, jobs, queue_messages

T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "a red fox in snow", "duration_s": 5}
VIDEO = {"source": "https://media.example.com/in.mp4", "preset": "480p"}
LIVE = {"status", "stage", "percent", "updated_at", "started_at", "finished_at", "attempts", "outputs",
        "error"}


def post(client: Any, path: str, body: Any = None, key: str | None = "key-1", **headers: Any) -> Any:
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, body, format="json", **headers)


def count(library: Any, table: sa.Table) -> int:
    with library.extras["engine"].connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar())


def queued_job_ids(library: Any) -> list[str]:
    with library.extras["engine"].connect() as conn:
        bodies = conn.execute(sa.select(queue_messages.c.body).order_by(queue_messages.c.id)).scalars()
        return [json.loads(body)["job_id"] for body in bodies]


def fixed(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name not in LIVE}


@pytest.mark.parametrize(("path", "body"), [("/api/v1/ai-jobs", T2V), ("/api/v1/video-jobs", VIDEO)])
def test_a_repeated_request_answers_the_first_job_and_creates_no_other(api, library, path, body):
    first = post(api, path, body)
    again = post(api, path, body)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert fixed(again.json()) == fixed(first.json())
    assert again["Location"] == first["Location"] and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert count(library, jobs) == 1 and queued_job_ids(library) == [first.json()["id"]]


def test_a_replay_shows_the_job_as_it_is_now(api, library):
    job_id = post(api, "/api/v1/ai-jobs", T2V).json()["id"]
    job = library.ai_jobs.get(job_id)
    library.ai_jobs.save(job.start(library.clock.now()), expected=JobStatus.QUEUED)

    again = post(api, "/api/v1/ai-jobs", T2V)

    assert again.status_code == 202
    assert (again.json()["id"], again.json()["status"]) == (job_id, "processing")


def test_the_same_json_in_another_key_order_is_the_same_body(api, library):
    first = api.post("/api/v1/ai-jobs", json.dumps(T2V), content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY="k")
    reordered = json.dumps(dict(reversed(list(T2V.items()))), indent=2)

    again = api.post("/api/v1/ai-jobs", reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert count(library, jobs) == 1


def test_a_repeated_batch_answers_the_first_batch(api, library):
    body = {"items": [T2V, {**T2V, "prompt": "a grey owl"}]}
    first = post(api, "/api/v1/ai-jobs/batch", body)

    again = post(api, "/api/v1/ai-jobs/batch", body)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    assert again["Location"] == first["Location"]
    assert (count(library, batches), count(library, jobs)) == (1, 2)


def test_a_repeated_upload_request_answers_the_same_key_and_url(api):
    first = post(api, "/api/v1/uploads", {"content_type": "image/png"})

    again = post(api, "/api/v1/uploads", {"content_type": "image/png"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert post(api, "/api/v1/uploads", {"content_type": "image/png"}, key="other").json()["key"] != \
        first.json()["key"]


def test_a_repeated_retry_is_one_new_attempt(api, library):
    job_id = post(api, "/api/v1/ai-jobs", T2V, key=None).json()["id"]
    job = library.ai_jobs.get(job_id)
    library.ai_jobs.save(job.cancel(library.clock.now()), expected=JobStatus.QUEUED)

    first = post(api, f"/api/v1/jobs/{job_id}/retry", key="retry-1")
    again = post(api, f"/api/v1/jobs/{job_id}/retry", key="retry-1")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == job_id and again["Idempotent-Replayed"] == "true"
    assert queued_job_ids(library) == [job_id, job_id]  # the submission's message and one retry's
    assert post(api, f"/api/v1/jobs/{job_id}/retry", key=None).status_code == 409  # without a key


def test_the_same_key_with_another_body_is_a_422_naming_the_conflict(api, library):
    post(api, "/api/v1/ai-jobs", T2V)

    response = post(api, "/api/v1/ai-jobs", {**T2V, "prompt": "a blue fox"})

    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]
    assert count(library, jobs) == 1


def test_the_same_key_on_another_endpoint_is_a_422_naming_it(api, library):
    post(api, "/api/v1/ai-jobs", T2V)

    response = post(api, "/api/v1/video-jobs", VIDEO)

    assert response.status_code == 422
    assert "POST /api/v1/ai-jobs" in response.json()["detail"]
    assert count(library, jobs) == 1


def test_the_same_key_on_another_jobs_retry_is_a_422(api, library):
    ids = [post(api, "/api/v1/ai-jobs", T2V, key=None).json()["id"] for _ in range(2)]
    for job_id in ids:
        job = library.ai_jobs.get(job_id)
        library.ai_jobs.save(job.cancel(library.clock.now()), expected=JobStatus.QUEUED)
    post(api, f"/api/v1/jobs/{ids[0]}/retry", key="r")

    response = post(api, f"/api/v1/jobs/{ids[1]}/retry", key="r")

    assert response.status_code == 422
    assert library.ai_jobs.get(ids[1]).status is JobStatus.CANCELLED


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there", "new\x7fline", " padded"])
def test_a_bad_key_is_a_400_and_creates_nothing(api, library, key):
    response = post(api, "/api/v1/ai-jobs", T2V, key=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert count(library, jobs) == 0 and count(library, idempotency_keys) == 0


def test_the_longest_key_is_accepted(api):
    key = "k" * 255
    first = post(api, "/api/v1/ai-jobs", T2V, key=key)

    assert first.status_code == 202
    assert post(api, "/api/v1/ai-jobs", T2V, key=key).json()["id"] == first.json()["id"]


def test_another_user_with_the_same_key_gets_a_job_of_their_own(api, client_for, bob, library):
    alices = post(api, "/api/v1/ai-jobs", T2V).json()["id"]

    bobs = post(client_for(bob), "/api/v1/ai-jobs", T2V)

    assert bobs.status_code == 202 and bobs.json()["id"] != alices
    assert count(library, jobs) == 2


def test_a_refused_request_keeps_nothing_and_its_key_works_once_corrected(api, library):
    refused = post(api, "/api/v1/ai-jobs", {**T2V, "duration_s": 99})

    corrected = post(api, "/api/v1/ai-jobs", T2V)

    assert (refused.status_code, corrected.status_code) == (400, 202)
    assert count(library, jobs) == 1


def test_a_key_past_its_lifetime_creates_a_new_job(api, library, settings):
    settings.REELQUEUE = replace(settings.REELQUEUE, idempotency_key_ttl_s=1)
    first = post(api, "/api/v1/ai-jobs", T2V).json()["id"]

    time.sleep(1.1)
    again = post(api, "/api/v1/ai-jobs", T2V)

    assert again.status_code == 202 and again.json()["id"] != first
    assert "Idempotent-Replayed" not in again


def test_a_request_without_a_key_is_never_replayed(api, library):
    ids = {post(api, "/api/v1/ai-jobs", T2V, key=None).json()["id"] for _ in range(2)}

    assert len(ids) == 2 and count(library, idempotency_keys) == 0


def test_a_malformed_body_with_a_key_is_a_400_and_keeps_nothing(api, library):
    response = api.post("/api/v1/ai-jobs", "{not json", content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 400
    assert count(library, idempotency_keys) == 0
    assert post(api, "/api/v1/ai-jobs", T2V, key="k").status_code == 202
