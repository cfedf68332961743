"""A fake Runway API (version 2024-11-06) that follows the documented task lifecycle and inputs.

``POST /v1/image_to_video`` and ``/v1/text_to_video`` create a task; ``GET /v1/tasks/{id}``
reports ``THROTTLED`` -> ``PENDING`` -> ``RUNNING`` (with ``progress`` 0-1) -> ``SUCCEEDED``
(``output``: URLs served by this server) or ``FAILED`` (``failure``/``failureCode``:
``SAFETY.INPUT.TEXT`` when the prompt holds an unsafe word, or any documented code queued with
:meth:`FakeApiServer.fail_next_tasks`). ``DELETE /v1/tasks/{id}`` answers
204 and cancels a pending, throttled or running task or deletes a finished one; either way the
task cannot be fetched again (404), as the official SDK documents (``runwayml/sdk-python``,
``src/runwayml/resources/tasks.py``, ``TasksResource.delete``); an unknown id is 404. Each DELETE
is recorded (:meth:`delete_count`). :meth:`cancel_elsewhere` plays a task cancelled outside this
API (the documented ``CANCELLED`` status), which stays visible.
:meth:`FakeRunway.use_up_daily_quota` makes the next creates answer 429 as the rolling 24-hour
cap of a model does (nothing created).

A create is validated per model as the official SDK's request types and the docs describe
(fields each model takes and requires, ratios, durations, the 1000 UTF-16 code unit prompt),
and its ``promptImage`` as Runway fetches it (docs.dev.runwayml.com/assets/inputs): a URL is
fetched with HEAD first (https, a host name, 2xx without redirect, an image Content-Type and a
Content-Length, at most 16 MB) and then GET; a data URI is decoded and size-checked; a
``runway://`` URI must be one this server issued through ``POST /v1/uploads`` and whose file
was then posted to the upload URL. Host names resolve through ``resolver`` and TLS trusts
``ca_file`` when given (tests use ``*.test`` names on 127.0.0.1 with their own certificate).
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import http.client
import ipaddress
import secrets
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.server import Answer, FakeApiServer, Task

VERSION = "2024-11-06"
SAFETY_FAILURE = "SAFETY.INPUT.TEXT"
FAILURES = {  # the documented failure codes (docs.dev.runwayml.com, "Task failures") and a text
    "SAFETY.INPUT.TEXT": "The prompt was flagged by content moderation.",
    "SAFETY.INPUT.IMAGE": "The input image was flagged by content moderation.",
    "SAFETY.OUTPUT.VIDEO": "The output was flagged by content moderation.",
    "INTERNAL.BAD_OUTPUT.CODE01": "The generation was rejected for quality reasons.",
    "INPUT_PREPROCESSING.SAFETY.TEXT": "The prompt text was rejected by content moderation.",
    "INPUT_PREPROCESSING.INTERNAL": "There was a problem performing content moderation.",
    "ASSET.INVALID": "An input asset was invalid.",
    "INTERNAL": "An unexpected error occurred.",
}
QUOTA_ERROR = "You have reached the daily limit of generations for this model."
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")

IMAGE_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
DATA_URI_MAX_CHARS = 5 * 1024 * 1024  # "under 5MB (1024 x 1024 x 5 bytes)", the encoded URI
URL_IMAGE_MAX_BYTES = 16 * 1024 * 1024
UPLOAD_MAX_BYTES = 200 * 1024 * 1024
URL_MAX_CHARS = 2048
PROMPT_MAX_UNITS = 1000
MAX_SEED = 4_294_967_295
UPLOAD_PATH = "/upload-storage/"
USER_AGENT = "RunwayML API/fake"

GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
GEN45_T2V_RATIOS = ("1280:720", "720:1280")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
GEN_DURATIONS = tuple(range(2, 11))

Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class Rules:
    """One model on one endpoint: the fields it requires and takes, its ratios and durations."""

    required: frozenset[str]
    optional: frozenset[str]
    ratios: tuple[str, ...]
    durations: tuple[int, ...]


def _rules(required: str, optional: str, ratios: tuple[str, ...], durations: tuple[int, ...]) -> Rules:
    return Rules(frozenset(required.split()), frozenset(optional.split()), ratios, durations)


_VEO31_I2V = _rules("model promptImage ratio", "audio duration negativePrompt promptText",
                    VEO_RATIOS, (4, 6, 8))
_VEO31_T2V = _rules("model promptText ratio", "audio duration negativePrompt", VEO_RATIOS, (4, 6, 8))
I2V_RULES = {
    "gen4_turbo": _rules("model promptImage ratio", "promptText duration seed contentModeration",
                         GEN4_RATIOS, GEN_DURATIONS),
    "gen4.5": _rules("model promptImage promptText ratio duration", "seed contentModeration",
                     GEN4_RATIOS, GEN_DURATIONS),
    "veo3.1": _VEO31_I2V,
    "veo3.1_fast": _VEO31_I2V,
    "veo3": _rules("model promptImage ratio duration", "negativePrompt promptText", VEO_RATIOS, (8,)),
}
T2V_RULES = {
    "gen4.5": _rules("model promptText ratio duration", "seed contentModeration",
                     GEN45_T2V_RATIOS, GEN_DURATIONS),
    "veo3.1": _VEO31_T2V,
    "veo3.1_fast": _VEO31_T2V,
    "veo3": _rules("model promptText ratio duration", "negativePrompt", VEO_RATIOS, (8,)),
}
I2V_MODELS = tuple(I2V_RULES)
T2V_MODELS = tuple(T2V_RULES)


@dataclass
class Upload:
    """An ephemeral upload: issued by ``POST /v1/uploads``, filled by the form POST."""

    filename: str
    fields: dict[str, str]
    uri: str
    data: bytes | None = None


@dataclass
class Fetch:
    """One request this server made for a promptImage URL."""

    method: str
    url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)


class FakeRunway(FakeApiServer):
    def __init__(self, *, throttled_s: float = 0.0, resolver: Resolver | None = None,
                 ca_file: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.throttled_s = throttled_s
        self.resolver = resolver or _system_resolver
        self.tls = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self.uploads: dict[str, Upload] = {}
        self.fetches: list[Fetch] = []
        self.removed: dict[str, str] = {}  # task id -> CANCELLED (stopped) or DELETED (was finished)

    def use_up_daily_quota(self, creates: int = 1, *, headers: dict[str, str] | None = None) -> None:
        """The next ``creates`` creates are refused with 429 (``headers``: e.g. Retry-After)."""
        self.inject(*([429] * creates), method="POST", headers=headers)

    def fail_next_tasks(self, *codes: str) -> None:
        unknown = [code for code in codes if code not in FAILURES]
        assert not unknown, f"not a documented Runway failure code: {unknown}"
        super().fail_next_tasks(*codes)

    def authorized(self, headers: Any) -> Answer | None:
        denied = super().authorized(headers)
        if denied is None and headers.get("X-Runway-Version") != VERSION:
            return 400, {"error": f"X-Runway-Version must be {VERSION}"}
        return denied

    def route(self, method: str, path: str, body: Any) -> Answer:
        if method == "POST" and path in ("/v1/image_to_video", "/v1/text_to_video"):
            return self.create(path.endswith("image_to_video"), body)
        if method == "POST" and path == "/v1/uploads":
            return self.start_upload(body)
        if path.startswith("/v1/tasks/"):
            task_id = path.removeprefix("/v1/tasks/")
            if method == "GET":
                return self.get(task_id)
            if method == "DELETE":
                return self.record_delete(task_id, self.delete(task_id))
        return 404, {"error": "Not found"}

    def public(self, method: str, path: str, headers: Any, body: Any) -> Answer | None:
        """The upload URL: storage of its own, reached without the API key."""
        if method == "POST" and path.startswith(UPLOAD_PATH):
            return self.finish_upload(path.removeprefix(UPLOAD_PATH), headers, body)
        return None

    # --- tasks ---------------------------------------------------------------------------------

    def create(self, image: bool, body: Any) -> Answer:
        issues = validate(image, body)
        if not issues and image:
            problem = self.check_image(body["promptImage"])
            if problem:
                issues.append({"path": "promptImage", "message": problem})
        if issues:
            return 400, {"error": "Validation of body failed", "issues": issues}
        task = self.new_task(body, str(body.get("promptText", "")))
        return 200, {"id": task.id}

    def get(self, task_id: str) -> Answer:
        task = self.tasks.get(task_id)
        if task is None:
            return 404, {"error": "Task not found"}
        return 200, self.describe(task)

    def delete(self, task_id: str) -> Answer:
        """Cancel a pending/throttled/running task, delete any other; neither can be fetched again."""
        with self.lock:
            task = self.tasks.pop(task_id, None)
            if task is None:
                return 404, {"error": "Task not found"}
            self.removed[task_id] = "DELETED" if self.status(task) in FINISHED else "CANCELLED"
        return 204, None

    def cancel_elsewhere(self, task_id: str) -> None:
        """The task is cancelled outside this API (e.g. its dashboard): GET reports CANCELLED."""
        with self.lock:
            self.tasks[task_id].cancelled = True

    def status(self, task: Task) -> str:
        age = task.age_s()
        if task.cancelled:
            return "CANCELLED"
        if age < self.throttled_s:
            return "THROTTLED"
        if age < self.throttled_s + self.queue_s:
            return "PENDING"
        if age < self.throttled_s + self.queue_s + self.generation_s:
            return "RUNNING"
        return "FAILED" if self.unsafe(task) or task.failure_code else "SUCCEEDED"

    def describe(self, task: Task) -> dict[str, Any]:
        status = self.status(task)
        data: dict[str, Any] = {"id": task.id, "status": status, "createdAt": _iso(task)}
        if status == "RUNNING":
            done = task.age_s() - self.throttled_s - self.queue_s
            data["progress"] = round(min(0.99, max(0.0, done / self.generation_s)), 3)
        if status == "SUCCEEDED":
            data["output"] = [self.output_url(task.id)]
        if status == "FAILED":
            code = task.failure_code or SAFETY_FAILURE
            data["failureCode"], data["failure"] = code, FAILURES[code]
        return data

    # --- image inputs --------------------------------------------------------------------------

    def check_image(self, uri: Any) -> str | None:
        """Why Runway could not use this promptImage; None when it could."""
        if not isinstance(uri, str):
            return "this fake takes promptImage as one string (a URL, a data URI or a runway:// URI)"
        if uri.startswith("data:"):
            return check_data_uri(uri)
        if uri.startswith("runway://"):
            return self.check_upload_uri(uri)
        return self.check_url(uri)

    def check_url(self, url: str) -> str | None:
        if len(url) > URL_MAX_CHARS:
            return f"URLs must be at most {URL_MAX_CHARS} characters"
        parts = urlsplit(url)
        if parts.scheme != "https":
            return "URLs must be HTTPS"
        if not parts.hostname or _is_ip(parts.hostname):
            return "URLs must reference a domain name, not an IP address"
        status, headers, _ = self.fetch("HEAD", url)
        problem = _head_problem(status, headers)
        if problem:
            return problem
        status, headers, data = self.fetch("GET", url)
        if status != 200:
            return f"fetching the image failed with {status}"
        if _sniff(data) is None or len(data) > URL_IMAGE_MAX_BYTES:
            return "the URL does not serve a JPEG, PNG or WebP image of at most 16MB"
        return None

    def fetch(self, method: str, url: str) -> tuple[int | None, dict[str, str], bytes]:
        """One request to a promptImage URL, as Runway makes it: no redirect is followed."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        try:
            address = self.resolver(host, port)[0]
            raw = socket.create_connection((address, port), timeout=5)
            conn = http.client.HTTPSConnection(host, port, timeout=5, context=self.tls)
            conn.sock = self.tls.wrap_socket(raw, server_hostname=host)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
            response = conn.getresponse()
            data = response.read() if method == "GET" else b""
            headers = {name.lower(): value for name, value in response.getheaders()}
            conn.close()
        except (OSError, http.client.HTTPException, IndexError):
            with self.lock:
                self.fetches.append(Fetch(method=method, url=url, status=None))
            return None, {}, b""
        with self.lock:
            self.fetches.append(Fetch(method=method, url=url, status=response.status, headers=headers))
        return response.status, headers, data

    def check_upload_uri(self, uri: str) -> str | None:
        with self.lock:
            upload = next((u for u in self.uploads.values() if u.uri == uri), None)
        if upload is None:
            return "unknown runway:// URI: it was not issued by POST /v1/uploads"
        if upload.data is None:
            return "the runway:// URI's file was never uploaded"
        if _sniff(upload.data) is None:
            return "the uploaded file is not a JPEG, PNG or WebP image"
        return None

    # --- uploads -------------------------------------------------------------------------------

    def start_upload(self, body: Any) -> Answer:
        issues = []
        if not isinstance(body, dict):
            return 400, {"error": "Validation of body failed",
                         "issues": [{"path": "", "message": "body must be a JSON object"}]}
        filename = body.get("filename")
        if not isinstance(filename, str) or not filename or "/" in filename:
            issues.append({"path": "filename", "message": "a file name is required"})
        if body.get("type") != "ephemeral":
            issues.append({"path": "type", "message": "must be ephemeral"})
        extra = sorted(set(body) - {"filename", "type"})
        if extra:
            issues.append({"path": extra[0], "message": f"Unrecognized key(s) in object: {', '.join(extra)}"})
        if issues:
            return 400, {"error": "Validation of body failed", "issues": issues}
        upload_id = secrets.token_hex(8)
        fields = {"key": f"ephemeral/{upload_id}/{filename}", "policy": secrets.token_urlsafe(16),
                  "x-amz-signature": secrets.token_hex(16)}
        upload = Upload(filename=filename, fields=fields, uri=f"runway://ephemeral/{upload_id}/{filename}")
        with self.lock:
            self.uploads[upload_id] = upload
        return 200, {"uploadUrl": f"{self.origin}{UPLOAD_PATH}{upload_id}", "fields": fields,
                     "runwayUri": upload.uri}

    def finish_upload(self, upload_id: str, headers: Any, body: Any) -> Answer:
        with self.lock:
            upload = self.uploads.get(upload_id)
        if upload is None:
            return 403, {"error": "AccessDenied"}
        content_type = headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data") or not isinstance(body, bytes):
            return 400, {"error": "a multipart/form-data POST is expected"}
        form, file = _form(content_type, body)
        if any(form.get(name) != value for name, value in upload.fields.items()):
            return 403, {"error": "AccessDenied: the form fields do not match the policy"}
        if file is None:
            return 400, {"error": "the form has no file"}
        if len(file) > UPLOAD_MAX_BYTES:
            return 400, {"error": "EntityTooLarge"}
        with self.lock:
            upload.data = file
        return 204, None


def validate(image: bool, body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"path": "", "message": "body must be a JSON object"}]
    rules = (I2V_RULES if image else T2V_RULES).get(body.get("model"))  # type: ignore[arg-type]
    if rules is None:
        models = I2V_MODELS if image else T2V_MODELS
        return [{"path": "model", "message": f"must be one of {', '.join(models)}"}]
    issues = [{"path": name, "message": "Required"} for name in sorted(rules.required - set(body))]
    unknown = sorted(set(body) - rules.required - rules.optional)
    if unknown:
        issues.append({"path": unknown[0],
                       "message": f"Unrecognized key(s) in object: {', '.join(repr(k) for k in unknown)}"})
    issues += _field_issues(body, rules)
    return issues


def _field_issues(body: dict[str, Any], rules: Rules) -> list[dict[str, str]]:
    issues = []
    prompt = body.get("promptText")
    if "promptText" in body and (not isinstance(prompt, str) or not prompt):
        issues.append({"path": "promptText", "message": "must be a non-empty string"})
    elif isinstance(prompt, str) and len(prompt.encode("utf-16-le")) // 2 > PROMPT_MAX_UNITS:
        issues.append({"path": "promptText", "message": f"at most {PROMPT_MAX_UNITS} UTF-16 code units"})
    if "ratio" in body and body["ratio"] not in rules.ratios:
        issues.append({"path": "ratio", "message": f"must be one of {', '.join(rules.ratios)}"})
    duration = body.get("duration")
    if "duration" in body and (type(duration) is not int or duration not in rules.durations):
        issues.append({"path": "duration", "message": f"must be one of {rules.durations}"})
    seed = body.get("seed")
    if "seed" in body and (type(seed) is not int or not 0 <= seed <= MAX_SEED):
        issues.append({"path": "seed", "message": f"must be an integer from 0 to {MAX_SEED}"})
    if "audio" in body and type(body["audio"]) is not bool:
        issues.append({"path": "audio", "message": "must be a boolean"})
    return issues


def check_data_uri(uri: str) -> str | None:
    if len(uri) >= DATA_URI_MAX_CHARS:
        return f"the data URI must be under {DATA_URI_MAX_CHARS} characters"
    header, _, payload = uri.partition(",")
    media_type, _, encoding = header.removeprefix("data:").partition(";")
    if encoding != "base64":
        return "the data URI must be base64 encoded"
    if media_type not in IMAGE_TYPES:
        return "the data URI must be of type image/jpeg, image/png or image/webp"
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return "the data URI is not valid base64"
    if _sniff(data) is None:
        return "the data URI does not hold a JPEG, PNG or WebP image"
    return None


def _head_problem(status: int | None, headers: dict[str, str]) -> str | None:
    if status is None:
        return "the URL could not be reached"
    if 300 <= status < 400:
        return f"the URL answered {status}: redirects are not followed"
    if not 200 <= status < 300:
        return f"the URL answered {status} to HEAD"
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        return f"unsupported Content-Type {content_type or '(none)'}"
    length = headers.get("content-length", "")
    if not length.isdigit():
        return "the URL must answer with a Content-Length"
    if int(length) > URL_IMAGE_MAX_BYTES:
        return "images from URLs are limited to 16MB"
    return None


def _form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    file = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            file = payload
        elif isinstance(name, str):
            fields[name] = payload.decode()
    return fields, file


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _iso(task: Task) -> str:
    return datetime.now(timezone.utc).isoformat()
