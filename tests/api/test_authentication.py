"""API tokens: every request is checked against the database, with DRF's rules and answers; the
database holds digests, never a usable token."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.jobs.tokens import issue_token, token_digest

T2V = {"model": "gen4.5", "mode": "t2v", "prompt": "a red fox in snow", "duration_s": 5}


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_valid_token_acts_as_its_user(alice, client_for):
    response = client_for(alice).post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 202
    listed = client_for(alice).get("/api/v1/jobs").json()["results"]
    assert response.json()["id"] in [job["id"] for job in listed]


def test_an_unknown_token_is_refused_as_drf_refuses_it(alice):
    response = with_token("0" * 40).post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert response["WWW-Authenticate"] == "Token"


def test_the_token_of_an_inactive_user_is_refused(alice, client_for):
    client = client_for(alice)
    alice.is_active = False
    alice.save()

    response = client.post("/api/v1/ai-jobs", T2V, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


def test_a_deleted_token_is_refused_at_once(alice, client_for):
    client = client_for(alice)
    assert client.get("/api/v1/jobs").status_code == 200

    Token.objects.filter(user=alice).delete()

    assert client.get("/api/v1/jobs").status_code == 401


def test_the_request_carries_the_stored_token_and_its_user_from_one_query(alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIRequestFactory

    from apps.jobs.authentication import OneQueryTokenAuthentication

    key = issue_token(alice)
    request: Any = APIRequestFactory().get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {key}")

    with CaptureQueriesContext(connection) as queries:
        user, token = OneQueryTokenAuthentication().authenticate(request)
        seen = (user, user.is_active, user.username, token.key, token.user, token.created)

    stored = Token.objects.get(user=alice)
    assert seen == (alice, True, "alice", token_digest(key), alice, stored.created)
    assert len(queries) == 1


def test_the_database_holds_no_usable_token(alice, bob, client_for):
    from django.db import connection

    keys = {issue_token(alice), issue_token(bob)}
    with connection.cursor() as cursor:  # what a dump of the token table shows
        cursor.execute(f"SELECT * FROM {Token._meta.db_table}")
        dumped = {str(value) for row in cursor.fetchall() for value in row}

    assert not keys & dumped
    assert not any(key in value for key in keys for value in dumped)
    for value in dumped:
        assert with_token(value).get("/api/v1/jobs").status_code == 401
    for key in keys:
        assert with_token(key).get("/api/v1/jobs").status_code == 200


def test_the_migration_hashes_existing_tokens_in_place_and_they_keep_working(alice, bob):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes("jobs")
    executor.migrate([("jobs", "0001_initial")])
    old_keys = {alice.pk: Token.objects.create(user=alice).key, bob.pk: Token.objects.create(user=bob).key}
    assert with_token(old_keys[alice.pk]).get("/api/v1/jobs").status_code == 401  # before: not a digest

    executor = MigrationExecutor(connection)
    executor.migrate(leaves)

    stored = dict(Token.objects.values_list("user_id", "key"))
    assert stored == {pk: token_digest(key) for pk, key in old_keys.items()}
    for key in old_keys.values():
        assert with_token(key).get("/api/v1/jobs").status_code == 200


@pytest.mark.parametrize("key", ["x" * 500, "a\x00b", "'OR'1'='1", "%s", "\u00e9t\u00e9"])
def test_any_token_text_is_refused_with_401_and_never_reaches_the_database_as_is(alice, key):
    response = with_token(key).get("/api/v1/jobs")

    assert response.status_code == 401
    assert response.json()["detail"].startswith("Invalid token")  # DRF's words for a bad header too
