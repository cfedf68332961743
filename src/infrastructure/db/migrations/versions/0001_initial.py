"""The initial schema: jobs, batches, outbox, SQL queue, locks, progress.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(32)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "rq_jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("batch_id", ID, nullable=True),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("preset", sa.String(16), nullable=True),
        sa.Column("poster_offset_s", sa.Float(), nullable=True),
        sa.Column("model", sa.String(32), nullable=True),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("production_path", sa.String(16), nullable=True),
        sa.Column("mode", sa.String(4), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("input_image", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("ratio", sa.String(16), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("num_frames", sa.Integer(), nullable=True),
        sa.Column("provider_task_id", sa.String(128), nullable=True),
        _when("submitted_at", nullable=True),
        sa.Column("callback_token", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rq_jobs"),
    )
    op.create_index("ix_rq_jobs_owner_created", "rq_jobs", ["owner_id", "created_at"])
    op.create_index("ix_rq_jobs_status", "rq_jobs", ["status"])
    op.create_index("ix_rq_jobs_batch", "rq_jobs", ["batch_id"])

    op.create_table(
        "rq_batches",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        _when("created_at", nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rq_batches"),
    )

    op.create_table(
        "rq_outbox",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        _when("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rq_outbox"),
    )
    op.create_index("ix_rq_outbox_pending", "rq_outbox", ["sent_at", "created_at"])

    op.create_table(
        "rq_queue_messages",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _when("visible_at", nullable=False),
        sa.Column("receive_count", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=True),
        _when("created_at", nullable=False),
        sa.Column("dead_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rq_queue_messages"),
    )
    op.create_index(
        "ix_rq_queue_messages_ready", "rq_queue_messages", ["queue", "dead_reason", "visible_at"]
    )

    op.create_table(
        "rq_locks",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        _when("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rq_locks"),
    )

    op.create_table(
        "rq_progress",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_rq_progress"),
    )


def downgrade() -> None:
    for table in ("rq_progress", "rq_locks", "rq_queue_messages", "rq_outbox", "rq_batches", "rq_jobs"):
        op.drop_table(table)
