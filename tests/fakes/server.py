"""What both fake provider APIs share: a threaded HTTP server on 127.0.0.1 and fault injection.

A subclass implements :meth:`FakeApiServer.route`; the base handles authentication, injected
429/5xx answers (a configurable fraction, or a queue of exact statuses), stalled or dropped
creates, and serves the output videos (a real, tiny MP4) from the same server.
"""

from __future__ import annotations

import functools
import io
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]  # (status, JSON payload or None)

RETRYABLE = (429, 502, 503, 504)
POLL_S = 0.02  # how often the server loop looks for shutdown


@functools.cache
def tiny_mp4(frames: int = 8, size: int = 32) -> bytes:
    """A small but valid H.264 MP4 (what a provider's output URL serves)."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            pixels = np.full((size, size, 3), index * 30 % 256, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@dataclass
class Task:
    """One generation, advancing with wall-clock time from its creation."""

    id: str
    body: dict[str, Any]
    prompt: str
    created: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def age_s(self) -> float:
        return time.monotonic() - self.created


class FakeApiServer:
    """Base of the fake provider APIs. Use as a context manager or call start()/stop()."""

    prefix = ""  # the API's path prefix (Luma: /dream-machine/v1)

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        generation_s: float = 0.3,
        queue_s: float = 0.05,
        error_rate: float = 0.0,
        error_statuses: tuple[int, ...] = RETRYABLE,
        unsafe_words: tuple[str, ...] = ("forbidden",),
        seed: int = 0,
    ) -> None:
        self.api_key = api_key
        self.generation_s = generation_s
        self.queue_s = queue_s
        self.error_rate = error_rate
        self.error_statuses = error_statuses
        self.unsafe_words = unsafe_words
        self.lock = threading.RLock()
        self.tasks: dict[str, Task] = {}
        self.create_bodies: list[dict[str, Any]] = []
        self.create_prompts: list[str] = []  # of every accepted create, kept after a DELETE
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
        self.deletes: list[tuple[str, int]] = []  # (task id, status) of each DELETE routed
        self._injected: deque[int] = deque()
        self._stalls: deque[float] = deque()  # per create: seconds to stall; < 0: drop the connection
        self._random = random.Random(seed)
        self._ids = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,), daemon=True)

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.prefix

    def start(self) -> FakeApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection and inspection ----------------------------------------------------------

    def inject(self, *statuses: int) -> None:
        """The next API requests are answered with these statuses, in order, doing nothing."""
        with self.lock:
            self._injected.extend(statuses)

    def stall_next_create(self, seconds: float) -> None:
        """Accept (and record) the next create, then answer only after ``seconds``."""
        with self.lock:
            self._stalls.append(seconds)

    def drop_next_create(self) -> None:
        """Accept (and record) the next create, then close the connection without answering."""
        with self.lock:
            self._stalls.append(-1.0)

    def create_count(self, containing: str = "") -> int:
        """Creates accepted (each one billed), optionally only those whose prompt contains a text."""
        with self.lock:
            return sum(1 for prompt in self.create_prompts if containing in prompt)

    def delete_count(self, task_id: str, *, status: int | None = None) -> int:
        """DELETEs of ``task_id`` that reached the API (optionally only those answered ``status``)."""
        with self.lock:
            return sum(1 for id_, answered in self.deletes
                       if id_ == task_id and status in (None, answered))

    def record_delete(self, task_id: str, answer: Answer) -> Answer:
        with self.lock:
            self.deletes.append((task_id, answer[0]))
        return answer

    def output_url(self, task_id: str) -> str:
        return f"{self.origin}/outputs/{task_id}.mp4"

    # --- for subclasses --------------------------------------------------------------------------

    def route(self, method: str, path: str, body: Any) -> Answer:
        raise NotImplementedError

    def authorized(self, headers: Any) -> Answer | None:
        """None when the request may go on, else the answer to send."""
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "Unauthorized"}
        return None

    def new_task(self, body: dict[str, Any], prompt: str) -> Task:
        with self.lock:
            self._ids += 1
            task = Task(id=f"{self._ids:08d}-fake-{self._random.getrandbits(32):08x}", body=body,
                        prompt=prompt)
            self.tasks[task.id] = task
            self.create_bodies.append(body)
            self.create_prompts.append(prompt)
            return task

    def unsafe(self, task: Task) -> bool:
        return any(word in task.prompt.lower() for word in self.unsafe_words)

    def next_stall(self) -> float | None:
        with self.lock:
            return self._stalls.popleft() if self._stalls else None

    def injected_status(self) -> int | None:
        with self.lock:
            if self._injected:
                return self._injected.popleft()
            if self.error_rate and self._random.random() < self.error_rate:
                return self._random.choice(self.error_statuses)
            return None


def _handler_for(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            if method == "GET" and path.startswith("/outputs/"):
                return self._video(path)
            body = self._body()
            status = api.injected_status()
            if status is not None:
                return self._answer(method, path, status, {"error": HTTPStatus(status).phrase})
            denied = api.authorized(self.headers)
            if denied is not None:
                return self._answer(method, path, *denied)
            if not path.startswith(api.prefix):
                return self._answer(method, path, 404, {"error": "Not found"})
            stall = api.next_stall() if method == "POST" else None
            status, payload = api.route(method, path[len(api.prefix):], body)
            if stall is not None and stall < 0:
                self.close_connection = True
                return None
            if stall:
                time.sleep(stall)
            return self._answer(method, path, status, payload)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return raw

        def _video(self, path: str) -> None:
            task_id = path.rsplit("/", 1)[-1].removesuffix(".mp4")
            if task_id not in api.tasks:
                return self._answer("GET", path, 404, {"error": "Not found"})
            self._write(200, tiny_mp4(), "video/mp4")
            return None

        def _answer(self, method: str, path: str, status: int, payload: Any) -> None:
            with api.lock:
                api.requests.append((method, path, status))
            data = b"" if payload is None else json.dumps(payload).encode()
            self._write(status, data, "application/json")

        def _write(self, status: int, data: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

    return Handler


class CallbackReceiver:
    """A tiny web hook endpoint: records every POST; can refuse the first ones with 500."""

    def __init__(self, *, fail_first: int = 0, on_callback: Any = None) -> None:
        self.received: list[tuple[str, Any]] = []  # (path, JSON body) of accepted calls
        self.refused = 0
        self.fail_first = fail_first
        self.on_callback = on_callback
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)

    def _accept(self, path: str, body: Any) -> int:
        with self.lock:
            if self.refused < self.fail_first:
                self.refused += 1
                return 500
            self.received.append((path, body))
        if self.on_callback is not None:
            self.on_callback(path, body)
        return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                status = receiver._accept(self.path, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
