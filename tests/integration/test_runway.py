"""RunwayProvider over real HTTP against the fake Runway API."""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from src.application.ports import RemoteState
from src.domain.errors import (
    OutputExpired,
    PermanentError,
    QuotaExhausted,
    SubmissionOutcomeUnknown,
    TransientError,
)
from src.domain.jobs import Mode
from src.infrastructure.inference.runway import RunwayProvider
from tests.fakes import FakeRunway
from tests.fixtures.providers import FAST_BACKOFF
from tests.integration.provider_helpers import ai_job, frame_count, poll_until_done


def t2v(prompt: str = "a red dress turning", **fields: object):  # type: ignore[no-untyped-def]
    return ai_job(model="gen4.5", provider="runway", prompt=prompt, duration_s=5, **fields)


def i2v(**fields: object):  # type: ignore[no-untyped-def]
    return ai_job(model="gen4_turbo", provider="runway", mode=Mode.IMAGE_TO_VIDEO, **fields)


def test_a_text_to_video_task_goes_pending_running_succeeded(runway, runway_server, tmp_path):
    task_id = runway.submit(t2v(seed=7, ratio="720:1280"), input_image_url=None, callback_url=None)

    seen = poll_until_done(runway, task_id)

    assert runway_server.create_bodies == [
        {"model": "gen4.5", "promptText": "a red dress turning", "ratio": "720:1280", "duration": 5,
         "seed": 7}
    ]
    states = [task.state for task in seen]
    assert states[0] is RemoteState.PENDING and RemoteState.RUNNING in states
    assert states[-1] is RemoteState.SUCCEEDED and seen[-1].progress == 100
    progress = [task.progress for task in seen]
    assert progress == sorted(progress)
    size = runway.download(seen[-1].output_urls[0], tmp_path / "out.mp4")
    assert size > 0 and frame_count(tmp_path / "out.mp4") == (8, 32, 32)


def test_image_to_video_sends_the_image_url_and_a_default_ratio(runway, runway_server):
    runway.submit(i2v(prompt=""), input_image_url="https://cdn.example/look.png", callback_url=None)

    assert runway_server.create_bodies == [
        {"model": "gen4_turbo", "promptImage": "https://cdn.example/look.png", "ratio": "1280:720",
         "duration": 5}
    ]


def test_a_throttled_task_reads_as_pending():
    with FakeRunway(throttled_s=5) as server:
        provider = RunwayProvider(api_key=server.api_key, base_url=server.base_url, timeout_s=1)
        task_id = provider.submit(t2v(), input_image_url=None, callback_url=None)

        assert provider.poll(task_id).state is RemoteState.PENDING
        assert server.describe(server.tasks[task_id])["status"] == "THROTTLED"


def test_an_unsafe_prompt_fails_with_its_safety_code_for_operators_and_a_plain_message(runway):
    task_id = runway.submit(t2v("a forbidden scene"), input_image_url=None, callback_url=None)

    final = poll_until_done(runway, task_id)[-1]

    assert final.state is RemoteState.FAILED and not final.retryable
    assert final.failure.startswith("SAFETY.INPUT.TEXT: ")
    assert "content moderation" in final.user_error and "SAFETY" not in final.user_error


@pytest.mark.parametrize(("code", "retryable", "says"), [
    ("SAFETY.INPUT.IMAGE", False, "content moderation"),
    ("SAFETY.OUTPUT.VIDEO", False, "generated video was declined"),
    ("INPUT_PREPROCESSING.SAFETY.TEXT", False, "content moderation"),
    ("INPUT_PREPROCESSING.INTERNAL", True, "could not check the inputs"),
    ("ASSET.INVALID", False, "valid, supported image"),
    ("INTERNAL.BAD_OUTPUT.CODE01", True, "quality"),
    ("INTERNAL", True, "internal error"),
])
def test_each_documented_failure_family_is_mapped(runway, runway_server, code, retryable, says):
    runway_server.fail_next_tasks(code)
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)

    final = poll_until_done(runway, task_id)[-1]

    assert final.state is RemoteState.FAILED and final.retryable is retryable
    assert final.failure.startswith(f"{code}: ") and says in final.user_error
    assert code not in final.user_error


def test_an_invalid_request_is_permanent_and_names_the_problem(runway, runway_server):
    with pytest.raises(PermanentError, match="Validation of body failed"):
        runway.submit(i2v(), input_image_url=None, callback_url=None)  # no image

    assert runway_server.create_count() == 0


def test_throttling_and_busy_gateways_are_retried_inside_a_poll(runway, runway_server):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)
    runway_server.inject(429, 502, 503, method="GET")

    assert runway.poll(task_id).task_id == task_id
    assert runway_server.statuses("GET") == [429, 502, 503, 200]


def test_poll_retries_are_bounded_then_transient(runway, runway_server):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)
    runway_server.inject(429, 504, 429, 503, method="GET")

    with pytest.raises(TransientError):
        runway.poll(task_id)

    assert runway_server.statuses("GET") == [429, 504, 429, 503]


def test_polling_survives_an_api_that_fails_every_third_request():
    with FakeRunway(generation_s=0.2) as server:
        provider = RunwayProvider(api_key=server.api_key, base_url=server.base_url, timeout_s=1,
                                  max_retries=3, backoff=FAST_BACKOFF)
        task_id = provider.submit(t2v(), input_image_url=None, callback_url=None)
        server.fail_every(3, 429, 502, 503, 504, method="GET")

        assert poll_until_done(provider, task_id)[-1].state is RemoteState.SUCCEEDED
        assert server.create_count() == 1
        polls = server.statuses("GET")
        injected = polls[2::3]
        assert injected[:3] == [429, 502, 503][:len(injected)] and len(injected) >= 2
        assert all(status == 200 for i, status in enumerate(polls) if i % 3 != 2)


# --- a used-up daily quota: 429 on create ---


def test_a_429_on_create_is_a_used_up_quota_sent_once_with_its_retry_after(runway, runway_server):
    runway_server.use_up_daily_quota(headers={"Retry-After": "3600"})

    with pytest.raises(QuotaExhausted, match="nothing was created") as caught:
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert caught.value.retry_after_s == 3600
    assert runway_server.statuses("POST") == [429]  # not retried inside the call
    assert runway_server.create_count() == 0


def test_retry_after_as_an_http_date_and_retry_after_ms_are_honoured(runway, runway_server):
    in_two_hours = datetime.now(timezone.utc) + timedelta(hours=2)
    runway_server.use_up_daily_quota(headers={"Retry-After": format_datetime(in_two_hours, usegmt=True)})
    runway_server.use_up_daily_quota(headers={"retry-after-ms": "1500", "Retry-After": "9"})

    waits = []
    for _ in range(2):
        with pytest.raises(QuotaExhausted) as caught:
            runway.submit(t2v(), input_image_url=None, callback_url=None)
        waits.append(caught.value.retry_after_s)

    assert 7190 < waits[0] <= 7200 and waits[1] == 1.5
    assert runway_server.statuses("POST") == [429, 429]


@pytest.mark.parametrize("headers", [None, {"Retry-After": "soon"}, {"Retry-After": "inf"},
                                     {"retry-after-ms": "nan"}])
def test_a_429_without_a_usable_retry_after_leaves_the_wait_to_the_worker(runway, runway_server, headers):
    runway_server.use_up_daily_quota(headers=headers)

    with pytest.raises(QuotaExhausted) as caught:
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert caught.value.retry_after_s is None and runway_server.statuses("POST") == [429]


# --- ambiguous creates are never sent twice ---


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_create_is_an_unknown_outcome_and_is_sent_once(runway, runway_server, status):
    runway_server.lose_next_create_answer(status)  # the task exists: the gateway lost the answer

    with pytest.raises(SubmissionOutcomeUnknown, match="may exist and be billed"):
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway_server.statuses("POST") == [status]
    assert runway_server.create_count() == 1


def test_a_success_without_a_readable_task_id_is_an_unknown_outcome(runway, runway_server):
    runway_server.garble_next_create()

    with pytest.raises(SubmissionOutcomeUnknown, match="no readable task id"):
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway_server.statuses("POST") == [200] and runway_server.create_count() == 1


def test_a_create_may_take_longer_than_a_poll(runway_server):
    provider = RunwayProvider(api_key=runway_server.api_key, base_url=runway_server.base_url,
                              timeout_s=0.3, create_timeout_s=3.0)
    runway_server.stall_next_create(0.8)

    task_id = provider.submit(t2v(), input_image_url=None, callback_url=None)

    assert task_id in runway_server.tasks and runway_server.create_count() == 1


def test_the_create_timeout_defaults_to_60_seconds_like_the_official_sdk():
    assert RunwayProvider(api_key="k").api.create_timeout_s == 60.0


def test_cancel_ends_a_running_task(runway, runway_server):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)

    runway.cancel(task_id)

    assert runway.poll(task_id).state is RemoteState.CANCELLED
    assert ("DELETE", f"/v1/tasks/{task_id}", 204) in runway_server.requests


def test_cancelling_a_finished_task_deletes_it_and_a_gone_task_is_not_an_error(runway):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)
    poll_until_done(runway, task_id)

    runway.cancel(task_id)
    runway.cancel(task_id)

    with pytest.raises(PermanentError, match="404"):
        runway.poll(task_id)


def test_a_create_without_an_answer_is_an_unknown_outcome_and_is_not_sent_again(runway, runway_server):
    runway_server.stall_next_create(2.0)  # past the client's 0.5 s timeout

    with pytest.raises(SubmissionOutcomeUnknown, match="may exist"):
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway_server.create_count() == 1


def test_a_connection_dropped_after_sending_is_an_unknown_outcome(runway, runway_server):
    runway_server.drop_next_create()

    with pytest.raises(SubmissionOutcomeUnknown):
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway_server.create_count() == 1


def test_a_refused_connection_surely_created_nothing_so_it_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens
    provider = RunwayProvider(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout_s=1,
                              max_retries=0)

    with pytest.raises(TransientError):
        provider.submit(t2v(), input_image_url=None, callback_url=None)


def test_a_wrong_key_is_permanent_and_no_key_appears_in_messages_or_logs(runway_server, caplog):
    secret = "sk-very-secret-value"
    provider = RunwayProvider(api_key=secret, base_url=runway_server.base_url, timeout_s=1)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PermanentError) as caught:
        provider.submit(t2v(), input_image_url=None, callback_url=None)

    assert "API key was not accepted" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(provider)
    assert secret not in caplog.text


def test_downloads_refuse_plain_http_outside_the_provider_host(runway, tmp_path):
    with pytest.raises(PermanentError, match="refusing"):
        runway.download("http://169.254.169.254/latest/meta-data", tmp_path / "x")


def test_an_unknown_output_is_gone(runway, runway_server, tmp_path):
    with pytest.raises(OutputExpired, match="gone"):
        runway.download(runway_server.output_url("nope"), tmp_path / "x.mp4")


def test_an_expired_output_url_answers_403_and_a_new_poll_signs_a_fresh_one(runway, runway_server, tmp_path):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)
    old_url = poll_until_done(runway, task_id)[-1].output_urls[0]
    runway_server.expire_output_urls()

    with pytest.raises(OutputExpired, match="403"):
        runway.download(old_url, tmp_path / "old.mp4")
    fresh_url = runway.poll(task_id).output_urls[0]

    assert runway.download(fresh_url, tmp_path / "new.mp4") > 0 and fresh_url != old_url
