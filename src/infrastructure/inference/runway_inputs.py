"""The ``promptImage`` Runway can actually use, and how an image gets there.

Runway fetches a URL itself, HEAD first: it must be https, name a host (not an IP address),
answer 2xx without a redirect, with a ``Content-Type`` of an image type (never
``application/octet-stream``) and a ``Content-Length`` (docs.dev.runwayml.com/assets/inputs).
An S3 URL presigned for GET answers 403 to HEAD, and our own signed local URLs are bound to
GET too, so an image in our storage never goes as a URL: it goes inline as a base64 data URI
while that URI is under Runway's 5 MiB, and as an ephemeral upload (``runway://``) above.
A user's https URL goes on as it is only when our own HEAD, through the URL guard, sees what
Runway needs; otherwise it is downloaded through the guard and sent like a stored image.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from src.application.ports import Storage
from src.domain.errors import PermanentError, TransientError
from src.domain.sources import is_url
from src.infrastructure.media.fetcher import Probe

log = logging.getLogger(__name__)

DATA_URI_MAX_CHARS = 5 * 1024 * 1024  # "under 5MB (1024 x 1024 x 5 bytes)", the encoded URI
URL_IMAGE_MAX_BYTES = 16 * 1024 * 1024  # an image Runway fetches from a URL
UPLOAD_MAX_BYTES = 200 * 1024 * 1024  # an ephemeral upload
URL_MAX_CHARS = 2048
URL_CONTENT_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

Upload = Callable[[str, bytes, str], str]
"""(file name, bytes, content type) -> the ``runway://`` URI of an ephemeral upload."""


class UrlProber(Protocol):
    """The guarded URL fetcher (:class:`~src.infrastructure.media.fetcher.HttpUrlFetcher`)."""

    def probe(self, url: str) -> Probe: ...

    def fetch(self, url: str, dest: Path, *, max_bytes: int) -> int: ...


def image_type(data: bytes) -> str | None:
    """The media type of a JPEG, PNG or WebP image, from its first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def unfit_for_runway(url: str, probe: Probe) -> str | None:
    """Why Runway would refuse to fetch ``url`` given what a HEAD of it saw; None when it would not."""
    if len(url) > URL_MAX_CHARS:
        return f"the URL is longer than {URL_MAX_CHARS} characters"
    if urlsplit(url).scheme != "https":
        return "the URL is not https"
    if not 200 <= probe.status < 300:
        return f"HEAD answered {probe.status}"
    content_type = probe.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in URL_CONTENT_TYPES:
        return f"Content-Type {content_type or 'missing'} is not JPEG, PNG or WebP"
    length = probe.headers.get("content-length", "")
    if not length.isdigit():
        return "no Content-Length"
    if int(length) > URL_IMAGE_MAX_BYTES:
        return f"the image is over {URL_IMAGE_MAX_BYTES} bytes"
    return None


class PromptImages:
    """Turns a job's input image (a storage key or a user's https URL) into a ``promptImage``."""

    def __init__(self, *, storage: Storage | None, fetcher: UrlProber | None, upload: Upload) -> None:
        self.storage = storage
        self.fetcher = fetcher
        self.upload = upload

    def prompt_image(self, source: str) -> str:
        if is_url(source):
            return self._from_url(source)
        if self.storage is None:
            raise PermanentError("no storage is configured to read the input image from")
        storage = self.storage
        return self._copied(lambda dest: storage.download(source, dest))

    def inline_or_upload(self, data: bytes) -> str:
        content_type = image_type(data)
        if content_type is None:
            raise PermanentError("the input image must be a JPEG, PNG or WebP image")
        uri = data_uri(content_type, data)
        if len(uri) < DATA_URI_MAX_CHARS:
            return uri
        if len(data) > UPLOAD_MAX_BYTES:
            raise PermanentError(f"the input image is over Runway's {UPLOAD_MAX_BYTES} byte limit")
        return self.upload(f"input.{EXTENSIONS[content_type]}", data, content_type)

    def _from_url(self, url: str) -> str:
        if self.fetcher is None:
            raise PermanentError("no URL fetcher is configured to check the input image URL")
        fetcher = self.fetcher
        reason = self._unfit(url)
        if reason is None:
            return url
        log.info("runway could not fetch the input image from %s (%s); sending its bytes",
                 urlsplit(url).hostname, reason)
        return self._copied(lambda dest: fetcher.fetch(url, dest, max_bytes=UPLOAD_MAX_BYTES))

    def _unfit(self, url: str) -> str | None:
        assert self.fetcher is not None
        try:
            probe = self.fetcher.probe(url)
        except TransientError as exc:  # the download below decides whether it is worth a retry
            return f"HEAD failed: {exc}"
        return unfit_for_runway(url, probe)

    def _copied(self, copy: Callable[[Path], int]) -> str:
        with tempfile.TemporaryDirectory(prefix="rq-runway-") as tmp:
            path = Path(tmp) / "image"
            copy(path)
            data = path.read_bytes()
        return self.inline_or_upload(data)
