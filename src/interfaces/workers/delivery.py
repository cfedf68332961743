"""What the worker's parts pass between them: a received job, its labels, the handler port."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from src.application.handlers import Stopper
from src.application.messages import JobMessage
from src.application.outcomes import Outcome
from src.application.ports import ReceivedMessage


class Handler(Protocol):
    def handle(self, job_id: str, *, shutting_down: Stopper) -> Outcome: ...

    def renew_lock(self, job_id: str) -> bool: ...


@dataclass(frozen=True)
class JobLabels:
    """What logs and metrics say about a job before it runs."""

    kind: str
    provider: str = ""
    production_path: str = ""

    def log_fields(self, message: JobMessage) -> dict[str, str]:
        fields = {"job_id": message.job_id, "kind": self.kind}
        if self.provider:
            fields.update(provider=self.provider, production_path=self.production_path)
        return fields

    def values(self) -> tuple[str, str, str]:
        return self.kind, self.provider, self.production_path


Describe = Callable[[JobMessage], JobLabels]
"""Loads what a job needs before it can start (its path); raises :class:`JobNotFound`."""


def kind_only(message: JobMessage) -> JobLabels:
    return JobLabels(kind=message.kind.value)


@dataclass(eq=False)
class Delivery:
    """One received message whose job runs now (compared by identity)."""

    message: ReceivedMessage
    job: JobMessage
    labels: JobLabels
    started_s: float = field(default_factory=time.monotonic)

    def log_fields(self) -> dict[str, str]:
        return self.labels.log_fields(self.job)
