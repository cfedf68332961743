"""LumaProvider over real HTTP against the fake Luma API, callbacks included."""

from __future__ import annotations

import logging
import time

import pytest

from src.application.ports import RemoteState
from src.domain.errors import PermanentError, SubmissionOutcomeUnknown, TransientError
from src.domain.jobs import Mode
from src.infrastructure.inference.luma import LumaProvider
from tests.fakes import CallbackReceiver, FakeLuma
from tests.integration.provider_helpers import ai_job, frame_count, poll_until_done


def t2v(prompt: str = "steam over a ramen bowl", **fields: object):  # type: ignore[no-untyped-def]
    return ai_job(model="ray-2", provider="luma", prompt=prompt, **fields)


def test_a_generation_goes_queued_dreaming_completed(luma, luma_server, tmp_path):
    task_id = luma.submit(t2v(duration_s=9, ratio="9:16"), input_image_url=None, callback_url=None)

    seen = poll_until_done(luma, task_id)

    assert luma_server.create_bodies == [
        {"model": "ray-2", "prompt": "steam over a ramen bowl", "duration": "9s", "resolution": "720p",
         "aspect_ratio": "9:16"}
    ]
    states = [task.state for task in seen]
    assert states[0] is RemoteState.PENDING and RemoteState.RUNNING in states
    assert states[-1] is RemoteState.SUCCEEDED
    assert [task.progress for task in seen] == sorted(task.progress for task in seen)
    luma.download(seen[-1].output_urls[0], tmp_path / "out.mp4")
    assert frame_count(tmp_path / "out.mp4") == (8, 32, 32)


def test_image_to_video_sends_the_image_as_keyframe_zero_and_the_callback_url(luma, luma_server):
    job = ai_job(model="ray-flash-2", provider="luma", mode=Mode.IMAGE_TO_VIDEO, prompt="spin")

    luma.submit(job, input_image_url="https://cdn.example/dish.png", callback_url="https://api.example/cb/x")

    body = luma_server.create_bodies[0]
    assert body["keyframes"] == {"frame0": {"type": "image", "url": "https://cdn.example/dish.png"}}
    assert body["callback_url"] == "https://api.example/cb/x"
    assert (body["duration"], body["aspect_ratio"]) == ("5s", "16:9")


def test_a_moderated_prompt_fails_with_the_failure_reason(luma):
    task_id = luma.submit(t2v("something forbidden"), input_image_url=None, callback_url=None)

    final = poll_until_done(luma, task_id)[-1]

    assert final.state is RemoteState.FAILED and "moderation" in final.failure


def test_an_invalid_request_is_permanent_and_names_the_problem(luma, luma_server):
    with pytest.raises(PermanentError, match="duration must be one of"):
        luma.submit(t2v(duration_s=7), input_image_url=None, callback_url=None)

    assert luma_server.create_count() == 0


def test_throttling_and_5xx_are_retried_inside_the_call(luma, luma_server):
    luma_server.inject(429, 504)

    luma.submit(t2v(), input_image_url=None, callback_url=None)

    assert luma_server.create_count() == 1


def test_retries_are_bounded_then_transient(luma, luma_server):
    luma_server.inject(503, 503, 503, 503)

    with pytest.raises(TransientError):
        luma.poll("anything")


def test_cancel_deletes_the_generation(luma, luma_server):
    task_id = luma.submit(t2v(), input_image_url=None, callback_url=None)

    assert luma.cancel(task_id) is True
    assert luma.cancel(task_id) is False  # already gone (404): nothing to do, not an error

    assert task_id not in luma_server.tasks
    assert luma_server.delete_count(task_id, status=204) == 1
    assert luma_server.delete_count(task_id, status=404) == 1
    with pytest.raises(PermanentError, match="not found"):
        luma.poll(task_id)


def test_a_stalled_create_is_an_unknown_outcome_with_one_generation(luma, luma_server):
    luma_server.stall_next_create(2.0)

    with pytest.raises(SubmissionOutcomeUnknown):
        luma.submit(t2v(), input_image_url=None, callback_url=None)

    assert luma_server.create_count() == 1


def test_callbacks_follow_each_state_change():
    with CallbackReceiver() as receiver, FakeLuma(generation_s=0.6, queue_s=0.05) as server:
        provider = LumaProvider(api_key=server.api_key, base_url=server.base_url, timeout_s=1)
        provider.submit(t2v(), input_image_url=None, callback_url=receiver.base_url + "/hook/token")

        received = receiver.wait_for(2)

    assert [(path, body["state"]) for path, body in received] == [
        ("/hook/token", "dreaming"), ("/hook/token", "completed"),
    ]
    assert received[-1][1]["assets"]["video"].endswith(".mp4")


def test_a_refused_callback_is_tried_three_times_100_ms_apart_then_dropped():
    with CallbackReceiver(fail_first=10) as receiver, FakeLuma(generation_s=5, queue_s=0.0) as server:
        provider = LumaProvider(api_key=server.api_key, base_url=server.base_url, timeout_s=1)
        provider.submit(t2v(), input_image_url=None, callback_url=receiver.base_url + "/hook")
        time.sleep(0.45)

    assert [outcome for _, state, outcome in server.callbacks if state == "dreaming"] == [500, 500, 500]
    assert receiver.received == []


def test_the_key_never_appears_in_errors_or_logs(luma_server, caplog):
    provider = LumaProvider(api_key="luma-secret-key", base_url=luma_server.base_url, timeout_s=1)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PermanentError) as caught:
        provider.poll("x")

    assert "luma-secret-key" not in str(caught.value) + repr(provider) + caplog.text
