"""Fixtures of the e2e and fault suites: fake providers and a factory of whole stacks.

``make_stack(**overrides)`` builds and starts a :class:`tests.e2e.stack.Stack` on the machine's
Postgres (a fresh database per stack, dropped afterwards), the machine's Redis and the session's
moto server, with this test's fake Runway and Luma; any constructor argument of ``Stack`` may be
given to replace a default (``database_url=``/``redis_url=`` of a restartable instance,
``sqs_endpoint_url=`` of a proxy, ``workers=``, ``env=``). Every stack is closed at teardown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack, fresh_database
from tests.fakes import FakeLuma, FakeRunway
from tests.fixtures.services import PG_ADMIN_URL, unavailable


@pytest.fixture
def fake_runway() -> Iterator[FakeRunway]:
    with FakeRunway(generation_s=1.0, queue_s=0.1) as server:
        yield server


@pytest.fixture
def fake_luma() -> Iterator[FakeLuma]:
    with FakeLuma(generation_s=1.0, queue_s=0.1) as server:
        yield server


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The machine's Postgres (a server where the suite may create databases)."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    finally:
        engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture
def make_stack(
    pg_admin_url: str, redis_url: str, moto_server: str, fake_runway: FakeRunway, fake_luma: FakeLuma,
    tmp_path: Path,
) -> Iterator[Callable[..., Stack]]:
    with contextlib.ExitStack() as cleanup:
        count = 0

        def make(**overrides: Any) -> Stack:
            nonlocal count
            count += 1
            if "database_url" not in overrides:
                overrides["database_url"] = cleanup.enter_context(fresh_database(pg_admin_url))
            options: dict[str, Any] = {
                "redis_url": redis_url, "sqs_endpoint_url": moto_server, "s3_endpoint_url": moto_server,
                "runway": fake_runway, "luma": fake_luma, "workdir": tmp_path / f"stack{count}",
                **overrides,
            }
            stack = Stack(**options)
            cleanup.callback(stack.close)
            return stack.start()

        yield make
