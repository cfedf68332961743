"""Runway's developer API (``api.dev.runwayml.com``, version 2024-11-06) as a remote provider.

Runway has no idempotency key: a create that was sent but never answered raises
:class:`SubmissionOutcomeUnknown` and is never sent again automatically.

The input image is prepared before the create (see :mod:`.runway_inputs`): a data URI, an
ephemeral upload, or the user's URL where Runway can fetch it. A failure there creates nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from src.application.backoff import ExponentialBackoff
from src.application.ports import RemoteState, RemoteTask, Storage
from src.domain.catalogue import CATALOGUE
from src.domain.errors import PermanentError, TransientError
from src.domain.jobs import AIJob, Mode
from src.infrastructure.inference.http import READ_BACKOFF, ApiClient, OutputDownloader, created_id, json_of
from src.infrastructure.inference.runway_inputs import PromptImages, UrlProber

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


@dataclass(frozen=True, kw_only=True)
class FailureRule:
    """What a family of Runway ``failureCode`` values means for the job (Runway's "Task failures")."""

    family: str  # a code and every code under it: "SAFETY" matches "SAFETY.INPUT.TEXT"
    retryable: bool
    user_error: str

    def matches(self, code: str) -> bool:
        return code == self.family or code.startswith(self.family + ".")


MODERATED = ("The request was declined by the provider's content moderation. "
             "Change the prompt or image and submit a new job.")
FAILURE_RULES = (  # the first match wins: the more specific families first
    FailureRule(family="SAFETY.OUTPUT", retryable=False,
                user_error="The generated video was declined by the provider's content moderation. "
                           "Change the prompt or image and submit a new job."),
    FailureRule(family="SAFETY", retryable=False, user_error=MODERATED),
    FailureRule(family="INPUT_PREPROCESSING.SAFETY", retryable=False, user_error=MODERATED),
    FailureRule(family="INPUT_PREPROCESSING.INTERNAL", retryable=True,
                user_error="The provider could not check the inputs; trying again."),
    FailureRule(family="INPUT_PREPROCESSING", retryable=False,
                user_error="The provider could not prepare the inputs. Check the prompt and image."),
    FailureRule(family="ASSET.INVALID", retryable=False,
                user_error="The provider could not use the input image: check that it is a valid, "
                           "supported image file."),
    FailureRule(family="INTERNAL.BAD_OUTPUT", retryable=True,
                user_error="The provider rejected its own output for quality reasons; trying again. "
                           "Overlaid text or graphics in the input image make this more likely."),
    FailureRule(family="INTERNAL", retryable=True,
                user_error="The provider had an internal error; trying again."),
)
UNKNOWN_FAILURE = "The provider could not generate the video."


class RunwayProvider:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://api.dev.runwayml.com",
        timeout_s: float = 30.0,
        create_timeout_s: float = 60.0,
        session: requests.Session | None = None,
        max_retries: int = 3,
        backoff: ExponentialBackoff = READ_BACKOFF,
        storage: Storage | None = None,
        fetcher: UrlProber | None = None,
    ) -> None:
        """``storage`` holds the input images named by key; ``fetcher`` is the guarded URL
        fetcher that checks (HEAD) and, where Runway could not, downloads a user's image URL."""
        headers = {"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION}
        self.api = ApiClient(provider="runway", base_url=base_url, headers=headers, timeout_s=timeout_s,
                             create_timeout_s=create_timeout_s, session=session, max_retries=max_retries,
                             backoff=backoff)
        self.downloader = OutputDownloader(provider="runway", trusted_base_url=base_url,
                                           timeout_s=timeout_s, session=session)
        self.images = PromptImages(storage=storage, fetcher=fetcher, upload=self.upload)

    @classmethod
    def from_settings(cls, settings: Settings, *, storage: Storage | None = None,
                      fetcher: UrlProber | None = None) -> RunwayProvider:
        return cls(api_key=settings.runway_api_key, base_url=settings.runway_base_url,
                   timeout_s=settings.provider_timeout_s,
                   create_timeout_s=settings.provider_create_timeout_s, storage=storage, fetcher=fetcher)

    def __repr__(self) -> str:
        return f"RunwayProvider(base_url={self.api.base_url!r})"

    def submit(self, job: AIJob, *, input_image_url: str | None, callback_url: str | None) -> str:
        """``input_image_url`` is not used: Runway cannot HEAD a presigned URL, so the image is
        read from ``job.input_image`` (a storage key or the user's URL) and prepared for it."""
        path = "/v1/image_to_video" if job.mode is Mode.IMAGE_TO_VIDEO else "/v1/text_to_video"
        prompt_image = self.prompt_image(job)
        response = self.api.call("POST", path, body=request_body(job, prompt_image), creates=True)
        return created_id(response, "runway")

    def prompt_image(self, job: AIJob) -> str | None:
        if job.mode is not Mode.IMAGE_TO_VIDEO:
            return None
        if not job.input_image:
            raise PermanentError("image-to-video needs an input image")
        return self.images.prompt_image(job.input_image)

    def upload(self, filename: str, data: bytes, content_type: str) -> str:
        """An ephemeral upload (``POST /v1/uploads``, then the form POST it asks for); its URI."""
        started = self.api.call("POST", "/v1/uploads", body={"filename": filename, "type": "ephemeral"})
        answer = json_of(started, "runway")
        upload_url, fields, uri = answer.get("uploadUrl"), answer.get("fields"), answer.get("runwayUri")
        if not (isinstance(upload_url, str) and isinstance(fields, dict) and isinstance(uri, str)):
            raise PermanentError("runway's upload answer lacks uploadUrl, fields or runwayUri")
        try:
            response = self.api.session.post(upload_url, data=fields, timeout=self.api.timeout_s,
                                             files={"file": (filename, data, content_type)})
        except requests.RequestException as exc:
            raise TransientError(f"uploading the input image to runway failed: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"runway's upload storage answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"runway's upload storage refused the image ({response.status_code})")
        return uri

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


def request_body(job: AIJob, prompt_image: str | None) -> dict[str, Any]:
    """The camelCase body Runway expects; absent options are left out, but a model that takes
    ``audio`` always gets the job's choice (its price depends on it)."""
    body: dict[str, Any] = {
        "model": job.model,
        "promptText": job.prompt or None,
        "ratio": job.ratio or default_ratio(job),
        "duration": job.duration_s or default_duration(job.model),
        "seed": job.seed,
    }
    if job.mode is Mode.IMAGE_TO_VIDEO:
        body["promptImage"] = prompt_image
    if CATALOGUE[job.model].audio_supported:
        body["audio"] = bool(job.audio)
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
    if state is RemoteState.FAILED:
        return failed_task(task_id, data)
    return RemoteTask(task_id=task_id, state=state, progress=progress,
                      output_urls=tuple(data.get("output") or ()))


def failed_task(task_id: str, data: dict[str, Any]) -> RemoteTask:
    """Runway's code and text stay for operators; the job's owner gets the rule's message."""
    code = str(data.get("failureCode") or "UNKNOWN")
    rule = next((r for r in FAILURE_RULES if r.matches(code)), None)
    return RemoteTask(
        task_id=task_id, state=RemoteState.FAILED,
        failure=f"{code}: {data.get('failure') or 'no reason given'}",
        user_error=rule.user_error if rule else UNKNOWN_FAILURE,
        retryable=rule.retryable if rule else False,
    )
