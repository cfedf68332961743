"""Idempotency locks in the ``rq_locks`` table, for deployments without Redis (embedded default).

Acquire is one statement: insert the key, or take over a row whose lock has expired.
Release and extend act only on a live row that still carries our token.

Acquire and release commit without waiting for the disk (:func:`relaxed_transaction`): the job's
next state change is durable and flushes them; a release that a database crash undoes leaves a
lock that expires after its TTL (a redelivery meanwhile checks back later). Extends are durable,
so a crash never shortens the lock of a job that is still running.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from src.application.ports import Clock, Lock
from src.infrastructure.db.engine import transaction
from src.infrastructure.db.errors import translated_errors
from src.infrastructure.db.tables import locks
from src.infrastructure.db.timestamps import utc
from src.infrastructure.db.upsert import upsert


class SqlIdempotency:
    def __init__(self, engine: sa.Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def acquire(self, key: str, *, ttl_ms: int) -> Lock | None:
        lock = Lock(key, secrets.token_hex(16))
        values = {"key": key, "token": lock.token, "expires_at": self._expiry(ttl_ms)}
        statement = upsert(self.engine, locks, values, where=lambda _new: locks.c.expires_at <= self._now())
        return lock if self._changed(statement, relaxed=True) else None

    def extend(self, lock: Lock, *, ttl_ms: int) -> bool:
        statement = locks.update().where(*self._ours(lock)).values(expires_at=self._expiry(ttl_ms))
        return self._changed(statement)

    def release(self, lock: Lock) -> bool:
        return self._changed(locks.delete().where(*self._ours(lock)), relaxed=True)

    def _ours(self, lock: Lock) -> tuple[sa.ColumnElement[bool], ...]:
        return locks.c.key == lock.key, locks.c.token == lock.token, locks.c.expires_at > self._now()

    def _changed(self, statement: sa.Executable, *, relaxed: bool = False) -> bool:
        with translated_errors(), transaction(self.engine, relaxed=relaxed) as conn:
            return conn.execute(statement).rowcount == 1

    def _now(self) -> datetime:
        return utc(self.clock.now())

    def _expiry(self, ttl_ms: int) -> datetime:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        return utc(self.clock.now() + timedelta(milliseconds=ttl_ms))
