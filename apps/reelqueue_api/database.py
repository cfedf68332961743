"""Django's ``DATABASES`` entry derived from the library's SQLAlchemy URL: one database, one setting."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from sqlalchemy.engine import make_url

SQLITE_TIMEOUT_S = 30

_ENGINES = {
    "sqlite": "django.db.backends.sqlite3",
    "postgresql": "django.db.backends.postgresql",
}


def django_database(url: str) -> dict[str, Any]:
    """``sqlite:///var/x.sqlite3`` or ``postgresql+psycopg2://user:pw@host:5432/db`` as a Django entry."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ENGINES:
        raise ImproperlyConfigured(f"REELQUEUE_DATABASE_URL: unsupported database {backend!r}")
    if backend == "sqlite":
        name = parsed.database or ""
        if not name or name == ":memory:":
            raise ImproperlyConfigured("REELQUEUE_DATABASE_URL: the API needs a SQLite file, not memory")
        return {
            "ENGINE": _ENGINES[backend], "NAME": name,
            "OPTIONS": {"timeout": SQLITE_TIMEOUT_S, "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;"},
        }
    return {
        "ENGINE": _ENGINES[backend], "NAME": parsed.database or "",
        "USER": parsed.username or "", "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "", "PORT": str(parsed.port or ""),
        "OPTIONS": dict(parsed.query), "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True,
    }
