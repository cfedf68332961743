"""Local storage's signed URLs (embedded default): GET a file, or PUT an upload.

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


@method_decorator(csrf_exempt, name="dispatch")  # the signature is the credential
class SignedFileView(View):
    http_method_names = ["get", "head", "put"]

    def get(self, request: HttpRequest, key: str) -> HttpResponse:
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
            return JsonResponse({"detail": "Content-Type must match the upload's type"}, status=400)
        with tempfile.TemporaryDirectory() as tmp:
            body = Path(tmp) / "upload"
            if not _copy_body(request, body):
                return JsonResponse({"detail": f"at most {MAX_UPLOAD_BYTES} bytes"}, status=413)
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


def _copy_body(request: HttpRequest, dest: Path) -> bool:
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
        return False
    written = 0
    with dest.open("wb") as out:
        while chunk := request.read(CHUNK_BYTES):
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                return False
            out.write(chunk)
    return True
