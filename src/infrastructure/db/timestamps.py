"""Datetimes go in as UTC and come out timezone-aware UTC, on SQLite as on Postgres."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def utc(value: datetime) -> datetime:
    """UTC, so SQLite (which drops the offset) stores and compares the same instant."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
    return value.astimezone(timezone.utc)


def to_db(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


@overload
def from_db(value: datetime) -> datetime: ...


@overload
def from_db(value: None) -> None: ...


def from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite: stored as UTC without an offset
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
