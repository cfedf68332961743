"""The real backends the contract suites run on: migrated SQL databases and Redis clients.

Each suite parametrizes its port over the in-memory fake and these. Postgres suites get a
schema of their own in the session's database, so tables like the outbox start empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import upgrade

UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
UNREACHABLE_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:1/none?connect_timeout=1"


def unique(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex


def sqlite_engine(directory: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{directory}/contract.sqlite3")
    upgrade(engine)
    return engine


@contextmanager
def postgres_schema_engine(postgres_url: str, schema: str) -> Iterator[sa.Engine]:
    """An engine whose tables live in ``schema`` (created, migrated, dropped afterwards)."""
    admin = make_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(f"{postgres_url}?options=-csearch_path%3D{schema}")
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def empty_tables(engine: sa.Engine, *names: str) -> None:
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
