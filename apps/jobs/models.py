"""Read models over the library's tables (``src/infrastructure/db/tables.py``).

``managed = False``: the library's migrations create and change these tables; Django only reads
them (the API and the admin). Every change to a job goes through the library's ``JobService``.
A test compares these fields with the SQLAlchemy tables.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from src.domain.catalogue import CATALOGUE
from src.domain.jobs import Job as DomainJob
from src.domain.jobs import JobKind, Mode
from src.domain.paths import ProductionPath
from src.domain.status import JobStatus
from src.infrastructure.db.repository import job_to_row

STATUS_CHOICES = [(s.value, s.value.replace("_", " ")) for s in JobStatus]
KIND_CHOICES = [(k.value, k.value) for k in JobKind]
MODE_CHOICES = [(Mode.TEXT_TO_VIDEO.value, "text to video"), (Mode.IMAGE_TO_VIDEO.value, "image to video")]
PATH_CHOICES = [(p.value, p.value) for p in ProductionPath]
PROVIDER_CHOICES = [(p, p) for p in dict.fromkeys(spec.provider for spec in CATALOGUE.values())]


def model_label(name: str) -> str:
    """``Runway Gen-4 Turbo (speed fast, quality good, cost cheap)``."""
    spec = CATALOGUE[name]
    return (f"{spec.display_name} (speed {spec.speed.name.lower().replace('_', ' ')}, "
            f"quality {spec.quality.name.lower().replace('_', ' ')}, "
            f"cost {spec.cost.name.lower().replace('_', ' ')})")


MODEL_CHOICES = [(name, model_label(name)) for name in CATALOGUE]


class JsonColumn(models.JSONField):
    """A JSON column the library writes (``json`` on Postgres, text on SQLite).

    psycopg2 already decodes Postgres ``json`` values; only text needs decoding here.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or not isinstance(value, str | bytes | bytearray):
            return value
        return json.loads(value)


TIME_FIELDS = ("created_at", "updated_at", "started_at", "finished_at", "submitted_at", "quota_wait_since")


class Job(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    owner_id = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES)
    attempts = models.IntegerField(default=0)
    outputs = JsonColumn(default=list)
    error = models.TextField(null=True)
    stage = models.CharField(max_length=32, null=True)
    percent = models.FloatField(default=0.0)
    batch_id = models.CharField(max_length=32, null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    # video jobs
    source = models.TextField(null=True)
    preset = models.CharField(max_length=16, null=True)
    poster_offset_s = models.FloatField(null=True)
    # AI jobs
    model = models.CharField(max_length=32, null=True, choices=MODEL_CHOICES)
    provider = models.CharField(max_length=32, null=True, choices=PROVIDER_CHOICES)
    production_path = models.CharField(max_length=16, null=True, choices=PATH_CHOICES)
    mode = models.CharField(max_length=4, null=True, choices=MODE_CHOICES)
    prompt = models.TextField(null=True)
    input_image = models.TextField(null=True)
    duration_s = models.IntegerField(null=True)
    ratio = models.CharField(max_length=16, null=True)
    seed = models.BigIntegerField(null=True)
    num_frames = models.IntegerField(null=True)
    audio = models.BooleanField(default=False)
    provider_task_id = models.CharField(max_length=128, null=True)
    submitted_at = models.DateTimeField(null=True)
    callback_token = models.CharField(max_length=64, null=True)
    provider_task_history = models.TextField(null=True)  # space-separated provider task ids
    quota_wait_since = models.DateTimeField(null=True)
    provider_cancel = models.CharField(max_length=16, null=True)  # requested/confirmed/gone/failed
    provider_cancel_detail = models.TextField(null=True)
    provider_cancel_tries = models.IntegerField(null=True)

    class Meta:
        managed = False
        db_table = "rq_jobs"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id}"

    @classmethod
    def from_domain(cls, job: DomainJob) -> Job:
        """The row the library just wrote, without reading it back (an unsaved instance)."""
        row = job_to_row(job)
        row.update({name: getattr(job, name) for name in TIME_FIELDS if name in row})
        return cls(**row)

    @property
    def is_running(self) -> bool:
        return self.status in (JobStatus.PROCESSING.value, JobStatus.WAITING_PROVIDER.value)


class Batch(models.Model):
    id = models.CharField(max_length=32, primary_key=True)
    owner_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    size = models.IntegerField()

    class Meta:
        managed = False
        db_table = "rq_batches"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.id}"

    def jobs(self) -> models.QuerySet[Job]:
        return Job.objects.filter(batch_id=self.id)
