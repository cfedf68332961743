"""AI jobs record whether a soundtrack was asked for (Veo 3.1 prices it differently).

Revision ID: 0002_ai_audio
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ai_audio"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rq_jobs") as batch:
        batch.add_column(sa.Column("audio", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("rq_jobs") as batch:
        batch.drop_column("audio")
