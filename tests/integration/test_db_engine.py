"""The engine: SQLite tuned for several processes, Postgres connections replaced when stale."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from src.domain.errors import JobNotFound, ServiceUnavailable
from src.domain.jobs import VideoJob
from src.infrastructure.db import engine as engine_module
from src.infrastructure.db.engine import make_engine
from src.infrastructure.db.migrations import upgrade
from src.infrastructure.db.repository import SqlAlchemyJobRepository
from tests.fixtures.services import PG_DRIVERS, with_driver


@pytest.fixture(params=PG_DRIVERS)
def postgres_url(postgres_url: str, request: pytest.FixtureRequest) -> str:
    """Every Postgres test here runs on both drivers: psycopg2 and psycopg 3."""
    return with_driver(postgres_url, request.param)


def test_a_sqlite_file_gets_its_directory_wal_a_busy_timeout_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/not/yet/there.sqlite3")

    with engine.connect() as conn:
        pragmas = [conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "busy_timeout", "foreign_keys")]

    assert pragmas == ["wal", engine_module.SQLITE_BUSY_TIMEOUT_MS, 1]
    assert (tmp_path / "not" / "yet" / "there.sqlite3").exists()
    engine.dispose()


def test_a_sqlite_engine_can_be_shared_by_threads(tmp_path):
    import threading

    engine, seen = make_engine(f"sqlite:///{tmp_path}/shared.sqlite3"), []
    with engine.connect() as conn:
        thread = threading.Thread(target=lambda: seen.append(conn.exec_driver_sql("SELECT 1").scalar()))
        thread.start()
        thread.join()

    assert seen == [1]
    engine.dispose()


def backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()


def terminate(postgres_url: str, pid: int) -> None:
    admin = make_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_pooled_connection_killed_while_idle_is_replaced_before_use(postgres_url, monkeypatch):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    killed = backend_pid(engine)
    terminate(postgres_url, killed)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)

    assert backend_pid(engine) != killed
    engine.dispose()


def test_a_connection_lost_mid_use_is_service_unavailable_once_then_the_pool_recovers(postgres_url):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    upgrade(engine)
    repository = SqlAlchemyJobRepository(engine, kind=VideoJob)
    terminate(postgres_url, backend_pid(engine))

    with pytest.raises(ServiceUnavailable):
        repository.get("no-such-job")
    with pytest.raises(JobNotFound):
        repository.get("no-such-job")
    engine.dispose()


def test_a_relaxed_transaction_skips_the_wait_for_the_disk_for_itself_only(postgres_url):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)  # one connection, reused

    def setting(conn: sa.Connection) -> str:
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar()

    with engine_module.relaxed_transaction(engine) as conn:
        inside = setting(conn)
    with engine.begin() as conn:
        after = setting(conn)

    assert (inside, after) == ("off", "on")
    engine.dispose()


def test_a_relaxed_transaction_commits_and_rolls_back_like_any_other(postgres_url):
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS relaxed_probe (n int)")
    with engine_module.relaxed_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO relaxed_probe VALUES (1)")
    with pytest.raises(RuntimeError), engine_module.relaxed_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO relaxed_probe VALUES (2)")
        raise RuntimeError("undo")

    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT array_agg(n) FROM relaxed_probe").scalar() == [1]
    engine.dispose()


def test_a_save_on_a_connection_lost_mid_use_is_service_unavailable_once_then_it_recovers(postgres_url):
    from datetime import datetime, timezone

    from src.domain.status import JobStatus

    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    upgrade(engine)
    repository = SqlAlchemyJobRepository(engine, kind=VideoJob)
    at = datetime.now(timezone.utc)
    job = VideoJob(owner_id="u1", source="in/a.mp4", created_at=at, updated_at=at)
    repository.add([job], [])
    started = job.start(at)
    terminate(postgres_url, backend_pid(engine))

    with pytest.raises(ServiceUnavailable):
        repository.save(started, expected=JobStatus.QUEUED)
    repository.save(started, expected=JobStatus.QUEUED)

    assert repository.get(job.id).status is JobStatus.PROCESSING
    engine.dispose()


def probe_table(engine: sa.Engine) -> sa.Table:
    table = sa.Table("one_statement_probe", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True))
    table.drop(engine, checkfirst=True)
    table.create(engine)
    return table


def test_one_statement_on_postgres_is_its_own_transaction_and_relaxed_for_itself_only(postgres_url):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)  # one connection, reused
    show = engine_module.OneStatement(engine, sa.select(sa.func.current_setting("synchronous_commit")),
                                      relaxed=True)

    (_, [inside]) = show.execute()
    with engine.begin() as conn:
        after = conn.exec_driver_sql("SHOW synchronous_commit").scalar()

    assert (list(inside.values()), after) == (["off"], "on")
    engine.dispose()


def test_one_statement_leaves_pooled_connections_transactional(postgres_url):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    table = probe_table(engine)
    engine_module.OneStatement(engine, table.insert().values(n=sa.bindparam("v"))).execute(v=1)

    with pytest.raises(RuntimeError), engine.begin() as conn:  # the same pooled connection
        conn.execute(table.insert().values(n=2))
        raise RuntimeError("undo")

    with engine.connect() as conn:
        assert conn.execute(sa.select(table.c.n)).scalars().all() == [1]
    table.drop(engine)
    engine.dispose()


@pytest.mark.parametrize("relaxed", [False, True])
def test_one_statement_changes_returns_and_translates_errors_on_sqlite_and_postgres(
        postgres_url, tmp_path, relaxed):
    from src.infrastructure.db.errors import DuplicateRecord, translated_errors

    for url in (postgres_url, f"sqlite:///{tmp_path}/one.sqlite3"):
        engine = make_engine(url)
        table = probe_table(engine)
        insert = engine_module.OneStatement(
            engine, table.insert().values(n=sa.bindparam("v")).returning(table.c.n), relaxed=relaxed)

        assert insert.execute(v=7) == (1, [{"n": 7}])
        with pytest.raises(DuplicateRecord), translated_errors():
            insert.execute(v=7)
        assert insert.execute(v=8)[1] == [{"n": 8}]
        table.drop(engine)
        engine.dispose()


def test_one_statement_on_a_lost_connection_is_service_unavailable_once_then_it_recovers(postgres_url):
    from src.infrastructure.db.errors import translated_errors

    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    select = engine_module.OneStatement(engine, sa.select(sa.literal(1).label("one")))
    terminate(postgres_url, backend_pid(engine))

    with pytest.raises(ServiceUnavailable), translated_errors():
        select.execute()
    assert select.execute() == (1, [{"one": 1}])
    engine.dispose()


@pytest.mark.parametrize("driver", PG_DRIVERS)
def test_one_statement_with_the_server_down_is_service_unavailable(driver):
    from src.infrastructure.db.errors import translated_errors

    engine = make_engine(f"postgresql+{driver}://postgres@127.0.0.1:1/none", pool_size=1)
    with pytest.raises(ServiceUnavailable), translated_errors():
        engine_module.OneStatement(engine, sa.select(sa.literal(1))).execute()
    engine.dispose()


def test_after_a_lost_connection_the_others_lost_with_it_are_replaced_before_use(postgres_url):
    """A restarted server drops every connection: once one is found lost, each pooled one is
    pinged (and replaced if dead) before its next use, however short its idle time."""
    from src.infrastructure.db.errors import translated_errors

    engine = make_engine(postgres_url, pool_size=2, max_overflow=0)
    select = engine_module.OneStatement(engine, sa.select(sa.func.pg_backend_pid().label("pid")))
    with engine.connect() as first, engine.connect() as second:
        pids = {conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() for conn in (first, second)}
    for pid in pids:
        terminate(postgres_url, pid)

    with pytest.raises(ServiceUnavailable), translated_errors():
        select.execute()
    with engine.connect() as first, engine.connect() as second:
        now = {conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() for conn in (first, second)}

    assert len(now) == 2 and not now & pids
    engine.dispose()


def test_one_statement_on_postgres_skips_sqlalchemys_execution_layers_on_both_drivers(postgres_url):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    table = probe_table(engine)
    through_sqlalchemy: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: through_sqlalchemy.append(args[2]))
    insert = engine_module.OneStatement(
        engine, table.insert().values(n=sa.bindparam("v")).returning(table.c.n), relaxed=True)

    assert insert.execute(v=3) == (1, [{"n": 3}])
    assert through_sqlalchemy == []
    table.drop(engine)
    engine.dispose()
