"""The OpenAPI schema's additions: paths served by plain Django views, which drf-spectacular
does not see on its own (the signed file URLs of local storage)."""

from __future__ import annotations

from typing import Any

from apps.jobs.files import MAX_UPLOAD_BYTES
from apps.jobs.serializers import UPLOAD_TYPES

FILES_PATH = "/api/v1/files/{key}"
_ERRORS = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
           "description": "the offending header -> its messages"}
_STORED = {"type": "object", "properties": {"key": {"type": "string"}, "size_bytes": {"type": "integer"}}}


def add_signed_files(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A POSTPROCESSING_HOOK: documents ``/api/v1/files/{key}`` (GET, HEAD, PUT)."""
    result.setdefault("paths", {})[FILES_PATH] = {
        "get": _download("files_get", "Download a file through a signed URL (local storage)"),
        "head": _download("files_head", "A file's headers through a signed URL (local storage)"),
        "put": _upload(),
    }
    return result


def _parameters() -> list[dict[str, Any]]:
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": True, "description": description, "schema": schema}

    return [
        {"name": "key", "in": "path", "required": True, "description": "the storage key",
         "schema": {"type": "string"}},
        query("expires", "when the URL expires (Unix seconds)", {"type": "integer"}),
        query("signature", "HMAC-SHA256 of method, key and expiry", {"type": "string"}),
    ]


def _download(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "operationId": operation_id, "summary": summary, "tags": ["files"], "security": [{}],
        "parameters": _parameters(),
        "responses": {"200": {"description": "the file"},
                      "404": {"description": "no such file, or a wrong or expired signature"}},
    }


def _upload() -> dict[str, Any]:
    errors = {"application/json": {"schema": _ERRORS}}
    return {
        "operationId": "files_put", "tags": ["files"], "security": [{}],
        "summary": "Upload a file through the signed URL of POST /api/v1/uploads (local storage)",
        "parameters": [*_parameters(),
                       {"name": "method", "in": "query", "required": True, "schema": {"enum": ["PUT"]}}],
        "requestBody": {"required": True, "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in UPLOAD_TYPES}},
        "responses": {
            "201": {"description": "stored whole", "content": {"application/json": {"schema": _STORED}}},
            "400": {"description": "wrong Content-Type, an empty body, or a body shorter than its "
                                   "Content-Length (nothing stored)", "content": errors},
            "404": {"description": "a wrong or expired signature"},
            "411": {"description": "no Content-Length (chunked uploads are refused)", "content": errors},
            "413": {"description": f"larger than {MAX_UPLOAD_BYTES} bytes", "content": errors},
        },
    }
