"""Amazon S3 storage: streaming transfers and presigned URLs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from src.domain.errors import PermanentError, ReelqueueError, ServiceUnavailable
from src.infrastructure.sqs.client import (
    CONNECTION_ERRORS,
    MAX_ATTEMPTS,
    UNAVAILABLE_CODES,
    client_config,
    error_code,
)
from src.infrastructure.storage.keys import check_expiry, check_key

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 60
MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
TRANSFER = TransferConfig(multipart_threshold=MULTIPART_CHUNK_BYTES,
                          multipart_chunksize=MULTIPART_CHUNK_BYTES)


def make_s3_client(
    *, region: str, endpoint_url: str | None = None, max_attempts: int = MAX_ATTEMPTS
) -> Any:
    config = client_config(
        region=region, max_attempts=max_attempts, read_timeout_s=READ_TIMEOUT_S, signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


class ObjectNotFound(PermanentError):
    """The key is not in the bucket."""


@contextmanager
def _s3_errors(action: str, key: str = "") -> Iterator[None]:
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise ServiceUnavailable(f"cannot reach S3 to {action}: {exc}") from exc
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise ObjectNotFound(f"{key!r} is not in storage") from exc
        if error_code(exc) in UNAVAILABLE_CODES | {"SlowDown", "503"}:
            raise ServiceUnavailable(f"S3 unavailable while trying to {action}: {exc}") from exc
        raise ReelqueueError(f"S3 failed to {action}: {exc}") from exc
    except BotoCoreError as exc:
        raise ReelqueueError(f"S3 failed to {action}: {exc}") from exc


class S3Storage:
    def __init__(self, client: Any, *, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists."""
        try:
            with _s3_errors(f"find bucket {self.bucket}"):
                self.client.head_bucket(Bucket=self.bucket)
            return
        except ObjectNotFound:
            pass
        region = self.client.meta.region_name
        where = {} if region == "us-east-1" else {"LocationConstraint": region}
        with _s3_errors(f"create bucket {self.bucket}"):
            if where:
                self.client.create_bucket(Bucket=self.bucket, CreateBucketConfiguration=where)
            else:
                self.client.create_bucket(Bucket=self.bucket)
        log.info("bucket %s created", self.bucket)

    def upload(self, key: str, path: Path, *, content_type: str) -> int:
        check_key(key)
        with _s3_errors(f"upload {key}", key):
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type},
                                    Config=TRANSFER)
        return Path(path).stat().st_size

    def download(self, key: str, dest: Path) -> int:
        check_key(key)
        with _s3_errors(f"download {key}", key):
            self.client.download_file(self.bucket, key, str(dest), Config=TRANSFER)
        return Path(dest).stat().st_size

    def exists(self, key: str) -> bool:
        check_key(key)
        try:
            with _s3_errors(f"look up {key}", key):
                self.client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return False
        return True

    def presigned_get(self, key: str, *, expires_s: int) -> str:
        return self._presign("get_object", {"Bucket": self.bucket, "Key": key}, expires_s)

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str:
        """A URL to PUT the object; the request must send the same ``Content-Type`` header."""
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        return self._presign("put_object", params, expires_s)

    def _presign(self, operation: str, params: dict[str, str], expires_s: int) -> str:
        check_key(params["Key"])
        check_expiry(expires_s)
        with _s3_errors(f"presign {params['Key']}"):
            return str(self.client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_s))
