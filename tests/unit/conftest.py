"""A small world of in-memory adapters for handler tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from src.application.enqueue import InlineRelay, JobService
from src.application.handlers import ProcessAIJobHandler, ProcessVideoJobHandler
from src.application.retry import RetryPolicy
from src.domain.jobs import AIJob, VideoJob
from src.infrastructure.memory import (
    FakeClock,
    FakeLocalGenerator,
    FakeRemoteProvider,
    FakeTranscoder,
    FakeUrlFetcher,
    InMemoryBroker,
    InMemoryDatabase,
    InMemoryIdempotency,
    InMemoryJobRepository,
    InMemoryOutbox,
    InMemoryProgress,
    InMemoryPublisher,
    InMemoryStorage,
)


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.db = InMemoryDatabase(self.clock)
        self.video_jobs = InMemoryJobRepository(self.db, VideoJob)
        self.ai_jobs = InMemoryJobRepository(self.db, AIJob)
        self.outbox = InMemoryOutbox(self.db)
        self.locks = InMemoryIdempotency(self.clock)
        self.progress = InMemoryProgress(self.clock)
        self.storage = InMemoryStorage()
        self.broker = InMemoryBroker(self.clock)
        self.publisher = InMemoryPublisher(self.broker)
        self.transcoder = FakeTranscoder()
        self.fetcher = FakeUrlFetcher()
        self.generator = FakeLocalGenerator()
        self.runway = FakeRemoteProvider()
        self.retry_policy = RetryPolicy(max_attempts=3, base_delay_s=10, rng=lambda: 0.5)

    def base(self, jobs):
        return {"jobs": jobs, "locks": self.locks, "progress": self.progress, "clock": self.clock,
                "retry_policy": self.retry_policy, "cancel_check_interval_s": 0}

    def service(self, **kw) -> JobService:
        relay = InlineRelay(outbox=self.outbox, publisher=self.publisher)
        return JobService(video_jobs=self.video_jobs, ai_jobs=self.ai_jobs, relay=relay,
                          publisher=self.publisher, clock=self.clock, **kw)

    def video_handler(self) -> ProcessVideoJobHandler:
        return ProcessVideoJobHandler(storage=self.storage, transcoder=self.transcoder,
                                      fetcher=self.fetcher, **self.base(self.video_jobs))

    def ai_handler(self) -> ProcessAIJobHandler:
        return ProcessAIJobHandler(
            storage=self.storage, local={"wan_local": self.generator},
            remote={"runway": self.runway, "luma": FakeRemoteProvider()},
            callback_url=lambda job: f"https://api.example/cb/{job.id}",
            **self.base(self.ai_jobs),
        )


@pytest.fixture
def world() -> World:
    return World()
