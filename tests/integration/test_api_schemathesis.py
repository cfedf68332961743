"""Property-based requests from the OpenAPI schema, through the WSGI app: no input may give a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.api import harness

harness.activate()

api_database_url = harness.api_database_url
storage_root = harness.storage_root
django_db_setup = harness.django_db_setup
api_db = harness.api_db

MAX_EXAMPLES = 25


@pytest.fixture
def token(api_db: None) -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username="fuzzer")
    return str(Token.objects.create(user=user).key)


def load_schema() -> Any:
    """The schema the API serves, read through its WSGI app (serving it needs no database)."""
    from apps.reelqueue_api.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


schema = load_schema()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
