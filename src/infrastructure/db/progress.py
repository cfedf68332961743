"""Live progress in the ``rq_progress`` table, for deployments without Redis (embedded default).

An API process reads what a worker process writes. One statement per record or read
(:class:`OneStatement`): within a stage a lower percent is ignored, unless the stored row has
outlived ``ttl_s``. Records commit without waiting for the disk (:func:`relaxed_transaction`):
progress is best effort, the final state is saved with the job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from src.application.ports import Clock, Progress
from src.domain.errors import ReelqueueError, ServiceUnavailable
from src.infrastructure.db.engine import OneStatement
from src.infrastructure.db.errors import translated_errors
from src.infrastructure.db.tables import progress
from src.infrastructure.db.timestamps import from_db, utc
from src.infrastructure.db.upsert import upsert

log = logging.getLogger(__name__)


class SqlProgress:
    def __init__(self, engine: sa.Engine, *, clock: Clock, ttl_s: float) -> None:
        self.engine = engine
        self.clock = clock
        self.ttl_s = ttl_s
        self._degraded = False
        live_since: sa.BindParameter[datetime] = sa.bindparam("live_since")
        names = ("job_id", "stage", "percent", "message", "updated_at")
        values: dict[str, sa.BindParameter[Any]] = {name: sa.bindparam(name) for name in names}

        def moves_forward(new: sa.ColumnCollection[str, sa.ColumnElement[Any]]) -> sa.ColumnElement[bool]:
            """A new stage, a percent not lower, or a stored row that has expired."""
            return sa.or_(progress.c.stage != new.stage, progress.c.percent <= new.percent,
                          progress.c.updated_at < live_since)

        self._record = OneStatement(engine, upsert(engine, progress, values, where=moves_forward),
                                    relaxed=True)
        self._read = OneStatement(engine, sa.select(progress).where(
            progress.c.job_id == sa.bindparam("id"), progress.c.updated_at >= live_since))

    def record(self, job_id: str, *, stage: str, percent: float, message: str = "") -> None:
        try:
            with translated_errors():
                self._record.execute(job_id=job_id, stage=stage, percent=_clamp(percent), message=message,
                                     updated_at=utc(self.clock.now()), live_since=self._live_since())
            self._degraded = False
        except (ReelqueueError, sa.exc.SQLAlchemyError) as exc:  # best effort: the job goes on
            self._warn_once(exc)

    def read(self, job_id: str) -> Progress | None:
        try:
            with translated_errors():
                rows = self._read.execute(id=job_id, live_since=self._live_since())[1]
        except ServiceUnavailable as exc:
            self._warn_once(exc)
            return None
        return _progress(rows[0]) if rows else None

    def flush(self, job_id: str) -> Progress | None:
        return self.read(job_id)

    def _live_since(self) -> datetime:
        return utc(self.clock.now() - timedelta(seconds=self.ttl_s))

    def _warn_once(self, exc: Exception) -> None:
        if not self._degraded:
            log.warning("progress is not being recorded: %s", exc)
        self._degraded = True


def _clamp(percent: float) -> float:
    return max(0.0, min(100.0, float(percent)))


def _progress(row: Mapping[str, Any]) -> Progress:
    return Progress(stage=row["stage"], percent=row["percent"], message=row["message"],
                    updated_at=from_db(row["updated_at"]))
