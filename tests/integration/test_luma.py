"""LumaProvider over real HTTP against the fake Luma API, callbacks included."""

from __future__ import annotations

import io
import itertools
import logging
import time

import pytest
import requests

from src.application.ports import RemoteState
from src.domain.catalogue import CATALOGUE
from src.domain.errors import (
    OutputExpired,
    PermanentError,
    QuotaExhausted,
    SubmissionOutcomeUnknown,
    TransientError,
)
from src.domain.jobs import Mode
from src.infrastructure.inference.images import StorageImageFetcher
from src.infrastructure.inference.luma import LumaProvider
from src.infrastructure.memory import InMemoryStorage
from tests.fakes import CallbackReceiver, FakeLuma
from tests.fixtures.providers import CLIENT_TIMEOUT_S, FAST_BACKOFF
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


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def measuring_provider(server: FakeLuma, images: dict[str, bytes]) -> LumaProvider:
    """A provider that measures input images from storage, as the worker's bootstrap wires it."""
    storage = InMemoryStorage()
    for key, data in images.items():
        storage.put_bytes(key, data, "image/png")
    fetch = StorageImageFetcher(storage)
    return LumaProvider(api_key=server.api_key, base_url=server.base_url, timeout_s=CLIENT_TIMEOUT_S,
                        backoff=FAST_BACKOFF, image_size=lambda source: fetch(source).size)


def i2v(input_image: str = "inputs/dish.png", **fields: object):  # type: ignore[no-untyped-def]
    return ai_job(model="ray-flash-2", provider="luma", mode=Mode.IMAGE_TO_VIDEO, prompt="spin",
                  input_image=input_image, **fields)


def test_image_to_video_sends_the_image_as_keyframe_zero_and_the_callback_url(luma_server):
    provider = measuring_provider(luma_server, {"inputs/dish.png": png(64, 36)})

    provider.submit(i2v(), input_image_url="https://cdn.example/dish.png",
                    callback_url="https://api.example/cb/x")

    body = luma_server.create_bodies[0]
    assert body["keyframes"] == {"frame0": {"type": "image", "url": "https://cdn.example/dish.png"}}
    assert body["callback_url"] == "https://api.example/cb/x"
    assert (body["duration"], body["aspect_ratio"]) == ("5s", "16:9")


@pytest.mark.parametrize(("size", "ratio"), [
    ((720, 1280), "9:16"), ((1080, 1350), "3:4"), ((500, 510), "1:1"), ((2560, 1080), "21:9"),
    ((1024, 768), "4:3"), ((400, 1000), "9:21"),
])
def test_an_image_without_a_ratio_keeps_its_own_shape(luma_server, size, ratio):
    provider = measuring_provider(luma_server, {"inputs/dish.png": png(*size)})

    provider.submit(i2v(), input_image_url="https://cdn.example/dish.png", callback_url=None)

    assert luma_server.create_bodies[0]["aspect_ratio"] == ratio


def test_a_ratio_the_user_gave_wins_over_the_image_shape(luma_server):
    provider = measuring_provider(luma_server, {"inputs/dish.png": png(720, 1280)})

    provider.submit(i2v(ratio="21:9"), input_image_url="https://cdn.example/dish.png", callback_url=None)

    assert luma_server.create_bodies[0]["aspect_ratio"] == "21:9"


def test_an_unreadable_image_fails_before_anything_is_paid_for(luma_server):
    provider = measuring_provider(luma_server, {"inputs/dish.png": b"not an image"})

    with pytest.raises(PermanentError, match="not a readable image"):
        provider.submit(i2v(), input_image_url="https://cdn.example/dish.png", callback_url=None)

    assert luma_server.create_count() == 0


LUMA_MODELS = [spec for spec in CATALOGUE.values() if spec.provider == "luma"]


@pytest.mark.parametrize("spec", LUMA_MODELS, ids=lambda spec: spec.name)
def test_every_catalogue_combination_is_a_request_luma_accepts(luma_server, spec):
    provider = measuring_provider(luma_server, {"inputs/dish.png": png(90, 160)})
    combos = [(mode, duration, ratio) for mode in sorted(spec.modes, key=str)
              for duration, ratio in itertools.product(spec.durations_s, spec.ratios[mode])]

    for mode, duration, ratio in combos:
        image = "inputs/dish.png" if mode is Mode.IMAGE_TO_VIDEO else None
        job = ai_job(model=spec.name, provider="luma", mode=mode, prompt="a wave" if image is None else "",
                     input_image=image, duration_s=duration, ratio=ratio)
        provider.submit(job, input_image_url=image and "https://cdn.example/dish.png",
                        callback_url="https://api.example/cb")

    assert luma_server.create_count() == len(combos) and len(combos) == 2 * 2 * 7


def create(server: FakeLuma, body: object) -> requests.Response:
    return requests.post(server.base_url + "/generations/video", json=body, timeout=2,
                         headers={"Authorization": f"Bearer {server.api_key}"})


GOOD = {"model": "ray-2", "prompt": "a wave"}


@pytest.mark.parametrize(("change", "problem"), [
    ({"model": None}, "model is required"),
    ({"model": "ray-3"}, "model: must be one of ray-1-6, ray-2, ray-flash-2"),
    ({"duration": "7s"}, "duration: must be one of 5s, 9s"),
    ({"duration": 5}, "duration: must be one of 5s, 9s"),
    ({"resolution": "8k"}, "resolution: must be one of 540p, 720p, 1080p, 4k"),
    ({"aspect_ratio": "2:1"}, "aspect_ratio: must be one of"),
    ({"loop": "yes"}, "loop: must be a boolean"),
    ({"prompt": 7}, "prompt: must be a string"),
    ({"generation_type": "image"}, "generation_type: must be one of video"),
    ({"callback_url": "/relative/hook"}, "callback_url: must be an absolute http(s) URL"),
    ({"keyframes": {}}, "keyframes: must be an object with frame0 and/or frame1"),
    ({"keyframes": {"frame2": {"type": "image", "url": "https://cdn.example/a.png"}}},
     "keyframes: unknown keyframe(s): frame2"),
    ({"keyframes": {"frame0": {"type": "image"}}}, "keyframes: frame0 must be {type: image, url}"),
    ({"keyframes": {"frame1": {"type": "image", "url": "ftp://cdn.example/a.png"}}},
     "keyframes: frame1 url must be an absolute http(s) URL"),
    ({"keyframes": {"frame0": {"type": "generation", "id": "not-a-uuid"}}},
     "keyframes: frame0 id must be a generation id (uuid)"),
    ({"keyframes": {"frame0": {"type": "video", "url": "https://cdn.example/a.mp4"}}},
     "keyframes: frame0 must be {type: image, url} or {type: generation, id}"),
    ({"concepts": ["dolly_zoom"]}, "concepts: must be a list of {key}"),
    ({"seed": 3}, "unknown field(s): seed"),
])
def test_the_fake_refuses_what_luma_documents_as_invalid(luma_server, change, problem):
    body = {key: value for key, value in {**GOOD, **change}.items() if value is not None}

    answer = create(luma_server, body)

    assert answer.status_code == 400
    assert set(answer.json()) == {"detail"} and problem in answer.json()["detail"]
    assert luma_server.create_count() == 0


def test_the_fake_accepts_every_documented_keyframe_shape(luma_server):
    generation = "123e4567-e89b-12d3-a456-426614174000"
    body = {**GOOD, "loop": True, "resolution": "4k", "duration": "9s", "aspect_ratio": "9:21",
            "generation_type": "video", "concepts": [{"key": "dolly_zoom"}],
            "keyframes": {"frame0": {"type": "image", "url": "https://cdn.example/a.png"},
                          "frame1": {"type": "generation", "id": generation}}}

    answer = create(luma_server, body)

    assert answer.status_code == 201 and answer.json()["state"] == "queued"
    assert create(luma_server, {"model": "ray-flash-2"}).status_code == 201  # prompt is optional


def test_a_moderated_prompt_fails_with_the_failure_reason(luma):
    task_id = luma.submit(t2v("something forbidden"), input_image_url=None, callback_url=None)

    final = poll_until_done(luma, task_id)[-1]

    assert final.state is RemoteState.FAILED and "moderation" in final.failure
    assert not final.retryable and "moderation" in final.user_error


def test_an_invalid_request_is_permanent_and_names_the_problem(luma, luma_server):
    with pytest.raises(PermanentError, match="duration: must be one of"):
        luma.submit(t2v(duration_s=7), input_image_url=None, callback_url=None)

    assert luma_server.create_count() == 0


def test_a_429_on_create_waits_for_the_quota_and_is_sent_once(luma, luma_server):
    luma_server.inject(429, method="POST", headers={"retry-after-ms": "2500"})

    with pytest.raises(QuotaExhausted) as caught:
        luma.submit(t2v(), input_image_url=None, callback_url=None)

    assert caught.value.retry_after_s == 2.5
    assert luma_server.statuses("POST") == [429] and luma_server.create_count() == 0


def test_throttling_and_5xx_on_a_poll_are_retried_inside_the_call(luma, luma_server):
    generation_id = luma.submit(t2v(), input_image_url=None, callback_url=None)
    luma_server.inject(429, 504, method="GET")

    assert luma.poll(generation_id).task_id == generation_id
    assert luma_server.statuses("GET") == [429, 504, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_on_create_is_an_unknown_outcome_and_is_sent_once(luma, luma_server, status):
    luma_server.lose_next_create_answer(status)

    with pytest.raises(SubmissionOutcomeUnknown, match="may exist and be billed"):
        luma.submit(t2v(), input_image_url=None, callback_url=None)

    assert luma_server.statuses("POST") == [status] and luma_server.create_count() == 1


def test_a_created_answer_without_a_readable_id_is_an_unknown_outcome(luma, luma_server):
    luma_server.garble_next_create()

    with pytest.raises(SubmissionOutcomeUnknown, match="no readable task id"):
        luma.submit(t2v(), input_image_url=None, callback_url=None)

    assert luma_server.statuses("POST") == [201] and luma_server.create_count() == 1


def test_an_expired_video_url_answers_403_and_a_new_fetch_signs_a_fresh_one(luma, luma_server, tmp_path):
    generation_id = luma.submit(t2v(), input_image_url=None, callback_url=None)
    old_url = poll_until_done(luma, generation_id)[-1].output_urls[0]
    luma_server.expire_output_urls()

    with pytest.raises(OutputExpired, match="403"):
        luma.download(old_url, tmp_path / "old.mp4")

    assert luma.download(luma.poll(generation_id).output_urls[0], tmp_path / "new.mp4") > 0


def test_poll_retries_are_bounded_then_transient(luma, luma_server):
    luma_server.inject(503, 503, 503, 503)

    with pytest.raises(TransientError):
        luma.poll("anything")

    assert luma_server.statuses("GET") == [503, 503, 503, 503]


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
    assert ".mp4?" in received[-1][1]["assets"]["video"]


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


def test_an_image_that_cannot_be_measured_fails_clearly_and_creates_nothing(luma_server):
    def broken(source: str) -> tuple[int, int]:
        raise OSError("disk unreadable")

    provider = LumaProvider(api_key=luma_server.api_key, base_url=luma_server.base_url,
                            timeout_s=CLIENT_TIMEOUT_S, backoff=FAST_BACKOFF, image_size=broken)

    with pytest.raises(PermanentError, match="could not be measured: disk unreadable"):
        provider.submit(i2v(), input_image_url="https://cdn.example/dish.png", callback_url=None)

    assert luma_server.create_count() == 0
