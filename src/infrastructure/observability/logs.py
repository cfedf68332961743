"""Log output of worker processes: one JSON object per line (or plain text), never a secret.

Job context travels as ``extra`` fields (``job_id``, ``kind``, ``provider``, ``production_path``,
``attempt``, ``duration_ms``...). Before anything is written, the values of settings fields
ending in ``_api_key``, ``Authorization`` header values and presigned URLs' signatures are
replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REDACTED = "[REDACTED]"
HANDLER_NAME = "reelqueue"
MIN_SECRET_CHARS = 4  # shorter "secrets" would blank out ordinary words

_AUTHORIZATION = re.compile(
    r"""(?i)(authorization['"]?\s*[:=]\s*['"]?)((?:bearer|basic|token)\s+)?[^\s'",;}]+"""
)
_SIGNED_QUERY = re.compile(r"(?i)([?&](?:x-amz-signature|signature|x-amz-security-token)=)[^&\s'\"]+")
_CALLBACK_TOKEN = re.compile(r"(/webhooks/luma/[0-9a-fA-F]{32}/)[^/?\s'\"]+")  # per-job callback tokens

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def secrets_of(settings: DataclassInstance) -> list[str]:
    """The values of a settings object's ``*_api_key`` fields."""
    return [str(getattr(settings, f.name)) for f in fields(settings) if f.name.endswith("_api_key")]


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _AUTHORIZATION.sub(lambda m: m.group(1) + (m.group(2) or "") + REDACTED, text)
        text = _CALLBACK_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
        return _SIGNED_QUERY.sub(lambda m: m.group(1) + REDACTED, text)

    def tree(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.tree(v) for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self(str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", <extra fields>, "exc"}`` on one line."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **extra_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(self.redactor.tree(entry), ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the job fields appended; redacted too."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = extra_fields(record)
        if extra:
            text += " [" + " ".join(f"{k}={v}" for k, v in extra.items()) + "]"
        return self.redactor(text)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        return None


def configure_logging(*, log_format: str = "json", log_level: str = "INFO",
                      secrets: Iterable[str] = ()) -> None:
    """Route every logger to stderr through one formatter (entry points call this once)."""
    if log_format not in ("json", "text"):
        raise ValueError(f"log format {log_format!r}: choose json or text")
    redactor = Redactor(secrets)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter(redactor) if log_format == "json" else TextFormatter(redactor))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)  # configured twice (tests): replace, never stack
    root.addHandler(handler)
    root.setLevel(log_level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
