"""What both fake provider APIs share: a threaded HTTP server on 127.0.0.1 and fault injection.

A subclass implements :meth:`FakeApiServer.route`; the base handles authentication, injected
answers (an exact queue of statuses, or every Nth request, optionally only for one method, with
headers such as ``Retry-After``), creates that are accepted but answered badly (stalled, dropped,
a 5xx, a success without an id), and serves the output videos (a real, tiny MP4) from the same
server under signed-looking URLs that can be made to expire. Every fault is deterministic.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]  # (status, JSON payload or None)

BUSY = (502, 503, 504)
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


@dataclass(frozen=True)
class Injected:
    """An answer given instead of the real one (the request does nothing)."""

    status: int
    method: str | None = None  # only requests with this method; None: any API request
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Task:
    """One generation, advancing with wall-clock time from its creation."""

    id: str
    body: dict[str, Any]
    prompt: str
    created: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    failure_code: str | None = None  # set at creation from the queue of failures to emit

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
        unsafe_words: tuple[str, ...] = ("forbidden",),
    ) -> None:
        self.api_key = api_key
        self.generation_s = generation_s
        self.queue_s = queue_s
        self.unsafe_words = unsafe_words
        self.lock = threading.RLock()
        self.tasks: dict[str, Task] = {}
        self.create_bodies: list[dict[str, Any]] = []
        self.create_prompts: list[str] = []  # of every accepted create, kept after a DELETE
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
        self._injected: deque[Injected] = deque()
        self._every: dict[str | None, list[Any]] = {}  # method -> [n, answers, requests counted]
        self._create_faults: deque[tuple[str, float]] = deque()  # per accepted create
        self._failures: deque[str] = deque()  # failure codes for the next created tasks
        self._url_epoch = 0  # output URLs signed before the current epoch have expired
        self._stale_urls = 0  # output URLs still to hand out already expired
        self.deletes: list[tuple[str, int]] = []  # (task id, status) of each DELETE routed
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

    def inject(self, *statuses: int, method: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        """The next API requests (of ``method``, if given) are answered with these statuses, in
        order, with ``headers``, doing nothing."""
        with self.lock:
            self._injected.extend(Injected(s, method, tuple((headers or {}).items())) for s in statuses)

    def fail_every(self, n: int, *statuses: int, method: str | None = None,
                   headers: dict[str, str] | None = None) -> None:
        """Every ``n``-th API request (of ``method``, if given; one rule per method) is answered
        with the next of ``statuses`` in turn, doing nothing; ``n=0`` removes the rule."""
        with self.lock:
            pairs = tuple((headers or {}).items())
            answers = itertools.cycle([Injected(s, method, pairs) for s in statuses])
            if n:
                self._every[method] = [n, answers, 0]
            else:
                self._every.pop(method, None)

    def stall_next_create(self, seconds: float) -> None:
        """Accept (and record) the next create, then answer only after ``seconds``."""
        with self.lock:
            self._create_faults.append(("stall", seconds))

    def drop_next_create(self) -> None:
        """Accept (and record) the next create, then close the connection without answering."""
        with self.lock:
            self._create_faults.append(("drop", 0))

    def lose_next_create_answer(self, status: int) -> None:
        """Accept (and record, and bill) the next create, then answer ``status`` (a gateway that
        lost the provider's answer: the task exists although the client saw a 5xx)."""
        with self.lock:
            self._create_faults.append(("status", status))

    def garble_next_create(self) -> None:
        """Accept (and record) the next create, then answer success with a body that is not JSON."""
        with self.lock:
            self._create_faults.append(("garble", 0))

    def fail_next_tasks(self, *codes: str) -> None:
        """The next created tasks fail with these codes, in order (each provider's own codes)."""
        with self.lock:
            self._failures.extend(codes)

    def expire_output_urls(self) -> None:
        """Every output URL handed out so far now answers 403, as an expired signed URL does."""
        with self.lock:
            self._url_epoch += 1

    def hand_out_expired_urls(self, count: int = 1) -> None:
        """The next ``count`` output URLs handed out have already expired (a slow client)."""
        with self.lock:
            self._stale_urls += count

    def statuses(self, method: str | None = None, prefix: str = "") -> list[int]:
        """The statuses answered, in order, for requests of ``method`` whose path starts with ``prefix``."""
        with self.lock:
            return [status for m, path, status in self.requests
                    if (method is None or m == method) and path.startswith(prefix)]

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
        """A URL signed for now: it stops working at the next :meth:`expire_output_urls`."""
        with self.lock:
            epoch = self._url_epoch - (1 if self._stale_urls else 0)
            self._stale_urls = max(0, self._stale_urls - 1)
        return f"{self.origin}/outputs/{task_id}.mp4?epoch={epoch}&sig={uuid.uuid4().hex[:12]}"

    def output_expired(self, query: str) -> bool:
        fields = dict(part.partition("=")[::2] for part in query.split("&") if part)
        return fields.get("epoch", "") != str(self._url_epoch)

    # --- for subclasses --------------------------------------------------------------------------

    def route(self, method: str, path: str, body: Any) -> Answer:
        raise NotImplementedError

    def public(self, method: str, path: str, headers: Any, body: Any) -> Answer | None:
        """The answer to a request outside the API (no key, no injected faults); None: not one."""
        return None

    def authorized(self, headers: Any) -> Answer | None:
        """None when the request may go on, else the answer to send."""
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "Unauthorized"}
        return None

    def new_task(self, body: dict[str, Any], prompt: str) -> Task:
        with self.lock:
            self._ids += 1
            task = Task(id=f"{self._ids:08d}-fake-{uuid.uuid4().hex[:8]}", body=body, prompt=prompt,
                        failure_code=self._failures.popleft() if self._failures else None)
            self.tasks[task.id] = task
            self.create_bodies.append(body)
            self.create_prompts.append(prompt)
            return task

    def unsafe(self, task: Task) -> bool:
        return any(word in task.prompt.lower() for word in self.unsafe_words)

    def next_create_fault(self) -> tuple[str, float] | None:
        with self.lock:
            return self._create_faults.popleft() if self._create_faults else None

    def injected(self, method: str) -> Injected | None:
        with self.lock:
            if self._injected and self._injected[0].method in (None, method):
                return self._injected.popleft()
            rule = self._every.get(method) or self._every.get(None)
            if rule is None:
                return None
            rule[2] += 1
            return next(rule[1]) if rule[2] % rule[0] == 0 else None


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
            path, _, query = self.path.partition("?")
            if method == "GET" and path.startswith("/outputs/"):
                return self._video(path, query)
            body = self._body()
            public = api.public(method, path, self.headers, body)
            if public is not None:
                return self._answer(method, path, *public)
            injected = api.injected(method)
            if injected is not None:
                payload = {"error": HTTPStatus(injected.status).phrase}
                return self._answer(method, path, injected.status, payload, dict(injected.headers))
            denied = api.authorized(self.headers)
            if denied is not None:
                return self._answer(method, path, *denied)
            if not path.startswith(api.prefix):
                return self._answer(method, path, 404, {"error": "Not found"})
            status, payload = api.route(method, path[len(api.prefix):], body)
            fault = api.next_create_fault() if method == "POST" and status < 300 else None
            return self._answer_create(method, path, status, payload, fault)

        def _answer_create(self, method: str, path: str, status: int, payload: Any,
                           fault: tuple[str, float] | None) -> None:
            kind, value = fault or ("", 0)
            if kind == "drop":
                self.close_connection = True
                return None
            if kind == "stall":
                time.sleep(value)
            if kind == "status":
                return self._answer(method, path, int(value), {"error": HTTPStatus(int(value)).phrase})
            if kind == "garble":
                with api.lock:
                    api.requests.append((method, path, status))
                return self._write(status, b"<html>upstream reset</html>", "text/html")
            return self._answer(method, path, status, payload)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return raw

        def _video(self, path: str, query: str) -> None:
            task_id = path.rsplit("/", 1)[-1].removesuffix(".mp4")
            if task_id not in api.tasks:
                return self._answer("GET", path, 404, {"error": "Not found"})
            if api.output_expired(query):
                return self._answer("GET", path, 403, {"error": "Request has expired"})
            with api.lock:
                api.requests.append(("GET", path, 200))
            self._write(200, tiny_mp4(), "video/mp4")
            return None

        def _answer(self, method: str, path: str, status: int, payload: Any,
                    headers: dict[str, str] | None = None) -> None:
            with api.lock:
                api.requests.append((method, path, status))
            data = b"" if payload is None else json.dumps(payload).encode()
            self._write(status, data, "application/json", headers)

        def _write(self, status: int, data: bytes, content_type: str,
                   headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
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
