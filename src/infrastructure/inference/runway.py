"""Runway's developer API (``api.dev.runwayml.com``, version 2024-11-06) as a remote provider.

Runway has no idempotency key: a create that was sent but never answered raises
:class:`SubmissionOutcomeUnknown` and is never sent again automatically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from src.application.ports import RemoteState, RemoteTask
from src.domain.catalogue import CATALOGUE
from src.domain.errors import PermanentError
from src.domain.jobs import AIJob, Mode
from src.infrastructure.inference.http import ApiClient, Backoff, OutputDownloader, json_of

if TYPE_CHECKING:
    from src.config import Settings

log = logging.getLogger(__name__)

API_VERSION = "2024-11-06"
GONE = frozenset({404})  # a DELETE of a task Runway no longer knows
STATES = {
    "PENDING": RemoteState.PENDING,
    "THROTTLED": RemoteState.PENDING,
    "RUNNING": RemoteState.RUNNING,
    "SUCCEEDED": RemoteState.SUCCEEDED,
    "FAILED": RemoteState.FAILED,
    "CANCELLED": RemoteState.CANCELLED,
}


class RunwayProvider:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://api.dev.runwayml.com",
        timeout_s: float = 30.0,
        session: requests.Session | None = None,
        max_retries: int = 3,
        backoff: Backoff = Backoff(),
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION}
        self.api = ApiClient(provider="runway", base_url=base_url, headers=headers, timeout_s=timeout_s,
                             session=session, max_retries=max_retries, backoff=backoff)
        self.downloader = OutputDownloader(provider="runway", trusted_base_url=base_url,
                                           timeout_s=timeout_s, session=session)

    @classmethod
    def from_settings(cls, settings: Settings) -> RunwayProvider:
        return cls(api_key=settings.runway_api_key, base_url=settings.runway_base_url,
                   timeout_s=settings.provider_timeout_s)

    def __repr__(self) -> str:
        return f"RunwayProvider(base_url={self.api.base_url!r})"

    def submit(self, job: AIJob, *, input_image_url: str | None, callback_url: str | None) -> str:
        path = "/v1/image_to_video" if job.mode is Mode.IMAGE_TO_VIDEO else "/v1/text_to_video"
        response = self.api.call("POST", path, body=request_body(job, input_image_url), creates=True)
        task_id = json_of(response, "runway").get("id")
        if not task_id:
            raise PermanentError("runway accepted the task but returned no id")
        return str(task_id)

    def poll(self, task_id: str) -> RemoteTask:
        data = json_of(self.api.call("GET", f"/v1/tasks/{task_id}"), "runway")
        return to_task(task_id, data)

    def cancel(self, task_id: str) -> bool:
        """``DELETE /v1/tasks/{id}``: cancels a pending, throttled or running task, deletes a
        finished one. False when Runway no longer knows the task (404): nothing left to stop."""
        response = self.api.call("DELETE", f"/v1/tasks/{task_id}", answers=GONE)
        return response.status_code not in GONE

    def download(self, url: str, dest: Path) -> int:
        return self.downloader.download(url, dest)


def request_body(job: AIJob, input_image_url: str | None) -> dict[str, Any]:
    """The camelCase body Runway expects; absent options are left out."""
    body: dict[str, Any] = {
        "model": job.model,
        "promptText": job.prompt or None,
        "ratio": job.ratio or default_ratio(job),
        "duration": job.duration_s or default_duration(job.model),
        "seed": job.seed,
    }
    if job.mode is Mode.IMAGE_TO_VIDEO:
        body["promptImage"] = input_image_url
    return {k: v for k, v in body.items() if v is not None}


def default_ratio(job: AIJob) -> str:
    ratios = CATALOGUE[job.model].ratios or {}
    allowed = ratios.get(job.mode, ("1280:720",))
    return allowed[0]


def default_duration(model: str) -> int:
    durations = CATALOGUE[model].durations_s or (5,)
    return 5 if 5 in durations else durations[-1]


def to_task(task_id: str, data: dict[str, Any]) -> RemoteTask:
    status = str(data.get("status", ""))
    state = STATES.get(status)
    if state is None:
        raise PermanentError(f"runway task {task_id} has an unknown status {status!r}")
    progress = 100.0 if state is RemoteState.SUCCEEDED else float(data.get("progress") or 0) * 100
    failure = None
    if state is RemoteState.FAILED:
        code = data.get("failureCode") or "UNKNOWN"
        failure = f"{code}: {data.get('failure') or 'no reason given'}"
    return RemoteTask(task_id=task_id, state=state, progress=progress,
                      output_urls=tuple(data.get("output") or ()), failure=failure)
