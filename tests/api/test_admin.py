"""The admin: badges, filters and search over jobs and batches; actions go through JobService."""

from __future__ import annotations

import json
from typing import Any

import pytest

from src.domain.status import JobStatus

T2V = {"model": "veo3.1_fast", "mode": "t2v", "prompt": "a paper boat", "duration_s": 4}


@pytest.fixture
def admin_client(client: Any, make_user: Any) -> Any:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.login(username="root", password="pw-for-tests-only")
    return client


def submit(api: Any, **changes: Any) -> str:
    return str(api.post("/api/v1/ai-jobs", {**T2V, **changes}, format="json").json()["id"])


def fail(library: Any, job_id: str) -> None:
    job = library.ai_jobs.get(job_id)
    now = library.clock.now()
    library.ai_jobs.save(job.start(now).fail("boom", now), expected=JobStatus.QUEUED)


def test_the_job_list_shows_badges_filters_and_owners(admin_client, api):
    submit(api)

    page = admin_client.get("/admin/jobs/job/").content.decode()

    assert "Google Veo 3.1 Fast (via Runway) (speed fast, quality good, cost moderate)" in page
    assert "background:#607d8b" in page  # the queued badge
    assert "alice" in page
    for name in ("status", "kind", "provider", "model", "production_path"):
        assert f"?{name}__exact=" in page


def test_filters_and_search_narrow_the_list(admin_client, api, library):
    queued, failed = submit(api), submit(api, prompt="a unique walrus")
    fail(library, failed)

    by_status = admin_client.get("/admin/jobs/job/?status__exact=failed").content.decode()
    by_search = admin_client.get("/admin/jobs/job/?q=walrus").content.decode()

    assert failed[:12] in by_status and queued[:12] not in by_status
    assert failed[:12] in by_search and queued[:12] not in by_search


def test_the_retry_action_requeues_failed_jobs_only(admin_client, api, library):
    queued, failed = submit(api), submit(api)
    fail(library, failed)

    selected = {"action": "retry_failed", "_selected_action": [queued, failed]}
    response = admin_client.post("/admin/jobs/job/", selected, follow=True)

    assert "Retried 1 job(s)." in response.content.decode()
    assert library.ai_jobs.get(failed).status is JobStatus.QUEUED
    queued_now = library.consumer_factory("ai-remote").receive(max_messages=10, wait_s=0)
    assert sorted(json.loads(m.body)["job_id"] for m in queued_now) == sorted([queued, failed, failed])
    assert library.outbox.pending(limit=10) == []  # the new message committed with the retry


def test_the_cancel_action_cancels_queued_jobs_only(admin_client, api, library):
    queued, failed = submit(api), submit(api)
    fail(library, failed)

    admin_client.post("/admin/jobs/job/", {"action": "cancel_queued", "_selected_action": [queued, failed]})

    assert library.ai_jobs.get(queued).status is JobStatus.CANCELLED
    assert library.ai_jobs.get(failed).status is JobStatus.FAILED


def test_a_job_page_links_its_outputs(admin_client, api, library, tmp_path):
    from src.domain.jobs import Output

    job_id = submit(api)
    job = library.ai_jobs.get(job_id)
    now = library.clock.now()
    path = tmp_path / "v.mp4"
    path.write_bytes(b"v")
    library.storage.upload(f"outputs/{job_id}/video.mp4", path, content_type="video/mp4")
    library.ai_jobs.save(job.start(now).succeed((Output(key=f"outputs/{job_id}/video.mp4"),), now),
                         expected=JobStatus.QUEUED)

    page = admin_client.get(f"/admin/jobs/job/{job_id}/change/").content.decode()

    assert f"/api/v1/files/outputs/{job_id}/video.mp4?expires=" in page


def test_batches_show_their_status_and_their_jobs(admin_client, api, library):
    batch = api.post("/api/v1/ai-jobs/batch", {"items": [T2V, T2V]}, format="json").json()
    fail(library, batch["jobs"][0]["id"])

    listing = admin_client.get("/admin/jobs/batch/").content.decode()
    detail = admin_client.get(f"/admin/jobs/batch/{batch['id']}/change/").content.decode()
    admin_client.post("/admin/jobs/batch/", {"action": "retry_failed", "_selected_action": [batch["id"]]})

    assert batch["id"] in listing and ">running<" in listing
    assert "1 failed, 1 queued" in detail and batch["jobs"][1]["id"] in detail
    assert library.ai_jobs.get(batch["jobs"][0]["id"]).status is JobStatus.QUEUED


def test_jobs_cannot_be_added_edited_or_deleted_in_the_admin(admin_client, api):
    job_id = submit(api)

    assert admin_client.get("/admin/jobs/job/add/").status_code == 403
    assert admin_client.post(f"/admin/jobs/job/{job_id}/delete/").status_code == 403


def test_a_job_page_shows_every_provider_task_the_job_had(admin_client, api, library):
    job_id = submit(api)
    job = library.ai_jobs.get(job_id)
    now = library.clock.now()
    first = job.start(now).wait_for_provider("task-first", now)
    library.ai_jobs.save(first, expected=JobStatus.QUEUED)
    again = first.start(now).abandon_task(now, "the provider had an internal error; trying again")
    library.ai_jobs.save(again, expected=JobStatus.WAITING_PROVIDER)
    second = again.start(now).wait_for_provider("task-second", now)
    library.ai_jobs.save(second, expected=JobStatus.QUEUED)

    page = admin_client.get(f"/admin/jobs/job/{job_id}/change/").content.decode()

    assert "task-first task-second" in page


def test_a_job_page_shows_where_its_provider_cancel_stands(admin_client, api, library):
    from src.domain.jobs import ProviderCancel

    job_id = submit(api)
    now = library.clock.now()
    job = library.ai_jobs.get(job_id)
    waiting = job.start(now).mark_submitting(now).wait_for_provider("gen-1", now)
    library.ai_jobs.save(waiting, expected=JobStatus.QUEUED)
    cancelled = waiting.cancel(now)
    library.ai_jobs.save(cancelled, expected=JobStatus.WAITING_PROVIDER)
    failed = cancelled.provider_cancel_ended(ProviderCancel.FAILED, "luma refused DELETE (401)", now)
    library.ai_jobs.save(failed, expected=JobStatus.CANCELLED)

    other = submit(api)
    page = admin_client.get(f"/admin/jobs/job/{job_id}/change/").content.decode()
    listed = admin_client.get("/admin/jobs/job/", {"provider_cancel": "failed"}).content.decode()

    assert "Provider cancel" in page and "failed" in page and "luma refused DELETE (401)" in page
    assert job_id[:12] in listed and other[:12] not in listed
