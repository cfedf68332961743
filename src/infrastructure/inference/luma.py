"""Luma Dream Machine (``/dream-machine/v1``) as a remote provider.

Luma's callbacks are unsigned hints: the API relays them as a queue message and the
worker re-fetches the generation here before changing anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from src.application.backoff import ExponentialBackoff
from src.application.ports import RemoteState, RemoteTask
from src.domain.catalogue import LUMA_RATIOS
from src.domain.errors import PermanentError, ReelqueueError
from src.domain.jobs import AIJob, Mode
from src.infrastructure.inference.http import READ_BACKOFF, ApiClient, OutputDownloader, created_id, json_of

if TYPE_CHECKING:
    from src.config import Settings

log = logging.getLogger(__name__)

STATES = {
    "queued": RemoteState.PENDING,
    "dreaming": RemoteState.RUNNING,
    "completed": RemoteState.SUCCEEDED,
    "failed": RemoteState.FAILED,
}
DREAMING_PROGRESS = 50.0  # Luma reports no percentage while dreaming
DEFAULT_RATIO = "16:9"  # Luma's own default (openapi.yaml AspectRatio), also for image-to-video
DEFAULT_DURATION_S = 5
GONE = frozenset({404})  # a DELETE of a generation Luma no longer knows

ImageSize = Callable[[str], tuple[int, int]]
"""Maps a job's input image (a storage key or a URL) to its (width, height) in pixels."""


class LumaProvider:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://api.lumalabs.ai/dream-machine/v1",
        timeout_s: float = 30.0,
        create_timeout_s: float = 60.0,
        resolution: str = "720p",
        session: requests.Session | None = None,
        max_retries: int = 3,
        backoff: ExponentialBackoff = READ_BACKOFF,
        image_size: ImageSize | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self.api = ApiClient(provider="luma", base_url=base_url, headers=headers, timeout_s=timeout_s,
                             create_timeout_s=create_timeout_s, session=session, max_retries=max_retries,
                             backoff=backoff)
        self.downloader = OutputDownloader(provider="luma", trusted_base_url=base_url,
                                           timeout_s=timeout_s, session=session)
        self.resolution = resolution
        self.image_size = image_size

    @classmethod
    def from_settings(cls, settings: Settings, *, image_size: ImageSize | None = None) -> LumaProvider:
        return cls(api_key=settings.luma_api_key, base_url=settings.luma_base_url,
                   timeout_s=settings.provider_timeout_s,
                   create_timeout_s=settings.provider_create_timeout_s, image_size=image_size)

    def __repr__(self) -> str:
        return f"LumaProvider(base_url={self.api.base_url!r})"

    def submit(self, job: AIJob, *, input_image_url: str | None, callback_url: str | None) -> str:
        body = request_body(job, input_image_url, callback_url, resolution=self.resolution,
                            ratio=job.ratio or self._ratio_of_input(job))
        response = self.api.call("POST", "/generations/video", body=body, creates=True)
        return created_id(response, "luma")

    def _ratio_of_input(self, job: AIJob) -> str:
        """Luma answers an image without a ratio in 16:9; a portrait image keeps its own shape."""
        if job.mode is not Mode.IMAGE_TO_VIDEO or not job.input_image:
            return DEFAULT_RATIO
        if self.image_size is None:
            raise PermanentError("luma image-to-video without a ratio needs the image's size; "
                                 "give the job a ratio")
        try:
            width, height = self.image_size(job.input_image)
        except ReelqueueError:  # transient or permanent, as the storage or downloader said
            raise
        except Exception as exc:  # nothing was sent to Luma: say so plainly, never "outcome unknown"
            raise PermanentError(f"the input image could not be measured: {exc}") from exc
        return nearest_ratio(width, height)

    def poll(self, task_id: str) -> RemoteTask:
        data = json_of(self.api.call("GET", f"/generations/{task_id}"), "luma")
        return to_task(task_id, data)

    def cancel(self, task_id: str) -> bool:
        """``DELETE /generations/{id}`` removes the generation (Luma documents no other cancel;
        whether removing a running one stops its billing is not documented). False when Luma no
        longer knows it (404)."""
        response = self.api.call("DELETE", f"/generations/{task_id}", answers=GONE)
        return response.status_code not in GONE

    def download(self, url: str, dest: Path) -> int:
        return self.downloader.download(url, dest)


def request_body(job: AIJob, input_image_url: str | None, callback_url: str | None, *,
                 resolution: str, ratio: str = DEFAULT_RATIO) -> dict[str, Any]:
    """``POST /generations/video`` as openapi.yaml's ``GenerationRequest`` defines it."""
    body: dict[str, Any] = {"model": job.model}
    if job.prompt:  # optional for Luma; an image-to-video job may have none
        body["prompt"] = job.prompt
    body.update(duration=f"{job.duration_s or DEFAULT_DURATION_S}s", resolution=resolution,
                aspect_ratio=ratio)
    if job.mode is Mode.IMAGE_TO_VIDEO:
        body["keyframes"] = {"frame0": {"type": "image", "url": input_image_url}}
    if callback_url:
        body["callback_url"] = callback_url
    return body


def nearest_ratio(width: int, height: int) -> str:
    """The Luma ratio closest to ``width:height`` (compared as logarithms: 2:1 and 1:2 are as far
    from 1:1)."""
    if width <= 0 or height <= 0:
        raise PermanentError(f"the input image has no usable size ({width}x{height})")
    shape = math.log(width / height)
    return min(LUMA_RATIOS, key=lambda ratio: abs(math.log(_ratio_value(ratio)) - shape))


def _ratio_value(ratio: str) -> float:
    width, height = ratio.split(":")
    return int(width) / int(height)


def to_task(task_id: str, data: dict[str, Any]) -> RemoteTask:
    raw = str(data.get("state", ""))
    state = STATES.get(raw)
    if state is None:
        raise PermanentError(f"luma generation {task_id} has an unknown state {raw!r}")
    assets = data.get("assets") or {}
    video = assets.get("video") if isinstance(assets, dict) else None
    progress = {RemoteState.RUNNING: DREAMING_PROGRESS, RemoteState.SUCCEEDED: 100.0}.get(state, 0.0)
    failure = data.get("failure_reason") or "no reason given" if state is RemoteState.FAILED else None
    return RemoteTask(task_id=task_id, state=state, progress=progress,
                      output_urls=(video,) if video else (), failure=failure,
                      user_error=f"The provider could not generate the video: {failure}" if failure else None)
