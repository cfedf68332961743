"""Alembic migrations for the tables in :mod:`src.infrastructure.db.tables`.

Runnable without Django and without an ``alembic.ini``: the Config is built here.
Alembic keeps its own version table (``rq_alembic_version``) because Django shares the database.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from src.infrastructure.db.engine import make_engine

VERSION_TABLE = "rq_alembic_version"
SCRIPT_LOCATION = str(Path(__file__).parent)
MIGRATION_LOCK_KEY = 0x72715F6D6967  # "rq_mig": a Postgres advisory lock held while migrating


def upgrade(url_or_engine: str | sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the latest by default)."""
    engine, owned = _engine(url_or_engine)
    try:
        with engine.begin() as connection:
            _serialize(connection)
            command.upgrade(_config(connection), revision)
    finally:
        if owned:
            engine.dispose()


def current(url: str | sa.Engine) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    engine, owned = _engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def _serialize(connection: sa.Connection) -> None:
    """Processes starting together (API, workers) migrate one after the other.

    SQLite needs nothing: the engine's ``BEGIN IMMEDIATE`` already takes the write lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def _engine(url_or_engine: str | sa.Engine) -> tuple[sa.Engine, bool]:
    if isinstance(url_or_engine, sa.Engine):
        return url_or_engine, False
    return make_engine(url_or_engine), True
