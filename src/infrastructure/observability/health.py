"""Liveness for container probes: a file touched every loop turn, and ``/healthz`` over HTTP."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Health:
    """The worker loop calls :meth:`beat` each turn; a probe checks the beat is recent."""

    def __init__(self, *, path: str = "", max_silence_s: float = 120.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path) if path else None
        self.max_silence_s = max_silence_s
        self.monotonic = monotonic
        self._last_beat = monotonic()

    def beat(self) -> None:
        self._last_beat = self.monotonic()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            os.utime(self.path)

    def is_alive(self) -> bool:
        return self.monotonic() - self._last_beat <= self.max_silence_s


def metrics_app(registry: CollectorRegistry, health: Health) -> WsgiApp:
    """``/healthz`` (200 or 503) and, on every other path, the Prometheus exposition."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            pages: Iterable[bytes] = metrics(environ, start_response)
            return pages
        ok = health.is_alive()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if ok else b"the worker loop is stuck\n"]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        return None  # probes every few seconds would flood the logs


class MetricsServer:
    """Serves :func:`metrics_app` from a daemon thread; ``port=0`` picks a free port."""

    def __init__(self, app: WsgiApp, *, port: int, host: str = "0.0.0.0") -> None:
        self._server = make_server(host, port, app, server_class=_ThreadingServer,
                                   handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
