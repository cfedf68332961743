"""Idempotency keys in the use cases, on the in-memory fakes: a key's answer commits with what
the request created; the same key finds it again; another endpoint or body is a conflict."""

from __future__ import annotations

from datetime import timedelta

import pytest

from src.application.commands import SubmitAIJob, SubmitVideoJob
from src.application.ports import IdempotentRequest
from src.application.replays import IdempotentRequests, key_problem
from src.domain.errors import IdempotencyKeyReused, IdempotencyKeyTaken
from src.domain.status import JobStatus
from src.infrastructure.memory import InMemoryIdempotencyKeys

T2V = SubmitAIJob(owner_id="u1", model="gen4.5", mode="t2v", prompt="a red car", duration_s=5)


def keyed(key: str = "k1", **changes: str) -> IdempotentRequest:
    values = {"owner_id": "u1", "key": key, "endpoint": "POST /api/v1/ai-jobs", "fingerprint": "abc"}
    return IdempotentRequest(**{**values, **changes})


@pytest.fixture
def requests(world) -> IdempotentRequests:
    return IdempotentRequests(keys=InMemoryIdempotencyKeys(world.db), clock=world.clock, ttl_s=3600)


def test_a_job_submitted_with_a_key_is_found_again_by_that_key(world, requests):
    job = world.service(idempotency_key_ttl_s=3600).submit_ai(T2V, request=keyed())

    answer = requests.previous(keyed())

    assert answer.resource_id == job.id
    assert answer.created_at == world.clock.now()
    assert answer.expires_at == world.clock.now() + timedelta(hours=1)


def test_the_service_keeps_the_key_for_its_configured_lifetime(world, requests):
    world.service(idempotency_key_ttl_s=60).submit_ai(T2V, request=keyed())

    world.clock.advance(61)

    assert requests.previous(keyed()) is None


def test_a_second_submission_with_the_same_key_stores_no_second_job(world):
    service = world.service()
    first = service.submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4"), request=keyed())

    with pytest.raises(IdempotencyKeyTaken):
        service.submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4"), request=keyed())

    assert [job.id for job in world.video_jobs.all()] == [first.id]
    assert world.broker.depth("video") + len(world.outbox.pending(limit=10)) == 1


def test_a_batch_keeps_its_batch_id_as_the_answer(world, requests):
    batch = world.service().submit_ai_batch([T2V, T2V], request=keyed())

    assert requests.previous(keyed()).resource_id == batch.id


def test_a_retry_keeps_its_key_with_the_retried_jobs_save(world, requests):
    service = world.service()
    cancelled = service.cancel(service.submit_ai(T2V))

    service.retry(cancelled, request=keyed(endpoint=f"POST /api/v1/jobs/{cancelled.id}/retry"))

    assert world.ai_jobs.get(cancelled.id).status is JobStatus.QUEUED
    assert requests.previous(keyed(endpoint=f"POST /api/v1/jobs/{cancelled.id}/retry")).resource_id == \
        cancelled.id


@pytest.mark.parametrize(("changes", "named"), [
    ({"fingerprint": "other"}, "different request body"),
    ({"endpoint": "POST /api/v1/video-jobs"}, "first used for POST /api/v1/ai-jobs"),
])
def test_the_same_key_with_another_body_or_endpoint_is_a_conflict_naming_it(world, requests, changes, named):
    world.service().submit_ai(T2V, request=keyed())

    with pytest.raises(IdempotencyKeyReused, match=named):
        requests.previous(keyed(**changes))


def test_an_answer_kept_by_body_is_found_again_and_a_second_one_is_refused(requests):
    requests.keep(keyed(), {"key": "uploads/u1/a.png"})

    with pytest.raises(IdempotencyKeyTaken):
        requests.keep(keyed(), {"key": "uploads/u1/b.png"})

    assert requests.previous(keyed()).body == {"key": "uploads/u1/a.png"}


def test_purge_deletes_expired_keys(world, requests):
    requests.keep(keyed("old"), {})
    world.clock.advance(3600)
    requests.keep(keyed("new"), {})

    assert requests.purge() == 1
    assert requests.previous(keyed("new")) is not None


@pytest.mark.parametrize(("key", "problem"), [
    ("", "1 to 255"), ("x" * 256, "1 to 255"), ("café", "printable ASCII"), ("a\nb", "printable ASCII"),
    (" a", "leading or trailing"), ("a ", "leading or trailing"),
])
def test_a_key_must_be_short_printable_ascii(key, problem):
    assert problem in key_problem(key)


@pytest.mark.parametrize("key", ["a", "x" * 255, "5f1c0a8e-7d2b-4c3e-9a51-2f8d6b0e4c17",
                                 'with space and "quotes"~'])
def test_printable_ascii_keys_up_to_255_characters_are_accepted(key):
    assert key_problem(key) is None
