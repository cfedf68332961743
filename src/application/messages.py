"""The queue message: small, versioned, and only a pointer to the job row."""

from __future__ import annotations

import json
from dataclasses import dataclass

from src.domain.catalogue import CATALOGUE
from src.domain.errors import ReelqueueError
from src.domain.jobs import AIJob, Job, JobKind

MESSAGE_VERSION = 1


class UndecodableMessage(ReelqueueError):
    """A message body that is not a job message this version understands."""


@dataclass(frozen=True, kw_only=True)
class JobMessage:
    kind: JobKind
    job_id: str
    queue: str

    def encode(self) -> str:
        return json.dumps(
            {"v": MESSAGE_VERSION, "kind": self.kind.value, "job_id": self.job_id},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, body: str | bytes, *, queue: str) -> JobMessage:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UndecodableMessage(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UndecodableMessage("body is not a JSON object")
        if data.get("v") != MESSAGE_VERSION:
            raise UndecodableMessage(f"unknown message version {data.get('v')!r}")
        try:
            kind = JobKind(data.get("kind"))
        except ValueError:
            raise UndecodableMessage(f"unknown job kind {data.get('kind')!r}") from None
        job_id = data.get("job_id")
        if not isinstance(job_id, str) or not job_id or len(job_id) > 64:
            raise UndecodableMessage("job_id is missing or not a short string")
        return cls(kind=kind, job_id=job_id, queue=queue)

    @classmethod
    def for_job(cls, job: Job) -> JobMessage:
        return cls(kind=job.kind, job_id=job.id, queue=queue_for(job))


def queue_for(job: Job) -> str:
    """The queue a job's messages go to: ``video``, ``ai-gpu`` (wan_local) or ``ai-remote``."""
    if isinstance(job, AIJob):
        return CATALOGUE[job.model].queue
    return "video"
