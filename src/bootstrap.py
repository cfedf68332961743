"""The composition root: builds adapters from settings and wires the handlers.

Nothing here runs at import time; each process calls :func:`build` once. Adapter modules
are imported inside the builders so a process only loads what its settings ask for (a
remote-only AI worker never imports torch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, TypeVar

from src.application.enqueue import InlineRelay, JobService, Reconciler, UrlGuard, no_url_guard
from src.application.handlers import (
    HandlerDependencies,
    ProcessAIJobHandler,
    ProcessVideoJobHandler,
    QuotaWait,
    VideoLimits,
)
from src.application.ports import (
    AIJobRepository,
    Clock,
    Idempotency,
    IdempotencyKeys,
    JobConsumer,
    JobPublisher,
    JobRepository,
    LocalGenerator,
    Outbox,
    OutboxRelay,
    ProgressStore,
    QueueAdmin,
    RemoteProvider,
    Storage,
    VideoJobRepository,
)
from src.application.replays import IdempotentRequests
from src.application.retry import RetryPolicy
from src.config import Settings
from src.domain.jobs import AIJob, Job, VideoJob
from src.domain.paths import UnknownPathPolicy
from src.infrastructure.clock import SystemClock
from src.infrastructure.net import UnresolvableHost, UnsafeUrl, UrlPolicy, vet_url

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from src.infrastructure.db.repository import MessageWriter
    from src.infrastructure.media.fetcher import HttpUrlFetcher
    from src.infrastructure.memory import InMemoryBroker, InMemoryDatabase
    from src.infrastructure.sqs.admin import SqsQueueAdmin

log = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)


class Extras(TypedDict, total=False):
    """What a build holds besides the ports, for operators' tools and tests: the SQL database
    (``engine``), or the in-memory queue and database of the ``memory`` backend."""

    engine: Engine
    broker: InMemoryBroker
    db: InMemoryDatabase


@dataclass
class Adapters:
    """Every port a process may need, built once from settings."""

    settings: Settings
    clock: Clock
    video_jobs: VideoJobRepository
    ai_jobs: AIJobRepository
    outbox: Outbox
    relay: OutboxRelay
    publisher: JobPublisher
    consumer_factory: Callable[[str], JobConsumer]
    locks: Idempotency
    progress: ProgressStore
    storage: Storage
    idempotency_keys: IdempotencyKeys
    extras: Extras = field(default_factory=Extras)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


def build(settings: Settings, *, clock: Clock | None = None, background_relay: bool = False) -> Adapters:
    """``background_relay``: outbox entries are sent from a thread of this process instead of
    the caller's (the API: a request never waits for SQS). It only matters with SQS: with the
    SQL lease queue a job's message is the queue row itself, written in the job's transaction."""
    clock = clock or SystemClock()
    if settings.queue_backend == "memory":
        return _build_memory(settings, clock)
    from src.infrastructure.db.engine import make_engine
    from src.infrastructure.db.idempotency_keys import SqlAlchemyIdempotencyKeys
    from src.infrastructure.db.repository import SqlAlchemyJobRepository, SqlAlchemyOutbox

    engine = make_engine(settings.database_url)
    locks, progress = _state_layer(settings, engine, clock)
    publisher, consumer_factory = _queue(settings, engine, clock)
    messages = _message_writer(publisher, clock)
    outbox = SqlAlchemyOutbox(engine, clock=clock)
    adapters = Adapters(
        settings=settings, clock=clock,
        video_jobs=SqlAlchemyJobRepository(engine, kind=VideoJob, clock=clock, messages=messages),
        ai_jobs=SqlAlchemyJobRepository(engine, kind=AIJob, clock=clock, messages=messages),
        outbox=outbox, relay=InlineRelay(outbox=outbox, publisher=publisher),
        publisher=publisher, consumer_factory=consumer_factory,
        locks=locks, progress=progress, storage=_storage(settings),
        idempotency_keys=SqlAlchemyIdempotencyKeys(engine), extras={"engine": engine},
    )
    adapters.closers.append(engine.dispose)
    if background_relay:
        from src.infrastructure.relay import BackgroundRelay

        relay = BackgroundRelay(outbox=outbox, publisher=publisher, clock=clock)
        adapters.relay = relay
        adapters.closers.append(relay.close)  # closers run last-in first: before the engine goes
    return adapters


def _message_writer(publisher: JobPublisher, clock: Clock) -> MessageWriter:
    """Where a job's messages go in its transaction: the SQL lease queue itself (it lives in the
    jobs' database), or the outbox (SQS), for a relay to send after commit."""
    from src.infrastructure.db.queue import SqlQueuePublisher
    from src.infrastructure.db.repository import OutboxWriter, QueueWriter

    if isinstance(publisher, SqlQueuePublisher):
        return QueueWriter(publisher)
    return OutboxWriter(clock=clock)


def _build_memory(settings: Settings, clock: Clock) -> Adapters:
    from src.infrastructure.memory import (
        InMemoryBroker,
        InMemoryConsumer,
        InMemoryDatabase,
        InMemoryIdempotency,
        InMemoryIdempotencyKeys,
        InMemoryJobRepository,
        InMemoryOutbox,
        InMemoryProgress,
        InMemoryPublisher,
        InMemoryStorage,
    )

    db = InMemoryDatabase(clock)
    broker = InMemoryBroker(clock, visibility_timeout_s=settings.visibility_timeout_s,
                            max_receive_count=settings.max_receive_count)
    outbox, publisher = InMemoryOutbox(db), InMemoryPublisher(broker)
    return Adapters(
        settings=settings, clock=clock,
        video_jobs=InMemoryJobRepository(db, VideoJob), ai_jobs=InMemoryJobRepository(db, AIJob),
        outbox=outbox, relay=InlineRelay(outbox=outbox, publisher=publisher), publisher=publisher,
        consumer_factory=lambda queue: InMemoryConsumer(broker, queue),
        locks=InMemoryIdempotency(clock), progress=InMemoryProgress(clock, ttl_s=settings.progress_ttl_s),
        storage=InMemoryStorage(), idempotency_keys=InMemoryIdempotencyKeys(db),
        extras={"broker": broker, "db": db},
    )


def _state_layer(settings: Settings, engine: Engine, clock: Clock) -> tuple[Idempotency, ProgressStore]:
    if settings.redis_url:
        import redis

        from src.infrastructure.cache.idempotency import RedisIdempotency
        from src.infrastructure.cache.progress import RedisProgress

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        return RedisIdempotency(client), RedisProgress(client, ttl_s=settings.progress_ttl_s)
    from src.infrastructure.db.idempotency import SqlIdempotency
    from src.infrastructure.db.progress import SqlProgress

    progress = SqlProgress(engine, clock=clock, ttl_s=settings.progress_ttl_s)
    return SqlIdempotency(engine, clock=clock), progress


def _queue(
    settings: Settings, engine: Engine, clock: Clock
) -> tuple[JobPublisher, Callable[[str], JobConsumer]]:
    if settings.queue_backend == "sqs":
        from src.infrastructure.sqs.client import make_sqs_client
        from src.infrastructure.sqs.consumer import SqsConsumer
        from src.infrastructure.sqs.publisher import SqsPublisher
        from src.infrastructure.sqs.queues import QueueDirectory

        client = make_sqs_client(region=settings.aws_region, endpoint_url=settings.sqs_endpoint_url or None)
        directory = QueueDirectory(client, prefix=settings.sqs_queue_prefix,
                                   max_receive_count=settings.max_receive_count,
                                   visibility_timeout_s=settings.visibility_timeout_s)
        return SqsPublisher(client, directory), lambda queue: SqsConsumer(client, directory, queue)
    from src.infrastructure.db.queue import SqlQueueConsumer, SqlQueuePublisher

    return SqlQueuePublisher(engine, clock=clock), lambda queue: SqlQueueConsumer(
        engine, queue, clock=clock, visibility_timeout_s=settings.visibility_timeout_s,
        max_receive_count=settings.max_receive_count,
    )


def queue_admin(adapters: Adapters) -> QueueAdmin:
    """Dead-letter inspection and handling for operators (the CLI). The in-memory queue lives
    and dies with its process, so a separate operator process has nothing to administer there."""
    settings = adapters.settings
    if settings.queue_backend == "sqs":
        return _sqs_queue_admin(settings)
    if settings.queue_backend == "sql":
        from src.infrastructure.db.queue import SqlQueueAdmin

        return SqlQueueAdmin(adapters.extras["engine"], clock=adapters.clock)
    raise ValueError(f"queue backend {settings.queue_backend!r} has no dead-letter administration")


def ensure_sqs_queues(settings: Settings, names: Sequence[str]) -> None:
    """Create the SQS queues ``names`` with their dead-letter queues and redrive policy (idempotent)."""
    _sqs_queue_admin(settings).directory.ensure(names)


def _sqs_queue_admin(settings: Settings) -> SqsQueueAdmin:
    from src.infrastructure.sqs.admin import SqsQueueAdmin
    from src.infrastructure.sqs.client import make_sqs_client
    from src.infrastructure.sqs.queues import QueueDirectory

    client = make_sqs_client(region=settings.aws_region, endpoint_url=settings.sqs_endpoint_url or None)
    return SqsQueueAdmin(client, QueueDirectory(
        client, prefix=settings.sqs_queue_prefix, max_receive_count=settings.max_receive_count,
        visibility_timeout_s=settings.visibility_timeout_s))


def _storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        from src.infrastructure.storage.s3 import S3Storage, make_s3_client

        client = make_s3_client(region=settings.aws_region, endpoint_url=settings.s3_endpoint_url or None)
        return S3Storage(client, bucket=settings.s3_bucket)
    from src.infrastructure.storage.local import LocalStorage

    return LocalStorage(Path(settings.storage_root), public_base_url=settings.public_base_url,
                        files_path=settings.files_url_path)


# --- use cases and handlers ----------------------------------------------------------------------


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, base_delay_s=settings.retry_base_delay_s,
                       max_delay_s=settings.retry_max_delay_s)


def job_service(adapters: Adapters, *, url_guard: UrlGuard = no_url_guard) -> JobService:
    return JobService(
        video_jobs=adapters.video_jobs, ai_jobs=adapters.ai_jobs, relay=adapters.relay,
        publisher=adapters.publisher, clock=adapters.clock,
        path_policy=UnknownPathPolicy(adapters.settings.path_policy),
        idempotency_key_ttl_s=adapters.settings.idempotency_key_ttl_s, url_guard=url_guard,
    )


def idempotent_requests(adapters: Adapters) -> IdempotentRequests:
    return IdempotentRequests(keys=adapters.idempotency_keys, clock=adapters.clock,
                              ttl_s=adapters.settings.idempotency_key_ttl_s)


def reconciler(adapters: Adapters) -> Reconciler:
    return Reconciler(outbox=adapters.outbox, publisher=adapters.publisher, clock=adapters.clock)


def handler_dependencies(adapters: Adapters, jobs: JobRepository[J]) -> HandlerDependencies[J]:
    """What every job handler takes from the adapters and settings."""
    settings = adapters.settings
    return HandlerDependencies(
        jobs=jobs, locks=adapters.locks, progress=adapters.progress, clock=adapters.clock,
        retry_policy=retry_policy(settings), lock_ttl_ms=settings.lock_ttl_ms,
        workdir=Path(settings.work_dir) if settings.work_dir else None,
    )


def video_handler(adapters: Adapters) -> ProcessVideoJobHandler:
    from src.infrastructure.media.transcoder import PyAVTranscoder

    settings = adapters.settings
    return ProcessVideoJobHandler(
        storage=adapters.storage, transcoder=PyAVTranscoder(speed=settings.transcode_speed),
        fetcher=url_fetcher(settings), limits=VideoLimits(max_source_bytes=settings.max_source_bytes,
                                                          max_duration_s=settings.max_duration_s),
        **handler_dependencies(adapters, adapters.video_jobs),
    )


def url_fetcher(settings: Settings) -> HttpUrlFetcher:
    """The guarded fetcher for user-given URLs (video sources, Runway's input images)."""
    from src.infrastructure.media.fetcher import HttpUrlFetcher

    return HttpUrlFetcher(
        timeout_s=settings.fetch_timeout_s, max_redirects=settings.fetch_max_redirects,
        allow_http_hosts=_csv(settings.fetch_allow_http_hosts),
        allowed_private_networks=_csv(settings.fetch_allowed_private_networks),
    )


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def ai_handler(adapters: Adapters, *, callback_policy: UrlPolicy | None = None) -> ProcessAIJobHandler:
    """``callback_policy``: which addresses count as public for Luma's callbacks; the default
    (the only one production uses) accepts https on public addresses only. Tests may pass a
    policy that lets a loopback receiver through."""
    settings = adapters.settings
    remote = settings.worker_type == "remote"  # only remote workers talk to Runway and Luma
    return ProcessAIJobHandler(
        storage=adapters.storage,
        local=local_generators(adapters) if settings.worker_type == "gpu" else None,
        remote=remote_providers(adapters) if remote else None,
        callback_url=(luma_callbacks(settings.public_base_url, settings.luma_callback_path,
                                     policy=callback_policy or UrlPolicy())
                      if remote else _no_callback),
        quota_wait=QuotaWait(max_wait_s=settings.provider_quota_wait_s),
        **handler_dependencies(adapters, adapters.ai_jobs),
    )


def _no_callback(job: AIJob) -> str | None:
    return None


def local_generators(adapters: Adapters) -> dict[str, LocalGenerator]:
    """The GPU worker's models (loaded lazily, at the first job)."""
    from src.infrastructure.inference.images import StorageImageFetcher
    from src.infrastructure.inference.wan_local import WanLocalGenerator

    settings = adapters.settings
    fetch_image = StorageImageFetcher(adapters.storage, timeout_s=settings.provider_timeout_s)
    return {"wan_local": WanLocalGenerator.from_settings(settings, fetch_image=fetch_image)}


def remote_providers(adapters: Adapters) -> dict[str, RemoteProvider]:
    """The remote worker's providers, by name."""
    from src.infrastructure.inference.images import StorageImageFetcher
    from src.infrastructure.inference.luma import LumaProvider
    from src.infrastructure.inference.runway import RunwayProvider

    settings = adapters.settings
    fetch_image = StorageImageFetcher(adapters.storage, timeout_s=settings.provider_timeout_s)
    return {
        "runway": RunwayProvider.from_settings(settings, storage=adapters.storage,
                                               fetcher=url_fetcher(settings)),
        "luma": LumaProvider.from_settings(settings, image_size=lambda source: fetch_image(source).size),
    }


def luma_callbacks(public_base_url: str, callback_path: str, *,
                   policy: UrlPolicy) -> Callable[[AIJob], str | None]:
    """The job -> callback URL function; checked once (at worker start), never per job.
    ``callback_path``: where the API serves Luma's callbacks (``REELQUEUE_LUMA_CALLBACK_PATH``)."""
    base = public_callback_base(public_base_url, policy=policy)
    return lambda job: luma_callback_url(base, callback_path, job)


def public_callback_base(public_base_url: str, *, policy: UrlPolicy) -> str | None:
    """``public_base_url`` when a provider on the internet can reach it, else None (with a warning):
    Luma then gets no ``callback_url`` and the worker polls alone."""
    if not public_base_url:
        log.warning("REELQUEUE_PUBLIC_BASE_URL is not set: Luma gets no callback_url, "
                    "its generations are polled")
        return None
    try:
        vet_url(public_base_url, policy=policy)
    except (UnsafeUrl, UnresolvableHost) as exc:
        log.warning("REELQUEUE_PUBLIC_BASE_URL %s is not a public https address (%s): Luma gets "
                    "no callback_url, its generations are polled", public_base_url, exc)
        return None
    return public_base_url.rstrip("/")


def luma_callback_url(base: str | None, callback_path: str, job: AIJob) -> str | None:
    """``base + callback_path + <job id>/<callback token>`` for a Luma job, else None."""
    if base is None or job.provider != "luma" or not job.callback_token:
        return None
    return f"{base}/{callback_path.strip('/')}/{job.id}/{job.callback_token}"
