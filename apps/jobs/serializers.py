"""Request and response shapes. Requests are checked for types here; the rules (catalogue,
production paths, URLs) are the library's, applied by ``JobService`` and mapped to 400s."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.jobs.models import KIND_CHOICES, MODE_CHOICES, PATH_CHOICES, PROVIDER_CHOICES, STATUS_CHOICES, Job
from src.application.commands import SubmitAIJob, SubmitVideoJob
from src.application.enqueue import MAX_BATCH, VIDEO_PRESETS
from src.domain.catalogue import CATALOGUE, MAX_PROMPT_CHARS, MAX_SEED
from src.domain.sources import MAX_URL_CHARS

SOURCE_HELP = "a storage key (from POST /uploads) or a public https URL"
MAX_INT32 = 2**31 - 1
ID_PATTERN = r"^[0-9a-f]{32}$"
UPLOAD_TYPES = {
    "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",  # input images (AI jobs)
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",  # source videos
}


class FieldsBuiltOnce:
    """A serializer whose fields are built once per class, each instance binding shallow copies.

    DRF deep-copies the declared fields (or builds a model serializer's from the model) for every
    instance: most of the cost of validating a job request (about 100 us of 135). A field keeps no
    state of its own across calls (its configuration and validators are set up once, in its
    constructor), so each instance can bind a shallow copy (``copy.copy``): its own ``parent`` and
    ``field_name``, the shared configuration. Nested serializers do keep state (their own bound
    fields) and are refused.
    """

    _built_fields: ClassVar[dict[str, serializers.Field]]

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        if "_built_fields" not in cls.__dict__:
            built = super().get_fields()  # type: ignore[misc]
            nested = [name for name, field in built.items() if isinstance(field, serializers.BaseSerializer)]
            if nested:
                raise TypeError(f"{cls.__name__}: nested serializers cannot be built once: {nested}")
            cls._built_fields = built
        return {name: copy.copy(field) for name, field in cls._built_fields.items()}


# --- requests --------------------------------------------------------------------------------


class TextField(serializers.CharField):
    """A JSON string, and only that: DRF's ``CharField`` would turn ``2**80`` into its digits."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class VideoJobRequest(FieldsBuiltOnce, serializers.Serializer):
    source = TextField(max_length=MAX_URL_CHARS, help_text=SOURCE_HELP)
    preset = serializers.ChoiceField(choices=VIDEO_PRESETS, default="720p")
    poster_offset_s = serializers.FloatField(default=1.0, min_value=0, max_value=3600)

    def command(self, owner_id: str) -> SubmitVideoJob:
        return SubmitVideoJob(owner_id=owner_id, **self.validated_data)


class AIJobRequest(FieldsBuiltOnce, serializers.Serializer):
    model = TextField(
        max_length=64, help_text=f"one of: {', '.join(CATALOGUE)} (see GET /api/v1/providers)")
    mode = serializers.ChoiceField(choices=MODE_CHOICES,
                                   help_text="t2v (text-to-video) or i2v (image-to-video)")
    production_path = TextField(
        max_length=32, required=False, allow_null=True, allow_blank=True,
        help_text=f"one of: {', '.join(v for v, _ in PATH_CHOICES)}; missing or unknown follows the "
                  "server's path policy (fashion with a warning, or 400)")
    prompt = TextField(max_length=MAX_PROMPT_CHARS, required=False, allow_blank=True, default="",
                       trim_whitespace=False)
    input_image = TextField(max_length=MAX_URL_CHARS, required=False, allow_null=True,
                            help_text=f"image-to-video only: {SOURCE_HELP}")
    duration_s = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=600)
    ratio = TextField(max_length=16, required=False, allow_null=True)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_SEED)
    num_frames = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10_000,
                                          help_text="wan_local only: 4k+1 frames (16 fps; TI2V-5B: 24)")
    audio = serializers.BooleanField(
        required=False, allow_null=True,
        help_text="generate a soundtrack (default false); only the models with audio_supported in "
                  "GET /api/v1/providers take it, and it changes their price")

    def command(self, owner_id: str) -> SubmitAIJob:
        return ai_command(owner_id, self.validated_data)


def ai_command(owner_id: str, data: dict[str, Any]) -> SubmitAIJob:
    return SubmitAIJob(owner_id=owner_id, **data)


class AIBatchRequest(serializers.Serializer):
    items = AIJobRequest(many=True, min_length=1, max_length=MAX_BATCH,
                         help_text=f"1-{MAX_BATCH} AI jobs; one invalid item rejects the whole batch")

    def commands(self, owner_id: str) -> list[SubmitAIJob]:
        return [ai_command(owner_id, item) for item in self.validated_data["items"]]


class UploadRequest(FieldsBuiltOnce, serializers.Serializer):
    content_type = serializers.ChoiceField(choices=list(UPLOAD_TYPES))


class JobFilter(serializers.Serializer):
    """Query parameters of ``GET /jobs``."""

    status = serializers.ChoiceField(choices=STATUS_CHOICES, required=False)
    kind = serializers.ChoiceField(choices=KIND_CHOICES, required=False)
    provider = serializers.ChoiceField(choices=PROVIDER_CHOICES, required=False)
    model = serializers.ChoiceField(choices=list(CATALOGUE), required=False)
    production_path = serializers.ChoiceField(choices=PATH_CHOICES, required=False)
    batch = serializers.RegexField(ID_PATTERN, required=False, help_text="a batch id")

    def lookups(self) -> dict[str, str]:
        data = dict(self.validated_data)
        if "batch" in data:
            data["batch_id"] = data.pop("batch")
        return data


# --- responses -------------------------------------------------------------------------------


class OutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    role = serializers.CharField(help_text="video or poster")
    content_type = serializers.CharField()
    size_bytes = serializers.IntegerField()
    duration_s = serializers.FloatField(allow_null=True, required=False)
    width = serializers.IntegerField(allow_null=True, required=False)
    height = serializers.IntegerField(allow_null=True, required=False)
    codec = serializers.CharField(allow_null=True, required=False)
    url = serializers.CharField(help_text="a short-lived download URL")


class JobSerializer(serializers.ModelSerializer):
    """A job as its owner sees it; ``stage``/``percent`` are live while it runs.

    Its fields describe the answer (the OpenAPI schema); the answer itself is :func:`job_body`, a
    plain function of the job (DRF's documented ``to_representation`` hook): binding 28 fields per
    job answered cost about 0.1 ms of every POST's answer. It gives what DRF's own field-by-field
    loop gives (a test compares them)."""

    outputs = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    def to_representation(self, instance: Job) -> dict[str, Any]:
        return job_body(instance, sign_output=self.context.get("sign_output"),
                        request=self.context.get("request"))

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "stage", "percent", "attempts", "error", "outputs", "batch_id",
            "created_at", "updated_at", "started_at", "finished_at",
            "source", "preset", "poster_offset_s",
            "model", "provider", "production_path", "mode", "prompt", "input_image", "duration_s",
            "ratio", "seed", "num_frames", "audio", "status_url",
        ]
        read_only_fields = fields

    @extend_schema_field(OutputSerializer(many=True))
    def get_outputs(self, job: Job) -> list[dict[str, Any]]:
        return job_outputs(job, self.context.get("sign_output"))

    def get_status_url(self, job: Job) -> str:
        return job_status_url(job, self.context.get("request"))


def job_body(job: Job, *, sign_output: Callable[[str], str] | None = None, request: Any = None
             ) -> dict[str, Any]:
    """A job's answer, in :class:`JobSerializer`'s field order: each column as DRF's field for
    its model field renders it (``None`` as is), then the signed outputs and the status URL."""
    body: dict[str, Any] = {}
    for name in JobSerializer.Meta.fields:
        if name == "outputs":
            body[name] = job_outputs(job, sign_output)
        elif name == "status_url":
            body[name] = job_status_url(job, request)
        else:
            value = getattr(job, name)
            body[name] = None if value is None else _RENDER[name](value)
    return body


def job_outputs(job: Job, sign_output: Callable[[str], str] | None) -> list[dict[str, Any]]:
    if sign_output is None:
        return [dict(output) for output in job.outputs]
    return [dict(output, url=sign_output(output["key"])) for output in job.outputs]


def job_status_url(job: Job, request: Any) -> str:
    path = f"/api/v1/jobs/{job.id}"
    return request.build_absolute_uri(path) if request is not None else path


def _datetime(value: datetime) -> str:
    """DRF's ``DateTimeField`` with its default ISO 8601 format: in the current time zone, UTC
    written ``Z``."""
    current = timezone.get_current_timezone()
    value = value.astimezone(current) if timezone.is_aware(value) else timezone.make_aware(value, current)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _renderer(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """What DRF's serializer field for this model field does to a value that is not ``None``."""
    if isinstance(field, models.DateTimeField):
        return _datetime
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.IntegerField):
        return int
    if isinstance(field, models.FloatField):
        return float
    if isinstance(field, (models.CharField, models.TextField)):
        return str
    raise TypeError(f"no plain rendering for {type(field).__name__} {field.name}")


class BatchSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["empty", "queued", "running", "succeeded", "failed", "cancelled", "partial"],
        help_text="succeeded when every job did; running while any runs; partial when they ended mixed")
    size = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="jobs per status")
    created_at = serializers.DateTimeField()
    jobs = JobSerializer(many=True)


class BatchCreatedSerializer(serializers.Serializer):
    id = serializers.CharField()
    status_url = serializers.CharField()
    jobs = JobSerializer(many=True)


class UploadSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="use it as input_image (or source) in a job")
    url = serializers.CharField(help_text="PUT the file here, with the same Content-Type")
    method = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())
    expires_in_s = serializers.IntegerField()


class ProviderSerializer(serializers.Serializer):
    model = serializers.CharField()
    provider = serializers.CharField()
    display_name = serializers.CharField()
    speed = serializers.CharField()
    quality = serializers.CharField()
    cost = serializers.CharField()
    tiers = serializers.DictField(child=serializers.IntegerField())
    use_for = serializers.CharField()
    worker_type = serializers.CharField()
    modes = serializers.ListField(child=serializers.CharField())
    durations_s = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    duration_required = serializers.BooleanField()
    ratios = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   allow_null=True)
    seed_supported = serializers.BooleanField()
    prompt_required = serializers.ListField(child=serializers.CharField(),
                                            help_text="the modes in which a prompt is required")
    audio_supported = serializers.BooleanField(help_text="takes the audio field")
    credits_per_second = serializers.ListField(child=serializers.IntegerField(), allow_null=True,
                                               help_text="[low, high] over the model's options")
    credits_per_second_without_audio = serializers.IntegerField(allow_null=True)
    credits_per_second_with_audio = serializers.IntegerField(allow_null=True)


class CatalogueSerializer(serializers.Serializer):
    models = ProviderSerializer(many=True)
    default_model = serializers.CharField()
    production_paths = serializers.ListField(child=serializers.CharField())
    default_production_path = serializers.CharField()
    sunset = serializers.DictField(child=serializers.CharField(), help_text="retired model names and why")


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()



_RENDER = {name: _renderer(Job._meta.get_field(name))
           for name in JobSerializer.Meta.fields if name not in ("outputs", "status_url")}
