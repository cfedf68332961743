"""What a handler tells the consumer loop to do with the message it was given."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Action(str, Enum):
    ACK = "ack"  # done with it (succeeded, failed for good, duplicate, nothing to do)
    RETRY_LATER = "retry_later"  # send a delayed copy, then ack this one
    RELEASE = "release"  # hand it back now, untouched (shutdown)


@dataclass(frozen=True)
class Outcome:
    action: Action
    reason: str
    delay_s: int = 0

    @classmethod
    def ack(cls, reason: str) -> Outcome:
        return cls(Action.ACK, reason)

    @classmethod
    def retry_later(cls, delay_s: int, reason: str) -> Outcome:
        return cls(Action.RETRY_LATER, reason, delay_s)

    @classmethod
    def release(cls, reason: str) -> Outcome:
        return cls(Action.RELEASE, reason)
