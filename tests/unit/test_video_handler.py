from src.application.commands import SubmitVideoJob
from src.application.outcomes import Action
from src.domain.errors import TransientError
from src.domain.status import JobStatus


def submit(world, source="in/clip.mp4", content="FAKEVIDEO 1920 1080 12.5"):
    if "://" in source:
        world.fetcher.pages[source] = content.encode()
    else:
        world.storage.put_bytes(source, content.encode())
    return world.service().submit_video(SubmitVideoJob(owner_id="u1", source=source, preset="720p"))


def test_a_video_job_runs_through_every_stage_and_succeeds_with_its_outputs(world):
    job = submit(world)
    outcome = world.video_handler().handle(job.id)
    done = world.video_jobs.get(job.id)
    assert outcome.action is Action.ACK
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1
    video, poster = done.outputs
    assert (video.width, video.height, video.codec) == (1280, 720, "h264")
    assert world.storage.exists(video.key) and world.storage.exists(poster.key)
    stages = [p.stage for p in world.progress.history[job.id]]
    assert stages.index("downloading") < stages.index("transcoding") < stages.index("uploading")


def test_transcoding_progress_rises(world):
    job = submit(world)
    world.video_handler().handle(job.id)
    percents = [p.percent for p in world.progress.history[job.id] if p.stage == "transcoding"]
    assert percents == sorted(percents) and percents[-1] == 100


def test_a_duplicate_delivery_of_a_finished_job_does_nothing_and_is_acknowledged(world):
    job = submit(world)
    world.video_handler().handle(job.id)
    before = world.video_jobs.get(job.id)
    outcome = world.video_handler().handle(job.id)
    assert outcome.action is Action.ACK and "already succeeded" in outcome.reason
    assert world.video_jobs.get(job.id) == before


def test_a_job_locked_by_another_worker_is_not_run_but_checked_again_later(world):
    job = submit(world)
    world.locks.acquire(f"job:{job.id}", ttl_ms=60_000)
    outcome = world.video_handler().handle(job.id)
    assert outcome.action is Action.RETRY_LATER and "another worker" in outcome.reason
    assert world.video_jobs.get(job.id).status is JobStatus.QUEUED
    assert world.progress.read(job.id) is None


def test_a_duplicate_delivery_while_the_holder_finishes_is_acknowledged_once_done(world):
    job = submit(world)
    lock = world.locks.acquire(f"job:{job.id}", ttl_ms=60_000)
    world.locks.release(lock)
    world.video_handler().handle(job.id)
    world.locks.acquire(f"job:{job.id}", ttl_ms=60_000)  # someone else now holds it
    assert world.video_handler().handle(job.id).action is Action.ACK


def test_a_crashed_workers_lock_expires_and_the_job_runs_on_redelivery(world):
    job = submit(world)
    world.locks.acquire(f"job:{job.id}", ttl_ms=60_000)
    world.clock.advance(61)
    world.video_handler().handle(job.id)
    assert world.video_jobs.get(job.id).status is JobStatus.SUCCEEDED


def test_a_job_left_processing_by_a_lost_worker_is_resumed_as_a_new_attempt(world):
    job = submit(world)
    stuck = job.start(world.clock.now())
    world.video_jobs.save(stuck, expected=JobStatus.QUEUED)
    world.video_handler().handle(job.id)
    done = world.video_jobs.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2


def test_a_transient_failure_goes_back_to_the_queue_with_backoff_then_succeeds(world):
    job = submit(world, source="https://cdn.example/clip.mp4")
    world.fetcher.failures_left["https://cdn.example/clip.mp4"] = 1
    first = world.video_handler().handle(job.id)
    assert first.action is Action.RETRY_LATER and first.delay_s == 7  # 10 s base, half jitter
    assert world.video_jobs.get(job.id).status is JobStatus.QUEUED
    world.video_handler().handle(job.id)
    done = world.video_jobs.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2


def test_retry_delays_grow_exponentially_up_to_the_cap(world):
    delays = [world.retry_policy.delay_s(n) for n in (1, 2, 3)]
    assert delays == sorted(delays) and delays[0] < delays[2]


def test_when_attempts_are_exhausted_the_job_fails_with_the_last_reason(world):
    job = submit(world, source="https://cdn.example/clip.mp4")
    world.fetcher.failures_left["https://cdn.example/clip.mp4"] = 99
    outcomes = [world.video_handler().handle(job.id) for _ in range(3)]
    assert [o.action for o in outcomes] == [Action.RETRY_LATER, Action.RETRY_LATER, Action.ACK]
    failed = world.video_jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.attempts == 3
    assert "gave up after 3 attempts" in failed.error and "connection" in failed.error


def test_an_unreadable_source_fails_at_once_with_a_readable_reason(world):
    job = submit(world, content="this is not a video")
    outcome = world.video_handler().handle(job.id)
    failed = world.video_jobs.get(job.id)
    assert outcome.action is Action.ACK
    assert failed.status is JobStatus.FAILED and failed.attempts == 1
    assert failed.error == "the source is not a readable video"


def test_an_empty_source_fails_permanently(world):
    job = submit(world, content="")
    world.video_handler().handle(job.id)
    assert "empty" in world.video_jobs.get(job.id).error


def test_a_source_longer_than_the_limit_fails_permanently(world):
    job = submit(world, content="FAKEVIDEO 640 360 999999")
    world.video_handler().handle(job.id)
    assert "limit" in world.video_jobs.get(job.id).error


def test_a_job_cancelled_while_queued_is_never_run(world):
    job = submit(world)
    world.service().cancel(job)
    outcome = world.video_handler().handle(job.id)
    assert outcome.action is Action.ACK
    assert world.video_jobs.get(job.id).status is JobStatus.CANCELLED
    assert world.progress.read(job.id) is None


def test_an_unexpected_error_is_treated_as_transient_not_lost(world):
    job = submit(world)

    def broken(*args, **kwargs):
        raise RuntimeError("disk controller hiccup")

    world.transcoder.transcode = broken
    outcome = world.video_handler().handle(job.id)
    assert outcome.action is Action.RETRY_LATER
    assert "RuntimeError" in world.video_jobs.get(job.id).error


def test_the_lock_is_released_after_handling(world):
    job = submit(world)
    world.video_handler().handle(job.id)
    assert not world.locks.is_held(f"job:{job.id}")


def test_a_transient_error_can_ask_for_a_longer_delay(world):
    decision = world.retry_policy.decide(1, TransientError("throttled", retry_after_s=120))
    assert decision.delay_s == 120
