"""Alembic environment: always online, on the connection handed over by :func:`upgrade`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alembic import context

from src.infrastructure.db.migrations import VERSION_TABLE
from src.infrastructure.db.tables import metadata

connection = context.config.attributes["connection"]


def _ours(name: str | None, type_: str, _parents: Mapping[Any, str | None]) -> bool:
    """Autogenerate looks at our tables only: Django keeps its own in the same database."""
    return type_ != "table" or name in metadata.tables


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=_ours,
)
with context.begin_transaction():
    context.run_migrations()
