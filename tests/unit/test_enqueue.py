import json

import pytest

from src.application.commands import SubmitAIJob, SubmitVideoJob
from src.application.enqueue import InlineRelay, JobService, Reconciler
from src.domain.errors import ConcurrentUpdate, IllegalTransition, ValidationError
from src.domain.jobs import AIJob, ProviderCancel, VideoJob
from src.domain.paths import UnknownPathPolicy
from src.domain.status import JobStatus
from src.infrastructure.memory import InMemoryDatabase, InMemoryJobRepository, InMemoryOutbox


def ai(**kw):
    fields = {"owner_id": "u1", "model": "gen4.5", "mode": "t2v", "prompt": "a red car",
              "duration_s": 5, "ratio": "1280:720", "production_path": "cinema"}
    fields.update(kw)
    return SubmitAIJob(**fields)


def test_a_submitted_job_is_recorded_queued_and_its_message_published(world):
    job = world.service().submit_ai(ai())
    assert world.ai_jobs.get(job.id).status is JobStatus.QUEUED
    body = json.loads(world.broker.bodies("ai-remote")[0])
    assert body == {"v": 1, "kind": "ai", "job_id": job.id}
    assert world.outbox.pending(limit=10) == []


def test_jobs_are_routed_by_worker_type(world):
    service = world.service()
    service.submit_ai(ai(model="wan_local", duration_s=None, ratio="832:480", num_frames=81))
    service.submit_ai(ai())
    service.submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4"))
    depths = {q: world.broker.depth(q) for q in ("ai-gpu", "ai-remote", "video")}
    assert depths == {"ai-gpu": 1, "ai-remote": 1, "video": 1}


def test_a_job_created_while_the_queue_is_down_stays_in_the_outbox_until_reconciled(world):
    world.publisher.down = True
    job = world.service().submit_ai(ai())
    assert world.ai_jobs.get(job.id).status is JobStatus.QUEUED
    assert world.broker.depth("ai-remote") == 0
    world.publisher.down = False
    reconciler = Reconciler(outbox=world.outbox, publisher=world.publisher, clock=world.clock, grace_s=30)
    assert reconciler.run_once() == 0  # too fresh: the API may still be sending it
    world.clock.advance(31)
    assert reconciler.run_once() == 1
    assert world.broker.depth("ai-remote") == 1 and world.outbox.pending(limit=10) == []


def test_invalid_requests_are_refused_with_field_errors_and_nothing_is_recorded(world):
    with pytest.raises(ValidationError) as info:
        world.service().submit_ai(ai(model="veo3", duration_s=5, seed=4))
    assert set(info.value.fields) == {"duration_s", "seed"}
    assert world.ai_jobs.all() == [] and world.outbox.pending(limit=10) == []


def test_an_unknown_mode_is_a_field_error(world):
    with pytest.raises(ValidationError) as info:
        world.service().submit_ai(ai(mode="v2v"))
    assert "mode" in info.value.fields


def test_the_reject_policy_refuses_an_unknown_production_path(world):
    with pytest.raises(ValidationError) as info:
        world.service(path_policy=UnknownPathPolicy.REJECT).submit_ai(ai(production_path="sports"))
    assert "production_path" in info.value.fields


def test_the_default_policy_uses_fashion_for_a_missing_path(world):
    job = world.service().submit_ai(ai(production_path=None))
    assert job.production_path == "fashion"


def test_a_batch_is_all_or_nothing_and_names_the_bad_item(world):
    with pytest.raises(ValidationError) as info:
        world.service().submit_ai_batch([ai(), ai(duration_s=42), ai()])
    assert list(info.value.fields) == ["items[1].duration_s"]
    assert world.ai_jobs.all() == []


def test_a_batch_records_every_job_under_one_batch_id(world):
    batch = world.service().submit_ai_batch([ai(), ai(), ai()])
    assert {j.batch_id for j in world.ai_jobs.all()} == {batch.id}
    assert world.broker.depth("ai-remote") == 3


def test_a_video_source_must_be_a_storage_key_or_an_https_url(world):
    service = world.service()
    for source in ("http://cdn.example/a.mp4", "../etc/passwd", "/abs/path.mp4", "ftp://x/y"):
        with pytest.raises(ValidationError):
            service.submit_video(SubmitVideoJob(owner_id="u1", source=source))


def test_the_url_guard_can_refuse_internal_addresses(world):
    def guard(field, url):
        raise ValidationError({field: "resolves to a private address"})

    with pytest.raises(ValidationError) as info:
        world.service(url_guard=guard).submit_video(
            SubmitVideoJob(owner_id="u1", source="https://internal.example/a.mp4"))
    assert info.value.fields == {"source": ["resolves to a private address"]}


def test_an_unknown_video_preset_is_a_field_error(world):
    with pytest.raises(ValidationError) as info:
        world.service().submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4", preset="4k"))
    assert "preset" in info.value.fields


def test_a_queued_job_can_be_cancelled_and_then_retried_with_a_new_message(world):
    service = world.service()
    job = service.submit_ai(ai())
    cancelled = service.cancel(job)
    retried = service.retry(cancelled)
    assert retried.status is JobStatus.QUEUED and world.broker.depth("ai-remote") == 2


def test_a_succeeded_job_cannot_be_retried_or_cancelled(world):
    service = world.service()
    job = service.submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4"))
    world.storage.put_bytes("in/a.mp4", b"FAKEVIDEO 640 360 3")
    world.video_handler().handle(job.id)
    done = world.video_jobs.get(job.id)
    with pytest.raises(IllegalTransition):
        service.retry(done)
    with pytest.raises(IllegalTransition):
        service.cancel(done)


def test_a_requeued_processing_job_is_queued_again_with_a_new_message(world):
    service = world.service()
    job = service.submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4"))
    started = job.start(world.clock.now())
    world.video_jobs.save(started, expected=JobStatus.QUEUED)

    requeued = service.requeue(started)

    assert requeued.status is JobStatus.QUEUED and world.video_jobs.get(job.id).status is JobStatus.QUEUED
    assert world.broker.depth("video") == 2 and world.outbox.pending(limit=10) == []


def test_a_requeued_waiting_job_keeps_its_state_and_a_finished_one_is_refused(world):
    service = world.service()
    job = service.submit_ai(ai())
    assert service.requeue(job).status is JobStatus.QUEUED and world.broker.depth("ai-remote") == 2
    with pytest.raises(ValueError, match="cancelled"):
        service.requeue(service.cancel(job))


def test_a_retry_that_lost_a_race_records_no_message(world):
    service = world.service()
    job = service.submit_ai(ai())
    cancelled = service.cancel(job)
    service.retry(cancelled)

    with pytest.raises(ConcurrentUpdate):
        service.retry(cancelled)  # a second click on a stale page: the job is queued already

    assert world.broker.depth("ai-remote") == 2 and world.outbox.pending(limit=10) == []


# --- the queue in the jobs' own database (the SQL lease queue) ----------------------------------


class SameDatabaseQueue:
    """Jobs whose messages commit straight into the queue, as with the SQL lease queue."""

    def __init__(self, world) -> None:
        self.db = InMemoryDatabase(world.clock, broker=world.broker)
        self.videos = InMemoryJobRepository(self.db, VideoJob)
        self.ais = InMemoryJobRepository(self.db, AIJob)
        self.outbox = InMemoryOutbox(self.db)
        world.publisher.down = True  # nothing may depend on a publish after commit
        self.service = JobService(video_jobs=self.videos, ai_jobs=self.ais, publisher=world.publisher,
                                  relay=InlineRelay(outbox=self.outbox, publisher=world.publisher),
                                  clock=world.clock)


def test_with_the_queue_in_the_jobs_database_a_message_commits_with_its_job(world):
    same = SameDatabaseQueue(world)

    job = same.service.submit_ai(ai())
    same.service.submit_ai_batch([ai(), ai()])

    assert [json.loads(b)["job_id"] for b in world.broker.bodies("ai-remote")][0] == job.id
    assert world.broker.depth("ai-remote") == 3 and same.outbox.pending(limit=10) == []


def test_with_the_queue_in_the_jobs_database_a_retry_commits_its_message_with_the_new_status(world):
    same = SameDatabaseQueue(world)
    job = same.service.submit_video(SubmitVideoJob(owner_id="u1", source="in/a.mp4"))

    same.service.retry(same.service.cancel(job))

    assert same.videos.get(job.id).status is JobStatus.QUEUED
    assert world.broker.depth("video") == 2 and same.outbox.pending(limit=10) == []



# --- cancel reaches the provider (through a worker, never from here) ---


def _waiting(world):
    """A Runway job whose paid task exists: submitted and waiting for the provider."""
    job = world.service().submit_ai(ai())
    world.ai_handler().handle(job.id)
    return world.ai_jobs.get(job.id)


def test_cancelling_a_waiting_remote_job_records_it_and_queues_one_message_for_a_worker(world):
    waiting = _waiting(world)
    depth = world.broker.depth("ai-remote")

    cancelled = world.service().cancel(waiting)

    stored = world.ai_jobs.get(waiting.id)
    assert stored.status is JobStatus.CANCELLED and stored.provider_cancel is ProviderCancel.REQUESTED
    assert cancelled == stored
    assert world.broker.depth("ai-remote") == depth + 1
    assert json.loads(world.broker.bodies("ai-remote")[-1])["job_id"] == waiting.id
    assert world.runway.cancelled == []  # the API side never calls a provider


def test_cancelling_a_remote_job_never_submitted_queues_nothing_and_it_is_never_submitted(world):
    job = world.service().submit_ai(ai())
    depth = world.broker.depth("ai-remote")

    world.service().cancel(job)
    world.ai_handler().handle(job.id)  # its original message still arrives

    assert world.broker.depth("ai-remote") == depth
    assert world.ai_jobs.get(job.id).provider_cancel is None
    assert world.runway.submissions == [] and world.runway.cancelled == []


def test_a_job_whose_provider_task_is_still_being_stopped_cannot_be_retried_yet(world):
    cancelled = world.service().cancel(_waiting(world))

    with pytest.raises(IllegalTransition, match="still being cancelled"):
        world.service().retry(cancelled)
