"""API token authentication: DRF's rules, in one query written once, against stored digests.

The database holds each token's digest, never the token (see :mod:`apps.jobs.tokens`). DRF's
``TokenAuthentication`` parses the ``Authorization: Token <token>`` header; this class overrides
its documented hook, ``authenticate_credentials``: the token is hashed and its user looked up by
the digest, in one query on every request (no cache: a deleted token or a deactivated user is
refused at once). The SQL is composed once per process from the models' metadata and run through
Django's ``RawQuerySet`` (the backend's value converters still apply): DRF's own
``Token.objects.select_related("user").get(...)`` costs about three times as much CPU.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from apps.jobs.tokens import token_digest


class OneQueryTokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <token>``: the token's digest must name a token whose user is active."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        digest = token_digest(key)
        users = list(get_user_model().objects.raw(user_by_token_sql(Token.objects.db), [digest]))
        if not users:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = users[0]
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=digest, user=user, created=user.token_created)


@functools.cache
def user_by_token_sql(alias: str) -> str:
    """``SELECT user.*, token.created FROM user JOIN token ... WHERE token.key = %s`` for database
    ``alias``; the token's ``created`` comes back as the user's ``token_created``."""
    quote = connections[alias].ops.quote_name
    user_model = get_user_model()
    user_table, token_table = quote(user_model._meta.db_table), quote(Token._meta.db_table)
    user_pk = quote(user_model._meta.pk.column)
    token_user = quote(Token._meta.get_field("user").column)
    token_key = quote(Token._meta.get_field("key").column)
    token_created = quote(Token._meta.get_field("created").column)
    return (f"SELECT u.*, t.{token_created} AS token_created FROM {user_table} u "
            f"JOIN {token_table} t ON t.{token_user} = u.{user_pk} WHERE t.{token_key} = %s")
