"""Request and response shapes: fields built once per class give the same results as DRF's own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from apps.jobs.models import Job
from apps.jobs.serializers import AIJobRequest, FieldsBuiltOnce, JobSerializer
from src.domain.jobs import AIJob, Mode, Output, VideoJob

T0 = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=timezone.utc)


def answer_context() -> dict[str, Any]:
    request = APIRequestFactory().get("/api/v1/jobs", HTTP_HOST="127.0.0.1")
    return {"request": request, "sign_output": lambda key: f"https://files.example/{key}?sig=1"}


def video_done() -> VideoJob:
    job = VideoJob(owner_id="7", source="https://media.example.com/in.mov", preset="480p",
                   poster_offset_s=2.5, created_at=T0, updated_at=T0).start(T0 + timedelta(seconds=1))
    outputs = (Output(key="outputs/a/video.mp4", size_bytes=10, duration_s=4.5, width=854, height=480,
                      codec="h264"),
               Output(key="outputs/a/poster.jpg", role="poster", content_type="image/jpeg"))
    return job.succeed(outputs, T0 + timedelta(seconds=30))


def ai_failed() -> AIJob:
    job = AIJob(owner_id="7", model="wan_local", provider="wan", production_path="cartoon",
                mode=Mode.IMAGE_TO_VIDEO, prompt="", input_image="uploads/7/in.png", ratio="832:480",
                seed=2**40, num_frames=33, batch_id="b" * 32, created_at=T0, updated_at=T0)
    return job.start(T0).fail("out of memory", T0 + timedelta(minutes=2))


def ai_queued() -> AIJob:
    return AIJob(owner_id="7", model="gen4.5", provider="runway", production_path="fashion",
                 mode=Mode.TEXT_TO_VIDEO, prompt="a red dress", duration_s=5, created_at=T0, updated_at=T0)


@pytest.mark.parametrize("job", [video_done(), ai_failed(), ai_queued()],
                         ids=["video", "ai-failed", "ai-queued"])
def test_a_job_answer_is_what_drfs_own_field_by_field_representation_gives(job):
    row = Job.from_domain(job)
    shared = JobSerializer(row, context=answer_context())
    bound_per_instance = JobSerializer(row, context=answer_context())

    fast = shared.data
    drf = serializers.ModelSerializer.to_representation(bound_per_instance, row)

    assert fast == drf
    assert list(fast) == list(drf) == JobSerializer.Meta.fields  # same keys, same order


def test_a_job_answer_formats_times_and_numbers_like_drf():
    body = JobSerializer(Job.from_domain(video_done()), context=answer_context()).data

    assert body["created_at"] == "2026-03-01T12:30:15.250000Z"
    assert body["finished_at"] == "2026-03-01T12:30:45.250000Z"
    assert (body["poster_offset_s"], body["percent"], body["model"]) == (2.5, 100.0, None)
    assert body["outputs"][0]["url"] == "https://files.example/outputs/a/video.mp4?sig=1"
    assert body["status_url"] == f"http://127.0.0.1/api/v1/jobs/{body['id']}"


def test_request_serializers_keep_their_own_data_and_errors():
    bad = AIJobRequest(data={"model": "gen4.5", "mode": "x2y", "duration_s": 0})
    good = AIJobRequest(data={"model": "gen4.5", "mode": "t2v", "prompt": "  kept as is  "})

    assert not bad.is_valid() and good.is_valid()
    assert set(bad.errors) == {"mode", "duration_s"} and good.errors == {}
    assert good.validated_data == {"model": "gen4.5", "mode": "t2v", "prompt": "  kept as is  "}
    assert bad.fields["mode"] is not good.fields["mode"]
    assert (bad.fields["mode"].parent, good.fields["mode"].parent) == (bad, good)


def test_a_nested_serializer_cannot_have_its_fields_built_once():
    class Nested(FieldsBuiltOnce, serializers.Serializer):
        items = AIJobRequest(many=True)

    with pytest.raises(TypeError, match="nested"):
        _ = Nested(data={"items": []}).fields
