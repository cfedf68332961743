"""The one rule for storage keys, shared by every storage adapter."""

from __future__ import annotations

from src.domain.errors import ReelqueueError
from src.domain.sources import check_source, is_url

MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600  # the SigV4 limit


class InvalidStorageKey(ReelqueueError):
    """A key that is not a relative path of letters, digits, ``. _ - /`` without ``..``."""


def check_key(key: str) -> None:
    try:
        check_source("key", key)
    except ReelqueueError as exc:
        raise InvalidStorageKey(f"invalid storage key {key!r}: {exc}") from exc
    if is_url(key):
        raise InvalidStorageKey(f"invalid storage key {key!r}: a URL, not a key")


def check_expiry(expires_s: int) -> None:
    if not 1 <= expires_s <= MAX_PRESIGN_EXPIRES_S:
        raise ReelqueueError(f"presigned URL expiry must be 1-{MAX_PRESIGN_EXPIRES_S} s, got {expires_s}")
