"""API tokens, stored as digests: a leaked database holds no usable token.

A token is 40 random hex digits (160 bits, DRF's size), shown once when it is made. DRF's
``authtoken_token.key`` column (40 characters, the primary key) holds the first 40 hex digits
of the token's SHA-256 digest instead of the token: a random token needs no salt and no slow
hash, and 160 bits of the digest leave finding a token that matches it as hard as guessing one.
A request's token is hashed the same way and looked up by its digest (one query).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from rest_framework.authtoken.models import Token

TOKEN_BYTES = 20  # 40 hex digits, as DRF's own keys
DIGEST_CHARS = 40  # DRF's Token.key column


def token_digest(token: str) -> str:
    """What the database holds for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()[:DIGEST_CHARS]


def issue_token(user: Any) -> str:
    """A new token for ``user``, replacing any they had; only its digest is stored, so the token
    returned here is the only copy."""
    token = secrets.token_hex(TOKEN_BYTES)
    with transaction.atomic(using=Token.objects.db):
        Token.objects.filter(user=user).delete()
        Token.objects.create(user=user, key=token_digest(token))
    return token
