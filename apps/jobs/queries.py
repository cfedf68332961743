"""What a user may see, and a job's live view: progress from the ProgressStore, signed outputs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import QuerySet

from apps.jobs import services
from apps.jobs.models import Batch, Job
from src.domain.errors import ReelqueueError

log = logging.getLogger(__name__)


def visible_jobs(user: Any) -> QuerySet[Job]:
    """Staff see every job; everyone else only their own."""
    jobs = Job.objects.all()
    return jobs if user.is_staff else jobs.filter(owner_id=owner_id(user))


def visible_batches(user: Any) -> QuerySet[Batch]:
    batches = Batch.objects.all()
    return batches if user.is_staff else batches.filter(owner_id=owner_id(user))


def owner_id(user: Any) -> str:
    return str(user.pk)


def with_live_progress(jobs: Iterable[Job]) -> list[Job]:
    """Running jobs get the stage and percent their worker last recorded (best effort)."""
    jobs = list(jobs)
    progress = services.adapters().progress
    for job in jobs:
        if not job.is_running:
            continue
        try:
            live = progress.read(job.id)
        except ReelqueueError as exc:
            log.warning("live progress of job %s unavailable: %s", job.id, exc)
            continue
        if live is not None:
            job.stage, job.percent = live.stage, live.percent
    return jobs


def output_signer() -> Callable[[str], str]:
    """Turns a storage key into a short-lived download URL."""
    adapters = services.adapters()
    expires_s = adapters.settings.presign_expires_s
    return lambda key: adapters.storage.presigned_get(key, expires_s=expires_s)
