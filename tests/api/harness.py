"""The Django side of the tests: activate the API's settings and give it a real jobs database.

Only ``tests/api`` (its conftest) and the API's schemathesis test import this module; the rest of
the suite never loads Django. The jobs tables come from the library's migrations (``upgrade``),
Django's own tables from Django's migrations, in the same database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.services import services_required

SETTINGS_MODULE = "apps.reelqueue_api.settings"
PUBLIC_HOSTS = {"media.example.com": ["93.184.216.34"], "internal.example.com": ["10.1.2.3"]}
JOB_TABLES = ("rq_idempotency_keys", "rq_outbox", "rq_queue_messages", "rq_progress", "rq_locks",
              "rq_batches", "rq_jobs")


def activate() -> None:
    """Load the API's Django settings in this test process (idempotent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    os.environ.setdefault("REELQUEUE_SECRET_KEY", "tests-only-secret-key")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def fake_dns(host: str, port: int) -> Sequence[str]:
    """A resolver with a public and an internal name; every other name does not resolve."""
    from src.infrastructure.net import UnresolvableHost

    if host not in PUBLIC_HOSTS:
        raise UnresolvableHost(f"{host} could not be resolved (test DNS)")
    return PUBLIC_HOSTS[host]


def url_guard(field: str, url: str) -> None:
    """The real guard (src.infrastructure.net) with a test resolver instead of the network's."""
    from src.infrastructure.net import UrlPolicy, check_public_url

    check_public_url(field, url, policy=UrlPolicy.build(resolver=fake_dns))


def use_database(url: str) -> None:
    """Point Django's default connection at ``url`` (before any test uses it)."""
    from django.conf import settings
    from django.db import connections

    from apps.reelqueue_api.database import django_database

    connections.close_all()
    entry = settings.DATABASES["default"]
    entry.clear()
    entry.update(django_database(url))
    connections.__dict__.pop("settings", None)
    try:
        del connections["default"]
    except AttributeError:
        pass


def clear_job_tables(url: str) -> None:
    import sqlalchemy as sa

    from src.infrastructure.db.engine import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        for table in JOB_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()


# --- fixtures (tests/api/conftest.py and the schemathesis test import them) ----------------------


@pytest.fixture(scope="session")
def api_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Postgres in CI (REQUIRE_SERVICES=1, or REELQUEUE_TEST_API_DB=postgres); else a SQLite file."""
    if services_required() or os.environ.get("REELQUEUE_TEST_API_DB") == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path_factory.mktemp('api-db') / 'reelqueue.sqlite3'}"


@pytest.fixture(scope="session")
def storage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-storage")


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any, api_database_url: str, storage_root: Path) -> Iterator[None]:
    """One database for the session: the library's migrations, then Django's; the API uses it."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    from apps.jobs import services
    from src.infrastructure.db.migrations import upgrade

    library = replace(
        settings.REELQUEUE, database_url=api_database_url, queue_backend="sql", storage_backend="local",
        storage_root=str(storage_root), redis_url="", public_base_url="http://testserver",
    )
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user_posts": "100000/minute"}}
    overrides = override_settings(REELQUEUE=library, REELQUEUE_URL_GUARD="tests.api.harness.url_guard",
                                  REST_FRAMEWORK=rest)
    overrides.enable()
    use_database(api_database_url)
    with django_db_blocker.unblock():
        upgrade(api_database_url)
        call_command("migrate", verbosity=0)
    yield
    services.reset()
    overrides.disable()


@pytest.fixture
def api_db(transactional_db: None, api_database_url: str) -> Iterator[None]:
    """Committed writes (the library writes through its own connections), emptied after each test."""
    from django.core.cache import cache

    cache.clear()
    yield
    clear_job_tables(api_database_url)
