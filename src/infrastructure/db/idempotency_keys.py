"""Idempotency keys in ``rq_idempotency_keys``: one row per (owner, key) until it expires.

:func:`insert_answer` writes a row inside the caller's transaction (the job repositories call it
before inserting the jobs): the primary key makes a second request with the same key wait for
the first one's transaction, then fail with :class:`IdempotencyKeyTaken` and replay its answer.
An expired row of the same key is deleted first, so a key may be used again once it expired.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from src.application.ports import KeptAnswer
from src.domain.errors import IdempotencyKeyTaken
from src.infrastructure.db.errors import translated_errors
from src.infrastructure.db.tables import idempotency_keys
from src.infrastructure.db.timestamps import from_db, to_db

_COLUMNS = ("owner_id", "key", "endpoint", "fingerprint", "resource_id", "body")


class SqlAlchemyIdempotencyKeys:
    """The :class:`IdempotencyKeys` port on the jobs' database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def find(self, owner_id: str, key: str, *, now: datetime) -> KeptAnswer | None:
        query = sa.select(idempotency_keys).where(
            idempotency_keys.c.owner_id == owner_id, idempotency_keys.c.key == key,
            idempotency_keys.c.expires_at > to_db(now))
        with translated_errors(), self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _answer(row)

    def add(self, answer: KeptAnswer) -> None:
        with translated_errors(), self.engine.begin() as conn:
            insert_answer(conn, answer)

    def purge(self, *, now: datetime) -> int:
        delete = idempotency_keys.delete().where(idempotency_keys.c.expires_at <= to_db(now))
        with translated_errors(), self.engine.begin() as conn:
            return conn.execute(delete).rowcount


def insert_answer(conn: sa.Connection, answer: KeptAnswer) -> None:
    """Keep ``answer`` inside the caller's transaction; :class:`IdempotencyKeyTaken` (the
    transaction must then roll back) while an unexpired answer holds the key."""
    this_key = (idempotency_keys.c.owner_id == answer.owner_id, idempotency_keys.c.key == answer.key)
    conn.execute(idempotency_keys.delete().where(
        *this_key, idempotency_keys.c.expires_at <= to_db(answer.created_at)))
    row = {name: getattr(answer, name) for name in _COLUMNS}
    row.update(created_at=to_db(answer.created_at), expires_at=to_db(answer.expires_at))
    try:
        conn.execute(idempotency_keys.insert(), row)
    except sa.exc.IntegrityError as exc:
        raise IdempotencyKeyTaken(answer.owner_id, answer.key) from exc


def _answer(row: sa.RowMapping) -> KeptAnswer:
    values = {name: row[name] for name in _COLUMNS}
    return KeptAnswer(**values, created_at=from_db(row["created_at"]), expires_at=from_db(row["expires_at"]))
