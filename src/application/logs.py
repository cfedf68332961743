"""Structured log context for a job: every line about a job carries the same fields."""

from __future__ import annotations

import logging
from typing import Any

from src.domain.jobs import AIJob, Job


def job_fields(job: Job) -> dict[str, Any]:
    fields: dict[str, Any] = {"job_id": job.id, "kind": job.kind.value, "attempt": job.attempts}
    if isinstance(job, AIJob):
        fields.update(provider=job.provider, model=job.model, production_path=job.production_path)
    return fields


def job_log(logger: logging.Logger, job: Job) -> logging.LoggerAdapter[logging.Logger]:
    return logging.LoggerAdapter(logger, job_fields(job))
