"""Live progress in the ``rq_progress`` table, for deployments without Redis (embedded default).

An API process reads what a worker process writes. One upsert per record: within a stage a
lower percent is ignored, unless the stored row has outlived ``ttl_s``. Records commit without
waiting for the disk (:func:`relaxed_transaction`): progress is best effort, the final state is
saved with the job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from src.application.ports import Clock, Progress
from src.domain.errors import ReelqueueError, ServiceUnavailable
from src.infrastructure.db.engine import relaxed_transaction
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

    def record(self, job_id: str, *, stage: str, percent: float, message: str = "") -> None:
        values = {"job_id": job_id, "stage": stage, "percent": _clamp(percent),
                  "message": message, "updated_at": utc(self.clock.now())}
        try:
            self._execute(upsert(self.engine, progress, values, where=self._moves_forward))
        except (ReelqueueError, sa.exc.SQLAlchemyError) as exc:  # best effort: the job goes on
            self._warn_once(exc)

    def read(self, job_id: str) -> Progress | None:
        query = sa.select(progress).where(
            progress.c.job_id == job_id, progress.c.updated_at >= self._live_since()
        )
        try:
            with translated_errors(), self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except ServiceUnavailable as exc:
            self._warn_once(exc)
            return None
        return None if row is None else _progress(row)

    def flush(self, job_id: str) -> Progress | None:
        return self.read(job_id)

    def _moves_forward(self, new: sa.ColumnCollection) -> sa.ColumnElement[bool]:
        """A new stage, a percent not lower, or a stored row that has expired."""
        return sa.or_(
            progress.c.stage != new.stage,
            progress.c.percent <= new.percent,
            progress.c.updated_at < self._live_since(),
        )

    def _execute(self, statement: sa.Executable) -> None:
        with translated_errors(), relaxed_transaction(self.engine) as conn:
            conn.execute(statement)
        self._degraded = False

    def _live_since(self) -> datetime:
        return utc(self.clock.now() - timedelta(seconds=self.ttl_s))

    def _warn_once(self, exc: Exception) -> None:
        if not self._degraded:
            log.warning("progress is not being recorded: %s", exc)
        self._degraded = True


def _clamp(percent: float) -> float:
    return max(0.0, min(100.0, float(percent)))


def _progress(row: sa.RowMapping) -> Progress:
    return Progress(stage=row["stage"], percent=row["percent"], message=row["message"],
                    updated_at=from_db(row["updated_at"]))
