"""The Idempotency contract: the fake, SQL (SQLite, Postgres) and Redis (fake, real) locks agree."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import fakeredis
import pytest
import redis

from src.application.ports import Lock
from src.domain.errors import ServiceUnavailable
from src.infrastructure.cache.idempotency import RedisIdempotency
from src.infrastructure.db.idempotency import SqlIdempotency
from src.infrastructure.memory import FakeClock, InMemoryIdempotency
from tests.contract.backends import UNREACHABLE_REDIS_URL, postgres_schema_engine, sqlite_engine, unique

LONG_TTL_MS = 60_000
SHORT_TTL_MS = 80  # real Redis expires in real time: keep it short
PREFIX = "reelqueue-test:lock:"


@dataclass
class Subject:
    locks: object
    pass_time: Callable[[float], None]  # seconds: moves the fake clock, or sleeps for Redis


@pytest.fixture(scope="module")
def pg_engine(postgres_url):
    with postgres_schema_engine(postgres_url, "contract_locks") as engine:
        yield engine


@pytest.fixture(params=["memory", "sqlite", "postgres", "fakeredis", "redis"])
def subject(request, tmp_path) -> Subject:
    clock = FakeClock()
    if request.param == "memory":
        return Subject(InMemoryIdempotency(clock), clock.advance)
    if request.param in ("sqlite", "postgres"):
        engine = sqlite_engine(tmp_path) if request.param == "sqlite" else request.getfixturevalue(
            "pg_engine")
        return Subject(SqlIdempotency(engine, clock=clock), clock.advance)
    if request.param == "fakeredis":
        return Subject(RedisIdempotency(fakeredis.FakeRedis(), prefix=PREFIX), time.sleep)
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    request.addfinalizer(client.close)
    return Subject(RedisIdempotency(client, prefix=PREFIX), time.sleep)


def past(ttl_ms: int) -> float:
    return ttl_ms / 1000 + 0.04


def test_a_free_key_can_be_locked(subject):
    lock = subject.locks.acquire(unique(), ttl_ms=LONG_TTL_MS)

    assert lock is not None and lock.token


def test_a_held_lock_cannot_be_acquired_again(subject):
    key = unique()
    subject.locks.acquire(key, ttl_ms=LONG_TTL_MS)

    assert subject.locks.acquire(key, ttl_ms=LONG_TTL_MS) is None


def test_every_lock_gets_its_own_token(subject):
    first = subject.locks.acquire(unique(), ttl_ms=LONG_TTL_MS)
    second = subject.locks.acquire(unique(), ttl_ms=LONG_TTL_MS)

    assert first.token != second.token


def test_the_holder_releases_its_lock_and_the_key_is_free_again(subject):
    key = unique()
    lock = subject.locks.acquire(key, ttl_ms=LONG_TTL_MS)

    assert subject.locks.release(lock) is True
    assert subject.locks.acquire(key, ttl_ms=LONG_TTL_MS) is not None


def test_a_lock_released_twice_reports_false_the_second_time(subject):
    lock = subject.locks.acquire(unique(), ttl_ms=LONG_TTL_MS)
    subject.locks.release(lock)

    assert subject.locks.release(lock) is False


def test_a_lock_held_by_another_worker_cannot_be_released(subject):
    key = unique()
    subject.locks.acquire(key, ttl_ms=LONG_TTL_MS)

    assert subject.locks.release(Lock(key, "not-the-token")) is False
    assert subject.locks.acquire(key, ttl_ms=LONG_TTL_MS) is None


def test_a_lock_held_by_another_worker_cannot_be_extended(subject):
    key = unique()
    subject.locks.acquire(key, ttl_ms=LONG_TTL_MS)

    assert subject.locks.extend(Lock(key, "not-the-token"), ttl_ms=LONG_TTL_MS) is False


def test_releasing_a_key_never_locked_reports_false(subject):
    assert subject.locks.release(Lock(unique(), "token")) is False


def test_a_crashed_holders_lock_expires_and_another_worker_takes_it(subject):
    key = unique()
    subject.locks.acquire(key, ttl_ms=SHORT_TTL_MS)

    subject.pass_time(past(SHORT_TTL_MS))

    assert subject.locks.acquire(key, ttl_ms=LONG_TTL_MS) is not None


def test_an_expired_holder_can_neither_release_nor_extend_the_new_holders_lock(subject):
    key = unique()
    stale = subject.locks.acquire(key, ttl_ms=SHORT_TTL_MS)
    subject.pass_time(past(SHORT_TTL_MS))
    subject.locks.acquire(key, ttl_ms=LONG_TTL_MS)

    assert subject.locks.release(stale) is False
    assert subject.locks.extend(stale, ttl_ms=LONG_TTL_MS) is False
    assert subject.locks.acquire(key, ttl_ms=LONG_TTL_MS) is None


def test_an_expired_lock_cannot_be_extended(subject):
    lock = subject.locks.acquire(unique(), ttl_ms=SHORT_TTL_MS)

    subject.pass_time(past(SHORT_TTL_MS))

    assert subject.locks.extend(lock, ttl_ms=LONG_TTL_MS) is False


def test_extending_keeps_the_lock_past_its_first_ttl(subject):
    key = unique()
    lock = subject.locks.acquire(key, ttl_ms=SHORT_TTL_MS)

    assert subject.locks.extend(lock, ttl_ms=LONG_TTL_MS) is True
    subject.pass_time(past(SHORT_TTL_MS))

    assert subject.locks.acquire(key, ttl_ms=LONG_TTL_MS) is None
    assert subject.locks.release(lock) is True


def test_a_ttl_that_is_not_positive_is_refused(subject):
    with pytest.raises(ValueError):
        subject.locks.acquire(unique(), ttl_ms=0)


def test_of_workers_racing_for_one_key_exactly_one_wins(subject):
    key, barrier, won = unique(), threading.Barrier(8), []

    def race() -> None:
        barrier.wait()
        won.append(subject.locks.acquire(key, ttl_ms=LONG_TTL_MS))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len([lock for lock in won if lock is not None]) == 1


def test_an_unreachable_redis_is_reported_as_service_unavailable():
    client = redis.Redis.from_url(UNREACHABLE_REDIS_URL, socket_connect_timeout=0.5)
    locks = RedisIdempotency(client)

    with pytest.raises(ServiceUnavailable) as caught:
        locks.acquire(unique(), ttl_ms=LONG_TTL_MS)

    assert isinstance(caught.value.__cause__, redis.ConnectionError)
