"""The library's errors as HTTP answers, so views stay thin and no error becomes a 500."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from src.domain.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    IllegalTransition,
    JobNotFound,
    ServiceUnavailable,
    ValidationError,
)

log = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ValidationError):
        return Response(exc.fields, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, JobNotFound):
        return Response({"detail": "No such job."}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, IllegalTransition):
        return Response({"detail": f"A {exc.current} job cannot become {exc.target}."},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ConcurrentUpdate):
        return Response({"detail": "The job changed meanwhile; read it again and retry."},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IdempotencyKeyReused):
        return Response({"detail": f"Idempotency-Key conflict: {exc.conflict}. Use a new key for a "
                                   "different request."}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, IdempotencyKeyTaken):
        return Response({"detail": "A request with this Idempotency-Key is still in progress; retry "
                                   "shortly to get its answer."}, status=status.HTTP_409_CONFLICT,
                        headers={"Retry-After": "1"})
    if isinstance(exc, ServiceUnavailable):
        log.warning("service unavailable: %s", exc)
        return Response({"detail": "A backing service is unavailable; try again shortly."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
    return drf_exception_handler(exc, context)
