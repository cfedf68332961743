"""Provider task history and quota waits on AI jobs.

``provider_task_history``: every provider task id a job ever had, space-separated, oldest first
(a failed task worth a new one leaves its id here). ``quota_wait_since``: when a provider first
refused the job's create for a used-up quota (the wait is bounded from there).

Revision ID: 0003_provider_tasks
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_provider_tasks"
down_revision = "0002_ai_audio"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rq_jobs") as batch:
        batch.add_column(sa.Column("provider_task_history", sa.Text(), nullable=True))
        batch.add_column(sa.Column("quota_wait_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rq_jobs") as batch:
        batch.drop_column("quota_wait_since")
        batch.drop_column("provider_task_history")
