"""Following jobs: status with live progress, signed outputs, filters, isolation, cancel and retry."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from src.domain.jobs import Output, ProviderCancel
from src.domain.status import JobStatus

T2V = {"model": "ray-2", "mode": "t2v", "prompt": "a lighthouse at dusk", "duration_s": 5}


def submit(client: Any, **changes: Any) -> str:
    response = client.post("/api/v1/ai-jobs", {**T2V, **changes}, format="json")
    assert response.status_code == 202, response.json()
    return str(response.json()["id"])


def start(library: Any, job_id: str) -> Any:
    """What a worker does first: the job becomes processing."""
    job = library.ai_jobs.get(job_id)
    started = job.start(library.clock.now())
    library.ai_jobs.save(started, expected=job.status)
    return started


def finish(library: Any, job_id: str, tmp_path: Any) -> None:
    job = start(library, job_id)
    path = tmp_path / "out.mp4"
    path.write_bytes(b"video bytes")
    key = f"outputs/{job_id}/video.mp4"
    size = library.storage.upload(key, path, content_type="video/mp4")
    done = job.succeed((Output(key=key, size_bytes=size, width=1280, height=720),), library.clock.now())
    library.ai_jobs.save(done, expected=JobStatus.PROCESSING)


def fail(library: Any, job_id: str) -> None:
    job = start(library, job_id)
    library.ai_jobs.save(job.fail("provider refused the prompt", library.clock.now()),
                         expected=JobStatus.PROCESSING)


def test_a_running_job_shows_its_live_progress(api, library):
    job_id = submit(api)
    start(library, job_id)
    library.progress.record(job_id, stage="generating", percent=42.0)

    body = api.get(f"/api/v1/jobs/{job_id}").json()

    assert (body["status"], body["stage"], body["percent"]) == ("processing", "generating", 42.0)
    assert body["attempts"] == 1
    assert body["started_at"] is not None


def test_a_finished_job_lists_outputs_with_short_lived_download_urls(api, library, tmp_path, client):
    job_id = submit(api)
    finish(library, job_id, tmp_path)

    body = api.get(f"/api/v1/jobs/{job_id}").json()

    assert body["status"] == "succeeded" and body["percent"] == 100.0
    [output] = body["outputs"]
    assert (output["key"], output["width"], output["role"]) == (f"outputs/{job_id}/video.mp4", 1280, "video")
    url = urlsplit(output["url"])
    assert int(parse_qs(url.query)["expires"][0]) <= library.clock.now().timestamp() + 900
    download = client.get(f"{url.path}?{url.query}")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"video bytes"


def test_the_list_filters_and_paginates(api, library):
    first = submit(api)
    second = submit(api, model="wan_local", duration_s=None, production_path="eats")
    api.post("/api/v1/video-jobs", {"source": "https://media.example.com/a.mp4"}, format="json")
    fail(library, first)

    def ids(query: str) -> list[str]:
        response = api.get(f"/api/v1/jobs{query}")
        assert response.status_code == 200, response.json()
        return [job["id"] for job in response.json()["results"]]

    assert len(ids("")) == 3
    assert ids("?status=failed") == [first]
    assert ids("?provider=wan_local") == [second]
    assert ids("?production_path=eats&kind=ai") == [second]
    assert len(ids("?kind=video")) == 1
    page = api.get("/api/v1/jobs?limit=2").json()
    assert (page["count"], len(page["results"]), page["next"] is not None) == (3, 2, True)


@pytest.mark.parametrize("query", ["?status=done", "?kind=audio", "?batch=xyz", "?provider=%00"])
def test_bad_filters_answer_400(api, query):
    assert api.get(f"/api/v1/jobs{query}").status_code == 400


def test_the_batch_filter_lists_a_batchs_jobs(api):
    batch = api.post("/api/v1/ai-jobs/batch", {"items": [T2V, T2V]}, format="json").json()
    submit(api)

    listed = api.get(f"/api/v1/jobs?batch={batch['id']}").json()["results"]

    assert sorted(j["id"] for j in listed) == sorted(j["id"] for j in batch["jobs"])


def test_another_users_jobs_are_404_and_not_listed(api, client_for, bob):
    job_id = submit(api)
    batch_id = api.post("/api/v1/ai-jobs/batch", {"items": [T2V]}, format="json").json()["id"]
    other = client_for(bob)

    assert other.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert other.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
    assert other.post(f"/api/v1/jobs/{job_id}/retry").status_code == 404
    assert other.get(f"/api/v1/batches/{batch_id}").status_code == 404
    assert other.get("/api/v1/jobs").json()["count"] == 0


def test_staff_see_every_job(api, client_for, staff):
    job_id = submit(api)

    operator = client_for(staff)

    assert operator.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert [j["id"] for j in operator.get("/api/v1/jobs").json()["results"]] == [job_id]


def test_a_queued_job_can_be_cancelled_once(api, library):
    job_id = submit(api)

    response = api.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert library.ai_jobs.get(job_id).status is JobStatus.CANCELLED
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409


def wait_for_provider(library: Any, job_id: str, task_id: str) -> None:
    """What a worker does for a remote job: start, submit (paid), keep the provider's task id."""
    job = start(library, job_id)
    now = library.clock.now()
    library.ai_jobs.save(job.mark_submitting(now).wait_for_provider(task_id, now),
                         expected=JobStatus.PROCESSING)


def test_cancelling_a_waiting_remote_job_records_it_and_queues_a_message_for_a_worker(api, library):
    job_id = submit(api)
    wait_for_provider(library, job_id, "gen-1")
    consumer = library.consumer_factory("ai-remote")
    consumer.ack(consumer.receive(max_messages=10, wait_s=0))  # the submission's message, handled

    response = api.post(f"/api/v1/jobs/{job_id}/cancel")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    stored = library.ai_jobs.get(job_id)
    assert stored.provider_cancel is ProviderCancel.REQUESTED  # left to a worker: no provider call here
    assert stored.provider_cancel_detail is None and stored.provider_cancel_tries == 0
    queued = consumer.receive(max_messages=10, wait_s=0)
    assert [json.loads(m.body)["job_id"] for m in queued] == [job_id]
    assert library.outbox.pending(limit=10) == []  # the message committed with the cancel


def test_a_job_still_being_cancelled_at_its_provider_cannot_be_retried_yet(api, library):
    job_id = submit(api)
    wait_for_provider(library, job_id, "gen-1")
    api.post(f"/api/v1/jobs/{job_id}/cancel")

    response = api.post(f"/api/v1/jobs/{job_id}/retry")

    assert response.status_code == 409 and "still being cancelled" in response.json()["detail"]
    assert library.ai_jobs.get(job_id).status is JobStatus.CANCELLED


def test_a_failed_job_is_retried_as_a_new_attempt_of_the_same_job(api, library):
    job_id = submit(api)
    fail(library, job_id)

    response = api.post(f"/api/v1/jobs/{job_id}/retry")

    assert response.status_code == 202
    body = response.json()
    assert (body["id"], body["status"], body["error"]) == (job_id, "queued", None)
    assert library.ai_jobs.get(job_id).attempts == 1  # the next start makes it attempt 2


def test_a_queued_job_cannot_be_retried(api):
    job_id = submit(api)

    response = api.post(f"/api/v1/jobs/{job_id}/retry")

    assert response.status_code == 409
    assert "cannot become" in response.json()["detail"]


def test_a_batch_status_aggregates_its_jobs(api, library, tmp_path):
    batch = api.post("/api/v1/ai-jobs/batch", {"items": [T2V, T2V]}, format="json").json()
    first, second = (job["id"] for job in batch["jobs"])

    start(library, first)
    assert api.get(f"/api/v1/batches/{batch['id']}").json()["status"] == "running"
    library.ai_jobs.save(library.ai_jobs.get(first).fail("x", library.clock.now()),
                         expected=JobStatus.PROCESSING)
    finish(library, second, tmp_path)
    body = api.get(f"/api/v1/batches/{batch['id']}").json()

    assert (body["status"], body["counts"]) == ("partial", {"failed": 1, "succeeded": 1})


def test_unknown_ids_are_404(api):
    assert api.get("/api/v1/jobs/" + "0" * 32).status_code == 404
    assert api.get("/api/v1/batches/" + "0" * 32).status_code == 404
    assert api.get("/api/v1/jobs/not-an-id").status_code == 404


def test_the_catalogue_lists_every_model_with_speed_quality_and_cost(api):
    body = api.get("/api/v1/providers").json()

    models = {m["model"]: m for m in body["models"]}
    assert set(models) == {"wan_local", "gen4_turbo", "gen4.5", "veo3", "veo3.1", "veo3.1_fast", "ray-2",
                           "ray-flash-2"}
    assert (models["veo3"]["quality"], models["veo3"]["cost"], models["veo3"]["seed_supported"]) == (
        "best", "expensive", False)
    assert "gen3a_turbo" in body["sunset"] and body["default_production_path"] == "fashion"


def test_the_catalogue_shows_which_models_take_audio_and_both_of_their_prices(api):
    models = {m["model"]: m for m in api.get("/api/v1/providers").json()["models"]}

    prices = {name: (m["audio_supported"], m["credits_per_second_without_audio"],
                     m["credits_per_second_with_audio"]) for name, m in models.items()}
    assert prices["veo3.1"] == (True, 20, 40) and prices["veo3.1_fast"] == (True, 10, 15)
    assert prices["veo3"] == prices["gen4.5"] == (False, None, None)
    assert models["gen4.5"]["prompt_required"] == ["i2v", "t2v"]
    assert models["veo3"]["prompt_required"] == ["t2v"]


def test_answers_in_a_row_each_carry_their_own_job_and_host(api, library, tmp_path, settings):
    """The job serializer builds its fields once and shares them: no answer may leak into the next."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "a.example", "b.example", "c.example"]
    first, second = submit(api), submit(api, prompt="a second lighthouse")
    finish(library, first, tmp_path)

    views = [api.get(f"/api/v1/jobs/{job_id}", HTTP_HOST=host).json()
             for job_id, host in ((first, "a.example"), (second, "b.example"), (first, "c.example"))]

    assert [(v["id"], v["status"], urlsplit(v["status_url"]).netloc) for v in views] == [
        (first, "succeeded", "a.example"), (second, "queued", "b.example"), (first, "succeeded", "c.example")]
    assert [len(v["outputs"]) for v in views] == [1, 0, 1] and views[1]["prompt"] == "a second lighthouse"


def test_a_job_waiting_for_a_providers_quota_says_so_and_until_when(api, library):
    job_id = submit(api)
    job = start(library, job_id)
    reason = "waiting for luma's daily quota until about 2026-01-01 01:00:00 UTC; nothing was submitted yet"
    library.ai_jobs.save(job.wait_for_quota(library.clock.now(), reason), expected=JobStatus.PROCESSING)

    body = api.get(f"/api/v1/jobs/{job_id}").json()

    assert (body["status"], body["attempts"], body["error"]) == ("queued", 0, reason)
