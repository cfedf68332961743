"""Driver errors translated into the library's own, with ``raise ... from exc``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from src.domain.errors import ReelqueueError, ServiceUnavailable


class DuplicateRecord(ReelqueueError):
    """A row with the same key already exists (a duplicate job id, batch id or lock key)."""


@contextmanager
def translated_errors(what: str = "the database") -> Iterator[None]:
    """Connection problems become :class:`ServiceUnavailable`; key clashes :class:`DuplicateRecord`."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise DuplicateRecord(f"duplicate record: {exc.orig}") from exc
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise ServiceUnavailable(f"{what} is unavailable: {exc.orig}") from exc
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise ServiceUnavailable(f"{what} connection was lost: {exc.orig}") from exc
        raise
