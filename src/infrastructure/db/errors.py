"""SQLAlchemy's errors translated into the library's own, with ``raise ... from exc``: the one
translation for every database adapter (repositories, outbox, locks, progress, the SQL queue).
Redis has its own in ``src/infrastructure/cache/errors.py``, AWS in ``src/infrastructure/sqs/client.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from src.domain.errors import ReelqueueError, ServiceUnavailable


class DuplicateRecord(ReelqueueError):
    """A row with the same key already exists (a duplicate job id, batch id or lock key)."""


@contextmanager
def translated_errors(what: str = "the database") -> Iterator[None]:
    """Connection problems become :class:`ServiceUnavailable`, key clashes :class:`DuplicateRecord`;
    anything else (a bug, such as a malformed statement) is raised as it is, with its traceback."""
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
