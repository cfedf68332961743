"""Every port and every adapter that implements it, for the type checker.

Ports are ``typing.Protocol``s: an adapter never names the port it implements, so nothing
but this list ties them together. Each function below takes one instance of every adapter
of a port and returns them as that port; ``mypy`` (``scripts/test``) then fails when an
adapter or an in-memory fake drifts from its port (a renamed keyword, a missing method, a
changed return type), naming the adapter, the port and the member that differs.

Nothing here runs: the functions exist to be type-checked, and the adapters are imported for
the checker only, so importing this module loads no driver (no torch, redis or boto3).
A new adapter gets a parameter here; a new port gets a function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.application.enqueue import InlineRelay
    from src.application.ports import (
        AIJobRepository,
        Clock,
        Idempotency,
        IdempotencyKeys,
        JobConsumer,
        JobPublisher,
        LocalGenerator,
        Outbox,
        OutboxRelay,
        ProgressStore,
        QueueAdmin,
        RemoteProvider,
        Storage,
        Transcoder,
        UrlFetcher,
        VideoJobRepository,
    )
    from src.domain.jobs import AIJob, VideoJob
    from src.infrastructure.cache.idempotency import RedisIdempotency
    from src.infrastructure.cache.progress import RedisProgress
    from src.infrastructure.clock import SystemClock
    from src.infrastructure.db.idempotency import SqlIdempotency
    from src.infrastructure.db.idempotency_keys import SqlAlchemyIdempotencyKeys
    from src.infrastructure.db.progress import SqlProgress
    from src.infrastructure.db.queue import SqlQueueAdmin, SqlQueueConsumer, SqlQueuePublisher
    from src.infrastructure.db.repository import (
        MessageWriter,
        OutboxWriter,
        QueueWriter,
        SqlAlchemyJobRepository,
        SqlAlchemyOutbox,
    )
    from src.infrastructure.inference.luma import LumaProvider
    from src.infrastructure.inference.runway import RunwayProvider
    from src.infrastructure.inference.runway_inputs import UrlProber
    from src.infrastructure.inference.wan_local import WanLocalGenerator
    from src.infrastructure.media.fetcher import HttpUrlFetcher
    from src.infrastructure.media.transcoder import PyAVTranscoder
    from src.infrastructure.memory import (
        FakeClock,
        FakeLocalGenerator,
        FakeRemoteProvider,
        FakeTranscoder,
        FakeUrlFetcher,
        InMemoryConsumer,
        InMemoryIdempotency,
        InMemoryIdempotencyKeys,
        InMemoryJobRepository,
        InMemoryOutbox,
        InMemoryProgress,
        InMemoryPublisher,
        InMemoryQueueAdmin,
        InMemoryStorage,
    )
    from src.infrastructure.relay import BackgroundRelay
    from src.infrastructure.sqs.admin import SqsQueueAdmin
    from src.infrastructure.sqs.consumer import SqsConsumer
    from src.infrastructure.sqs.publisher import SqsPublisher
    from src.infrastructure.storage.local import LocalStorage
    from src.infrastructure.storage.s3 import S3Storage


def clocks(system: SystemClock, fake: FakeClock) -> list[Clock]:
    return [system, fake]


def video_job_repositories(
    sql: SqlAlchemyJobRepository[VideoJob], memory: InMemoryJobRepository[VideoJob]
) -> list[VideoJobRepository]:
    return [sql, memory]


def ai_job_repositories(
    sql: SqlAlchemyJobRepository[AIJob], memory: InMemoryJobRepository[AIJob]
) -> list[AIJobRepository]:
    return [sql, memory]


def outboxes(sql: SqlAlchemyOutbox, memory: InMemoryOutbox) -> list[Outbox]:
    return [sql, memory]


def outbox_relays(inline: InlineRelay, background: BackgroundRelay) -> list[OutboxRelay]:
    return [inline, background]


def message_writers(outbox: OutboxWriter, queue: QueueWriter) -> list[MessageWriter]:
    return [outbox, queue]


def idempotency_keys(
    sql: SqlAlchemyIdempotencyKeys, memory: InMemoryIdempotencyKeys
) -> list[IdempotencyKeys]:
    return [sql, memory]


def publishers(sqs: SqsPublisher, sql: SqlQueuePublisher, memory: InMemoryPublisher) -> list[JobPublisher]:
    return [sqs, sql, memory]


def consumers(sqs: SqsConsumer, sql: SqlQueueConsumer, memory: InMemoryConsumer) -> list[JobConsumer]:
    return [sqs, sql, memory]


def queue_admins(sqs: SqsQueueAdmin, sql: SqlQueueAdmin, memory: InMemoryQueueAdmin) -> list[QueueAdmin]:
    return [sqs, sql, memory]


def locks(redis: RedisIdempotency, sql: SqlIdempotency, memory: InMemoryIdempotency) -> list[Idempotency]:
    return [redis, sql, memory]


def progress_stores(redis: RedisProgress, sql: SqlProgress, memory: InMemoryProgress) -> list[ProgressStore]:
    return [redis, sql, memory]


def storages(s3: S3Storage, local: LocalStorage, memory: InMemoryStorage) -> list[Storage]:
    return [s3, local, memory]


def transcoders(pyav: PyAVTranscoder, fake: FakeTranscoder) -> list[Transcoder]:
    return [pyav, fake]


def url_fetchers(http: HttpUrlFetcher, fake: FakeUrlFetcher) -> list[UrlFetcher]:
    return [http, fake]


def url_probers(http: HttpUrlFetcher) -> list[UrlProber]:
    return [http]


def local_generators(wan: WanLocalGenerator, fake: FakeLocalGenerator) -> list[LocalGenerator]:
    return [wan, fake]


def remote_providers(
    runway: RunwayProvider, luma: LumaProvider, fake: FakeRemoteProvider
) -> list[RemoteProvider]:
    return [runway, luma, fake]
