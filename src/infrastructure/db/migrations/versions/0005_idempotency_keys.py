"""Idempotency keys of creating requests (``rq_idempotency_keys``).

Revision ID: 0005_idempotency_keys
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_idempotency_keys"
down_revision = "0004_provider_cancel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rq_idempotency_keys",
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(32), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name="pk_rq_idempotency_keys"),
    )
    op.create_index("ix_rq_idempotency_keys_expires", "rq_idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("rq_idempotency_keys")
