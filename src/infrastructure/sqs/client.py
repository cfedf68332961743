"""The boto3 SQS client, and the translation of botocore errors into reelqueue errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from src.domain.errors import ReelqueueError, ServiceUnavailable

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30  # longer than the longest long poll (20 s)
MAX_ATTEMPTS = 5
CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
UNAVAILABLE_CODES = {"ServiceUnavailable", "InternalError", "RequestThrottled", "ThrottlingException"}


def make_sqs_client(
    *, region: str, endpoint_url: str | None = None, max_attempts: int = MAX_ATTEMPTS
) -> Any:
    config = client_config(region=region, max_attempts=max_attempts, read_timeout_s=READ_TIMEOUT_S)
    return boto3.client("sqs", endpoint_url=endpoint_url, config=config)


def client_config(*, region: str, max_attempts: int, read_timeout_s: float, **extra: Any) -> Config:
    """Connect timeout and standard retries shared by every AWS client of the library."""
    return Config(
        region_name=region,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        **extra,
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Re-raise botocore errors as :class:`ServiceUnavailable` or :class:`ReelqueueError`."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise ServiceUnavailable(f"cannot reach the service to {action}: {exc}") from exc
    except ClientError as exc:
        if error_code(exc) in UNAVAILABLE_CODES:
            raise ServiceUnavailable(f"service unavailable while trying to {action}: {exc}") from exc
        raise ReelqueueError(f"failed to {action}: {exc}") from exc
    except BotoCoreError as exc:
        raise ReelqueueError(f"failed to {action}: {exc}") from exc
