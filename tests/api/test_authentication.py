"""API tokens: every request is checked against the database, with DRF's rules and answers."""

from __future__ import annotations

from typing import Any

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

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


def test_the_request_carries_the_token_and_its_user(alice):
    from rest_framework.test import APIRequestFactory

    from apps.jobs.authentication import OneQueryTokenAuthentication

    key = Token.objects.create(user=alice).key
    request: Any = APIRequestFactory().get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {key}")

    user, token = OneQueryTokenAuthentication().authenticate(request)

    assert (user, user.is_active, user.username) == (alice, True, "alice")
    assert (token.key, token.user, token.created) == (key, alice, Token.objects.get(key=key).created)
