"""In-memory adapters for every port: first-class fakes for unit tests (yours too).

They store domain objects and enforce the same rules as the real adapters: conditional
status updates, lock tokens and TTLs on an injectable clock, visibility timeouts, delays and
the dead-letter rule.
"""

from src.infrastructure.memory.clock import FakeClock
from src.infrastructure.memory.inference import FakeLocalGenerator, FakeRemoteProvider
from src.infrastructure.memory.locks import InMemoryIdempotency
from src.infrastructure.memory.media import FakeTranscoder, FakeUrlFetcher
from src.infrastructure.memory.progress import InMemoryProgress
from src.infrastructure.memory.queue import (
    InMemoryBroker,
    InMemoryConsumer,
    InMemoryPublisher,
    InMemoryQueueAdmin,
)
from src.infrastructure.memory.repository import (
    InMemoryDatabase,
    InMemoryIdempotencyKeys,
    InMemoryJobRepository,
    InMemoryOutbox,
)
from src.infrastructure.memory.storage import InMemoryStorage

__all__ = [
    "FakeClock",
    "FakeLocalGenerator",
    "FakeRemoteProvider",
    "FakeTranscoder",
    "FakeUrlFetcher",
    "InMemoryBroker",
    "InMemoryConsumer",
    "InMemoryDatabase",
    "InMemoryIdempotency",
    "InMemoryIdempotencyKeys",
    "InMemoryJobRepository",
    "InMemoryOutbox",
    "InMemoryProgress",
    "InMemoryPublisher",
    "InMemoryQueueAdmin",
    "InMemoryStorage",
]
