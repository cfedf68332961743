"""What the worker's parts pass between them: a received job, its labels, the handler port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from src.application.handlers import Stopper
from src.application.messages import JobMessage
from src.application.outcomes import Outcome
from src.application.ports import ReceivedMessage

T = TypeVar("T")


class ExtendMark(Generic[T]):
    """The one item whose message the heartbeat extends now, guarded by its owner's condition:
    the extend call goes out with no lock held, and whoever settles the item waits for the mark
    to clear (``item is not ...``), so an extend never lands after an ack or a hand-back."""

    def __init__(self, changed: threading.Condition) -> None:
        self._changed = changed
        self.item: T | None = None  # read and written under ``changed``

    @contextmanager
    def hold(self, item: T, *, present: Callable[[], bool]) -> Iterator[bool]:
        """Marks ``item`` while ``present()`` (checked under the lock); yields False when it is
        not: its message is already settled or taken."""
        with self._changed:
            held = present()
            if held:
                self.item = item
        if not held:
            yield False
            return
        try:
            yield True
        finally:
            with self._changed:
                self.item = None
                self._changed.notify_all()


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
