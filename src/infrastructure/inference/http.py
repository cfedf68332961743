"""What the remote providers share: bounded retries, error translation, safe downloads.

The API key travels in a header given per request; it is never put in a log line, an
exception message or the session (so a download never carries it to another host).
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from src.application.backoff import ExponentialBackoff, Jitter
from src.domain.errors import (
    OutputExpired,
    PermanentError,
    QuotaExhausted,
    SubmissionOutcomeUnknown,
    TransientError,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})  # for reads only: a create is never resent
EXPIRED_STATUSES = frozenset({403, 404, 410})  # an output URL whose signature has expired
MAX_ERROR_CHARS = 300
MAX_REDIRECTS = 3
CHUNK_BYTES = 1024 * 1024


# between reads answered 429/5xx: 0-0.5 s, 0-1 s, 0-2 s ... up to 0-8 s (full jitter)
READ_BACKOFF = ExponentialBackoff(base_s=0.5, max_s=8.0, jitter=Jitter.FULL)


def read_retry_delay_s(backoff: ExponentialBackoff, failures: int, retry_after_s: float | None) -> float:
    """The wait before retrying a read after its ``failures``-th throttled answer: the server's
    Retry-After when it gave one (within ``backoff.max_s``), else ``backoff.delay_s(failures)``."""
    if retry_after_s is not None:
        return min(backoff.max_s, max(0.0, retry_after_s))
    return backoff.delay_s(failures)


class ApiClient:
    """JSON over HTTPS to one provider.

    Reads (polls, deletes) are retried here for throttling and busy gateways. A paid create
    is sent once: a 429 means nothing was created (:class:`QuotaExhausted`, the job waits for
    the quota); a timeout after sending, any 5xx or a success without a readable body may
    hide a created task (:class:`SubmissionOutcomeUnknown`, never sent again blindly).
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        create_timeout_s: float | None = None,
        session: requests.Session | None = None,
        max_retries: int = 3,
        backoff: ExponentialBackoff = READ_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self.timeout_s = timeout_s
        self.create_timeout_s = timeout_s if create_timeout_s is None else create_timeout_s
        self.session = session or requests.Session()
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep

    def __repr__(self) -> str:  # never show the headers (they hold the key)
        return f"ApiClient(provider={self.provider!r}, base_url={self.base_url!r})"

    def call(self, method: str, path: str, *, body: Any = None, creates: bool = False,
             answers: frozenset[int] = frozenset()) -> requests.Response:
        """Send one request; ``creates`` marks a paid create whose outcome may become unknown;
        ``answers`` are error statuses the caller handles itself (returned, not raised)."""
        if creates:
            return self._create(method, path, body)
        for attempt in range(self.max_retries + 1):
            response = self._send(method, path, body, creates=False)
            if response.status_code in answers:
                return response
            if response.status_code not in RETRY_STATUSES:
                return self._checked(method, path, response)
            retry_after = retry_after_s(response)
            if attempt == self.max_retries:
                raise TransientError(
                    f"{self.provider} answered {response.status_code} to {method} {path} "
                    f"{attempt + 1} times", retry_after_s=retry_after,
                )
            delay = read_retry_delay_s(self.backoff, attempt + 1, retry_after)
            log.warning("%s answered %s to %s %s; retrying in %.2fs",
                        self.provider, response.status_code, method, path, delay)
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _create(self, method: str, path: str, body: Any) -> requests.Response:
        response = self._send(method, path, body, creates=True)
        status = response.status_code
        if status == 429:
            retry_after = retry_after_s(response)
            raise QuotaExhausted(
                f"{self.provider} refused {method} {path} (429, quota used up): {error_text(response)}; "
                "nothing was created", retry_after_s=retry_after,
            )
        if status >= 500:
            raise SubmissionOutcomeUnknown(
                f"{self.provider} answered {status} to {method} {path}: the task may exist and be "
                "billed, so it is not sent again"
            )
        return self._checked(method, path, response)

    def _send(self, method: str, path: str, body: Any, *, creates: bool) -> requests.Response:
        url = self.base_url + path
        timeout_s = self.create_timeout_s if creates else self.timeout_s
        try:
            return self.session.request(method, url, json=body, headers=self._headers, timeout=timeout_s)
        except requests.RequestException as exc:
            if creates and not _never_sent(exc):
                raise SubmissionOutcomeUnknown(
                    f"{self.provider}: {method} {path} was sent but no answer came back "
                    f"({type(exc).__name__}); the task may exist and be billed"
                ) from exc
            raise TransientError(f"{self.provider}: {method} {path} failed: {type(exc).__name__}") from exc

    def _checked(self, method: str, path: str, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status < 400:
            return response
        reason = error_text(response)
        where = f"{self.provider} refused {method} {path} ({status})"
        if status in (401, 403):
            raise PermanentError(f"{where}: the API key was not accepted")
        if status < 500:
            raise PermanentError(f"{where}: {reason}")
        raise TransientError(f"{where}: {reason}")


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made, so the provider surely received nothing."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError too


def retry_after_s(response: requests.Response, now: datetime | None = None) -> float | None:
    """Seconds to wait, as the official SDKs read them: ``retry-after-ms``, then ``Retry-After``
    in seconds or as an HTTP date; None when absent or unreadable."""
    headers = response.headers
    try:
        return _seconds(float(headers["retry-after-ms"]) / 1000)
    except (KeyError, ValueError):
        pass
    raw = headers.get("Retry-After", "").strip()
    try:
        return _seconds(float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _seconds(value: float) -> float | None:
    """A usable wait: never negative; NaN and infinity count as unreadable."""
    return max(0.0, value) if math.isfinite(value) else None


def error_text(response: requests.Response) -> str:
    """The provider's own explanation, short: ``error``/``detail``/``message`` or the raw body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:MAX_ERROR_CHARS] or response.reason or ""
    if isinstance(data, dict):
        for name in ("error", "detail", "message"):
            if data.get(name):
                return str(data[name])[:MAX_ERROR_CHARS]
    return str(data)[:MAX_ERROR_CHARS]


def created_id(response: requests.Response, provider: str) -> str:
    """The id in a create's success answer; without one the task may still exist (and be billed)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    task_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(task_id, str) or not task_id.strip():
        raise SubmissionOutcomeUnknown(
            f"{provider} accepted the create ({response.status_code}) but its answer holds no readable "
            "task id: the task may exist and be billed, so it is not sent again"
        )
    return task_id


def json_of(response: requests.Response, provider: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise TransientError(f"{provider} answered with a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise TransientError(f"{provider} answered with JSON that is not an object")
    return data


class OutputDownloader:
    """Streams a provider's output URL to disk, without credentials.

    Only ``https`` URLs, or any URL on the provider's own configured host (a local fake in
    tests), are fetched; redirects are followed by hand under the same rule, so a crafted
    output URL cannot make the worker reach internal services over plain HTTP.
    """

    def __init__(self, *, provider: str, trusted_base_url: str, timeout_s: float,
                 session: requests.Session | None = None, max_bytes: int = 2 * 1024**3) -> None:
        self.provider = provider
        self.trusted = urlsplit(trusted_base_url).netloc
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self.max_bytes = max_bytes

    def download(self, url: str, dest: Path) -> int:
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url)
            response = self._get(url)
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                response.close()
                continue
            with response:
                return self._save(response, dest)
        raise PermanentError(f"{self.provider}: too many redirects for the output")

    def _check(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            named = bool(parts.hostname)
        except ValueError as exc:  # an unclosed "[" host, a netloc that changes under NFKC...
            raise PermanentError(f"{self.provider}: the output URL is not valid: {exc}") from None
        if parts.scheme == "https" and named:
            return
        if parts.scheme in ("http", "https") and parts.netloc == self.trusted:
            return
        raise PermanentError(f"{self.provider}: refusing to fetch output from {parts.scheme}://{parts.netloc}")

    def _get(self, url: str) -> requests.Response:
        try:
            return self.session.get(url, stream=True, allow_redirects=False, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise TransientError(f"{self.provider}: output download failed: {type(exc).__name__}") from exc

    def _save(self, response: requests.Response, dest: Path) -> int:
        if response.status_code in EXPIRED_STATUSES:
            raise OutputExpired(f"{self.provider}: output is gone ({response.status_code}); URLs expire")
        if response.status_code >= 400:
            raise TransientError(f"{self.provider}: output download answered {response.status_code}")
        size = 0
        try:
            with open(dest, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PermanentError(f"{self.provider}: output larger than {self.max_bytes} bytes")
                    out.write(chunk)
        except requests.RequestException as exc:
            raise TransientError(f"{self.provider}: output download broke off: {type(exc).__name__}") from exc
        return size
