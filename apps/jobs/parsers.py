"""Request bodies: JSON only, read whole and checked before any serializer sees them.

A body is refused with a clear error (never a 500) when it is larger than
:data:`MAX_JSON_BODY_BYTES` (413), declares a charset other than UTF-8, is not UTF-8 or not JSON,
is nested deeper than :data:`MAX_JSON_DEPTH`, holds a number that is not finite (``NaN``,
``Infinity``, ``1e400``, an integer of more than :data:`MAX_INT_DIGITS` digits), or a string with a
lone surrogate (``"\\ud800"``, which no database or answer can encode). The last three name the
field, as ``items[3].prompt`` (a too deep value: its top-level field).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser

MAX_JSON_BODY_BYTES = 2 * 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 40  # far above any field's range (seeds: 10 digits)
NON_FIELD = "non_field_errors"
UTF8_NAMES = frozenset({"utf-8", "utf8"})


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is larger than {MAX_JSON_BODY_BYTES} bytes."
    default_code = "body_too_large"


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        _check_charset(media_type or "")
        raw = stream.read(MAX_JSON_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_JSON_BODY_BYTES:
            raise BodyTooLarge()
        data = _decode(raw)
        _check_values(data)
        return data


def _check_charset(media_type: str) -> None:
    for parameter in media_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in UTF8_NAMES:
            raise ParseError("JSON bodies must be UTF-8 (RFC 8259): drop the charset or send charset=utf-8.")


def _decode(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"The body is not UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text, parse_int=_number)  # NaN, Infinity and 1e400 load as floats
    except RecursionError:
        raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:  # json.JSONDecodeError, and a number too long to convert
        raise ParseError(f"JSON parse error: {exc}") from None


def _number(text: str) -> int | float:
    """An integer as Python reads it, or ``inf`` for one too long to be any field's value (which
    :func:`_check_values` then refuses, naming the field, as it does ``1e400`` and ``NaN``)."""
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else math.inf


def _check_values(data: Any) -> None:
    """Depth, finite numbers, and strings (keys too) UTF-8 can encode: one pass, no recursion."""
    for path, depth, value in _walk(data):
        if depth > MAX_JSON_DEPTH and isinstance(value, dict | list):
            field = re.split(r"[.\[]", path, maxsplit=1)[0]  # the top-level field it is under
            message = f"nested deeper than {MAX_JSON_DEPTH} levels"
            raise ParseError({field: [message]} if field else f"JSON {message}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParseError({path or NON_FIELD: ["must be a finite number within range"]})
        if isinstance(value, str) and not _encodable(value):
            raise ParseError({path or NON_FIELD: ["a lone surrogate (\\ud800-\\udfff) is not text"]})


def _walk(data: Any) -> Iterator[tuple[str, int, Any]]:
    """Every value (and key) with its path and nesting level: the body itself is level 1."""
    pending: list[tuple[str, int, Any]] = [("", 1, data)]
    while pending:
        path, depth, value = pending.pop()
        yield path, depth, value
        if isinstance(value, dict):
            for key, item in value.items():
                yield path, depth, key
                pending.append((f"{path}.{key}" if path else key, depth + 1, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", depth + 1, item) for i, item in enumerate(value))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
