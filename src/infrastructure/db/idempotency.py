"""Idempotency locks in the ``rq_locks`` table, for deployments without Redis (embedded default).

Acquire is one statement: insert the key, or take over a row whose lock has expired.
Release and extend act only on a live row that still carries our token.

Each step is one statement in a transaction of its own (:class:`OneStatement`). Acquire and
release commit without waiting for the disk (:func:`relaxed_transaction`): the job's
next state change is durable and flushes them; a release that a database crash undoes leaves a
lock that expires after its TTL (a redelivery meanwhile checks back later). Extends are durable,
so a crash never shortens the lock of a job that is still running.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from src.application.ports import Clock, Lock
from src.infrastructure.db.engine import OneStatement
from src.infrastructure.db.errors import translated_errors
from src.infrastructure.db.tables import locks
from src.infrastructure.db.timestamps import utc
from src.infrastructure.db.upsert import upsert


class SqlIdempotency:
    def __init__(self, engine: sa.Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        key: sa.BindParameter[str] = sa.bindparam("lock_key")
        token: sa.BindParameter[str] = sa.bindparam("lock_token")
        now: sa.BindParameter[datetime] = sa.bindparam("now")
        expires_at: sa.BindParameter[datetime] = sa.bindparam("until")
        values = {"key": key, "token": token, "expires_at": expires_at}
        ours = (locks.c.key == key, locks.c.token == token, locks.c.expires_at > now)
        self._acquire = OneStatement(
            engine, upsert(engine, locks, values, where=lambda _new: locks.c.expires_at <= now), relaxed=True
        )
        self._extend = OneStatement(engine, locks.update().where(*ours).values(expires_at=expires_at))
        self._release = OneStatement(engine, locks.delete().where(*ours), relaxed=True)

    def acquire(self, key: str, *, ttl_ms: int) -> Lock | None:
        lock = Lock(key, secrets.token_hex(16))
        acquired = self._changed(self._acquire, lock_key=key, lock_token=lock.token,
                                 until=self._expiry(ttl_ms), now=self._now())
        return lock if acquired else None

    def extend(self, lock: Lock, *, ttl_ms: int) -> bool:
        return self._changed(self._extend, lock_key=lock.key, lock_token=lock.token, now=self._now(),
                             until=self._expiry(ttl_ms))

    def release(self, lock: Lock) -> bool:
        return self._changed(self._release, lock_key=lock.key, lock_token=lock.token, now=self._now())

    @staticmethod
    def _changed(statement: OneStatement, **values: object) -> bool:
        with translated_errors():
            return statement.execute(**values)[0] == 1

    def _now(self) -> datetime:
        return utc(self.clock.now())

    def _expiry(self, ttl_ms: int) -> datetime:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        return utc(self.clock.now() + timedelta(milliseconds=ttl_ms))
