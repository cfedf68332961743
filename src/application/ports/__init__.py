"""Ports: what the application needs from the outside world, as ``typing.Protocol``."""

from src.application.ports.clock import Clock
from src.application.ports.idempotency_keys import IdempotencyKeys, IdempotentRequest, KeptAnswer
from src.application.ports.inference import (
    GeneratedVideo,
    LocalGenerator,
    RemoteProvider,
    RemoteState,
    RemoteTask,
)
from src.application.ports.locks import Idempotency, Lock
from src.application.ports.media import MediaInfo, Transcoder, UrlFetcher
from src.application.ports.progress import Progress, ProgressStore
from src.application.ports.queue import DeadLetter, JobConsumer, JobPublisher, QueueAdmin, ReceivedMessage
from src.application.ports.repositories import (
    AIJobRepository,
    JobRepository,
    Outbox,
    OutboxEntry,
    OutboxRelay,
    VideoJobRepository,
)
from src.application.ports.storage import Storage

__all__ = [
    "AIJobRepository",
    "Clock",
    "DeadLetter",
    "GeneratedVideo",
    "Idempotency",
    "IdempotencyKeys",
    "IdempotentRequest",
    "JobConsumer",
    "JobPublisher",
    "JobRepository",
    "KeptAnswer",
    "LocalGenerator",
    "Lock",
    "MediaInfo",
    "Outbox",
    "OutboxEntry",
    "OutboxRelay",
    "Progress",
    "ProgressStore",
    "QueueAdmin",
    "ReceivedMessage",
    "RemoteProvider",
    "RemoteState",
    "RemoteTask",
    "Storage",
    "Transcoder",
    "UrlFetcher",
    "VideoJobRepository",
]
