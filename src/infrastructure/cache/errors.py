"""Redis errors translated into the library's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from src.domain.errors import ServiceUnavailable


@contextmanager
def translated_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"Redis is unavailable: {exc}") from exc
