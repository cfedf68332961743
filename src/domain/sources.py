"""Where a job's input comes from: a storage key or an https URL.

Every user-given URL is read by :func:`parse_url`, the one place that calls urllib: whatever
urllib refuses (an unclosed ``[`` host, a port out of range, a host that changes under NFKC
normalisation...) becomes a field error, never an exception of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from src.domain.errors import ValidationError

MAX_KEY_CHARS = 512
MAX_URL_CHARS = 2048
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
UNPRINTABLE = "a URL must not contain spaces, control or other unprintable characters"


@dataclass(frozen=True, kw_only=True)
class ParsedUrl:
    """A URL's parts, read once; ``port`` is ``None`` when the URL names none."""

    scheme: str
    host: str
    port: int | None
    username: str | None
    password: str | None
    path: str
    query: str


def is_url(value: str) -> bool:
    return "://" in value


def parse_url(field: str, value: str) -> ParsedUrl:
    """``value``'s parts, or a :class:`ValidationError` for ``field`` when urllib cannot read it."""
    if " " in value or not value.isprintable():  # control and format characters, lone surrogates
        raise ValidationError({field: UNPRINTABLE})
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
    except ValueError as exc:  # an unclosed "[", a netloc that changes under NFKC; UnicodeError too
        raise ValidationError({field: f"not a valid URL ({exc})"}) from None
    try:
        port = parts.port
    except ValueError:  # not a number, or out of 0-65535
        raise ValidationError({field: "the URL has an invalid port"}) from None
    return ParsedUrl(scheme=parts.scheme, host=host, port=port, username=parts.username,
                     password=parts.password, path=parts.path, query=parts.query)


def check_source(field: str, value: str) -> None:
    """A storage key (relative, no ``..``) or an https URL with a host name; else a field error."""
    if not value or not value.strip():
        raise ValidationError({field: "must not be empty"})
    if is_url(value):
        check_url(field, value)
        return
    if len(value) > MAX_KEY_CHARS or not _KEY.match(value) or ".." in value.split("/"):
        raise ValidationError(
            {field: "must be an https URL or a storage key (letters, digits, . _ - /; no '..')"}
        )


def check_url(field: str, value: str) -> ParsedUrl:
    """An https URL with a host and no credentials, at most :data:`MAX_URL_CHARS`; else a field error."""
    if len(value) > MAX_URL_CHARS:
        raise ValidationError({field: f"URL longer than {MAX_URL_CHARS} characters"})
    parts = parse_url(field, value)
    if parts.scheme != "https":
        raise ValidationError({field: "only https URLs are accepted"})
    if not parts.host:
        raise ValidationError({field: "the URL has no host"})
    if parts.username or parts.password:
        raise ValidationError({field: "URLs with credentials are not accepted"})
    return parts
