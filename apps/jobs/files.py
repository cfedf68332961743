"""Local storage's signed URLs (embedded default): GET a file, or PUT an upload.

An upload is stored whole or not at all: it must declare its ``Content-Length`` (411 without,
413 over :data:`MAX_UPLOAD_BYTES`), and a body that ends before that length is not stored (400).

Only served when the storage can check its own signatures (``LocalStorage.verify``); with S3
the presigned URLs point at S3 and this view answers 404.
"""

from __future__ import annotations

import mimetypes
import tempfile
from pathlib import Path
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.jobs import services
from apps.jobs.serializers import UPLOAD_TYPES

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
MAX_LENGTH_DIGITS = 12


@method_decorator(csrf_exempt, name="dispatch")  # the signature is the credential
class SignedFileView(View):
    http_method_names = ["get", "head", "put"]

    def get(self, request: HttpRequest, key: str) -> FileResponse:
        storage = self._storage(request, key, "GET")
        path = storage.path(key)
        if not path.is_file():
            raise Http404("no such file")
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        return FileResponse(path.open("rb"), content_type=content_type)

    def put(self, request: HttpRequest, key: str) -> HttpResponse:
        storage = self._storage(request, key, "PUT")
        content_type = request.headers.get("Content-Type", "")
        if UPLOAD_TYPES.get(content_type) != key.rsplit(".", 1)[-1]:
            return refused(400, "Content-Type", "must be the upload's type, as in its headers")
        length = declared_length(request)
        if isinstance(length, HttpResponse):
            return length
        with tempfile.TemporaryDirectory() as tmp:
            body = Path(tmp) / "upload"
            received = _copy_body(request, body, length)
            if received < length:
                return refused(400, "Content-Length", f"the body ended after {received} of {length} "
                                                      "bytes; nothing was stored")
            size = storage.upload(key, body, content_type=content_type)
        return JsonResponse({"key": key, "size_bytes": size}, status=201)

    @staticmethod
    def _storage(request: HttpRequest, key: str, method: str) -> Any:
        adapters = services.adapters()
        storage = adapters.storage
        verify = getattr(storage, "verify", None)
        expires, signature = request.GET.get("expires", ""), request.GET.get("signature", "")
        if verify is None or not verify(key, expires, signature, adapters.clock.now(), method=method):
            raise Http404("no such file")  # a bad signature reveals nothing
        return storage


def declared_length(request: HttpRequest) -> int | HttpResponse:
    """The body's length from ``Content-Length``, or the answer refusing it: an upload is stored
    whole or not at all, so its length must be known before the first byte is read."""
    length = request.headers.get("Content-Length")
    if length is None or "Transfer-Encoding" in request.headers:
        return refused(411, "Content-Length", "required: send the file with its length (no chunked "
                                              "transfer encoding)")
    if not length.isascii() or not length.isdigit() or len(length) > MAX_LENGTH_DIGITS:
        return refused(400, "Content-Length", "must be a number of bytes")
    if int(length) > MAX_UPLOAD_BYTES:
        return refused(413, "Content-Length", f"at most {MAX_UPLOAD_BYTES} bytes")
    if int(length) == 0:
        return refused(400, "Content-Length", "the file is empty")
    return int(length)


def refused(status: int, header: str, message: str) -> JsonResponse:
    """A refused upload, in the API's error shape: the offending header -> its messages."""
    return JsonResponse({header: [message]}, status=status)


def _copy_body(request: HttpRequest, dest: Path, length: int) -> int:
    """Copies at most ``length`` bytes of the body to ``dest``; returns how many arrived."""
    written = 0
    with dest.open("wb") as out:
        while written < length and (chunk := request.read(min(CHUNK_BYTES, length - written))):
            written += len(chunk)
            out.write(chunk)
    return written
