"""Log formatting for the API process and gunicorn: the library's formatters, redacting secrets
(API keys, the Django secret key, Authorization headers, presigned signatures, callback tokens)."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from src.config import Settings
from src.infrastructure.observability.logs import JsonFormatter, Redactor, TextFormatter, secrets_of


def redactor() -> Redactor:
    from django.conf import settings

    return Redactor([*secrets_of(settings.REELQUEUE), settings.SECRET_KEY])


def formatter() -> logging.Formatter:
    """Used by Django's LOGGING (``"()"``)."""
    from django.conf import settings

    if settings.REELQUEUE.log_format == "text":
        return TextFormatter(redactor())
    return JsonFormatter(redactor())


class RedactingGunicornLogger(Logger):
    """gunicorn's logger, whose access lines never carry callback tokens or signatures."""

    _redact = Redactor(secrets_of(Settings.from_env()))

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: self._redact(value) if isinstance(value, str) else value
                for key, value in atoms.items()}
