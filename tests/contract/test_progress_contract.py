"""The ProgressStore contract: the fake, SQL (SQLite, Postgres) and Redis (fake, real) agree."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import fakeredis
import pytest
import redis

from src.infrastructure.cache.progress import RedisProgress
from src.infrastructure.clock import SystemClock
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.progress import SqlProgress
from src.infrastructure.memory import FakeClock, InMemoryProgress
from tests.contract.backends import (
    UNREACHABLE_POSTGRES_URL,
    UNREACHABLE_REDIS_URL,
    postgres_schema_engine,
    sqlite_engine,
    unique,
)

LONG_TTL_S = 3600
SHORT_TTL_S = 0.08  # real Redis expires in real time: keep it short
PREFIX = "reelqueue-test:progress:"


@dataclass
class Subject:
    make: Callable[[float], object]  # ttl_s -> a progress store
    pass_time: Callable[[float], None]  # seconds: moves the fake clock, or sleeps for Redis
    now: Callable[[], datetime]


@pytest.fixture(scope="module")
def pg_engine(postgres_url):
    with postgres_schema_engine(postgres_url, "contract_progress") as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", "postgres", "fakeredis", "redis"])
def subject(request, tmp_path) -> Subject:
    clock = FakeClock()
    if request.param == "memory":
        return Subject(lambda ttl_s: InMemoryProgress(clock, ttl_s=ttl_s), clock.advance, clock.now)
    if request.param in ("sqlite", "postgres"):
        engine = sqlite_engine(tmp_path) if request.param == "sqlite" else request.getfixturevalue(
            "pg_engine")
        return Subject(lambda ttl_s: SqlProgress(engine, clock=clock, ttl_s=ttl_s), clock.advance, clock.now)
    if request.param == "fakeredis":
        client = fakeredis.FakeRedis()
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        request.addfinalizer(client.close)
    return Subject(lambda ttl_s: RedisProgress(client, ttl_s=ttl_s, prefix=PREFIX), time.sleep,
                   SystemClock().now)


@pytest.fixture
def store(subject):
    return subject.make(LONG_TTL_S)


def test_a_job_without_progress_reads_as_none(store):
    assert store.read(unique()) is None


def test_recorded_progress_reads_back_with_its_stage_percent_and_message(subject, store):
    job_id, before = unique(), subject.now()

    store.record(job_id, stage="transcoding", percent=42.5, message="pass 1 of 2")

    progress = store.read(job_id)
    assert (progress.stage, progress.percent, progress.message) == ("transcoding", 42.5, "pass 1 of 2")
    assert before - timedelta(seconds=1) <= progress.updated_at <= subject.now() + timedelta(seconds=1)


def test_percent_never_goes_backwards_within_a_stage(store):
    job_id = unique()
    store.record(job_id, stage="transcoding", percent=60)

    store.record(job_id, stage="transcoding", percent=30)

    assert store.read(job_id).percent == 60


def test_percent_moves_forward_within_a_stage(store):
    job_id = unique()
    store.record(job_id, stage="downloading", percent=10)

    store.record(job_id, stage="downloading", percent=90, message="almost")

    assert (store.read(job_id).percent, store.read(job_id).message) == (90, "almost")


def test_a_new_stage_starts_again_from_a_lower_percent(store):
    job_id = unique()
    store.record(job_id, stage="downloading", percent=100)

    store.record(job_id, stage="transcoding", percent=0)

    assert (store.read(job_id).stage, store.read(job_id).percent) == ("transcoding", 0)


def test_percent_is_kept_between_0_and_100(store):
    low, high = unique(), unique()

    store.record(low, stage="uploading", percent=-5)
    store.record(high, stage="uploading", percent=250)

    assert (store.read(low).percent, store.read(high).percent) == (0, 100)


def test_flush_returns_the_last_progress_recorded(store):
    job_id = unique()
    store.record(job_id, stage="uploading", percent=50)
    store.record(job_id, stage="uploading", percent=75)

    assert store.flush(job_id).percent == 75


def test_progress_of_one_job_does_not_touch_another(store):
    first, second = unique(), unique()

    store.record(first, stage="generating", percent=20)

    assert store.read(second) is None


def test_progress_expires_after_its_ttl(subject):
    store, job_id = subject.make(SHORT_TTL_S), unique()
    store.record(job_id, stage="generating", percent=20)

    subject.pass_time(SHORT_TTL_S + 0.05)

    assert store.read(job_id) is None


def test_after_expiry_a_stage_may_start_again_from_a_lower_percent(subject):
    store, job_id = subject.make(SHORT_TTL_S), unique()
    store.record(job_id, stage="generating", percent=80)
    subject.pass_time(SHORT_TTL_S + 0.05)

    store.record(job_id, stage="generating", percent=10)

    assert store.read(job_id).percent == 10


# --- outages: best effort -------------------------------------------------------------------------


@pytest.fixture(params=["redis", "postgres"])
def unreachable(request):
    """A progress store whose service is down, and the logger it warns on."""
    if request.param == "redis":
        client = redis.Redis.from_url(UNREACHABLE_REDIS_URL, socket_connect_timeout=0.5)
        request.addfinalizer(client.close)
        return RedisProgress(client, ttl_s=LONG_TTL_S), "src.infrastructure.cache.progress"
    engine = make_engine(UNREACHABLE_POSTGRES_URL)
    request.addfinalizer(engine.dispose)
    return SqlProgress(engine, clock=FakeClock(), ttl_s=LONG_TTL_S), "src.infrastructure.db.progress"


def test_recording_while_the_service_is_down_neither_raises_nor_warns_per_step(unreachable, caplog):
    store, logger = unreachable
    with caplog.at_level(logging.WARNING, logger=logger):
        for percent in (10, 20, 30):
            store.record(unique(), stage="transcoding", percent=percent)

    assert len(caplog.records) == 1


def test_reading_while_the_service_is_down_returns_none(unreachable):
    store, _ = unreachable

    assert store.read(unique()) is None
