"""A job queue in a SQL table with leases (``rq_queue_messages``): the embedded default.

It keeps the semantics of SQS (and of :class:`InMemoryBroker`): a received message stays hidden
for the visibility timeout and comes back unless acked; each receive gives a new lease token and
only the current token can ack, extend, release or dead-letter; a message received
``max_receive_count`` times goes to the dead-letter state instead of being delivered again.

Claims are atomic: ``SELECT ... FOR UPDATE SKIP LOCKED`` on Postgres; on SQLite the engine from
:func:`src.infrastructure.db.engine.make_engine` starts every transaction with ``BEGIN IMMEDIATE``.
A claim of up to ten messages is one statement, and so is an ack of up to ten, each a transaction
of its own (:class:`OneStatement`). Claims, acks and hand-backs commit without waiting for the
disk (:func:`relaxed_transaction`): a crash of the database may undo them, which only delivers a
message again (jobs are idempotent); extends and dead letters are durable.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import sqlalchemy as sa

from src.application.messages import JobMessage
from src.application.ports import Clock, DeadLetter, ReceivedMessage
from src.application.queue_limits import (
    MAX_BODY_BYTES,
    MAX_DELAY_S,
    MAX_RECEIVE,
    MAX_RECEIVE_REASON,
    MAX_WAIT_S,
)
from src.domain.errors import ReelqueueError
from src.infrastructure.db.engine import OneStatement, transaction
from src.infrastructure.db.errors import translated_errors
from src.infrastructure.db.tables import queue_messages as t

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2


def _db_errors(action: str) -> AbstractContextManager[None]:
    return translated_errors(f"the queue database (trying to {action})")


class SqlQueuePublisher:
    def __init__(self, engine: sa.Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def publish(self, messages: Sequence[JobMessage], *, delay_s: int = 0) -> None:
        if not messages:
            return
        with _db_errors("publish"), self.engine.begin() as conn:
            self.publish_in(conn, messages, delay_s=delay_s)

    def publish_in(self, conn: sa.Connection, messages: Sequence[JobMessage], *, delay_s: int = 0) -> None:
        """Publish inside the caller's transaction on this queue's database: the messages
        commit, or roll back, with whatever else it writes (a job and its message together)."""
        rows = self.rows(messages, delay_s=delay_s)
        if rows:
            conn.execute(t.insert(), rows)

    def rows(self, messages: Sequence[JobMessage], *, delay_s: int = 0) -> list[dict[str, object]]:
        """The queue rows that publishing ``messages`` inserts (checked: delay, body size), for a
        caller that writes them in a statement of its own (a job and its message in one)."""
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise ReelqueueError(f"delay must be 0-{MAX_DELAY_S} s, got {delay_s}")
        now = self.clock.now()
        return [_row(m.queue, m.encode(), now, delay_s) for m in messages]


def _row(queue: str, body: str, now: datetime, delay_s: int) -> dict[str, object]:
    if len(body.encode()) > MAX_BODY_BYTES:
        raise ReelqueueError(f"message body over {MAX_BODY_BYTES} bytes")
    return {"queue": queue, "body": body, "visible_at": now + timedelta(seconds=delay_s),
            "receive_count": 0, "lease_token": None, "created_at": now, "dead_reason": None}


class SqlQueueConsumer:
    def __init__(
        self, engine: sa.Engine, queue: str, *, clock: Clock, visibility_timeout_s: int,
        max_receive_count: int,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.clock = clock
        self.visibility_timeout_s = visibility_timeout_s
        self.max_receive_count = max_receive_count
        self._claim_statement = OneStatement(engine, _claim_ready(max_receive_count), relaxed=True)
        self._acks: dict[int, OneStatement] = {}

    def _ack_statement(self, size: int) -> OneStatement:
        statement = self._acks.get(size)
        if statement is None:  # at most MAX_BATCH shapes, each compiled once
            leases = sa.tuple_(t.c.id, t.c.lease_token).in_(
                [sa.tuple_(sa.bindparam(f"i{n}"), sa.bindparam(f"t{n}")) for n in range(size)])
            statement = OneStatement(self.engine, sa.delete(t).where(leases, t.c.dead_reason.is_(None)),
                                     relaxed=True)
            self._acks[size] = statement
        return statement

    def receive(self, *, max_messages: int, wait_s: float) -> list[ReceivedMessage]:
        deadline = time.monotonic() + min(wait_s, MAX_WAIT_S)
        while True:
            got = self._claim(max(1, min(max_messages, MAX_RECEIVE)))
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))

    def _claim(self, limit: int) -> list[ReceivedMessage]:
        """One statement whatever the batch (:func:`_claim_ready`); each handle is the row id and
        the lease token shared by the batch."""
        token = uuid.uuid4().hex
        now = self.clock.now()
        with _db_errors("receive"):
            rows = self._claim_statement.execute(
                queue_name=self.queue, now=now, batch=limit, token=token,
                until=now + timedelta(seconds=self.visibility_timeout_s))[1]
        rows.sort(key=lambda row: row["id"])
        dead = [row["id"] for row in rows if row["dead_reason"] is not None]
        if dead:
            log.warning("queue %s: message(s) %s dead-lettered after %d receives", self.queue,
                        ", ".join(map(str, dead)), self.max_receive_count)
        return [ReceivedMessage(queue=self.queue, body=row["body"], message_id=str(row["id"]),
                                receive_count=row["receive_count"], handle=(row["id"], token))
                for row in rows if row["dead_reason"] is None]

    def _leased(self, message: ReceivedMessage) -> sa.ColumnElement[bool]:
        row_id, token = message.handle
        return sa.and_(t.c.id == row_id, t.c.lease_token == token, t.c.dead_reason.is_(None))

    def ack(self, messages: Sequence[ReceivedMessage]) -> None:
        """One DELETE for the batch; a message whose lease is stale is left alone."""
        if not messages:
            return
        values = {f"i{n}": m.handle[0] for n, m in enumerate(messages)}
        values.update({f"t{n}": m.handle[1] for n, m in enumerate(messages)})
        with _db_errors("ack"):
            self._ack_statement(len(messages)).execute(**values)

    def release(self, message: ReceivedMessage) -> None:
        self._set(message, "release", visible_at=self.clock.now(), relaxed=True)

    def extend(self, message: ReceivedMessage, *, visibility_timeout_s: int) -> None:
        visible_at = self.clock.now() + timedelta(seconds=visibility_timeout_s)
        self._set(message, "extend", visible_at=visible_at)

    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        if self._set(message, "dead-letter", dead_reason=reason or "unspecified"):
            log.warning("queue %s: message %s dead-lettered: %s", self.queue, message.message_id, reason)

    def _set(self, message: ReceivedMessage, action: str, *, relaxed: bool = False, **values: object) -> bool:
        """A conditional update of one leased message. Extends and dead letters are durable: a
        crash must not shorten a running job's lease; a lost hand-back only delays a message."""
        with _db_errors(action), transaction(self.engine, relaxed=relaxed) as conn:
            changed = conn.execute(sa.update(t).where(self._leased(message)).values(**values)).rowcount
        if not changed:
            log.info("queue %s: %s of message %s ignored: stale lease", self.queue, action,
                     message.message_id)
        return bool(changed)


def _claim_ready(max_receive_count: int) -> sa.Update:
    """Lease up to ``batch`` ready messages in one statement: the oldest ready rows, locked and
    skipped by concurrent claims (``FOR UPDATE SKIP LOCKED``; SQLite serialises writers), get the
    batch's token, one more receive and a new visibility; a row already received
    ``max_receive_count`` times goes to the dead-letter state instead. Returns the rows."""
    ready = (
        sa.select(t.c.id)
        .where(t.c.queue == sa.bindparam("queue_name"), t.c.dead_reason.is_(None),
               t.c.visible_at <= sa.bindparam("now"))
        .order_by(t.c.visible_at, t.c.id)
        .limit(sa.bindparam("batch"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    spent = t.c.receive_count >= max_receive_count
    return (
        sa.update(t)
        .where(t.c.id.in_(ready))
        .values(
            dead_reason=sa.case((spent, MAX_RECEIVE_REASON), else_=None),
            lease_token=sa.case((spent, None), else_=sa.bindparam("token")),
            receive_count=sa.case((spent, t.c.receive_count), else_=t.c.receive_count + 1),
            visible_at=sa.case((spent, t.c.visible_at), else_=sa.bindparam("until")),
        )
        .returning(t.c.id, t.c.body, t.c.receive_count, t.c.dead_reason)
    )


class SqlQueueAdmin:
    """Inspection and dead-letter handling for operators (the CLI)."""

    def __init__(self, engine: sa.Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def depth(self, queue: str) -> int:
        """Messages not dead-lettered: ready, delayed or in flight."""
        query = sa.select(sa.func.count()).where(t.c.queue == queue, t.c.dead_reason.is_(None))
        with _db_errors("count messages"), self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        query = (sa.select(t.c.id, t.c.body, t.c.dead_reason)
                 .where(t.c.queue == queue, t.c.dead_reason.is_not(None)).order_by(t.c.id))
        with _db_errors("list dead letters"), self.engine.connect() as conn:
            return [DeadLetter(message_id=str(row.id), body=row.body, reason=row.dead_reason)
                    for row in conn.execute(query)]

    def redrive(self, queue: str) -> int:
        """Move every dead letter of ``queue`` back to ready, with a fresh receive count."""
        dead = sa.update(t).where(t.c.queue == queue, t.c.dead_reason.is_not(None))
        values = {"dead_reason": None, "receive_count": 0, "lease_token": None,
                  "visible_at": self.clock.now()}
        with _db_errors("redrive"), self.engine.begin() as conn:
            return conn.execute(dead.values(**values)).rowcount

    def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; returns how many."""
        dead = sa.delete(t).where(t.c.queue == queue, t.c.dead_reason.is_not(None))
        with _db_errors("purge dead letters"), self.engine.begin() as conn:
            return conn.execute(dead).rowcount
