"""pytest-django for the API tests only: the Django settings are activated here, not suite-wide."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api import harness

harness.activate()

# The session's database fixtures (pytest-django's django_db_setup replaced by the library's migrations).
api_database_url = harness.api_database_url
storage_root = harness.storage_root
django_db_setup = harness.django_db_setup
api_db = harness.api_db


@pytest.fixture(autouse=True)
def _database(api_db: None) -> None:
    """Every API test runs against the session's database, emptied afterwards."""


@pytest.fixture
def make_user() -> Callable[..., Any]:
    from django.contrib.auth import get_user_model

    def make(username: str, *, staff: bool = False) -> Any:
        return get_user_model().objects.create_user(username=username, is_staff=staff)

    return make


@pytest.fixture
def client_for() -> Callable[[Any], Any]:
    """An APIClient sending ``Authorization: Token ...`` for ``user``: the token issued for them
    in this test (only its digest is stored), or a new one once theirs is deleted."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from apps.jobs.tokens import issue_token, token_digest

    issued: dict[Any, str] = {}

    def make(user: Any) -> APIClient:
        token = issued.get(user.pk)
        if token is None or not Token.objects.filter(key=token_digest(token)).exists():
            token = issued[user.pk] = issue_token(user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    return make


@pytest.fixture
def alice(make_user: Callable[..., Any]) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Callable[..., Any]) -> Any:
    return make_user("bob")


@pytest.fixture
def staff(make_user: Callable[..., Any]) -> Any:
    return make_user("operator", staff=True)


@pytest.fixture
def api(client_for: Callable[[Any], Any], alice: Any) -> Any:
    """Alice's client."""
    return client_for(alice)


@pytest.fixture
def library() -> Iterator[Any]:
    """The adapters the API process uses (repositories, outbox, progress, storage); rebuilt afterwards."""
    from apps.jobs import services

    yield services.adapters()
    services.reset()


@pytest.fixture(scope="session")
def live_api(django_db_setup: None, api_database_url: str, storage_root: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The API under gunicorn (production config) over real HTTP, on this session's database."""
    from tests.api.live import serve

    with serve(api_database_url, storage_root, tmp_path_factory.mktemp("live-api") / "gunicorn.log") as api:
        yield api

