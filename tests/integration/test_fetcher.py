"""HttpUrlFetcher against a local HTTP server; names are mapped to 127.0.0.1 by an injected resolver.

Plain http and the loopback network are allowed only through the fetcher's test-only
constructor options; the URL guard itself stays as strict as in production.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from src.domain.errors import PermanentError, TransientError
from src.infrastructure.media.fetcher import HttpUrlFetcher

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


class Routes(BaseHTTPRequestHandler):
    seen_hosts: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        Routes.seen_hosts.append(self.headers["Host"])
        route = ROUTES.get(self.path.split("?")[0])
        if route is None:
            self._reply(404, b"not found")
        else:
            route(self)

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _chunked_big(handler: Routes) -> None:
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    for _ in range(64):
        handler.wfile.write(b"x" * 1024)


def _slow(handler: Routes) -> None:
    time.sleep(2.5)
    handler._reply(200, BODY)


ROUTES = {
    "/clip.mp4": lambda h: h._reply(200, BODY),
    "/moved": lambda h: h._reply(302, headers={"Location": "/clip.mp4"}),
    "/to-internal": lambda h: h._reply(302, headers={"Location": "http://internal.test/secret"}),
    "/to-ip": lambda h: h._reply(301, headers={"Location": "https://169.254.169.254/latest/meta-data"}),
    "/loop": lambda h: h._reply(302, headers={"Location": "/loop"}),
    "/to-bad-bracket": lambda h: h._reply(302, headers={"Location": "https://[::1/x"}),
    "/to-bad-port": lambda h: h._reply(302, headers={"Location": "https://media.test:99999/x"}),
    "/big-declared": lambda h: h._reply(200, b"x" * 5000),
    "/big-streamed": _chunked_big,
    "/gone": lambda h: h._reply(410, b"gone"),
    "/busy": lambda h: h._reply(503, b"busy", {"Retry-After": "7"}),
    "/throttled": lambda h: h._reply(429, b"slow down"),
    "/slow": _slow,
}

NAMES = {"media.test": "127.0.0.1", "internal.test": "10.0.0.1"}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Routes)
    server.daemon_threads = True  # a request still sleeping in /slow does not hold the teardown
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def lookups() -> list[str]:
    return []


@pytest.fixture
def fetcher(lookups: list[str]) -> HttpUrlFetcher:
    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [NAMES[host]]

    return HttpUrlFetcher(timeout_s=1.0, max_redirects=3, resolver=resolver,
                          allow_http_hosts={"media.test", "internal.test"},
                          allowed_private_networks={"127.0.0.0/8"})


def url(port: int, path: str) -> str:
    return f"http://media.test:{port}{path}"


def test_a_file_is_downloaded_through_the_vetted_address_with_the_original_host_header(
    fetcher, port, tmp_path, lookups
):
    dest = tmp_path / "source"
    assert fetcher.fetch(url(port, "/clip.mp4"), dest, max_bytes=1 << 20) == len(BODY)
    assert dest.read_bytes() == BODY
    assert Routes.seen_hosts[-1] == f"media.test:{port}"
    assert lookups == ["media.test"]  # resolved once, then connected to that very address


def test_a_redirect_is_followed_and_its_target_vetted_again(fetcher, port, tmp_path, lookups):
    assert fetcher.fetch(url(port, "/moved"), tmp_path / "source", max_bytes=1 << 20) == len(BODY)
    assert lookups == ["media.test", "media.test"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-internal", "resolves to an internal address"),
        ("/to-ip", "must name a host, not an IP address"),
        ("/loop", "more than 3 redirects"),
        ("/to-bad-bracket", "Invalid IPv6 URL"),
        ("/to-bad-port", "invalid port"),
        ("/gone", "HTTP 410"),
        ("/big-declared", "the limit is 4096"),
        ("/big-streamed", "over the limit of 4096 bytes"),
    ],
)
def test_a_refused_download_fails_permanently_and_leaves_no_file(fetcher, port, tmp_path, path, reason):
    dest = tmp_path / "source"
    with pytest.raises(PermanentError, match=reason):
        fetcher.fetch(url(port, path), dest, max_bytes=4096)
    assert not dest.exists()


@pytest.mark.parametrize(("path", "reason"), [("/busy", "HTTP 503"), ("/throttled", "HTTP 429"),
                                              ("/slow", "timed out")])
def test_server_trouble_and_timeouts_are_transient(fetcher, port, tmp_path, path, reason):
    with pytest.raises(TransientError, match=reason):
        fetcher.fetch(url(port, path), tmp_path / "source", max_bytes=1 << 20)


def test_a_503_passes_on_the_servers_retry_after(fetcher, port, tmp_path):
    with pytest.raises(TransientError) as caught:
        fetcher.fetch(url(port, "/busy"), tmp_path / "source", max_bytes=1 << 20)
    assert caught.value.retry_after_s == 7


def test_a_refused_connection_is_transient(fetcher, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="could not download"):
        fetcher.fetch(url(closed_port, "/clip.mp4"), tmp_path / "source", max_bytes=1 << 20)


def test_without_the_test_options_the_same_local_server_is_refused(port, tmp_path):
    strict = HttpUrlFetcher(resolver=lambda host, port: [NAMES[host]])
    with pytest.raises(PermanentError, match="only https URLs are accepted"):
        strict.fetch(url(port, "/clip.mp4"), tmp_path / "source", max_bytes=1 << 20)
    with pytest.raises(PermanentError, match="internal address"):
        strict.fetch(f"https://media.test:{port}/clip.mp4", tmp_path / "source", max_bytes=1 << 20)
