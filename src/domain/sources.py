"""Where a job's input comes from: a storage key or an https URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from src.domain.errors import ValidationError

MAX_KEY_CHARS = 512
MAX_URL_CHARS = 2048
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")


def is_url(value: str) -> bool:
    return "://" in value


def check_source(field: str, value: str) -> None:
    """A storage key (relative, no ``..``) or an https URL with a host name; else a field error."""
    if not value or not value.strip():
        raise ValidationError({field: "must not be empty"})
    if is_url(value):
        if len(value) > MAX_URL_CHARS:
            raise ValidationError({field: f"URL longer than {MAX_URL_CHARS} characters"})
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise ValidationError({field: "only https URLs are accepted"})
        if not parts.hostname:
            raise ValidationError({field: "the URL has no host"})
        if parts.username or parts.password:
            raise ValidationError({field: "URLs with credentials are not accepted"})
        return
    if len(value) > MAX_KEY_CHARS or not _KEY.match(value) or ".." in value.split("/"):
        raise ValidationError(
            {field: "must be an https URL or a storage key (letters, digits, . _ - /; no '..')"}
        )
