"""RunwayProvider over real HTTP against the fake Runway API."""

from __future__ import annotations

import base64
import io
import logging
import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np
import pytest
import requests
from PIL import Image

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
from src.infrastructure.media.fetcher import HttpUrlFetcher
from tests.fakes import FakeRunway
from tests.fakes.image_host import Served
from tests.fakes.runway_server import DATA_URI_MAX_CHARS
from tests.fixtures.providers import FAST_BACKOFF
from tests.integration.provider_helpers import ai_job, frame_count, poll_until_done


def png(side: int = 16, *, noise: bool = False) -> bytes:
    """A real PNG; with ``noise`` it barely compresses (side 1200: about 4.3 MB)."""
    rng = np.random.default_rng(side)
    pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8) if noise else \
        np.full((side, side, 3), 200, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


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


def test_image_to_video_sends_a_fetchable_image_url_as_it_is_and_a_default_ratio(
        runway, runway_server, image_host):
    url = image_host.serve("/look.png", Served(body=png()))

    runway.submit(i2v(prompt="", input_image=url), input_image_url=url, callback_url=None)

    assert runway_server.create_bodies == [
        {"model": "gen4_turbo", "promptImage": url, "ratio": "1280:720", "duration": 5}
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


def test_an_invalid_request_is_permanent_and_names_the_problem(runway, runway_server, runway_storage):
    runway_storage.put_bytes("in/a.png", png())
    with pytest.raises(PermanentError, match="Validation of body failed"):  # a gen-3 ratio
        runway.submit(i2v(input_image="in/a.png", ratio="1280:768"), input_image_url=None, callback_url=None)

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


def test_cancel_ends_a_running_task_which_can_no_longer_be_fetched(runway, runway_server):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway.cancel(task_id) is True

    assert runway_server.removed[task_id] == "CANCELLED"
    assert runway_server.delete_count(task_id, status=204) == 1
    with pytest.raises(PermanentError, match="404"):
        runway.poll(task_id)


def test_cancelling_a_finished_task_deletes_it_and_a_gone_task_is_not_an_error(runway, runway_server):
    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)
    poll_until_done(runway, task_id)

    assert runway.cancel(task_id) is True
    assert runway.cancel(task_id) is False  # gone (404): nothing left to stop, not an error

    assert runway_server.removed[task_id] == "DELETED"
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


# --- image inputs Runway can use -------------------------------------------------------------


def sent_image(runway_server: FakeRunway) -> str:
    return runway_server.create_bodies[-1]["promptImage"]


def test_an_image_from_storage_goes_inline_as_a_data_uri(runway, runway_server, runway_storage):
    image = png()
    runway_storage.put_bytes("inputs/look.png", image, "image/png")

    runway.submit(i2v(input_image="inputs/look.png"), input_image_url="https://s3.example/presigned?sig=x",
                  callback_url=None)

    assert sent_image(runway_server) == "data:image/png;base64," + base64.b64encode(image).decode()
    assert runway_server.create_count() == 1


def test_an_image_from_storage_over_the_data_uri_limit_goes_through_an_upload(
        runway, runway_server, runway_storage):
    image = png(1200, noise=True)
    assert len(base64.b64encode(image)) > DATA_URI_MAX_CHARS
    runway_storage.put_bytes("inputs/big.png", image, "image/png")

    runway.submit(i2v(input_image="inputs/big.png"), input_image_url=None, callback_url=None)

    uri = sent_image(runway_server)
    assert uri.startswith("runway://")
    [upload] = runway_server.uploads.values()
    assert upload.uri == uri and upload.data == image and upload.filename == "input.png"


def test_runway_checks_a_url_with_head_before_using_it_and_so_do_we(runway, runway_server, image_host):
    url = image_host.serve("/cdn/look.png", Served(body=png()))

    runway.submit(i2v(input_image=url), input_image_url=url, callback_url=None)

    methods = [(method, agent.split("/")[0]) for method, _, agent in image_host.requests]
    assert methods[0] == ("HEAD", "reelqueue-fetcher")  # ours, through the URL guard
    assert ("HEAD", "RunwayML API") in methods and ("GET", "RunwayML API") in methods
    assert sent_image(runway_server) == url


@pytest.mark.parametrize("served", [
    Served(body=png(), head_status=403),  # an S3 URL presigned for GET answers 403 to HEAD
    Served(body=png(), content_type="application/octet-stream"),
    Served(body=png(), content_type=None),
    Served(body=png(), send_length=False),
], ids=["403-to-head", "octet-stream", "no-content-type", "no-content-length"])
def test_a_url_runway_could_not_fetch_is_downloaded_through_the_guard_and_sent_inline(
        runway, runway_server, image_host, served):
    image = served.body
    url = image_host.serve("/user/look", served)

    runway.submit(i2v(input_image=url), input_image_url=url, callback_url=None)

    assert sent_image(runway_server) == "data:image/png;base64," + base64.b64encode(image).decode()
    assert ("GET", "/user/look") in [(m, p) for m, p, _ in image_host.requests]


def test_a_redirecting_url_is_followed_by_the_guard_never_handed_to_runway(runway, runway_server, image_host):
    image_host.serve("/final.png", Served(body=png()))
    url = image_host.serve("/short", Served(status=302, content_type=None,
                                            headers={"Location": image_host.url("/final.png")}))

    runway.submit(i2v(input_image=url), input_image_url=url, callback_url=None)

    assert sent_image(runway_server).startswith("data:image/png;base64,")


def test_a_url_that_serves_no_image_fails_permanently_and_creates_nothing(runway, runway_server, image_host):
    url = image_host.serve("/page", Served(body=b"<html></html>", content_type="text/html"))

    with pytest.raises(PermanentError, match="JPEG, PNG or WebP"):
        runway.submit(i2v(input_image=url), input_image_url=url, callback_url=None)
    assert runway_server.create_count() == 0


def test_a_url_to_an_internal_address_is_refused_before_anything_is_sent(runway_server, runway_storage):
    provider = RunwayProvider(api_key=runway_server.api_key, base_url=runway_server.base_url, timeout_s=1,
                              storage=runway_storage, fetcher=HttpUrlFetcher(timeout_s=1))
    with pytest.raises(PermanentError, match="not allowed"):
        provider.submit(i2v(input_image="https://127.0.0.1/a.png"), input_image_url=None, callback_url=None)
    assert runway_server.create_count() == 0


# --- the fake is as strict as Runway ------------------------------------------------------------


def create(server: FakeRunway, body: dict, endpoint: str = "image_to_video") -> requests.Response:
    return requests.post(f"{server.base_url}/v1/{endpoint}", json=body, timeout=5, headers={
        "Authorization": f"Bearer {server.api_key}", "X-Runway-Version": "2024-11-06"})


def i2v_body(image: str, **fields: object) -> dict:
    return {"model": "gen4_turbo", "promptImage": image, "ratio": "1280:720", **fields}


def data_uri(kind: str, data: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(("make_image", "message"), [
    (lambda host: host.url("/ok.png").replace("https://", "http://"), "HTTPS"),
    (lambda host: host.url("/ok.png").replace("images.test", "127.0.0.1"), "domain name"),
    (lambda host: host.serve("/presigned", Served(body=png(), head_status=403)), "403"),
    (lambda host: host.serve("/moved", Served(status=301, headers={"Location": host.url("/ok.png")})),
     "redirects"),
    (lambda host: host.serve("/bin", Served(body=png(), content_type="application/octet-stream")),
     "Content-Type"),
    (lambda host: host.serve("/chunked", Served(body=png(), send_length=False)), "Content-Length"),
    (lambda host: host.url("/ok.png?" + "x" * 2048), "2048"),
    (lambda host: data_uri("image/gif", b"GIF89a" + b"0" * 10), "image/jpeg, image/png"),
    (lambda host: data_uri("image/png", b"not a png"), "does not hold"),
    (lambda host: "data:image/png;base64," + "A" * DATA_URI_MAX_CHARS, "under"),
    (lambda host: "runway://ephemeral/made-up/input.png", "not issued"),
], ids=["http", "ip-host", "403-to-head", "redirect", "octet-stream", "no-length", "long-url", "gif",
        "corrupt", "data-uri-too-long", "unknown-upload"])
def test_the_fake_refuses_an_image_runway_would_refuse(runway_server, image_host, make_image, message):
    image_host.serve("/ok.png", Served(body=png()))

    answer = create(runway_server, i2v_body(make_image(image_host)))

    assert answer.status_code == 400
    [issue] = answer.json()["issues"]
    assert issue["path"] == "promptImage" and message in issue["message"]
    assert runway_server.create_count() == 0


def test_the_fake_takes_what_runway_takes(runway_server, image_host):
    jpeg = b"\xff\xd8\xff\xe0" + b"0" * 100
    url = image_host.serve("/ok.jpg", Served(body=jpeg, content_type="image/jpg"))

    for image in (url, data_uri("image/png", png())):
        assert create(runway_server, i2v_body(image)).status_code == 200


@pytest.mark.parametrize(("body", "endpoint", "path"), [
    ({"model": "veo3", "promptText": "a cat", "ratio": "1280:720", "duration": 8, "audio": True},
     "text_to_video", "audio"),
    ({"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720", "duration": 5, "audio": False},
     "text_to_video", "audio"),
    ({"model": "gen4.5", "ratio": "1280:720", "duration": 5}, "text_to_video", "promptText"),
    ({"model": "gen4.5", "promptText": "a cat", "ratio": "1104:832", "duration": 5}, "text_to_video",
     "ratio"),
    ({"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720"}, "text_to_video", "duration"),
    ({"model": "veo3.1", "promptText": "a cat", "ratio": "1280:720", "duration": 5}, "text_to_video",
     "duration"),
    ({"model": "veo3.1", "promptText": "a cat", "ratio": "1280:720", "seed": 3}, "text_to_video", "seed"),
    ({"model": "veo3.1_fast", "promptText": "a cat", "ratio": "1280:720", "audio": "yes"}, "text_to_video",
     "audio"),
    ({"model": "gen4.5", "promptText": "\U0001F3AC" * 501, "ratio": "1280:720", "duration": 5},
     "text_to_video", "promptText"),
    ({"model": "gen4_turbo", "promptText": "a cat", "ratio": "1280:720"}, "text_to_video", "model"),
], ids=["veo3-audio", "gen45-audio", "no-prompt", "t2v-ratio", "gen45-no-duration", "veo-duration",
        "veo-seed", "audio-not-bool", "prompt-utf16", "turbo-t2v"])
def test_the_fake_validates_per_model_as_documented(runway_server, body, endpoint, path):
    answer = create(runway_server, body, endpoint)

    assert answer.status_code == 400
    assert path in [issue["path"] for issue in answer.json()["issues"]]


def test_a_gen45_image_to_video_needs_a_prompt_at_runway(runway_server):
    answer = create(runway_server, {"model": "gen4.5", "promptImage": data_uri("image/png", png()),
                                    "ratio": "1280:720", "duration": 5})

    assert answer.status_code == 400 and answer.json()["issues"][0]["path"] == "promptText"


def test_an_upload_uri_is_only_usable_once_its_file_was_posted(runway_server):
    headers = {"Authorization": f"Bearer {runway_server.api_key}", "X-Runway-Version": "2024-11-06"}
    started = requests.post(f"{runway_server.base_url}/v1/uploads", headers=headers, timeout=5,
                            json={"filename": "a.png", "type": "ephemeral"}).json()

    assert create(runway_server, i2v_body(started["runwayUri"])).status_code == 400
    wrong = requests.post(started["uploadUrl"], data={**started["fields"], "policy": "forged"},
                          files={"file": ("a.png", png(), "image/png")}, timeout=5)
    assert wrong.status_code == 403
    posted = requests.post(started["uploadUrl"], data=started["fields"],
                           files={"file": ("a.png", png(), "image/png")}, timeout=5)
    assert posted.status_code == 204
    assert create(runway_server, i2v_body(started["runwayUri"])).status_code == 200


# --- audio on Veo 3.1 ---------------------------------------------------------------------------


@pytest.mark.parametrize("audio", [False, True])
@pytest.mark.parametrize("model", ["veo3.1", "veo3.1_fast"])
def test_a_veo31_request_always_carries_the_jobs_audio_choice(runway, runway_server, model, audio):
    job = ai_job(model=model, provider="runway", prompt="a cat", duration_s=4, audio=audio)

    runway.submit(job, input_image_url=None, callback_url=None)

    assert runway_server.create_bodies[-1]["audio"] is audio


@pytest.mark.parametrize("model", ["gen4.5", "veo3"])
def test_models_without_an_audio_choice_are_sent_none(runway, runway_server, model):
    job = ai_job(model=model, provider="runway", prompt="a cat", duration_s=5 if model == "gen4.5" else 8)

    runway.submit(job, input_image_url=None, callback_url=None)

    assert "audio" not in runway_server.create_bodies[-1]
