"""ProcessAIJobHandler with the real Runway and Luma adapters, over HTTP to the fake APIs.

Everything else is the in-memory fakes, wired by bootstrap; the test plays the worker loop:
receive, handle, and for ``retry_later`` send the delayed check-back message.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field, replace

import pytest
from PIL import Image

from src import bootstrap
from src.application.commands import SubmitAIJob
from src.application.messages import JobMessage
from src.application.outcomes import Action, Outcome
from src.config import Settings
from src.domain.jobs import AIJob, ProviderCancel
from src.domain.status import JobStatus
from src.infrastructure.memory import FakeClock
from src.infrastructure.net import UrlPolicy
from tests.fakes import CallbackReceiver, FakeLuma, FakeRunway
from tests.integration.provider_helpers import frame_count

QUEUE = "ai-remote"


@dataclass
class Worker:
    """One remote AI worker's collaborators, built by bootstrap on in-memory adapters."""

    adapters: bootstrap.Adapters
    clock: FakeClock
    callback_policy: UrlPolicy | None = field(default=None)

    def __post_init__(self) -> None:
        self.service = bootstrap.job_service(self.adapters)
        self.handler = bootstrap.ai_handler(self.adapters, callback_policy=self.callback_policy)
        self.consumer = self.adapters.consumer_factory(QUEUE)

    def submit(self, model: str = "gen4.5", prompt: str = "a red dress turning", **fields: object) -> AIJob:
        if model == "gen4.5":
            fields.setdefault("duration_s", 5)
        command = SubmitAIJob(owner_id="u1", model=model, mode="t2v", prompt=prompt,
                              production_path="fashion", **fields)  # type: ignore[arg-type]
        return self.service.submit_ai(command)

    def job(self, job_id: str) -> AIJob:
        return self.adapters.ai_jobs.get(job_id)

    def deliver_one(self, *, ack: bool = True) -> Outcome | None:
        """Handle the next visible message as the worker loop would; None when none is visible."""
        messages = self.consumer.receive(max_messages=1, wait_s=0)
        if not messages:
            return None
        message = messages[0]
        job_id = JobMessage.decode(message.body, queue=QUEUE).job_id
        outcome = self.handler.handle(job_id)
        if outcome.action is Action.RETRY_LATER:
            self.adapters.publisher.publish([JobMessage.for_job(self.job(job_id))], delay_s=outcome.delay_s)
        if outcome.action is Action.RELEASE:
            self.consumer.release(message)
        elif ack:
            self.consumer.ack([message])
        return outcome

    def run_until_done(self, job_id: str, *, advance_clock: bool = True, timeout_s: float = 5.0) -> list[str]:
        """Deliver messages (moving the fake clock to each check-back) until the job ends."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while not self.job(job_id).status.is_terminal:
            assert time.monotonic() < deadline, f"job did not finish; statuses seen: {seen}"
            outcome = self.deliver_one()
            if outcome is None:
                if advance_clock:
                    self.clock.advance(900)
                time.sleep(0.05)  # the fake provider generates in real time
                continue
            seen.append(self.job(job_id).status.value)
        return seen


def worker_for(*, callback_policy: UrlPolicy | None = None, **settings: object) -> Worker:
    clock = FakeClock()
    config = Settings(queue_backend="memory", worker_type="remote", provider_timeout_s=0.5,
                      provider_create_timeout_s=1.0, **settings)
    return Worker(bootstrap.build(config, clock=clock), clock, callback_policy)


# a test receiver on this machine, let through explicitly: production never passes a policy
LOOPBACK_RECEIVER = UrlPolicy.build(allow_http_hosts=["localhost"],
                                    allowed_private_networks=["127.0.0.0/8", "::1/128"])


def local_name(url: str) -> str:
    """The receiver's URL with a host name (the guard refuses IP literals)."""
    return url.replace("127.0.0.1", "localhost")


@pytest.fixture
def runway_worker(runway_server: FakeRunway) -> Worker:
    return worker_for(runway_base_url=runway_server.base_url, runway_api_key=runway_server.api_key)


def test_a_remote_job_is_submitted_once_waits_without_a_worker_and_lands_in_storage(
    runway_worker, runway_server, tmp_path
):
    job = runway_worker.submit()
    assert job.status is JobStatus.QUEUED

    first = runway_worker.deliver_one()
    waiting = runway_worker.job(job.id)
    assert first.action is Action.RETRY_LATER and first.delay_s >= 5
    assert waiting.status is JobStatus.WAITING_PROVIDER
    assert waiting.provider_task_id in runway_server.tasks and waiting.submitted_at is not None
    assert waiting.attempts == 1

    seen = runway_worker.run_until_done(job.id)

    done = runway_worker.job(job.id)
    assert seen[-1] == "succeeded" and set(seen[:-1]) == {"waiting_provider"}
    assert runway_server.create_count() == 1
    assert "Fashion film" in runway_server.create_bodies[0]["promptText"]
    key = done.outputs[0].key
    runway_worker.adapters.storage.download(key, tmp_path / "v.mp4")
    assert frame_count(tmp_path / "v.mp4") == (8, 32, 32)
    assert done.outputs[0].size_bytes == (tmp_path / "v.mp4").stat().st_size


def test_a_redelivered_message_resumes_polling_and_never_submits_again(runway_worker, runway_server):
    job = runway_worker.submit()
    runway_worker.deliver_one(ack=False)  # the worker dies before acking: SQS will redeliver
    runway_worker.adapters.publisher.publish([JobMessage.for_job(job)])  # and a duplicate, for good measure

    runway_worker.clock.advance(runway_worker.adapters.settings.visibility_timeout_s + 1)
    runway_worker.run_until_done(job.id)

    assert runway_worker.job(job.id).status is JobStatus.SUCCEEDED
    assert runway_server.create_count() == 1


def test_a_crash_between_submit_and_saving_the_task_id_fails_clearly_without_a_second_create(
    runway_worker, runway_server
):
    job = runway_worker.submit()
    now = runway_worker.clock.now()
    started = job.start(now)
    runway_worker.adapters.ai_jobs.save(started.mark_submitting(now), expected=JobStatus.QUEUED)

    outcome = runway_worker.deliver_one()

    failed = runway_worker.job(job.id)
    assert outcome.action is Action.ACK and failed.status is JobStatus.FAILED
    assert "outcome was never recorded" in failed.error and "paying twice" in failed.error
    assert runway_server.create_count() == 0


def test_a_create_that_times_out_fails_as_unknown_and_a_redelivery_does_not_pay_again(
    runway_worker, runway_server
):
    job = runway_worker.submit()
    runway_server.stall_next_create(2.0)

    runway_worker.deliver_one(ack=False)
    runway_worker.clock.advance(runway_worker.adapters.settings.visibility_timeout_s + 1)
    runway_worker.deliver_one()

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "may exist and be billed" in failed.error
    assert runway_server.create_count() == 1


def test_a_used_up_daily_quota_makes_the_job_wait_visibly_without_spending_an_attempt(
    runway_worker, runway_server
):
    runway_server.use_up_daily_quota(2, headers={"Retry-After": "120"})
    job = runway_worker.submit()

    first = runway_worker.deliver_one()
    waiting = runway_worker.job(job.id)
    assert first.action is Action.RETRY_LATER and first.delay_s == 120
    assert waiting.status is JobStatus.QUEUED and waiting.attempts == 0
    assert "waiting for runway's daily quota until about" in waiting.error
    runway_worker.clock.advance(120)
    runway_worker.run_until_done(job.id)

    done = runway_worker.job(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1 and done.error is None
    assert runway_server.statuses("POST") == [429, 429, 200]  # two refusals, one paid create
    assert runway_server.create_count() == 1


def test_a_quota_that_stays_used_up_fails_the_job_after_the_configured_wait(runway_server):
    worker = worker_for(runway_base_url=runway_server.base_url, runway_api_key=runway_server.api_key,
                        provider_quota_wait_s=1800)
    runway_server.use_up_daily_quota(10, headers={"Retry-After": "900"})
    job = worker.submit()

    seen = worker.run_until_done(job.id)

    failed = worker.job(job.id)
    assert seen == ["queued", "queued", "failed"]  # refused at 0, 15 and 30 minutes
    assert failed.status is JobStatus.FAILED and "daily quota stayed used up for 0.5 h" in failed.error
    assert runway_server.statuses("POST") == [429, 429, 429] and runway_server.create_count() == 0


def test_a_safety_failure_fails_the_job_for_good_with_a_message_for_its_owner(
    runway_worker, runway_server, caplog
):
    job = runway_worker.submit(prompt="something forbidden")

    runway_worker.run_until_done(job.id)

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "content moderation" in failed.error
    assert "SAFETY" not in failed.error and "SAFETY.INPUT.TEXT" in caplog.text  # the code: for operators
    assert runway_server.create_count() == 1


def test_a_bad_output_failure_starts_a_new_task_and_the_job_keeps_both_task_ids(runway_worker, runway_server):
    runway_server.fail_next_tasks("INTERNAL.BAD_OUTPUT.CODE01")
    job = runway_worker.submit()

    runway_worker.run_until_done(job.id)

    done = runway_worker.job(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2
    first, second = done.provider_task_history
    assert second == done.provider_task_id and first != second
    assert runway_server.describe(runway_server.tasks[first])["failureCode"] == "INTERNAL.BAD_OUTPUT.CODE01"
    assert runway_server.create_count() == 2


@pytest.mark.parametrize(("code", "says"), [
    ("ASSET.INVALID", "valid, supported image"),
    ("INPUT_PREPROCESSING.SAFETY.TEXT", "content moderation"),
    ("SAFETY.OUTPUT.VIDEO", "generated video was declined"),
])
def test_failures_that_a_new_task_cannot_fix_fail_at_once(runway_worker, runway_server, code, says):
    runway_server.fail_next_tasks(code)
    job = runway_worker.submit()

    runway_worker.run_until_done(job.id)

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and says in failed.error and code not in failed.error
    assert runway_server.create_count() == 1


def test_internal_failures_are_retried_within_the_attempt_budget_then_fail(runway_server):
    worker = worker_for(runway_base_url=runway_server.base_url, runway_api_key=runway_server.api_key,
                        max_attempts=2)
    runway_server.fail_next_tasks("INTERNAL", "INPUT_PREPROCESSING.INTERNAL", "INTERNAL")
    job = worker.submit()

    worker.run_until_done(job.id)

    failed = worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "gave up after 2 attempts" in failed.error
    assert len(failed.provider_task_history) == 2 and runway_server.create_count() == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_create_fails_as_unknown_and_is_never_sent_again(runway_worker, runway_server, status):
    runway_server.lose_next_create_answer(status)
    job = runway_worker.submit()

    runway_worker.deliver_one(ack=False)
    runway_worker.clock.advance(runway_worker.adapters.settings.visibility_timeout_s + 1)
    runway_worker.deliver_one()  # the redelivery

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "may exist and be billed" in failed.error
    assert runway_server.statuses("POST") == [status] and runway_server.create_count() == 1


def test_a_created_answer_without_a_task_id_fails_as_unknown(runway_worker, runway_server):
    runway_server.garble_next_create()
    job = runway_worker.submit()

    runway_worker.run_until_done(job.id)

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "no readable task id" in failed.error
    assert runway_server.create_count() == 1


def test_an_expired_output_url_is_fetched_again_and_the_job_succeeds(runway_worker, runway_server):
    runway_server.hand_out_expired_urls(2)
    job = runway_worker.submit()

    runway_worker.run_until_done(job.id)

    assert runway_worker.job(job.id).status is JobStatus.SUCCEEDED
    outputs = [status for method, path, status in runway_server.requests if path.startswith("/outputs/")]
    assert outputs == [403, 403, 200] and runway_server.create_count() == 1


def test_output_urls_that_keep_expiring_fail_the_job_after_bounded_refreshes(runway_worker, runway_server):
    runway_server.hand_out_expired_urls(10)
    job = runway_worker.submit()

    runway_worker.run_until_done(job.id)

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "output is gone (403)" in failed.error
    outputs = [status for method, path, status in runway_server.requests if path.startswith("/outputs/")]
    assert outputs == [403, 403, 403]


def test_a_task_cancelled_at_the_provider_cancels_the_job(runway_worker, runway_server):
    job = runway_worker.submit()
    runway_worker.deliver_one()
    runway_server.cancel_elsewhere(runway_worker.job(job.id).provider_task_id)  # e.g. its dashboard

    runway_worker.run_until_done(job.id)

    assert runway_worker.job(job.id).status is JobStatus.CANCELLED


def test_a_relayed_luma_callback_makes_the_worker_fetch_the_generation_at_once():
    worker: Worker | None = None

    def relay(path: str, body: object) -> None:  # what the API's webhook view does
        job_id, token = path.rsplit("/", 2)[-2:]
        job = worker.job(job_id)
        if token == job.callback_token:
            worker.service.relay_callback(job)

    with CallbackReceiver(on_callback=relay) as receiver, FakeLuma(generation_s=0.2) as luma:
        public = local_name(receiver.base_url)
        worker = worker_for(luma_base_url=luma.base_url, luma_api_key=luma.api_key,
                            public_base_url=public, callback_policy=LOOPBACK_RECEIVER)
        job = worker.submit(model="ray-2")
        worker.deliver_one()
        callback_url = luma.create_bodies[0]["callback_url"]

        seen = worker.run_until_done(job.id, advance_clock=False)  # no check-back comes due

        assert callback_url == f"{public}/api/v1/webhooks/luma/{job.id}/{job.callback_token}"
        assert seen[-1] == "succeeded" and len(receiver.received) >= 1
        assert luma.create_count() == 1
        assert worker.job(job.id).outputs[0].key == f"outputs/{job.id}/video.mp4"


def test_a_luma_job_without_callbacks_still_finishes_by_polling(luma_server):
    worker = worker_for(luma_base_url=luma_server.base_url, luma_api_key=luma_server.api_key,
                        public_base_url="")
    job = worker.submit(model="ray-flash-2", duration_s=9)

    worker.run_until_done(job.id)

    done = worker.job(job.id)
    assert done.status is JobStatus.SUCCEEDED and "callback_url" not in luma_server.create_bodies[0]
    assert replace(done, outputs=()).error is None


def startup_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the composition root warned about (a busy machine may add the handler's own warnings)."""
    return [r.getMessage() for r in caplog.records if r.name == "src.bootstrap"]


@pytest.mark.parametrize("public_base_url", [
    "", "http://localhost:8000", "https://localhost", "https://127.0.0.1", "https://10.0.0.7",
    "https://169.254.169.254", "https://[::1]:8443", "http://example.com",
])
def test_luma_gets_no_callback_to_an_address_it_could_not_reach_and_polling_finishes(
    luma_server, public_base_url, caplog
):
    caplog.set_level(logging.WARNING, logger="src.bootstrap")
    worker = worker_for(luma_base_url=luma_server.base_url, luma_api_key=luma_server.api_key,
                        public_base_url=public_base_url)
    warnings_at_start = startup_warnings(caplog)
    first, second = worker.submit(model="ray-2"), worker.submit(model="ray-flash-2")

    worker.run_until_done(first.id)
    worker.run_until_done(second.id)

    assert [body.get("callback_url") for body in luma_server.create_bodies] == [None, None]
    assert worker.job(first.id).status is worker.job(second.id).status is JobStatus.SUCCEEDED
    assert len(warnings_at_start) == 1 and "REELQUEUE_PUBLIC_BASE_URL" in warnings_at_start[0]
    assert startup_warnings(caplog) == warnings_at_start  # once, never per job


def test_a_public_base_url_on_a_public_address_gets_callbacks_without_a_warning(luma_server, caplog):
    caplog.set_level(logging.WARNING, logger="src.bootstrap")
    public = UrlPolicy.build(resolver=lambda host, port: ["93.184.215.14"])  # what DNS would answer
    worker = worker_for(luma_base_url=luma_server.base_url, luma_api_key=luma_server.api_key,
                        public_base_url="https://jobs.example.com/", callback_policy=public)
    job = worker.submit(model="ray-2")

    worker.deliver_one()

    assert luma_server.create_bodies[0]["callback_url"] == (
        f"https://jobs.example.com/api/v1/webhooks/luma/{job.id}/{job.callback_token}")
    assert startup_warnings(caplog) == []


def test_the_callback_path_comes_from_settings(luma_server):
    public = UrlPolicy.build(resolver=lambda host, port: ["93.184.215.14"])
    worker = worker_for(luma_base_url=luma_server.base_url, luma_api_key=luma_server.api_key,
                        public_base_url="https://jobs.example.com/", callback_policy=public,
                        luma_callback_path="/video-api/hooks/luma")
    job = worker.submit(model="ray-2")

    worker.deliver_one()

    assert luma_server.create_bodies[0]["callback_url"] == (
        f"https://jobs.example.com/video-api/hooks/luma/{job.id}/{job.callback_token}")


def test_the_public_base_url_has_no_default():
    assert Settings().public_base_url == ""
def test_an_image_in_storage_reaches_runway_inline_not_as_a_presigned_url(
        runway_worker, runway_server, tmp_path):
    image = tmp_path / "look.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(image)
    runway_worker.adapters.storage.upload("inputs/look.png", image, content_type="image/png")
    command = SubmitAIJob(owner_id="u1", model="gen4_turbo", mode="i2v", prompt="a turn",
                          production_path="fashion", input_image="inputs/look.png")
    job = runway_worker.service.submit_ai(command)

    runway_worker.run_until_done(job.id)

    assert runway_worker.job(job.id).status is JobStatus.SUCCEEDED
    sent = runway_server.create_bodies[0]["promptImage"]
    assert sent == "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()


def test_an_input_image_runway_cannot_take_fails_the_job_clearly_and_creates_nothing(
        runway_worker, runway_server, tmp_path):
    text = tmp_path / "notes.png"
    text.write_bytes(b"not an image at all")
    runway_worker.adapters.storage.upload("inputs/notes.png", text, content_type="image/png")
    command = SubmitAIJob(owner_id="u1", model="gen4_turbo", mode="i2v", prompt="a turn",
                          production_path="fashion", input_image="inputs/notes.png")
    job = runway_worker.service.submit_ai(command)

    runway_worker.run_until_done(job.id)

    failed = runway_worker.job(job.id)
    assert failed.status is JobStatus.FAILED and "JPEG, PNG or WebP" in (failed.error or "")
    assert runway_server.create_count() == 0


@pytest.mark.parametrize("audio", [None, False, True])
def test_a_veo31_job_sends_its_audio_choice_explicitly(runway_worker, runway_server, audio):
    job = runway_worker.submit(model="veo3.1", duration_s=4, audio=audio)

    runway_worker.run_until_done(job.id)

    assert runway_worker.job(job.id).audio is bool(audio)
    assert runway_server.create_bodies[0]["audio"] is bool(audio)


# --- cancel stops the provider's meter ---


def test_cancelling_a_waiting_runway_job_deletes_its_task_once_through_a_worker(runway_worker, runway_server):
    job = runway_worker.submit()
    runway_worker.deliver_one()
    task_id = runway_worker.job(job.id).provider_task_id

    runway_worker.service.cancel(runway_worker.job(job.id))
    assert runway_server.delete_count(task_id) == 0  # the API side never calls the provider
    while runway_worker.deliver_one() is not None:  # the cancel message, and the old check-back
        pass

    done = runway_worker.job(job.id)
    assert done.status is JobStatus.CANCELLED and done.provider_cancel is ProviderCancel.CONFIRMED
    assert runway_server.delete_count(task_id, status=204) == 1 and runway_server.delete_count(task_id) == 1
    assert runway_server.removed[task_id] == "CANCELLED"
    assert runway_server.create_count() == 1 and done.outputs == ()


def test_a_busy_runway_delete_is_tried_again_later_then_recorded(runway_worker, runway_server):
    job = runway_worker.submit()
    runway_worker.deliver_one()
    task_id = runway_worker.job(job.id).provider_task_id
    runway_worker.service.cancel(runway_worker.job(job.id))
    runway_server.inject(503, 503, 503, 503)  # the adapter's 3 retries within the call, all busy

    outcomes = []
    deadline = time.monotonic() + 20
    while runway_worker.job(job.id).provider_cancel is ProviderCancel.REQUESTED:
        assert time.monotonic() < deadline
        outcome = runway_worker.deliver_one()
        if outcome is None:
            runway_worker.clock.advance(900)
            continue
        outcomes.append(outcome.action)

    assert Action.RETRY_LATER in outcomes
    assert runway_worker.job(job.id).provider_cancel is ProviderCancel.CONFIRMED
    assert runway_server.delete_count(task_id, status=204) == 1


def test_a_runway_job_cancelled_after_it_finished_there_deletes_the_task_and_downloads_nothing(
    runway_worker, runway_server
):
    job = runway_worker.submit()
    runway_worker.deliver_one()
    task_id = runway_worker.job(job.id).provider_task_id
    time.sleep(runway_server.queue_s + runway_server.generation_s + 0.1)  # SUCCEEDED at Runway

    runway_worker.service.cancel(runway_worker.job(job.id))
    runway_worker.clock.advance(900)
    while runway_worker.deliver_one() is not None:
        runway_worker.clock.advance(900)

    done = runway_worker.job(job.id)
    assert done.status is JobStatus.CANCELLED and done.outputs == ()
    assert not any(path.startswith("/outputs/") for _, path, _ in runway_server.requests)
    assert runway_server.removed[task_id] == "DELETED" and runway_server.delete_count(task_id) == 1


def test_cancelling_a_waiting_luma_job_removes_the_generation(luma_server):
    worker = worker_for(luma_base_url=luma_server.base_url, luma_api_key=luma_server.api_key,
                        public_base_url="")
    job = worker.submit(model="ray-2")
    worker.deliver_one()
    generation_id = worker.job(job.id).provider_task_id

    worker.service.cancel(worker.job(job.id))
    while worker.deliver_one() is not None:
        pass

    done = worker.job(job.id)
    assert done.provider_cancel is ProviderCancel.CONFIRMED and "luma accepted" in done.provider_cancel_detail
    assert luma_server.delete_count(generation_id, status=204) == 1
    assert generation_id not in luma_server.tasks  # removed: a GET now answers 404
