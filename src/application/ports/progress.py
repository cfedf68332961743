from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class Progress:
    stage: str
    percent: float
    message: str = ""
    updated_at: datetime


class ProgressStore(Protocol):
    """Live progress, written often and read by the API; the database gets the final state."""

    def record(self, job_id: str, *, stage: str, percent: float, message: str = "") -> None:
        """Best effort: never raises. Within one stage, percent never goes backwards."""
        ...

    def read(self, job_id: str) -> Progress | None:
        ...

    def flush(self, job_id: str) -> Progress | None:
        """The last progress recorded, to be saved with the job's final state."""
        ...
