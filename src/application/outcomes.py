"""What a handler tells the consumer loop to do with the message it was given."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Action(str, Enum):
    ACK = "ack"  # done with it (succeeded, failed for good, duplicate, nothing to do)
    RETRY_LATER = "retry_later"  # send a delayed copy, then ack this one
    RELEASE = "release"  # hand it back now, untouched (shutdown)


class Ending(str, Enum):
    """How a delivery left its job, as a type (metrics count these; the reason is for people)."""

    NONE = "none"  # the job goes on, or was settled before (retry later, waiting, duplicate)
    SUCCEEDED = "succeeded"
    FAILED = "failed permanently"  # a permanent error
    EXHAUSTED = "attempts exhausted"  # transient errors until the retry policy gave up


@dataclass(frozen=True)
class Outcome:
    action: Action
    reason: str
    delay_s: int = 0
    ending: Ending = Ending.NONE

    @classmethod
    def ack(cls, reason: str, ending: Ending = Ending.NONE) -> Outcome:
        return cls(Action.ACK, reason, ending=ending)

    @classmethod
    def succeeded(cls) -> Outcome:
        return cls.ack("succeeded", Ending.SUCCEEDED)

    @classmethod
    def failed(cls, ending: Ending) -> Outcome:
        """The job was saved as failed for good (``ending`` says why, as a type)."""
        return cls.ack(ending.value, ending)

    @classmethod
    def retry_later(cls, delay_s: int, reason: str) -> Outcome:
        return cls(Action.RETRY_LATER, reason, delay_s)

    @classmethod
    def release(cls, reason: str) -> Outcome:
        return cls(Action.RELEASE, reason)
