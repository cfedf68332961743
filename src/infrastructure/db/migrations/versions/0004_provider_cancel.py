"""Cancel reaches the provider: where stopping a cancelled AI job's paid task stands.

Revision ID: 0004_provider_cancel
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_provider_cancel"
down_revision = "0003_provider_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rq_jobs") as batch:
        batch.add_column(sa.Column("provider_cancel", sa.String(16), nullable=True))
        batch.add_column(sa.Column("provider_cancel_detail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("provider_cancel_tries", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rq_jobs") as batch:
        batch.drop_column("provider_cancel_tries")
        batch.drop_column("provider_cancel_detail")
        batch.drop_column("provider_cancel")
