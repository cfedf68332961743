"""The schema, defined once. Alembic migrations create it; Django maps it (``managed = False``)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(32)  # uuid4 hex

jobs = Table(
    "rq_jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(8), nullable=False),  # video | ai
    Column("owner_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("outputs", JSON, nullable=False, default=list),
    Column("error", Text, nullable=True),
    Column("stage", String(32), nullable=True),
    Column("percent", Float, nullable=False, default=0.0),
    Column("batch_id", ID, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # video jobs
    Column("source", Text, nullable=True),
    Column("preset", String(16), nullable=True),
    Column("poster_offset_s", Float, nullable=True),
    # AI jobs
    Column("model", String(32), nullable=True),
    Column("provider", String(32), nullable=True),
    Column("production_path", String(16), nullable=True),
    Column("mode", String(4), nullable=True),
    Column("prompt", Text, nullable=True),
    Column("input_image", Text, nullable=True),
    Column("duration_s", Integer, nullable=True),
    Column("ratio", String(16), nullable=True),
    Column("seed", BigInteger, nullable=True),
    Column("num_frames", Integer, nullable=True),
    Column("audio", Boolean, nullable=False, server_default=false()),
    Column("provider_task_id", String(128), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("callback_token", String(64), nullable=True),
    Column("provider_task_history", Text, nullable=True),  # space-separated task ids, oldest first
    Column("quota_wait_since", DateTime(timezone=True), nullable=True),
    # stopping a cancelled AI job's paid task at its provider (see ProviderCancel)
    Column("provider_cancel", String(16), nullable=True),
    Column("provider_cancel_detail", Text, nullable=True),
    Column("provider_cancel_tries", Integer, nullable=True),
    Index("ix_rq_jobs_owner_created", "owner_id", "created_at"),
    Index("ix_rq_jobs_status", "status"),
    Index("ix_rq_jobs_batch", "batch_id"),
)

batches = Table(
    "rq_batches",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),
)

outbox = Table(
    "rq_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("queue", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_rq_outbox_pending", "sent_at", "created_at"),
)

# The SQL lease queue (embedded default and small deployments).
queue_messages = Table(
    "rq_queue_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("queue", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("visible_at", DateTime(timezone=True), nullable=False),
    Column("receive_count", Integer, nullable=False, default=0),
    Column("lease_token", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("dead_reason", Text, nullable=True),  # set: the message is in the dead-letter queue
    Index("ix_rq_queue_messages_ready", "queue", "dead_reason", "visible_at"),
)

# Idempotency locks and live progress when there is no Redis (embedded default).
locks = Table(
    "rq_locks",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

progress = Table(
    "rq_progress",
    metadata,
    Column("job_id", ID, primary_key=True),
    Column("stage", String(32), nullable=False),
    Column("percent", Float, nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Idempotency keys of creating requests: the answer each (owner, key) got, until it expires.
idempotency_keys = Table(
    "rq_idempotency_keys",
    metadata,
    Column("owner_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("endpoint", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("resource_id", ID, nullable=True),  # the job or batch created (re-read on replay)
    Column("body", JSON, nullable=True),  # the answer itself, when nothing else was created
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_rq_idempotency_keys_expires", "expires_at"),
)
