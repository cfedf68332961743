"""An HTTP proxy in front of moto's server that counts SQS requests and can go dark.

Used by the peer benchmarks (requests per job, on every side alike) and by the fault suite
(the SQS endpoint refusing connections for a while).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, *args: object) -> None:  # quiet
        return

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.owner.count(self.headers.get("X-Amz-Target"), body)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        answer = self.server.owner.session.request(
            self.command, self.server.owner.upstream + self.path, data=body, headers=headers,
            timeout=60,
        )
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in HOP_BY_HOP | {"content-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: SqsProxy

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a connection cut by stop(): expected, not worth a traceback

    def drop_connections(self) -> None:
        """Cut every established (keep-alive) connection: clients must reconnect, and cannot."""
        with self.connections_lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SqsProxy:
    def __init__(self, upstream: str, *, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.session = requests.Session()
        self.requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.port = port
        self._server: _ProxyServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def count(self, target: str | None, body: bytes) -> None:
        action = target.rsplit(".", 1)[-1] if target else _query_action(body)
        with self._lock:
            self.requests[action] += 1

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def start(self) -> None:
        server = _ProxyServer(("127.0.0.1", self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the port and cut open connections: connections are refused until :meth:`start`.

        Established keep-alive connections are cut too; otherwise clients that hold one (boto3's
        pool) would go on talking to the upstream through a proxy that is supposedly down.
        """
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None


def _query_action(body: bytes) -> str:
    try:
        return parse_qs(body.decode()).get("Action", ["other"])[0]
    except UnicodeDecodeError:
        return "other"
