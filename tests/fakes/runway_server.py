"""A fake Runway API (version 2024-11-06) that follows the documented task lifecycle.

``POST /v1/image_to_video`` and ``/v1/text_to_video`` create a task; ``GET /v1/tasks/{id}``
reports ``THROTTLED`` -> ``PENDING`` -> ``RUNNING`` (with ``progress`` 0-1) -> ``SUCCEEDED``
(``output``: URLs served by this server) or ``FAILED`` (``failure``/``failureCode``, e.g.
``SAFETY.INPUT.TEXT`` when the prompt holds an unsafe word). ``DELETE /v1/tasks/{id}`` answers
204 and cancels a pending, throttled or running task or deletes a finished one; either way the
task cannot be fetched again (404), as the official SDK documents (``runwayml/sdk-python``,
``src/runwayml/resources/tasks.py``, ``TasksResource.delete``); an unknown id is 404. Each DELETE
is recorded (:meth:`delete_count`). :meth:`cancel_elsewhere` plays a task cancelled outside this
API (the documented ``CANCELLED`` status), which stays visible.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tests.fakes.server import Answer, FakeApiServer, Task

VERSION = "2024-11-06"
I2V_MODELS = ("gen4_turbo", "gen4.5", "veo3", "veo3.1", "veo3.1_fast")
T2V_MODELS = ("gen4.5", "veo3", "veo3.1", "veo3.1_fast")
SAFETY_FAILURE = ("SAFETY.INPUT.TEXT", "The prompt was flagged by content moderation.")
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


class FakeRunway(FakeApiServer):
    def __init__(self, *, throttled_s: float = 0.0, **options: Any) -> None:
        super().__init__(**options)
        self.throttled_s = throttled_s
        self.removed: dict[str, str] = {}  # task id -> CANCELLED (stopped) or DELETED (was finished)

    def authorized(self, headers: Any) -> Answer | None:
        denied = super().authorized(headers)
        if denied is None and headers.get("X-Runway-Version") != VERSION:
            return 400, {"error": f"X-Runway-Version must be {VERSION}"}
        return denied

    def route(self, method: str, path: str, body: Any) -> Answer:
        if method == "POST" and path in ("/v1/image_to_video", "/v1/text_to_video"):
            return self.create(path.endswith("image_to_video"), body)
        if path.startswith("/v1/tasks/"):
            task_id = path.removeprefix("/v1/tasks/")
            if method == "GET":
                return self.get(task_id)
            if method == "DELETE":
                return self.record_delete(task_id, self.delete(task_id))
        return 404, {"error": "Not found"}

    def create(self, image: bool, body: Any) -> Answer:
        issues = validate(image, body)
        if issues:
            return 400, {"error": "Validation of body failed", "issues": issues}
        task = self.new_task(body, str(body.get("promptText", "")))
        return 200, {"id": task.id}

    def get(self, task_id: str) -> Answer:
        task = self.tasks.get(task_id)
        if task is None:
            return 404, {"error": "Task not found"}
        return 200, self.describe(task)

    def delete(self, task_id: str) -> Answer:
        """Cancel a pending/throttled/running task, delete any other; neither can be fetched again."""
        with self.lock:
            task = self.tasks.pop(task_id, None)
            if task is None:
                return 404, {"error": "Task not found"}
            self.removed[task_id] = "DELETED" if self.status(task) in FINISHED else "CANCELLED"
        return 204, None

    def cancel_elsewhere(self, task_id: str) -> None:
        """The task is cancelled outside this API (e.g. its dashboard): GET reports CANCELLED."""
        with self.lock:
            self.tasks[task_id].cancelled = True

    def status(self, task: Task) -> str:
        age = task.age_s()
        if task.cancelled:
            return "CANCELLED"
        if age < self.throttled_s:
            return "THROTTLED"
        if age < self.throttled_s + self.queue_s:
            return "PENDING"
        if age < self.throttled_s + self.queue_s + self.generation_s:
            return "RUNNING"
        return "FAILED" if self.unsafe(task) else "SUCCEEDED"

    def describe(self, task: Task) -> dict[str, Any]:
        status = self.status(task)
        data: dict[str, Any] = {"id": task.id, "status": status, "createdAt": _iso(task)}
        if status == "RUNNING":
            done = task.age_s() - self.throttled_s - self.queue_s
            data["progress"] = round(min(0.99, max(0.0, done / self.generation_s)), 3)
        if status == "SUCCEEDED":
            data["output"] = [self.output_url(task.id)]
        if status == "FAILED":
            data["failureCode"], data["failure"] = SAFETY_FAILURE
        return data


def validate(image: bool, body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"path": "", "message": "body must be a JSON object"}]
    issues = []
    models = I2V_MODELS if image else T2V_MODELS
    if body.get("model") not in models:
        issues.append({"path": "model", "message": f"must be one of {', '.join(models)}"})
    if image and not str(body.get("promptImage", "")).startswith(("https://", "http://", "data:image/")):
        issues.append({"path": "promptImage", "message": "an https URL or a data URI is required"})
    if not image and not body.get("promptText"):
        issues.append({"path": "promptText", "message": "required"})
    if len(str(body.get("promptText", ""))) > 1000:
        issues.append({"path": "promptText", "message": "at most 1000 characters"})
    if not body.get("ratio"):
        issues.append({"path": "ratio", "message": "required"})
    if "duration" in body and not isinstance(body["duration"], int):
        issues.append({"path": "duration", "message": "must be an integer"})
    return issues


def _iso(task: Task) -> str:
    return datetime.now(timezone.utc).isoformat()
