"""The library, as the API process uses it: one set of adapters, built on first use.

Built from ``settings.REELQUEUE`` (a :class:`src.config.Settings`); rebuilt when a test
overrides that setting. First use is the first request, so under gunicorn each worker process
builds its own after the fork, with its own outbox relay thread (SQS: a request never waits for
the queue). At exit the relay gets a few seconds to send what it holds; the rest stays in the
outbox for the reconciler.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from src import bootstrap
from src.application.enqueue import JobService
from src.application.replays import IdempotentRequests
from src.config import Settings
from src.domain.jobs import Job, JobKind

_lock = threading.Lock()
_adapters: bootstrap.Adapters | None = None


def adapters() -> bootstrap.Adapters:
    global _adapters
    with _lock:
        if _adapters is None:
            _adapters = bootstrap.build(library_settings(), background_relay=True)
            atexit.register(_adapters.close)
        return _adapters


def library_settings() -> Settings:
    return settings.REELQUEUE


def job_service() -> JobService:
    return bootstrap.job_service(adapters(), url_guard=url_guard())


def idempotent_requests() -> IdempotentRequests:
    return bootstrap.idempotent_requests(adapters())


def url_guard() -> Callable[[str, str], None]:
    guard: Callable[[str, str], None] = import_string(settings.REELQUEUE_URL_GUARD)
    return guard


def reset() -> None:
    """Close the adapters; the next use builds them again from the current settings."""
    global _adapters
    with _lock:
        if _adapters is not None:
            atexit.unregister(_adapters.close)
            _adapters.close()
        _adapters = None


@receiver(setting_changed)
def _settings_changed(*, setting: str, **_: object) -> None:
    if setting in ("REELQUEUE", "REELQUEUE_URL_GUARD"):
        reset()


def load_job(kind: str, job_id: str) -> Job:
    """The domain job behind a row, for a use case to change."""
    repos = adapters()
    return (repos.ai_jobs if kind == JobKind.AI.value else repos.video_jobs).get(job_id)
