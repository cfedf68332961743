"""The Alembic migrations build exactly the tables of ``tables.py``, on SQLite and Postgres."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import SCRIPT_LOCATION, VERSION_TABLE, current, upgrade
from src.infrastructure.db.tables import metadata

HEAD = ScriptDirectory(SCRIPT_LOCATION).get_current_head()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/migrations.sqlite3"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def fresh_postgres_url(postgres_url):
    """An empty schema of its own in the session's database, so migrations start from nothing."""
    engine = make_engine(postgres_url)
    schema = "mig_test"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    engine.dispose()


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


HEAD = ScriptDirectory(SCRIPT_LOCATION).get_current_head()


def test_the_audio_column_comes_in_its_own_migration_after_the_initial_schema():
    assert ScriptDirectory(SCRIPT_LOCATION).get_revision("0002_ai_audio").down_revision == "0001"


def test_an_empty_database_has_no_revision(empty_url):
    assert current(empty_url) is None


def test_upgrading_to_head_creates_exactly_the_tables_of_the_metadata(empty_url):
    upgrade(empty_url)

    assert current(empty_url) == HEAD
    assert schema_diff(empty_url) == []


def test_upgrading_twice_changes_nothing(empty_url):
    upgrade(empty_url)
    upgrade(empty_url)

    assert current(empty_url) == HEAD


def test_alembic_keeps_its_revision_in_its_own_table(empty_url):
    upgrade(empty_url)

    engine = make_engine(empty_url)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert VERSION_TABLE in names
    assert "alembic_version" not in names


def test_processes_migrating_at_the_same_time_all_succeed(empty_url):
    barrier, errors = threading.Barrier(4), []

    def migrate() -> None:
        barrier.wait()
        try:
            upgrade(empty_url)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=migrate, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads), "a migration is stuck"
    assert errors == []
    assert current(empty_url) == HEAD


def test_upgrade_accepts_an_engine_and_leaves_it_usable(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/nested/dir/db.sqlite3")

    upgrade(engine)

    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rq_jobs")).scalar() == 0
    engine.dispose()


def test_the_provider_cancel_columns_are_added_to_an_existing_database_keeping_its_jobs(empty_url):
    upgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO rq_jobs (id, kind, owner_id, status, attempts, outputs, percent, created_at, "
            "updated_at) VALUES ('j1', 'ai', 'u1', 'waiting_provider', 1, '[]', 0, "
            "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        )

    upgrade(empty_url, "0004_provider_cancel")

    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("rq_jobs")}
        row = conn.exec_driver_sql("SELECT id, provider_cancel, provider_cancel_tries FROM rq_jobs").one()
    engine.dispose()
    assert {"provider_cancel", "provider_cancel_detail", "provider_cancel_tries"} <= columns
    assert tuple(row) == ("j1", None, None)
