"""Storage keys a user may name as a job's input, and where a new upload goes."""

from __future__ import annotations

import uuid
from typing import Any

from apps.jobs.serializers import UPLOAD_TYPES
from src.application.ports import Storage
from src.domain.errors import ValidationError
from src.domain.sources import check_source, is_url


def upload_prefix(user: Any) -> str:
    return f"uploads/{user.pk}/"


def new_upload_key(user: Any, content_type: str) -> str:
    """``uploads/{user}/{uuid}.{ext}``."""
    return f"{upload_prefix(user)}{uuid.uuid4().hex}.{UPLOAD_TYPES[content_type]}"


def check_keys(user: Any, storage: Storage, values: dict[str, str | None]) -> None:
    """A storage key must be one of the user's uploads (staff: any key) and must exist.

    Malformed values and URLs are left to the library's validation.
    """
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if not value or is_url(value) or not _well_formed(name, value):
            continue
        if not user.is_staff and not value.startswith(upload_prefix(user)):
            errors[name] = ["a storage key must be one of your uploads (POST /api/v1/uploads)"]
        elif not storage.exists(value):
            errors[name] = ["nothing has been uploaded at this key"]
    if errors:
        raise ValidationError(errors)


def _well_formed(name: str, value: str) -> bool:
    try:
        check_source(name, value)
    except ValidationError:
        return False
    return True
