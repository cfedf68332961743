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

    from apps.jobs.tokens import issue_token

    user = get_user_model().objects.create_user(username="fuzzer")
    return issue_token(user)


def load_schema() -> Any:
    """The schema the API serves (``/api/schema/`` needs a token, so it is generated here, as that
    view does), with calls going through the API's WSGI app."""
    import json

    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    from apps.reelqueue_api.wsgi import application

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = application
    return loaded


schema = load_schema()
# Uploads may be videos too (PUT /api/v1/files/{key}): sent as the raw bytes they are, like images.
schemathesis.serializer.alias(["video/mp4", "video/quicktime", "video/webm"], "application/octet-stream")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
