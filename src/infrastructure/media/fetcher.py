"""HttpUrlFetcher: downloads a user-given URL without ever reaching an internal address.

Every URL (the first and each redirect target) goes through :func:`vet_url`; the connection
is then made to a vetted address with the original host name in the ``Host`` header, in TLS
SNI and in certificate checks, so DNS cannot change its answer between check and connect.
The size limit is enforced while streaming. Network trouble, timeouts, 5xx, 408 and 429 are
:class:`TransientError`; other 4xx, bad URLs and oversize bodies are :class:`PermanentError`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import certifi
import urllib3
from urllib3.exceptions import HTTPError, SSLError

from src.domain.errors import PermanentError, TransientError
from src.infrastructure.net import Resolver, UnresolvableHost, UnsafeUrl, UrlPolicy, VettedUrl, vet_url

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "reelqueue-fetcher/1"


@dataclass(frozen=True, kw_only=True)
class Probe:
    """What one HEAD request saw: the status and the headers (names in lower case)."""

    status: int
    headers: Mapping[str, str]


class HttpUrlFetcher:
    def __init__(
        self, *, timeout_s: float = 30.0, max_redirects: int = 3, resolver: Resolver | None = None,
        allow_http_hosts: Collection[str] = (), allowed_private_networks: Collection[str] = (),
        ca_certs: str | None = None,
    ) -> None:
        """``allow_http_hosts``, ``allowed_private_networks`` and ``ca_certs`` (a CA bundle to
        trust instead of certifi's) exist for tests and local development; they come from
        settings or a test's constructor call, never from a job, and are empty by default."""
        self.timeout = urllib3.Timeout(connect=min(timeout_s, 10.0), read=timeout_s)
        self.max_redirects = max_redirects
        self.ca_certs = ca_certs or certifi.where()
        self.policy = UrlPolicy.build(resolver=resolver, allow_http_hosts=allow_http_hosts,
                                      allowed_private_networks=allowed_private_networks)

    def fetch(self, url: str, dest: Path, *, max_bytes: int) -> int:
        try:
            return self._follow(url, Path(dest), max_bytes)
        except BaseException:
            Path(dest).unlink(missing_ok=True)
            raise

    def probe(self, url: str) -> Probe:
        """HEAD ``url`` once through the guard, following no redirect: what a service that is
        given the URL sees when it checks it first."""
        vetted = self._vet(url)
        with self._pool(vetted) as pool:
            response = self._open(pool, vetted, method="HEAD")
            try:
                headers = {name.lower(): value for name, value in response.headers.items()}
                return Probe(status=response.status, headers=headers)
            finally:
                response.release_conn()

    def _follow(self, url: str, dest: Path, max_bytes: int) -> int:
        for _ in range(self.max_redirects + 1):
            vetted = self._vet(url)
            with self._pool(vetted) as pool:
                response = self._open(pool, vetted)
                try:
                    location = _redirect_target(url, response)
                    if location is None:
                        _check_status(url, response)
                        return _save(response, dest, max_bytes)
                finally:
                    response.release_conn()
            log.info("following a redirect to %s", location)
            url = location
        raise PermanentError(f"more than {self.max_redirects} redirects")

    def _vet(self, url: str) -> VettedUrl:
        try:
            return vet_url(url, policy=self.policy)
        except UnsafeUrl as exc:
            raise PermanentError(f"the source URL is not allowed: {exc}") from exc
        except UnresolvableHost as exc:
            raise TransientError(f"could not resolve the source URL's host: {exc}") from exc

    def _open(self, pool: urllib3.HTTPConnectionPool, vetted: VettedUrl, *,
              method: str = "GET") -> urllib3.BaseHTTPResponse:
        headers = {"Host": vetted.host_header, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        try:
            return pool.urlopen(method, vetted.target, headers=headers, redirect=False, retries=False,
                                preload_content=False, assert_same_host=False)
        except SSLError as exc:
            raise PermanentError(f"TLS with {vetted.host} failed: {exc}") from exc
        except HTTPError as exc:
            raise TransientError(f"could not download from {vetted.host}: {exc}") from exc

    def _pool(self, vetted: VettedUrl) -> urllib3.HTTPConnectionPool:
        address = str(vetted.addresses[0])
        if vetted.scheme == "http":
            return urllib3.HTTPConnectionPool(address, vetted.port, timeout=self.timeout, maxsize=1)
        return urllib3.HTTPSConnectionPool(
            address, vetted.port, timeout=self.timeout, maxsize=1, cert_reqs="CERT_REQUIRED",
            ca_certs=self.ca_certs, server_hostname=vetted.host, assert_hostname=vetted.host,
        )


def _redirect_target(url: str, response: urllib3.BaseHTTPResponse) -> str | None:
    if response.status not in REDIRECTS:
        return None
    location = response.headers.get("Location")
    if not location:
        raise PermanentError(f"the source URL redirected (HTTP {response.status}) without a Location")
    try:
        return urljoin(url, location)
    except ValueError as exc:  # urllib cannot read it (an unclosed "[" host...): as unsafe as a bad URL
        raise PermanentError(f"the source URL redirected to a URL that is not valid: {exc}") from None


def _check_status(url: str, response: urllib3.BaseHTTPResponse) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    message = f"downloading the source failed with HTTP {status}"
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise TransientError(message, retry_after_s=_retry_after_s(response))
    raise PermanentError(message)


def _retry_after_s(response: urllib3.BaseHTTPResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _save(response: urllib3.BaseHTTPResponse, dest: Path, max_bytes: int) -> int:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PermanentError(f"the source is {declared} bytes; the limit is {max_bytes}")
    written = 0
    try:
        with dest.open("wb") as out:
            for chunk in response.stream(CHUNK_BYTES):
                written += len(chunk)
                if written > max_bytes:
                    raise PermanentError(f"the source is over the limit of {max_bytes} bytes")
                out.write(chunk)
    except HTTPError as exc:
        raise TransientError(f"the download was interrupted after {written} bytes: {exc}") from exc
    return written
