"""RunwayProvider over real HTTP against the fake Runway API."""

from __future__ import annotations

import logging
import socket

import pytest

from src.application.ports import RemoteState
from src.domain.errors import PermanentError, SubmissionOutcomeUnknown, TransientError
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


def test_an_unsafe_prompt_fails_with_its_safety_code(runway):
    task_id = runway.submit(t2v("a forbidden scene"), input_image_url=None, callback_url=None)

    final = poll_until_done(runway, task_id)[-1]

    assert final.state is RemoteState.FAILED
    assert final.failure.startswith("SAFETY.INPUT.TEXT: ")


def test_an_invalid_request_is_permanent_and_names_the_problem(runway, runway_server):
    with pytest.raises(PermanentError, match="Validation of body failed"):
        runway.submit(i2v(), input_image_url=None, callback_url=None)  # no image

    assert runway_server.create_count() == 0


def test_throttling_and_busy_gateways_are_retried_inside_the_call(runway, runway_server):
    runway_server.inject(429, 502, 503)

    task_id = runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway_server.create_count() == 1
    assert runway.poll(task_id).task_id == task_id
    assert [status for _, _, status in runway_server.requests[:4]] == [429, 502, 503, 200]


def test_retries_are_bounded_then_transient_and_nothing_was_created(runway, runway_server):
    runway_server.inject(429, 429, 429, 429)

    with pytest.raises(TransientError):
        runway.submit(t2v(), input_image_url=None, callback_url=None)

    assert runway_server.create_count() == 0


def test_polling_survives_a_flaky_api():
    with FakeRunway(error_rate=0.3, generation_s=0.2, seed=3) as server:
        provider = RunwayProvider(api_key=server.api_key, base_url=server.base_url, timeout_s=1,
                                  max_retries=6, backoff=FAST_BACKOFF)
        task_id = provider.submit(t2v(), input_image_url=None, callback_url=None)

        assert poll_until_done(provider, task_id)[-1].state is RemoteState.SUCCEEDED
        assert server.create_count() == 1
        assert any(status >= 429 for _, _, status in server.requests)


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


def test_an_expired_output_url_is_permanent(runway, runway_server, tmp_path):
    with pytest.raises(PermanentError, match="gone"):
        runway.download(runway_server.output_url("nope"), tmp_path / "x.mp4")
