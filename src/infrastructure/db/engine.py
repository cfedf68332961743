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
from sqlalchemy.dialects.postgresql import psycopg2 as postgresql_psycopg2
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
    liveness = _Liveness()
    sa.event.listen(engine.pool, "checkout", liveness.ping_if_idle)
    sa.event.listen(engine.pool, "checkin", _note_idle_since)
    sa.event.listen(engine.pool, "invalidate", liveness.note_invalidated)
    return engine


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["idle_since_s"] = time.monotonic()


class _Liveness:
    """When a pooled connection must be pinged before use: after sitting idle a while, or when it
    went back to the pool before a connection of the same pool was found lost (a restarted server
    drops them all; each one is checked, and replaced if dead, before its next use)."""

    def __init__(self) -> None:
        self.invalidated_at_s = float("-inf")

    def note_invalidated(self, _dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        self.invalidated_at_s = time.monotonic()

    def ping_if_idle(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since_s = record.info.get("idle_since_s")
        if idle_since_s is None:
            return  # new
        if time.monotonic() - idle_since_s >= PING_AFTER_IDLE_S or idle_since_s <= self.invalidated_at_s:
            _ping(dbapi_connection)


def _ping(dbapi_connection: Any) -> None:
    """``SELECT 1``; a dead connection raises :class:`sa.exc.DisconnectionError`, which makes the
    pool replace it with a new one (SQLAlchemy's documented pessimistic-disconnect hook)."""
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
    lost connection is invalidated (public ``PoolProxiedConnection.invalidate``): the pool's
    ``invalidate`` event makes every connection returned before it be pinged before its next use.

    The cursor binds values on the client on both Postgres drivers (psycopg 3: a
    ``psycopg.ClientCursor``), so a message may hold several statements, as on psycopg2.

    ``autocommit`` (psycopg2, psycopg 3): each statement sent is a transaction of its own, in one
    round trip (no ``BEGIN``, no ``COMMIT``); the connection goes back to the pool as it came."""
    try:
        raw = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:  # could not connect: SQLAlchemy's error, as usual
        raise sa.exc.DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error,
                                         dialect=engine.dialect) from exc
    cursor = None
    if autocommit:
        driver = raw.dbapi_connection
        assert driver is not None  # a checked-out pool connection always has one
        driver.autocommit = True  # client-side on psycopg2 and psycopg 3: no round trip
    try:
        cursor = _client_side_cursor(raw, engine.dialect.driver)
        yield cursor
        if not autocommit:
            raw.commit()
    except engine.dialect.loaded_dbapi.Error as exc:
        lost = engine.dialect.is_disconnect(exc, raw.driver_connection, cursor)
        if lost:
            raw.invalidate(exc)  # closed and dropped; the pool pings the others before reuse
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


def _client_side_cursor(raw: Any, driver: str) -> Any:
    if driver == "psycopg":
        import psycopg  # only where the engine's URL names it

        return psycopg.ClientCursor(raw.driver_connection)
    return raw.cursor()


def _last_result(cursor: Any, driver: str) -> None:
    """Move to the result of the message's last statement: psycopg 3 starts at the first one
    (psycopg2 keeps only the last)."""
    if driver == "psycopg":
        while cursor.nextset():
            pass


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
ONE_ROUND_TRIP_DRIVERS = ("psycopg2", "psycopg")


def _client_side_dialect(engine: sa.Engine) -> sa.Dialect:
    """The dialect that writes the statement's SQL for a client-side cursor: psycopg2's on both
    drivers. SQLAlchemy's psycopg 3 dialect casts every parameter to its column type's SQL type
    (``%(v)s::VARCHAR``), for server-side binding; values bound on the client need no cast, and
    a cast would refuse JSON text sent for a JSON column."""
    if engine.dialect.driver == "psycopg2":
        return engine.dialect
    return postgresql_psycopg2.dialect()  # type: ignore[no-untyped-call]


class OneStatement:
    """A statement that is a transaction of its own, compiled once: the hot single-row steps of
    the lease queue, the SQL locks, progress and job saves.

    On psycopg2 and psycopg 3 it is sent in autocommit on a pooled driver connection: one round trip, where a
    transaction through SQLAlchemy costs three or four (``BEGIN``, [``SET LOCAL``,] the statement,
    ``COMMIT``) plus SQLAlchemy's execution layers. ``relaxed`` prefixes ``SET LOCAL
    synchronous_commit TO OFF`` in the same message: Postgres runs a multi-statement message as
    one implicit transaction, so the setting applies to this statement's commit only (see
    :func:`relaxed_transaction` for what may be relaxed). Other drivers (SQLite) execute the
    same statement through SQLAlchemy in a transaction of its own.

    Values are passed by the names of the statement's ``bindparam``s; the statement must not need
    SQLAlchemy's bind processing on those drivers (datetimes, strings and numbers don't; JSON is passed
    already encoded). Errors come out as SQLAlchemy's, for :func:`translated_errors`.
    """

    def __init__(self, engine: sa.Engine, statement: sa.Executable, *, relaxed: bool = False) -> None:
        self.engine = engine
        self.statement = statement
        self.relaxed = relaxed
        self._sql: str | None = None
        self._defaults: dict[str, Any] = {}
        if engine.dialect.driver in ONE_ROUND_TRIP_DRIVERS:
            compiled = statement.compile(dialect=_client_side_dialect(engine))  # type: ignore[attr-defined]
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
            _last_result(cursor, self.engine.dialect.driver)
            rows = []
            if cursor.description is not None:
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            return cursor.rowcount, rows
