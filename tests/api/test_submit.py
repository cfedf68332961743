"""Submitting jobs: 202 with the recorded job and its message queued; every bad input a 400."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from django.test import override_settings

from src.infrastructure.db.tables import queue_messages

T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "a red fox in snow", "duration_s": 5,
       "production_path": "cinema"}


def queued_bodies(library: Any, queue: str) -> list[dict[str, Any]]:
    query = sa.select(queue_messages.c.body).where(queue_messages.c.queue == queue)
    with library.extras["engine"].connect() as conn:
        return [json.loads(body) for body in conn.execute(query).scalars()]


def uploaded_key(api: Any, library: Any, content_type: str = "image/png") -> str:
    key = api.post("/api/v1/uploads", {"content_type": content_type}, format="json").json()["key"]
    path = library.storage.root / "tmp-input"
    path.write_bytes(b"\x89PNG fake")
    library.storage.upload(key, path, content_type=content_type)
    return key


def test_an_ai_job_is_recorded_and_its_message_sent_after_commit(api, library):
    response = api.post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued" and job["provider"] == "runway" and job["production_path"] == "cinema"
    assert response["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status_url"].endswith(f"/api/v1/jobs/{job['id']}")
    assert queued_bodies(library, "ai-remote") == [{"v": 1, "kind": "ai", "job_id": job["id"]}]
    assert library.outbox.pending(limit=10) == []


def test_a_wan_job_goes_to_the_gpu_queue(api, library):
    response = api.post("/api/v1/ai-jobs", {"model": "wan_local", "mode": "t2v", "prompt": "waves",
                                            "num_frames": 33, "ratio": "832:480"}, format="json")

    assert response.status_code == 202
    assert [b["job_id"] for b in queued_bodies(library, "ai-gpu")] == [response.json()["id"]]


def test_an_image_to_video_job_takes_the_users_upload(api, library):
    key = uploaded_key(api, library)

    response = api.post("/api/v1/ai-jobs", {"model": "gen4_turbo", "mode": "i2v", "input_image": key,
                                            "ratio": "1280:720", "duration_s": 5}, format="json")

    assert response.status_code == 202
    assert response.json()["input_image"] == key


def test_another_users_upload_cannot_be_an_input(api, library, client_for, bob):
    key = uploaded_key(client_for(bob), library)

    response = api.post("/api/v1/ai-jobs", {"model": "gen4_turbo", "mode": "i2v", "input_image": key},
                        format="json")

    assert response.status_code == 400
    assert "your uploads" in response.json()["input_image"][0]


def test_a_key_with_nothing_uploaded_is_refused(api, alice):
    key = f"uploads/{alice.pk}/0123456789abcdef0123456789abcdef.png"

    response = api.post("/api/v1/ai-jobs", {"model": "gen4_turbo", "mode": "i2v", "input_image": key},
                        format="json")

    assert response.status_code == 400
    assert "nothing has been uploaded" in response.json()["input_image"][0]


def test_a_video_job_from_a_public_url_is_accepted(api, library):
    response = api.post("/api/v1/video-jobs", {"source": "https://media.example.com/in.mp4",
                                               "preset": "1080p"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["kind"], body["preset"], body["source"]) == ("video", "1080p", "https://media.example.com/in.mp4")
    assert [b["job_id"] for b in queued_bodies(library, "video")] == [body["id"]]


@pytest.mark.parametrize(("source", "message"), [
    ("http://media.example.com/in.mp4", "https"),
    ("https://127.0.0.1/in.mp4", "IP address"),
    ("https://[::1]/in.mp4", "IP address"),
    ("https://internal.example.com/in.mp4", "internal address"),
    ("https://nowhere.example.com/in.mp4", "could not be resolved"),
    ("https://user:pw@media.example.com/in.mp4", "credentials"),
    ("https://media.example.com/" + "a" * 2100, "no more than 2048"),
    ("../etc/passwd", "storage key"),
])
def test_unsafe_sources_are_refused_with_a_field_error(api, source, message):
    response = api.post("/api/v1/video-jobs", {"source": source}, format="json")

    assert response.status_code == 400
    assert message in " ".join(response.json()["source"])


@pytest.mark.parametrize(("request_body", "field", "message"), [
    ({"model": "gen3a_turbo", "mode": "i2v"}, "model", "removed gen3a_turbo"),
    ({"model": "sora", "mode": "t2v", "prompt": "x"}, "model", "unknown model"),
    ({"model": "gen4_turbo", "mode": "t2v", "prompt": "x"}, "mode", "does not support t2v"),
    ({"model": "gen4.5", "mode": "t2v", "prompt": "x", "duration_s": 11}, "duration_s", "accepts 2-10"),
    ({"model": "gen4.5", "mode": "t2v", "prompt": "x"}, "duration_s", "requires a duration"),
    ({"model": "veo3", "mode": "t2v", "prompt": "x", "seed": 7}, "seed", "does not accept a seed"),
    ({"model": "ray-2", "mode": "t2v", "prompt": "x", "ratio": "2:1"}, "ratio", "accepts"),
    ({"model": "wan_local", "mode": "t2v", "prompt": "x", "num_frames": 32}, "num_frames", "4k+1"),
    ({"model": "ray-2", "mode": "t2v", "prompt": ""}, "prompt", "needs a prompt"),
    ({"model": "ray-2", "mode": "t2v", "prompt": "x" * 1001}, "prompt", "1000"),
    ({"model": "ray-2", "mode": "i2v"}, "input_image", "needs an input image"),
    ({"model": "ray-2", "mode": "x2v"}, "mode", "not a valid choice"),
    ({"model": "ray-2", "mode": "t2v", "prompt": "x", "seed": -1}, "seed", "greater than or equal"),
    ({"model": "gen4.5", "mode": "t2v", "prompt": "\U0001F3AC" * 501, "duration_s": 5}, "prompt",
     "1000 UTF-16 code units (got 1002)"),
    ({"model": "gen4.5", "mode": "t2v", "prompt": "x", "duration_s": 5, "audio": True}, "audio",
     "gen4.5 does not take an audio choice; only veo3.1, veo3.1_fast do"),
    ({"model": "veo3", "mode": "t2v", "prompt": "x", "audio": False}, "audio", "does not take an audio"),
    ({"model": "veo3.1", "mode": "t2v", "prompt": "x", "audio": "loud"}, "audio", "valid boolean"),
])
def test_catalogue_rules_answer_400_naming_the_field(api, request_body, field, message):
    response = api.post("/api/v1/ai-jobs", request_body, format="json")

    assert response.status_code == 400
    assert message in " ".join(response.json()[field])


def test_an_unknown_production_path_is_refused_under_the_reject_policy(api, settings):
    from dataclasses import replace

    settings.REELQUEUE = replace(settings.REELQUEUE, path_policy="reject")

    response = api.post("/api/v1/ai-jobs", {**T2V, "production_path": "sports"}, format="json")

    assert response.status_code == 400
    assert "unknown production path" in response.json()["production_path"][0]


def test_an_unknown_production_path_falls_back_to_fashion_by_default(api):
    response = api.post("/api/v1/ai-jobs", {**T2V, "production_path": "sports"}, format="json")

    assert response.status_code == 202
    assert response.json()["production_path"] == "fashion"


def test_a_batch_is_recorded_whole_and_reports_its_status(api, library):
    items = [T2V, {**T2V, "model": "ray-flash-2", "duration_s": 9}, {**T2V, "model": "wan_local",
                                                                      "duration_s": None}]
    response = api.post("/api/v1/ai-jobs/batch", {"items": items}, format="json")

    assert response.status_code == 202
    batch = response.json()
    assert len(batch["jobs"]) == 3 and {j["batch_id"] for j in batch["jobs"]} == {batch["id"]}
    status = api.get(f"/api/v1/batches/{batch['id']}").json()
    assert (status["status"], status["size"], status["counts"]) == ("queued", 3, {"queued": 3})
    assert len(queued_bodies(library, "ai-remote")) == 2 and len(queued_bodies(library, "ai-gpu")) == 1


def test_one_bad_item_rejects_the_whole_batch(api, library):
    items = [T2V, {**T2V, "model": "gen3a_turbo"}]

    response = api.post("/api/v1/ai-jobs/batch", {"items": items}, format="json")

    assert response.status_code == 400
    assert "items[1].model" in response.json()
    assert library.ai_jobs.list() == []


def test_an_empty_batch_is_refused(api):
    assert api.post("/api/v1/ai-jobs/batch", {"items": []}, format="json").status_code == 400


def test_requests_without_a_token_are_refused(client):
    response = client.post("/api/v1/ai-jobs", T2V, content_type="application/json")

    assert response.status_code == 401


def test_posts_are_throttled_per_user(api, client_for, bob, settings):
    rates = {"DEFAULT_THROTTLE_RATES": {"user_posts": "2/minute"}}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **rates}

    codes = [api.post("/api/v1/ai-jobs", T2V, format="json").status_code for _ in range(3)]

    assert codes == [202, 202, 429]
    assert api.get("/api/v1/jobs").status_code == 200  # reads are not throttled
    assert client_for(bob).post("/api/v1/ai-jobs", T2V, format="json").status_code == 202


@override_settings(REELQUEUE_URL_GUARD="src.infrastructure.net.check_public_url")
def test_the_default_guard_resolves_names_itself(api):
    response = api.post("/api/v1/video-jobs", {"source": "https://localhost/x.mp4"}, format="json")

    assert response.status_code == 400
    assert "source" in response.json()


def test_posts_are_accepted_while_the_throttles_redis_is_down(api, settings):
    """Throttle counters in an unreachable Redis must not turn every POST into a 500."""
    from tests.e2e.services import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.REELQUEUE = replace(settings.REELQUEUE, redis_url=dead)

    response = api.post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 202


def test_with_redis_a_users_window_is_shared_by_every_api_process_and_answers_retry_after(
    api, client_for, alice, bob, settings, redis_url
):
    import redis
    from django.core.cache import cache

    from apps.jobs.throttling import KEY_PREFIX

    client = redis.Redis.from_url(redis_url)
    client.delete(*(f"{KEY_PREFIX}throttle_user_posts_{user.pk}" for user in (alice, bob)))
    client.close()
    settings.REELQUEUE = replace(settings.REELQUEUE, redis_url=redis_url)
    rates = {"DEFAULT_THROTTLE_RATES": {"user_posts": "2/minute"}}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **rates}

    codes = [api.post("/api/v1/ai-jobs", T2V, format="json").status_code for _ in range(2)]
    cache.clear()  # nothing of the count lives in this process
    refused = api.post("/api/v1/ai-jobs", T2V, format="json")

    assert codes == [202, 202] and refused.status_code == 429
    assert 55 <= int(refused["Retry-After"]) <= 60
    assert api.get("/api/v1/jobs").status_code == 200  # reads are not throttled
    assert client_for(bob).post("/api/v1/ai-jobs", T2V, format="json").status_code == 202


def test_gen45_needs_a_prompt_for_image_to_video_too(api, library):
    key = uploaded_key(api, library)

    response = api.post("/api/v1/ai-jobs", {"model": "gen4.5", "mode": "i2v", "input_image": key,
                                            "duration_s": 5}, format="json")

    assert response.status_code == 400 and response.json()["prompt"] == ["gen4.5 (i2v) needs a prompt"]


@pytest.mark.parametrize(("sent", "recorded"), [
    ({}, False), ({"audio": False}, False), ({"audio": True}, True)])
def test_a_veo31_job_records_its_audio_choice_and_answers_with_it(api, sent, recorded):
    body = {"model": "veo3.1", "mode": "t2v", "prompt": "rain on a roof", "duration_s": 4, **sent}

    response = api.post("/api/v1/ai-jobs", body, format="json")

    assert response.status_code == 202 and response.json()["audio"] is recorded
    assert api.get(f"/api/v1/jobs/{response.json()['id']}").json()["audio"] is recorded
