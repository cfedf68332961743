"""An https image host with a domain name, for tests: ``*.test`` names served on 127.0.0.1.

A self-signed certificate for ``*.test`` is made once; whoever must reach the host is given it
explicitly (the fake Runway's ``ca_file``, the guarded fetcher's ``ca_certs``) together with
:func:`test_resolver`. Each path answers as configured, so a test can serve what a CDN, an S3
presigned GET (403 to HEAD) or a misconfigured server would.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from src.infrastructure.net import UnresolvableHost

TEST_DOMAIN = ".test"
HOST = "images.test"


def test_resolver(host: str, port: int) -> list[str]:
    """``*.test`` names resolve to 127.0.0.1; every other name is unknown (tests stay offline)."""
    if host.endswith(TEST_DOMAIN):
        return ["127.0.0.1"]
    raise UnresolvableHost(f"{host} is not a test host")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``*.test`` and ``images.test``: (cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST), x509.DNSName("*.test")]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "test-host.crt", directory / "test-host.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass(frozen=True)
class Served:
    """How one path answers. ``head_status`` differs from ``status`` for method-bound URLs."""

    body: bytes = b""
    content_type: str | None = "image/png"
    status: int = 200
    head_status: int | None = None
    send_length: bool = True
    headers: dict[str, str] = field(default_factory=dict)


class ImageHost:
    """HTTPS on 127.0.0.1 for ``https://images.test:<port>/...``; records (method, path, user agent)."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.routes: dict[str, Served] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        return f"https://{HOST}:{self._server.server_address[1]}{path}"

    def serve(self, path: str, served: Served) -> str:
        self.routes[path] = served
        return self.url(path)

    def __enter__(self) -> ImageHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, *, head: bool) -> None:
                with host.lock:
                    host.requests.append((self.command, self.path, self.headers.get("User-Agent", "")))
                served = host.routes.get(self.path, Served(status=404, content_type=None))
                status = served.head_status if head and served.head_status is not None else served.status
                self.send_response(status)
                if served.content_type:
                    self.send_header("Content-Type", served.content_type)
                for name, value in served.headers.items():
                    self.send_header(name, value)
                if served.send_length:
                    self.send_header("Content-Length", str(len(served.body)))
                else:
                    self.close_connection = True
                self.end_headers()
                if not head and 200 <= status < 300:
                    self.wfile.write(served.body)

        return Handler
