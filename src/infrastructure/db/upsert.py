"""``INSERT ... ON CONFLICT DO UPDATE`` for the dialect at hand (SQLite and Postgres share it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    engine: sa.Engine, table: sa.Table, values: dict[str, Any], *, where: Callable[[Any], Any]
) -> Any:
    """Insert ``values``, or overwrite the row with the same key where ``where(excluded)`` holds."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values(values)
    keys = [column.name for column in table.primary_key]
    changes = {name: insert.excluded[name] for name in values if name not in keys}
    return insert.on_conflict_do_update(
        index_elements=keys, set_=changes, where=where(insert.excluded)
    )
