"""One SQLAlchemy engine per process, tuned for SQLite (embedded default) or Postgres."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
PING_AFTER_IDLE_S = 2.0


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``url``; nothing connects until first use."""
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    return _server_engine(url, **kwargs)


def _server_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Pool pre-ping, but only for a connection that sat idle in the pool: a busy worker pays no
    extra round trip per statement, and a connection broken while idle (a restarted server, a
    dropped socket) is replaced before use. A disconnect met mid-use invalidates the whole pool.
    """
    kwargs.setdefault("pool_use_lifo", True)  # a busy thread keeps reusing its warm connection
    engine = sa.create_engine(url, **kwargs)
    sa.event.listen(engine.pool, "checkout", _ping_if_idle)
    sa.event.listen(engine.pool, "checkin", _note_idle_since)
    return engine


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["idle_since_s"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since_s = record.info.get("idle_since_s")
    if idle_since_s is None or time.monotonic() - idle_since_s < PING_AFTER_IDLE_S:
        return  # new, or back in the pool a moment ago
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001 - any driver error means the connection is unusable
        raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc


def _sqlite_engine(url: str, **kwargs: Any) -> sa.Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    sa.event.listen(engine, "connect", _tune_sqlite)
    sa.event.listen(engine, "begin", _begin_immediate)
    return engine


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _begin_immediate)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch to WAL once per database file. Processes opening a new file together can find it
    locked: the switch ignores the busy timeout, so it is retried for a while here."""
    deadline_s = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline_s:
                raise
            time.sleep(0.05)


def _begin_immediate(connection: sa.Connection) -> None:
    """Take the write lock at BEGIN so read-then-write transactions never deadlock on upgrade."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def relaxed_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction whose commit does not wait for its WAL record to reach the disk (on Postgres,
    ``synchronous_commit`` off for this transaction only; SQLite in WAL mode with
    ``synchronous=NORMAL`` already commits so).

    Only for writes that a crash of the database server may lose without losing or repeating a
    job: lease claims and acknowledgements, lock rows, progress. Postgres writes its log in order,
    so such a commit becomes durable with the next durable commit of any session, at the latest
    ``wal_writer_delay`` later; every job state change is a durable commit and flushes them.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        yield conn


def transaction(engine: sa.Engine, *, relaxed: bool) -> Any:
    """``engine.begin()``, or :func:`relaxed_transaction` when ``relaxed``."""
    return relaxed_transaction(engine) if relaxed else engine.begin()


@contextmanager
def dbapi_cursor(engine: sa.Engine, *, autocommit: bool = False) -> Iterator[Any]:
    """A driver cursor on a pooled connection, committed when the block ends: for a hot statement
    already compiled, without SQLAlchemy's execution layers. The pool and its liveness check
    stay; a driver error comes out as SQLAlchemy's (so :func:`translated_errors` applies), and a
    lost connection invalidates the pool as :class:`sa.Connection` does.

    ``autocommit`` (psycopg2): each statement sent is a transaction of its own, in one round trip
    (no ``BEGIN``, no ``COMMIT``); the connection goes back to the pool as it came."""
    try:
        raw = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:  # could not connect: SQLAlchemy's error, as usual
        raise sa.exc.DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error,
                                         dialect=engine.dialect) from exc
    cursor = None
    if autocommit:
        driver = raw.dbapi_connection
        assert driver is not None  # a checked-out pool connection always has one
        driver.autocommit = True  # client-side on psycopg2: no round trip
    try:
        cursor = raw.cursor()
        yield cursor
        if not autocommit:
            raw.commit()
    except engine.dialect.loaded_dbapi.Error as exc:
        lost = engine.dialect.is_disconnect(exc, raw.driver_connection, cursor)
        if lost:
            engine.pool._invalidate(raw, exc)  # what sa.Connection does on a disconnect
        else:
            _rollback_quietly(raw)
        raise sa.exc.DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error,
                                         connection_invalidated=lost, dialect=engine.dialect) from exc
    except BaseException:
        _rollback_quietly(raw)
        raise
    finally:
        if cursor is not None:
            _close_quietly(cursor)
        if autocommit and raw.dbapi_connection is not None:  # None: invalidated above
            with contextlib.suppress(Exception):
                raw.dbapi_connection.autocommit = False
        raw.close()


def _rollback_quietly(raw: Any) -> None:
    try:
        raw.rollback()
    except Exception:  # noqa: BLE001 - the connection is broken; the pool replaces it
        raw.invalidate()


def _close_quietly(cursor: Any) -> None:
    try:
        cursor.close()
    except Exception:  # noqa: BLE001, S110 - closing a cursor of a broken connection
        pass


RELAXED_PREFIX = "SET LOCAL synchronous_commit TO OFF; "


class OneStatement:
    """A statement that is a transaction of its own, compiled once: the hot single-row steps of
    the lease queue, the SQL locks, progress and job saves.

    On psycopg2 it is sent in autocommit on a pooled driver connection: one round trip, where a
    transaction through SQLAlchemy costs three or four (``BEGIN``, [``SET LOCAL``,] the statement,
    ``COMMIT``) plus SQLAlchemy's execution layers. ``relaxed`` prefixes ``SET LOCAL
    synchronous_commit TO OFF`` in the same message: Postgres runs a multi-statement message as
    one implicit transaction, so the setting applies to this statement's commit only (see
    :func:`relaxed_transaction` for what may be relaxed). Other drivers (SQLite) execute the
    same statement through SQLAlchemy in a transaction of its own.

    Values are passed by the names of the statement's ``bindparam``s; the statement must not need
    SQLAlchemy's bind processing on psycopg2 (datetimes, strings and numbers don't; JSON is passed
    already encoded). Errors come out as SQLAlchemy's, for :func:`translated_errors`.
    """

    def __init__(self, engine: sa.Engine, statement: sa.Executable, *, relaxed: bool = False) -> None:
        self.engine = engine
        self.statement = statement
        self.relaxed = relaxed
        self._sql: str | None = None
        self._defaults: dict[str, Any] = {}
        if engine.dialect.driver == "psycopg2":
            # the stubs give Executable no compile(); every statement given here is a ClauseElement
            compiled = statement.compile(dialect=engine.dialect)  # type: ignore[attr-defined]
            self._sql = (RELAXED_PREFIX if relaxed else "") + str(compiled)
            self._defaults = dict(compiled.params)  # literals in the statement; values override

    def execute(self, **values: Any) -> tuple[int, list[dict[str, Any]]]:
        """Run it; the number of rows it changed and the rows it returned (as dicts)."""
        if self._sql is None:
            with transaction(self.engine, relaxed=self.relaxed) as conn:
                result = conn.execute(self.statement, values)
                rows = [dict(row) for row in result.mappings()] if result.returns_rows else []
                return result.rowcount, rows
        with dbapi_cursor(self.engine, autocommit=True) as cursor:
            cursor.execute(self._sql, {**self._defaults, **values})
            rows = []
            if cursor.description is not None:
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            return cursor.rowcount, rows
