"""A fake Luma Dream Machine API (``/dream-machine/v1``) with its callbacks.

``POST /generations/video`` creates a generation (``queued`` -> ``dreaming`` -> ``completed``
with ``assets.video``, or ``failed`` with ``failure_reason`` when the prompt holds an unsafe
word); ``GET /generations/{id}``; ``DELETE /generations/{id}`` removes the generation (204,
then ``GET`` answers 404; an unknown id is 404; each DELETE is recorded, :meth:`delete_count`).
On every state change after creation it POSTs the generation to its ``callback_url``, trying 3
times 100 ms apart, as Luma documents.

A create body is checked field by field against ``GenerationRequest`` of Luma's openapi.yaml
(``lumalabs/lumaai-api``) and the SDK's ``VideoCreateParams`` (``lumalabs/lumaai-python``): the
first broken rule answers 400 with ``{"detail": ...}``, the spec's ``Error`` shape, and creates
nothing. Each rule's source is listed in docs/providers.md.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.fakes.server import Answer, FakeApiServer, Task

# openapi.yaml (lumalabs/lumaai-api) and the SDK's video_create_params.py (lumalabs/lumaai-python)
MODELS = ("ray-1-6", "ray-2", "ray-flash-2")
DURATIONS = ("5s", "9s")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
CALLBACK_TRIES = 3
CALLBACK_GAP_S = 0.1
TICK_S = 0.02
MODERATION_FAILURE = "400: prompt not allowed because advanced moderation failed"


class FakeLuma(FakeApiServer):
    prefix = "/dream-machine/v1"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.callbacks: list[tuple[str, str, int | str]] = []  # (url, state, status or error)
        self._notified: dict[str, str] = {}
        self._running = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> FakeLuma:
        super().start()
        self._running.set()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._running.clear()
        super().stop()

    def authorized(self, headers: Any) -> Answer | None:
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"detail": "Invalid API key"}
        return None

    def route(self, method: str, path: str, body: Any) -> Answer:
        if method == "POST" and path == "/generations/video":
            return self.create(body)
        if path.startswith("/generations/"):
            generation_id = path.removeprefix("/generations/")
            if method == "GET":
                return self.get(generation_id)
            if method == "DELETE":
                return self.record_delete(generation_id, self.delete(generation_id))
        return 404, {"detail": "Not found"}

    def create(self, body: Any) -> Answer:
        problem = validate(body)
        if problem:
            return 400, {"detail": problem}
        task = self.new_task(body, str(body.get("prompt", "")))
        self._notified[task.id] = "queued"
        return 201, self.describe(task)

    def get(self, generation_id: str) -> Answer:
        task = self.tasks.get(generation_id)
        if task is None:
            return 404, {"detail": "Generation not found"}
        return 200, self.describe(task)

    def delete(self, generation_id: str) -> Answer:
        with self.lock:
            if self.tasks.pop(generation_id, None) is None:
                return 404, {"detail": "Generation not found"}
        return 204, None

    def state(self, task: Task) -> str:
        age = task.age_s()
        if age < self.queue_s:
            return "queued"
        if age < self.queue_s + self.generation_s:
            return "dreaming"
        return "failed" if self.unsafe(task) or task.failure_code else "completed"

    def describe(self, task: Task) -> dict[str, Any]:
        state = self.state(task)
        body = task.body
        return {
            "id": task.id,
            "generation_type": "video",
            "state": state,
            "failure_reason": (task.failure_code or MODERATION_FAILURE) if state == "failed" else None,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "assets": {"video": self.output_url(task.id)} if state == "completed" else None,
            "model": body.get("model"),
            "request": body,
        }

    # --- callbacks -------------------------------------------------------------------------------

    def _tick(self) -> None:
        while self._running.is_set():
            for task in list(self.tasks.values()):
                url = task.body.get("callback_url")
                state = self.state(task)
                if url and self._notified.get(task.id) != state:
                    self._notified[task.id] = state
                    payload = self.describe(task)
                    threading.Thread(target=self._call_back, args=(url, payload), daemon=True).start()
            time.sleep(TICK_S)

    def _call_back(self, url: str, payload: dict[str, Any]) -> None:
        for attempt in range(CALLBACK_TRIES):
            outcome: int | str
            try:
                outcome = requests.post(url, json=payload, timeout=2).status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self.lock:
                self.callbacks.append((url, payload["state"], outcome))
            if isinstance(outcome, int) and outcome < 300:
                return
            if attempt + 1 < CALLBACK_TRIES:
                time.sleep(CALLBACK_GAP_S)


def validate(body: Any) -> str | None:
    """The first broken rule of ``GenerationRequest`` (openapi.yaml) / ``VideoCreateParams`` (SDK)."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    if "model" not in body:
        return "model is required"
    for name, check in FIELDS.items():
        if name in body:
            problem = check(body[name])
            if problem:
                return f"{name}: {problem}"
    return None


def _one_of(*allowed: str) -> Any:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"
    return check


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _uri(value: Any) -> str | None:
    """``format: uri``: an absolute URL; Luma's servers fetch it (callbacks, keyframe images)."""
    if not isinstance(value, str):
        return "must be a string"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    return None


def _keyframes(value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return "must be an object with frame0 and/or frame1"
    unknown = sorted(set(value) - {"frame0", "frame1"})
    if unknown:
        return f"unknown keyframe(s): {', '.join(unknown)}"
    for name, frame in value.items():
        problem = _keyframe(frame)
        if problem:
            return f"{name} {problem}"
    return None


def _keyframe(frame: Any) -> str | None:
    if not isinstance(frame, dict):
        return "must be {type: image, url} or {type: generation, id}"
    kind = frame.get("type")
    if kind == "image" and set(frame) == {"type", "url"}:
        problem = _uri(frame["url"])
        return f"url {problem}" if problem else None
    if kind == "generation" and set(frame) == {"type", "id"}:
        return None if _is_uuid(frame["id"]) else "id must be a generation id (uuid)"
    return "must be {type: image, url} or {type: generation, id}"


def _concepts(value: Any) -> str | None:
    if not isinstance(value, list) or not all(
        isinstance(c, dict) and set(c) == {"key"} and isinstance(c["key"], str) for c in value
    ):
        return "must be a list of {key}"
    return None


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


FIELDS = {
    "model": _one_of(*MODELS),
    "prompt": _string,
    "aspect_ratio": _one_of(*RATIOS),
    "duration": _one_of(*DURATIONS),
    "resolution": _one_of(*RESOLUTIONS),
    "loop": _boolean,
    "keyframes": _keyframes,
    "callback_url": _uri,
    "generation_type": _one_of("video"),
    "concepts": _concepts,
}
