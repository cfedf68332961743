"""The API as deployed, over real HTTP: gunicorn with the production config on a free port, on
the test session's database and local storage (see :func:`live_api`).

Tests talk to it with ``requests`` (:meth:`LiveApi.call`), or with a raw socket
(:meth:`LiveApi.raw`) for framings ``requests`` refuses to send (a body shorter than its
``Content-Length``, chunked PUTs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.stack import ROOT, free_port


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class LiveApi:
    def __init__(self, base_url: str, storage_root: Path) -> None:
        self.base_url = base_url
        self.storage_root = storage_root
        self.session = requests.Session()

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Token {token}"
        return self.session.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def raw(self, request: bytes, *, body: bytes = b"") -> RawAnswer:
        """Sends ``request`` (request line and headers) and ``body`` as they are, then closes the
        sending side (a body shorter than announced ends there) and reads the answer."""
        host, port = self.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(request + body)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return RawAnswer(status=int(lines[0].split()[1]), headers=headers, body=rest)

    def stored(self, key: str) -> bytes | None:
        path = self.storage_root / key
        return path.read_bytes() if path.is_file() else None


@contextlib.contextmanager
def serve(database_url: str, storage_root: Path, log_path: Path) -> Iterator[LiveApi]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.api.live_settings",
        "REELQUEUE_DATABASE_URL": database_url, "REELQUEUE_QUEUE_BACKEND": "sql",
        "REELQUEUE_STORAGE_BACKEND": "local", "REELQUEUE_STORAGE_ROOT": str(storage_root),
        "REELQUEUE_REDIS_URL": "", "REELQUEUE_PUBLIC_BASE_URL": base_url,
        "REELQUEUE_SECRET_KEY": "tests-only-secret-key", "REELQUEUE_DEBUG": "0",
        "REELQUEUE_THROTTLE_USER_POSTS": "100000/minute", "REELQUEUE_LOG_LEVEL": "WARNING",
        "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "apps/reelqueue_api/gunicorn_conf.py",
               "--no-control-socket", "--timeout", "30"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_it_answers(base_url, process, log_path)
        yield LiveApi(base_url, storage_root)
    finally:
        process.send_signal(signal.SIGINT)  # a quick shutdown: no request is in flight
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_it_answers(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"the API exited ({process.returncode}): {log_path.read_text()[-2000:]}")
        try:
            requests.get(f"{base_url}/api/v1/providers", timeout=5)  # 401 is fine: it answers
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                pytest.fail(f"the API did not answer in 60 s: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
