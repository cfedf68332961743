"""Jobs and the outbox in SQL (SQLAlchemy Core): one table for both job kinds.

A job's messages commit in the job's own transaction, written by a :class:`MessageWriter`:
outbox rows (:class:`OutboxWriter`, sent after commit by a relay) or, when the queue is the SQL
lease queue in this same database, the queue rows themselves (:class:`QueueWriter`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa

from src.application.messages import JobMessage
from src.application.ports import Clock, KeptAnswer, OutboxEntry
from src.domain.errors import ConcurrentUpdate, JobNotFound
from src.domain.jobs import AIJob, Job, JobKind, Mode, Output, ProviderCancel, VideoJob
from src.domain.status import JobStatus
from src.infrastructure.clock import SystemClock
from src.infrastructure.db.engine import ONE_ROUND_TRIP_DRIVERS, OneStatement
from src.infrastructure.db.errors import translated_errors
from src.infrastructure.db.idempotency_keys import insert_answer
from src.infrastructure.db.queue import SqlQueuePublisher
from src.infrastructure.db.tables import batches, jobs, outbox, queue_messages
from src.infrastructure.db.timestamps import from_db, to_db

J = TypeVar("J", VideoJob, AIJob)

_TIMES = frozenset({"created_at", "updated_at", "started_at", "finished_at", "submitted_at",
                    "quota_wait_since"})


_FIELD_NAMES: dict[type[Job], tuple[str, ...]] = {}


def _field_names(kind: type[Job]) -> tuple[str, ...]:
    """The constructor fields of a job class, computed once per class."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind) if f.init)
    return names


def job_to_row(job: Job) -> dict[str, Any]:
    """Every field of ``job`` as a column value (enums as values, outputs as JSON)."""
    row = {name: getattr(job, name) for name in _field_names(type(job))}
    row.update(kind=job.kind.value, status=job.status.value,
               outputs=[output.to_dict() for output in job.outputs])
    if isinstance(job, AIJob):
        row["mode"] = job.mode.value
        row["provider_task_history"] = " ".join(job.provider_task_history) or None
        row["provider_cancel"] = job.provider_cancel.value if job.provider_cancel else None
    row.update((name, to_db(row[name])) for name in _TIMES & row.keys())
    return row


def row_to_job(kind: type[J], row: Mapping[Any, Any]) -> J:
    values = {name: row[name] for name in _field_names(kind)}
    values.update(status=JobStatus(row["status"]),
                  outputs=tuple(Output.from_dict(item) for item in row["outputs"] or ()))
    if "mode" in values:
        values["mode"] = Mode(values["mode"])
        values["provider_task_history"] = tuple((values["provider_task_history"] or "").split())
    if "provider_cancel" in values:
        cancel = values["provider_cancel"]
        values["provider_cancel"] = ProviderCancel(cancel) if cancel else None
        values["provider_cancel_tries"] = values["provider_cancel_tries"] or 0
    values.update({name: from_db(values[name]) for name in _TIMES & values.keys()})
    return kind(**values)


class MessageWriter(Protocol):
    def write(self, conn: sa.Connection, messages: Sequence[JobMessage]) -> list[int]:
        """Store ``messages`` inside the caller's transaction; the outbox ids still to send."""
        ...


class OutboxWriter:
    """Messages become outbox rows, for a relay (or the reconciler) to send after commit."""

    def __init__(self, *, clock: Clock) -> None:
        self.clock = clock

    def write(self, conn: sa.Connection, messages: Sequence[JobMessage]) -> list[int]:
        return insert_outbox(conn, messages, self.clock.now())


class QueueWriter:
    """Messages go straight into the SQL lease queue of the same database, in the job's own
    transaction: they commit (or roll back) with the job, and nothing is left to send."""

    def __init__(self, publisher: SqlQueuePublisher) -> None:
        self.publisher = publisher

    def write(self, conn: sa.Connection, messages: Sequence[JobMessage]) -> list[int]:
        self.publisher.publish_in(conn, messages)
        return []


class JobAndQueueRow:
    """One job and its one message, when the message is a row of the SQL lease queue in the jobs'
    own Postgres database (the API's enqueue), as ONE statement, a data-modifying CTE::

        WITH j AS (INSERT INTO rq_jobs (...) VALUES (...) RETURNING id)
        INSERT INTO rq_queue_messages (...) SELECT ... FROM j

    A statement is atomic: both rows commit or neither does, as in a transaction of two INSERTs.
    Compiled once per column set and sent in autocommit on a pooled driver connection
    (:class:`OneStatement`): one round trip, where ``BEGIN``, two INSERTs and ``COMMIT`` through
    SQLAlchemy cost four and its execution layers. Only for psycopg2 and psycopg 3 (SQLite has no
    INSERT in a CTE) and a single job; other adds (batches, SQLite, the outbox) take the transaction path.
    """

    def __init__(self, engine: sa.Engine, publisher: SqlQueuePublisher) -> None:
        self.engine = engine
        self.publisher = publisher
        self._statements: dict[tuple[tuple[str, ...], tuple[str, ...]], OneStatement] = {}

    @staticmethod
    def fits(jobs_: Sequence[Job], messages: Sequence[JobMessage]) -> bool:
        """One job, not in a batch (a batch also writes its row), with one message."""
        return len(jobs_) == 1 and len(messages) == 1 and jobs_[0].batch_id is None

    def insert(self, job: Job, message: JobMessage) -> None:
        row = job_to_row(job)
        row["outputs"] = json.dumps(row["outputs"])  # no bind processing on this path
        queued = self.publisher.rows([message])[0]
        values = {f"job_{name}": value for name, value in row.items()}
        values.update({f"message_{name}": value for name, value in queued.items()})
        self._statement(tuple(row), tuple(queued)).execute(**values)

    def _statement(self, job_columns: tuple[str, ...], message_columns: tuple[str, ...]) -> OneStatement:
        key = (job_columns, message_columns)
        statement = self._statements.get(key)
        if statement is None:  # a shape per job kind
            job = (jobs.insert().values({name: sa.bindparam(f"job_{name}") for name in job_columns})
                   .returning(jobs.c.id).cte("j"))
            message = sa.select(*(sa.bindparam(f"message_{name}", type_=queue_messages.c[name].type)
                                  for name in message_columns)).select_from(job)
            insert = queue_messages.insert().from_select(list(message_columns), message)
            expected = {f"job_{name}" for name in job_columns}
            expected |= {f"message_{name}" for name in message_columns}
            unbound = set(insert.compile(dialect=self.engine.dialect).params) - expected
            if unbound:  # a column default SQLAlchemy would fill in, which this path would not
                raise TypeError(f"columns without a value: {sorted(unbound)}")
            statement = self._statements[key] = OneStatement(self.engine, insert)
        return statement


class SqlAlchemyJobRepository(Generic[J]):
    """The :class:`JobRepository` port for one job kind; status changes are conditional UPDATEs."""

    def __init__(self, engine: sa.Engine, *, kind: type[J], clock: Clock | None = None,
                 messages: MessageWriter | None = None) -> None:
        self.engine = engine
        self.kind: type[J] = kind
        self.kind_value = _kind_value(kind)
        self.clock = clock or SystemClock()
        self.messages = messages or OutboxWriter(clock=self.clock)
        self._update = jobs.update().where(  # SET comes from the keys of the parameters
            jobs.c.id == sa.bindparam("_id"), jobs.c.kind == self.kind_value,
            jobs.c.status == sa.bindparam("_expected"),
        )
        self._updates: dict[tuple[str, ...], OneStatement] = {}
        self._get = OneStatement(engine, sa.select(jobs).where(
            jobs.c.id == sa.bindparam("job_id"), jobs.c.kind == self.kind_value))

    def add(self, jobs_: Sequence[J], messages: Sequence[JobMessage], *,
            answer: KeptAnswer | None = None) -> list[int]:
        for job in jobs_:
            if not isinstance(job, self.kind):
                raise TypeError(f"{type(job).__name__} is not a {self.kind.__name__}")
        one_statement = self._job_and_message
        if answer is None and one_statement is not None and one_statement.fits(jobs_, messages):
            with translated_errors():
                one_statement.insert(jobs_[0], messages[0])
            return []
        with translated_errors(), self.engine.begin() as conn:
            if answer is not None:  # first: a racing request with the same key waits here
                insert_answer(conn, answer)
            if jobs_:
                conn.execute(jobs.insert(), [job_to_row(job) for job in jobs_])
            _add_batches(conn, jobs_)
            return self.messages.write(conn, messages)

    @functools.cached_property
    def _job_and_message(self) -> JobAndQueueRow | None:
        """The one-statement add of a job with its queue row, where it applies (see there)."""
        one_round_trip = self.engine.dialect.driver in ONE_ROUND_TRIP_DRIVERS
        if not one_round_trip or not isinstance(self.messages, QueueWriter):
            return None
        return JobAndQueueRow(self.engine, self.messages.publisher)

    def get(self, job_id: str) -> J:
        with translated_errors():
            rows = self._get.execute(job_id=job_id)[1]
        if not rows:
            raise JobNotFound(job_id)
        return row_to_job(self.kind, rows[0])

    def save(self, job: J, *, expected: JobStatus, messages: Sequence[JobMessage] = (),
             answer: KeptAnswer | None = None) -> list[int]:
        values = job_to_row(job)
        del values["id"], values["kind"]
        values.update(_id=job.id, _expected=expected.value)
        with translated_errors():
            if messages or answer is not None:
                entry_ids = self._save_in_transaction(values, messages, answer)
                if entry_ids is not None:
                    return entry_ids
            elif self._update_alone(values) == 1:
                return []
            with self.engine.connect() as conn:  # only to say why it did not apply
                actual = conn.execute(self._status_of(job.id)).scalar()
        if actual is None:
            raise JobNotFound(job.id)
        raise ConcurrentUpdate(job.id, expected.value, actual)

    def _save_in_transaction(self, values: dict[str, Any], messages: Sequence[JobMessage],
                             answer: KeptAnswer | None) -> list[int] | None:
        """The conditional UPDATE with the messages and the answer it commits with; ``None``
        (everything rolled back) when the stored status was not the expected one."""
        try:
            with self.engine.begin() as conn:
                if answer is not None:
                    insert_answer(conn, answer)
                if conn.execute(self._update, values).rowcount != 1:
                    raise _NotApplied
                return self.messages.write(conn, messages)
        except _NotApplied:
            return None

    def _update_alone(self, values: dict[str, Any]) -> int:
        """The conditional UPDATE in a transaction of its own, every job's hot path: one
        :class:`OneStatement` per column set (one round trip on psycopg2 and psycopg 3). ``outputs``
        goes in as JSON text, which both SQLite and Postgres store in the JSON column."""
        keys = tuple(values)
        statement = self._updates.get(keys)
        if statement is None:  # a column set or two per repository, each compiled once
            changes = {key: sa.bindparam(f"set_{key}", type_=sa.Text() if key == "outputs" else None)
                       for key in keys if key[0] != "_"}
            statement = self._updates[keys] = OneStatement(self.engine, self._update.values(changes))
        params = {key if key[0] == "_" else f"set_{key}": value for key, value in values.items()}
        params["set_outputs"] = json.dumps(values["outputs"])
        return statement.execute(**params)[0]

    def list(
        self, *, owner_id: str | None = None, status: JobStatus | None = None,
        batch_id: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[J]:
        query = sa.select(jobs).where(jobs.c.kind == self.kind_value)
        if owner_id is not None:
            query = query.where(jobs.c.owner_id == owner_id)
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        if batch_id is not None:
            query = query.where(jobs.c.batch_id == batch_id)
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit).offset(offset)
        with translated_errors(), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [row_to_job(self.kind, row) for row in rows]

    def _status_of(self, job_id: str) -> sa.Select[str]:
        return sa.select(jobs.c.status).where(jobs.c.id == job_id, jobs.c.kind == self.kind_value)


class _NotApplied(Exception):
    """Rolls back a conditional save that found another status (never leaves the repository)."""


class SqlAlchemyOutbox:
    """The :class:`Outbox` port: messages stored with their queue and encoded body."""

    def __init__(self, engine: sa.Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def add(self, messages: Sequence[JobMessage]) -> list[int]:
        with translated_errors(), self.engine.begin() as conn:
            return insert_outbox(conn, messages, self.clock.now())

    def pending(self, *, limit: int, older_than: datetime | None = None) -> list[OutboxEntry]:
        query = sa.select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(limit)
        if older_than is not None:
            query = query.where(outbox.c.created_at <= to_db(older_than))
        with translated_errors(), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_entry(row) for row in rows]

    def mark_sent(self, entry_ids: Sequence[int]) -> None:
        if not entry_ids:
            return
        update = outbox.update().where(outbox.c.id.in_(list(entry_ids)))
        with translated_errors(), self.engine.begin() as conn:
            conn.execute(update.values(sent_at=to_db(self.clock.now())))


def insert_outbox(conn: sa.Connection, messages: Sequence[JobMessage], now: datetime) -> list[int]:
    """Outbox rows for ``messages`` on ``conn`` (inside the caller's transaction); their ids in order."""
    if not messages:
        return []
    rows = [{"queue": m.queue, "body": m.encode(), "created_at": to_db(now)} for m in messages]
    insert = outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True)
    return list(conn.execute(insert, rows).scalars())


def _add_batches(conn: sa.Connection, jobs_: Sequence[Job]) -> None:
    sizes = Counter(job.batch_id for job in jobs_ if job.batch_id)
    first = {job.batch_id: job for job in reversed(jobs_)}
    rows = [
        {"id": batch_id, "owner_id": first[batch_id].owner_id,
         "created_at": to_db(first[batch_id].created_at), "size": size}
        for batch_id, size in sizes.items()
    ]
    if rows:
        conn.execute(batches.insert(), rows)


def _entry(row: sa.RowMapping) -> OutboxEntry:
    message = JobMessage.decode(row["body"], queue=row["queue"])
    return OutboxEntry(id=row["id"], message=message, created_at=from_db(row["created_at"]))


def _kind_value(kind: type[Job]) -> str:
    return str((JobKind.AI if issubclass(kind, AIJob) else JobKind.VIDEO).value)
