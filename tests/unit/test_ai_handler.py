from dataclasses import replace

from src.application.commands import SubmitAIJob
from src.application.handlers import ProcessAIJobHandler
from src.application.outcomes import Action
from src.application.ports import RemoteState
from src.domain.errors import (
    PermanentError,
    QuotaExhausted,
    ServiceUnavailable,
    SubmissionOutcomeUnknown,
    TransientError,
)
from src.domain.jobs import ProviderCancel
from src.domain.status import JobStatus
from src.infrastructure.memory.inference import Failure


def submit(world, model="gen4_turbo", **kw):
    world.storage.put_bytes("uploads/u1/cat.png", b"png", "image/png")
    fields = {"owner_id": "u1", "model": model, "mode": "i2v", "input_image": "uploads/u1/cat.png",
              "prompt": "a cat", "production_path": "cinema"}
    if model != "wan_local":
        fields["duration_s"] = 5
    fields.update(kw)
    return world.service().submit_ai(SubmitAIJob(**fields))


def drive(world, job_id, limit=10):
    """Deliver the job's message until the handler stops asking to come back."""
    handler = world.ai_handler()
    outcomes = []
    for _ in range(limit):
        outcome = handler.handle(job_id)
        outcomes.append(outcome)
        if outcome.action is not Action.RETRY_LATER:
            break
        world.clock.advance(outcome.delay_s)
    return outcomes


# --- local (Wan) ---


def test_a_wan_job_generates_locally_and_stores_the_video(world):
    job = submit(world, model="wan_local", mode="t2v", input_image=None, num_frames=5)
    outcome = world.ai_handler().handle(job.id)
    done = world.ai_jobs.get(job.id)
    assert outcome.action is Action.ACK and done.status is JobStatus.SUCCEEDED
    assert world.storage.exists(done.outputs[0].key)
    generating = [p.percent for p in world.progress.history[job.id] if p.stage == "generating"]
    assert generating == [25, 50, 75, 100]


def test_the_production_path_workflow_prepares_the_prompt(world):
    job = submit(world, model="wan_local", mode="t2v", input_image=None, production_path="cartoon")
    world.ai_handler().handle(job.id)
    assert "cartoon" in world.generator.calls[0].prompt.lower()
    assert world.ai_jobs.get(job.id).prompt == "a cat"  # the stored request is unchanged


def test_a_shutdown_stops_wan_between_steps_and_hands_the_job_back(world):
    job = submit(world, model="wan_local", mode="t2v", input_image=None)
    outcome = world.ai_handler().handle(job.id, shutting_down=lambda: True)
    assert outcome.action is Action.RELEASE
    assert world.ai_jobs.get(job.id).status is JobStatus.QUEUED


def test_a_running_wan_job_cancelled_by_a_user_stops_at_its_next_step(world):
    job = submit(world, model="wan_local", mode="t2v", input_image=None)
    handler = world.ai_handler()
    service = world.service()
    original = world.generator.generate

    def cancel_midway(job_, **kw):
        service.cancel(world.ai_jobs.get(job_.id))
        return original(job_, **kw)

    world.generator.generate = cancel_midway
    outcome = handler.handle(job.id)
    assert outcome.action is Action.ACK
    assert world.ai_jobs.get(job.id).status is JobStatus.CANCELLED


def test_a_wan_failure_that_is_permanent_fails_the_job(world):
    world.generator.fail_with.append(PermanentError("prompt refused by the safety filter"))
    job = submit(world, model="wan_local", mode="t2v", input_image=None)
    world.ai_handler().handle(job.id)
    assert world.ai_jobs.get(job.id).error == "prompt refused by the safety filter"


# --- remote (Runway, Luma) ---


def test_a_remote_job_waits_for_the_provider_without_holding_a_worker_then_succeeds(world):
    job = submit(world)
    first = world.ai_handler().handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    assert first.action is Action.RETRY_LATER
    assert waiting.status is JobStatus.WAITING_PROVIDER and waiting.provider_task_id == "task-1"
    outcomes = drive(world, job.id)
    done = world.ai_jobs.get(job.id)
    assert outcomes[-1].action is Action.ACK and done.status is JobStatus.SUCCEEDED
    assert world.storage.exists(done.outputs[0].key)  # copied into our storage at once
    assert len(world.runway.submissions) == 1


def test_the_provider_gets_a_presigned_url_for_a_stored_input_image(world):
    job = submit(world)
    world.ai_handler().handle(job.id)
    _, image_url, _ = world.runway.submissions[0]
    assert image_url.startswith("memory://uploads/u1/cat.png")


def test_a_redelivered_message_for_a_submitted_job_polls_and_never_submits_again(world):
    job = submit(world)
    handler = world.ai_handler()
    handler.handle(job.id)
    handler.handle(job.id)  # duplicate delivery
    handler.handle(job.id)
    assert len(world.runway.submissions) == 1


def test_a_job_left_processing_after_its_task_id_was_saved_resumes_polling(world):
    job = submit(world)
    world.ai_handler().handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    stuck = waiting.start(world.clock.now())  # a worker died while collecting the output
    world.ai_jobs.save(stuck, expected=JobStatus.WAITING_PROVIDER)
    drive(world, job.id)
    assert world.ai_jobs.get(job.id).status is JobStatus.SUCCEEDED
    assert len(world.runway.submissions) == 1


def test_a_crash_between_submit_and_saving_the_task_id_never_pays_twice(world):
    job = submit(world)
    started = world.ai_jobs.get(job.id).start(world.clock.now())
    world.ai_jobs.save(started, expected=JobStatus.QUEUED)
    submitting = started.mark_submitting(world.clock.now())
    world.ai_jobs.save(submitting, expected=JobStatus.PROCESSING)
    outcome = world.ai_handler().handle(job.id)
    failed = world.ai_jobs.get(job.id)
    assert outcome.action is Action.ACK and failed.status is JobStatus.FAILED
    assert "outcome was never recorded" in failed.error
    assert world.runway.submissions == []


def test_a_submission_whose_outcome_is_unknown_fails_and_says_so(world):
    world.runway.submit_errors.append(SubmissionOutcomeUnknown("timed out after sending the request"))
    job = submit(world)
    world.ai_handler().handle(job.id)
    failed = world.ai_jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and "timed out" in failed.error


def test_a_throttled_submission_is_retried_later_and_submits_once_in_the_end(world):
    world.runway.submit_errors.append(TransientError("429 Too Many Requests", retry_after_s=30))
    job = submit(world)
    first = world.ai_handler().handle(job.id)
    assert first.action is Action.RETRY_LATER and first.delay_s >= 30
    assert world.ai_jobs.get(job.id).submitted_at is None
    world.clock.advance(first.delay_s)
    drive(world, job.id)
    assert world.ai_jobs.get(job.id).status is JobStatus.SUCCEEDED
    assert len(world.runway.submissions) == 1


def test_a_provider_failure_fails_the_job_with_a_message_for_its_owner_and_the_code_in_the_log(world, caplog):
    world.runway.outcome = RemoteState.FAILED
    job = submit(world)
    drive(world, job.id)
    failed = world.ai_jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and "content moderation" in failed.error
    assert "SAFETY.INPUT.TEXT" not in failed.error and "SAFETY.INPUT.TEXT" in caplog.text
    assert len(world.runway.submissions) == 1


def test_a_retryable_task_failure_starts_a_new_task_and_keeps_every_task_id(world):
    world.runway.failures = [Failure(code="INTERNAL.BAD_OUTPUT.CODE01", user_error="rejected its output",
                                     retryable=True)]
    job = submit(world)
    outcomes = drive(world, job.id)
    done = world.ai_jobs.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.error is None
    assert done.provider_task_history == ("task-1", "task-2") and done.provider_task_id == "task-2"
    assert done.attempts == 2 and len(world.runway.submissions) == 2
    assert any(o.reason == "rejected its output" for o in outcomes)


def test_retryable_task_failures_stop_at_the_attempt_budget(world):
    world.runway.failures = [Failure(code="INTERNAL", user_error="internal error", retryable=True)] * 5
    job = submit(world)
    drive(world, job.id, limit=30)
    failed = world.ai_jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and "gave up after 3 attempts" in failed.error
    assert failed.provider_task_history == ("task-1", "task-2", "task-3")
    assert len(world.runway.submissions) == 3  # max_attempts of the world's retry policy


def test_an_expired_output_url_is_fetched_again_before_failing(world):
    world.runway.expired_downloads = 1
    job = submit(world)
    drive(world, job.id)
    done = world.ai_jobs.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    first, second = world.runway.downloads
    assert first != second  # the second URL came from a new poll
    assert len(world.runway.submissions) == 1


def test_output_urls_that_keep_expiring_fail_the_job_after_a_bounded_number_of_polls(world):
    world.runway.expired_downloads = 10
    job = submit(world)
    drive(world, job.id)
    failed = world.ai_jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and "gone" in failed.error
    assert len(world.runway.downloads) == 3  # the first URL and two fresh ones
    assert len(world.runway.submissions) == 1


# --- a provider's used-up quota (429 on create) ---


def test_a_used_up_quota_waits_without_spending_an_attempt_and_says_until_when(world):
    world.runway.submit_errors.append(QuotaExhausted("429 daily limit", retry_after_s=600))
    job = submit(world)
    first = world.ai_handler().handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    assert first.action is Action.RETRY_LATER and first.delay_s == 600
    assert waiting.status is JobStatus.QUEUED and waiting.attempts == 0
    assert waiting.submitted_at is None and waiting.quota_wait_since == world.clock.now()
    assert "daily quota" in waiting.error and "until about" in waiting.error
    world.clock.advance(first.delay_s)
    drive(world, job.id)
    done = world.ai_jobs.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1 and done.quota_wait_since is None
    assert len(world.runway.submissions) == 1


def test_a_quota_wait_rechecks_within_the_sqs_delay_cap_and_without_retry_after(world):
    world.runway.submit_errors += [QuotaExhausted("429", retry_after_s=7200), QuotaExhausted("429")]
    job = submit(world)
    handler = world.ai_handler()
    long_wait = handler.handle(job.id)
    assert "until about 2026-01-01 02:00:00 UTC" in world.ai_jobs.get(job.id).error  # the provider's word
    world.clock.advance(long_wait.delay_s)
    no_header = handler.handle(job.id)
    assert (long_wait.delay_s, no_header.delay_s) == (900, 300)
    assert world.ai_jobs.get(job.id).attempts == 0


def test_an_absurd_retry_after_is_bounded_and_crashes_nothing(world):
    world.runway.submit_errors.append(QuotaExhausted("429", retry_after_s=1e15))
    job = submit(world)
    outcome = world.ai_handler().handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    assert outcome.action is Action.RETRY_LATER and outcome.delay_s == 900
    assert "until about 2026-01-02 00:00:00 UTC" in waiting.error  # no later than the wait limit


def test_a_quota_that_stays_used_up_fails_the_job_after_the_configured_wait(world):
    world.runway.submit_errors += [QuotaExhausted("429", retry_after_s=900) for _ in range(10)]
    job = submit(world)
    handler = world.ai_handler()
    handler.quota_wait = replace(handler.quota_wait, max_wait_s=3600)
    outcomes = []
    while world.ai_jobs.get(job.id).status is not JobStatus.FAILED:
        outcomes.append(handler.handle(job.id))
        world.clock.advance(outcomes[-1].delay_s)
    failed = world.ai_jobs.get(job.id)
    assert len(outcomes) == 5  # 0, 15, 30, 45 minutes waited, then an hour: given up
    assert "daily quota stayed used up for 1 h" in failed.error and "nothing was charged" in failed.error
    assert failed.attempts == 0 and world.runway.submissions == []


def test_a_task_cancelled_at_the_provider_cancels_the_job(world):
    world.runway.outcome = RemoteState.CANCELLED
    job = submit(world)
    drive(world, job.id)
    cancelled = world.ai_jobs.get(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.provider_cancel is ProviderCancel.CONFIRMED  # nothing left to tell the provider
    assert world.runway.cancelled == []


def test_a_copy_of_the_output_that_times_out_is_tried_again_and_the_job_still_succeeds(world):
    job = submit(world)
    download = world.runway.download
    failures = [TransientError("runway: output download failed: ReadTimeout")]

    def flaky(url, dest):
        if failures:
            raise failures.pop()
        return download(url, dest)

    world.runway.download = flaky
    outcomes = drive(world, job.id)

    done = world.ai_jobs.get(job.id)
    assert Action.RETRY_LATER in [o.action for o in outcomes] and outcomes[-1].action is Action.ACK
    assert done.status is JobStatus.SUCCEEDED and world.storage.exists(done.outputs[0].key)
    assert len(world.runway.submissions) == 1


def test_check_backs_slow_down_as_the_task_ages_but_never_exceed_the_sqs_cap(world):
    world.runway.polls_to_finish = 1000
    job = submit(world)
    outcomes = drive(world, job.id, limit=40)
    delays = [o.delay_s for o in outcomes]
    assert delays == sorted(delays) and max(delays) <= 900 and delays[-1] > delays[1]


def test_provider_progress_is_recorded_while_waiting(world):
    world.runway.polls_to_finish = 4
    job = submit(world)
    drive(world, job.id)
    generating = [p.percent for p in world.progress.history[job.id] if p.stage == "generating"]
    assert generating == sorted(generating) and generating[-1] >= 75


def test_a_missing_input_image_fails_permanently_before_anything_is_paid(world):
    job = submit(world)
    del world.storage.objects["uploads/u1/cat.png"]
    world.ai_handler().handle(job.id)
    failed = world.ai_jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and "not in storage" in failed.error
    assert world.runway.submissions == []


def test_luma_jobs_pass_their_callback_url(world):
    job = submit(world, model="ray-2", duration_s=5, ratio="16:9")
    handler = world.ai_handler()
    luma = handler.remote["luma"]
    handler.handle(job.id)
    assert luma.submissions[0][2] == f"https://api.example/cb/{job.id}"


def test_a_worker_without_the_provider_fails_the_job_clearly(world):
    job = submit(world)
    handler = world.ai_handler()
    handler.remote.clear()
    handler.handle(job.id)
    assert "no 'runway' provider configured" in world.ai_jobs.get(job.id).error


def test_a_relayed_callback_sends_a_check_message_without_changing_the_job(world):
    job = submit(world, model="ray-2", duration_s=5, ratio="16:9")
    world.ai_handler().handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    depth = world.broker.depth("ai-remote")
    world.service().relay_callback(waiting)
    assert world.broker.depth("ai-remote") == depth + 1
    assert world.ai_jobs.get(job.id) == waiting


def test_a_retried_job_forgets_its_old_provider_task(world):
    world.runway.outcome = RemoteState.FAILED
    job = submit(world)
    drive(world, job.id)
    retried = world.service().retry(world.ai_jobs.get(job.id))
    assert retried.provider_task_id is None and retried.submitted_at is None
    assert retried.provider_task_history == ("task-1",)
    world.runway.outcome = RemoteState.SUCCEEDED
    drive(world, job.id)
    assert world.ai_jobs.get(job.id).status is JobStatus.SUCCEEDED
    assert len(world.runway.submissions) == 2



# --- outages around the submission (found by the fault suite) ---


class _FlakySaves:
    """Wraps a repository: the next ``failures`` saves raise ServiceUnavailable (a restarting DB)."""

    def __init__(self, repo, failures, *, commit_first=False):
        self.repo, self.failures, self.commit_first = repo, failures, commit_first

    def __getattr__(self, name):
        return getattr(self.repo, name)

    def save(self, job, *, expected):
        if self.failures and job.provider_task_id:
            self.failures -= 1
            if self.commit_first:  # committed, but the connection broke before the answer
                self.repo.save(job, expected=expected)
                self.commit_first = False
            raise ServiceUnavailable("the database is unavailable: the database system is shutting down")
        return self.repo.save(job, expected=expected)


def _handler_with(world, jobs):
    base = {**world.base(jobs)}
    return ProcessAIJobHandler(storage=world.storage, remote={"runway": world.runway}, **base)


def test_the_task_id_is_saved_through_a_database_outage_so_the_paid_task_is_not_lost(world):
    job = submit(world)
    outcome = _handler_with(world, _FlakySaves(world.ai_jobs, 2)).handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    assert outcome.action is Action.RETRY_LATER
    assert waiting.status is JobStatus.WAITING_PROVIDER and waiting.provider_task_id == "task-1"
    drive(world, job.id)
    assert world.ai_jobs.get(job.id).status is JobStatus.SUCCEEDED
    assert len(world.runway.submissions) == 1


def test_a_task_id_save_that_committed_before_the_connection_broke_counts_as_saved(world):
    job = submit(world)
    outcome = _handler_with(world, _FlakySaves(world.ai_jobs, 1, commit_first=True)).handle(job.id)
    assert outcome.action is Action.RETRY_LATER
    assert world.ai_jobs.get(job.id).provider_task_id == "task-1"


def test_a_lock_store_outage_at_release_does_not_hide_the_jobs_outcome(world):
    job = submit(world)
    release = world.locks.release

    def down(lock):
        raise ServiceUnavailable("Redis is unavailable")

    world.locks.release = down
    outcome = world.ai_handler().handle(job.id)
    world.locks.release = release
    assert outcome.action is Action.RETRY_LATER  # waiting for the provider, as without the outage
    assert world.ai_jobs.get(job.id).status is JobStatus.WAITING_PROVIDER


# --- cancel stops the provider's meter ---


def _cancel_waiting(world, **kw):
    """A submitted Runway job, then cancelled through the service (as the API does)."""
    job = submit(world, **kw)
    world.ai_handler().handle(job.id)
    world.service().cancel(world.ai_jobs.get(job.id))
    return world.ai_jobs.get(job.id)


def test_a_cancelled_waiting_job_stops_its_task_at_the_provider_once_and_says_so(world):
    cancelled = _cancel_waiting(world)

    outcome = world.ai_handler().handle(cancelled.id)  # the cancel message
    again = world.ai_handler().handle(cancelled.id)  # a duplicate delivery

    done = world.ai_jobs.get(cancelled.id)
    assert outcome.action is Action.ACK and again.action is Action.ACK
    assert world.runway.cancelled == [cancelled.provider_task_id]
    assert done.status is JobStatus.CANCELLED and done.provider_cancel is ProviderCancel.CONFIRMED
    assert done.provider_cancel_detail == "runway accepted the DELETE of task task-1"


def test_a_task_the_provider_no_longer_knows_is_recorded_as_gone(world):
    cancelled = _cancel_waiting(world)
    world.runway.polls.clear()  # deleted at the provider meanwhile

    world.ai_handler().handle(cancelled.id)

    done = world.ai_jobs.get(cancelled.id)
    assert done.provider_cancel is ProviderCancel.GONE and "no longer knew" in done.provider_cancel_detail


def test_a_transient_provider_error_on_cancel_is_retried_then_the_cancel_goes_through(world):
    world.runway.cancel_errors.append(TransientError("runway answered 503 to DELETE 4 times"))
    cancelled = _cancel_waiting(world)

    first = world.ai_handler().handle(cancelled.id)
    trying = world.ai_jobs.get(cancelled.id)
    world.clock.advance(first.delay_s)
    second = world.ai_handler().handle(cancelled.id)

    assert first.action is Action.RETRY_LATER and first.delay_s > 0
    assert trying.provider_cancel is ProviderCancel.REQUESTED and trying.provider_cancel_tries == 1
    assert "503" in trying.provider_cancel_detail
    assert second.action is Action.ACK
    assert world.ai_jobs.get(cancelled.id).provider_cancel is ProviderCancel.CONFIRMED


def test_a_provider_that_keeps_failing_the_cancel_is_given_up_on_and_recorded(world):
    world.runway.cancel_errors.extend([TransientError("connection refused")] * 10)
    cancelled = _cancel_waiting(world)

    outcomes = drive(world, cancelled.id)

    done = world.ai_jobs.get(cancelled.id)
    assert [o.action for o in outcomes] == [Action.RETRY_LATER] * 2 + [Action.ACK]  # max_attempts=3
    assert done.provider_cancel is ProviderCancel.FAILED
    assert "gave up after 3 attempts" in done.provider_cancel_detail
    assert world.runway.cancelled == []


def test_a_refused_or_crashing_cancel_is_recorded_and_never_escapes_the_handler(world):
    world.runway.cancel_errors.extend([
        PermanentError("runway refused DELETE (401): the API key was not accepted"), RuntimeError("boom"),
    ])
    refused = _cancel_waiting(world)
    crashing = _cancel_waiting(world)

    world.ai_handler().handle(refused.id)
    outcome = world.ai_handler().handle(crashing.id)

    assert world.ai_jobs.get(refused.id).provider_cancel is ProviderCancel.FAILED
    assert "API key" in world.ai_jobs.get(refused.id).provider_cancel_detail
    assert outcome.action is Action.RETRY_LATER and "boom" in outcome.reason


def test_a_cancel_while_the_submission_is_on_its_way_stops_the_task_once_its_id_is_known(world):
    job = submit(world)
    service = world.service()
    original = world.runway.submit

    def cancel_during_submit(job_, **kw):
        task_id = original(job_, **kw)
        service.cancel(world.ai_jobs.get(job.id))  # the API, while Runway is answering
        return task_id

    world.runway.submit = cancel_during_submit
    outcome = world.ai_handler().handle(job.id)
    world.ai_handler().handle(job.id)  # the API's cancel message

    done = world.ai_jobs.get(job.id)
    assert outcome.action is Action.ACK
    assert done.status is JobStatus.CANCELLED and done.provider_task_id == "task-1"
    assert done.provider_cancel is ProviderCancel.CONFIRMED
    assert world.runway.cancelled == ["task-1"]  # reached once, by the submitting worker


def test_a_cancel_between_the_workers_load_and_its_submit_means_nothing_is_submitted(world):
    job = submit(world)
    service = world.service()
    handler = world.ai_handler()
    original = handler.start

    def start_then_cancel(job_):
        started = original(job_)
        service.cancel(started)  # lands after the load, before the paid request
        return started

    handler.start = start_then_cancel
    outcome = handler.handle(job.id)

    done = world.ai_jobs.get(job.id)
    assert outcome.action is Action.ACK and done.status is JobStatus.CANCELLED
    assert world.runway.submissions == [] and world.runway.cancelled == []
    assert done.provider_cancel is None  # nothing was paid for, so nothing to stop


def test_a_poll_that_finds_success_for_a_job_cancelled_meanwhile_downloads_nothing(world):
    world.runway.polls_to_finish = 1
    job = submit(world)
    world.ai_handler().handle(job.id)
    waiting = world.ai_jobs.get(job.id)
    world.ai_jobs.save(waiting.start(world.clock.now()), expected=JobStatus.WAITING_PROVIDER)  # redelivery
    service = world.service()
    original = world.runway.poll
    downloads = []
    world.runway.download = lambda url, dest: downloads.append(url)

    def cancel_during_poll(task_id):
        service.cancel(world.ai_jobs.get(job.id))
        return original(task_id)

    world.runway.poll = cancel_during_poll
    outcome = world.ai_handler().handle(job.id)

    done = world.ai_jobs.get(job.id)
    assert outcome.action is Action.ACK and done.status is JobStatus.CANCELLED
    assert downloads == [] and done.outputs == ()
    assert not any(key.startswith(f"outputs/{job.id}") for key in world.storage.objects)
    assert done.provider_cancel is ProviderCancel.CONFIRMED  # the finished task was deleted


def test_a_cancel_message_while_another_worker_holds_the_job_comes_back_later(world):
    cancelled = _cancel_waiting(world)
    held = world.locks.acquire(f"job:{cancelled.id}", ttl_ms=60_000)

    outcome = world.ai_handler().handle(cancelled.id)
    world.locks.release(held)
    world.clock.advance(outcome.delay_s)
    world.ai_handler().handle(cancelled.id)

    assert outcome.action is Action.RETRY_LATER
    assert world.runway.cancelled == [cancelled.provider_task_id]


def test_a_cancelled_job_whose_submission_outcome_is_unknown_says_nothing_could_be_stopped(world):
    job = submit(world)
    started = world.ai_jobs.get(job.id).start(world.clock.now())
    world.ai_jobs.save(started, expected=JobStatus.QUEUED)
    submitting = started.mark_submitting(world.clock.now())
    world.ai_jobs.save(submitting, expected=JobStatus.PROCESSING)  # then the worker died
    world.service().cancel(submitting)

    world.ai_handler().handle(job.id)

    done = world.ai_jobs.get(job.id)
    assert done.provider_cancel is ProviderCancel.FAILED and "dashboard" in done.provider_cancel_detail
    assert world.runway.submissions == [] and world.runway.cancelled == []


def test_a_cancelled_wan_job_asks_no_provider_anything(world):
    job = submit(world, model="wan_local", mode="t2v", input_image=None)
    depth = world.broker.depth("ai-gpu")

    world.service().cancel(world.ai_jobs.get(job.id))
    outcome = world.ai_handler().handle(job.id)

    assert outcome.action is Action.ACK and world.ai_jobs.get(job.id).provider_cancel is None
    assert world.broker.depth("ai-gpu") == depth and world.generator.calls == []
