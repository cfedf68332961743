"""The whole production profile as real processes on 127.0.0.1, for the e2e and fault suites.

A :class:`Stack` is given the services (a Postgres database URL, a Redis URL, SQS and S3 endpoint
URLs — moto's server or a proxy in front of it — and the fake Runway/Luma servers) and then:

* migrates (``cli migrate`` + ``apps.manage migrate``), ensures the SQS queues (each with its
  dead-letter queue; the prefix is unique per stack) and the S3 bucket (unique per stack);
* starts the API under gunicorn on a free port and the worker processes (:class:`WorkerSpec`),
  each one's stdout and stderr captured to ``<workdir>/logs/<name>.stdout.log`` / ``.stderr.log``;
* talks to the API as a client would: :meth:`create_user`, :meth:`client`, :meth:`upload`
  (``POST /uploads`` then the presigned PUT), :meth:`submit_video`, :meth:`submit_ai`,
  :meth:`job`, :meth:`wait_terminal` (which records every progress sample it sees, per job,
  in :attr:`samples`);
* lets a test stop and start workers (:meth:`stop_worker`, :meth:`start_worker`) and the API
  (:meth:`stop_api`, :meth:`start_api`), start other processes (:meth:`spawn`), watch live
  progress in the background (:meth:`watching`), read every captured log line (:meth:`logs`) and
  :meth:`close` everything.

Every setting reaches the processes as a ``REELQUEUE_*`` variable (:attr:`env`); ``env=`` on
the constructor overrides or adds to them (a fault test may shorten timeouts), and a
:class:`WorkerSpec` may add its own. :attr:`settings` is the same configuration as a
:class:`src.config.Settings`, for a test that wants the library's adapters in-process
(``bootstrap.build(stack.settings)``: its repositories, the queue admin, the storage).

Example::

    with FakeRunway(generation_s=0.5) as runway, FakeLuma(generation_s=0.5) as luma:
        with Stack(database_url=..., redis_url=..., sqs_endpoint_url=moto, s3_endpoint_url=moto,
                   runway=runway, luma=luma, workdir=tmp_path) as stack:
            token = stack.create_user("alice")
            key = stack.upload(token, clip_path, "video/mp4")
            job = stack.submit_video(token, key)
            final = stack.wait_terminal([job["id"]], timeout_s=60)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from src.config import Settings

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
AWS_DUMMY = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RUNNING = frozenset({"processing", "waiting_provider"})
PAGE = 200  # the API's largest page (apps/jobs/pagination.py MAX_LIMIT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty Postgres database on the server of ``admin_url``; dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"rq_e2e_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError), admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class WorkerSpec:
    """One worker process: a name (unique in the stack), its module arguments, extra env."""

    name: str
    args: tuple[str, ...]
    concurrency: int = 1
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        return [sys.executable, *self.args, "--concurrency", str(self.concurrency)]


def video_worker(name: str = "video", *, concurrency: int = 1,
                 env: Mapping[str, str] | None = None) -> WorkerSpec:
    return WorkerSpec(name, ("-m", "src.interfaces.workers.video.main"), concurrency, dict(env or {}))


def ai_remote_worker(name: str = "ai-remote", *, concurrency: int = 4,
                     env: Mapping[str, str] | None = None) -> WorkerSpec:
    return WorkerSpec(name, ("-m", "src.interfaces.workers.ai.main", "--worker-type", "remote"),
                      concurrency, dict(env or {}))


@dataclass(frozen=True)
class Sample:
    """One observation of a job by :meth:`Stack.wait_terminal`."""

    at_s: float  # time.monotonic()
    status: str
    stage: str | None
    percent: float | None
    attempts: int
    by: str = "wait"  # "wait" (wait_terminal) or "watch" (watching): each source is in order


class StackError(RuntimeError):
    pass


class Stack:
    """See the module docstring. Use as a context manager, or call :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        sqs_endpoint_url: str,
        s3_endpoint_url: str,
        runway: Any,
        luma: Any,
        workdir: Path,
        workers: Sequence[WorkerSpec] = (video_worker(), ai_remote_worker()),
        env: Mapping[str, str] | None = None,
        api_workers: int = 2,
        api_threads: int = 4,
    ) -> None:
        self.workdir = Path(workdir)
        self.log_dir = self.workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "work").mkdir(exist_ok=True)
        (self.workdir / "static").mkdir(exist_ok=True)
        self.runway, self.luma = runway, luma
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base_url}/api/v1"
        tag = uuid.uuid4().hex[:8]
        self.env: dict[str, str] = {
            "REELQUEUE_DATABASE_URL": database_url,
            "REELQUEUE_REDIS_URL": redis_url,
            "REELQUEUE_QUEUE_BACKEND": "sqs",
            "REELQUEUE_STORAGE_BACKEND": "s3",
            "REELQUEUE_AWS_REGION": REGION,
            "REELQUEUE_SQS_ENDPOINT_URL": sqs_endpoint_url,
            "REELQUEUE_SQS_QUEUE_PREFIX": f"rq{tag}-",
            "REELQUEUE_S3_ENDPOINT_URL": s3_endpoint_url,
            "REELQUEUE_S3_BUCKET": f"rq-{tag}",
            "REELQUEUE_PUBLIC_BASE_URL": self.base_url,
            "REELQUEUE_VISIBILITY_TIMEOUT_S": "15",
            "REELQUEUE_LOCK_TTL_MS": "15000",
            "REELQUEUE_MAX_RECEIVE_COUNT": "5",
            "REELQUEUE_MAX_ATTEMPTS": "5",
            "REELQUEUE_RETRY_BASE_DELAY_S": "1",
            "REELQUEUE_RETRY_MAX_DELAY_S": "5",
            "REELQUEUE_SHUTDOWN_DEADLINE_S": "10",
            "REELQUEUE_TRANSCODE_SPEED": "ultrafast",
            "REELQUEUE_WORK_DIR": str(self.workdir / "work"),
            "REELQUEUE_STATIC_ROOT": str(self.workdir / "static"),
            "REELQUEUE_RUNWAY_API_KEY": runway.api_key,
            "REELQUEUE_RUNWAY_BASE_URL": runway.base_url,
            "REELQUEUE_LUMA_API_KEY": luma.api_key,
            "REELQUEUE_LUMA_BASE_URL": luma.base_url,
            "REELQUEUE_PROVIDER_TIMEOUT_S": "10",
            "REELQUEUE_LOG_FORMAT": "json",
            "REELQUEUE_LOG_LEVEL": "INFO",
            "REELQUEUE_SECRET_KEY": secrets.token_urlsafe(32),
            "REELQUEUE_DEBUG": "0",
            "REELQUEUE_THROTTLE_USER_POSTS": "100000/minute",
            "PYTHONUNBUFFERED": "1",
            **AWS_DUMMY,
        }
        self.env.update(env or {})
        self.api_workers, self.api_threads = api_workers, api_threads
        self.specs: dict[str, WorkerSpec] = {}
        for spec in workers:
            if spec.name in self.specs or spec.name == "api":
                raise ValueError(f"duplicate process name {spec.name!r}")
            self.specs[spec.name] = spec
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.samples: dict[str, list[Sample]] = {}
        self._samples_lock = threading.Lock()
        self.tokens: dict[str, str] = {}  # user name -> token
        self._staff_token: str | None = None
        self._sessions: dict[str, requests.Session] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Stack:
        try:
            self.prepare()
            self.start_api()
            for name in self.specs:
                self.start_worker(name)
        except BaseException:
            self.close()
            raise
        return self

    def prepare(self) -> None:
        """Schema, Django tables, SQS queues (+ DLQs) and the S3 bucket; all idempotent."""
        self.run_cli("-m", "src.interfaces.cli", "migrate")
        self.run_cli("-m", "apps.manage", "migrate", "--no-input", "-v", "0")
        self.run_cli("-m", "src.interfaces.cli", "ensure-queues")
        from src.infrastructure.storage.s3 import S3Storage, make_s3_client

        client = make_s3_client(region=REGION, endpoint_url=self.env["REELQUEUE_S3_ENDPOINT_URL"])
        S3Storage(client, bucket=self.env["REELQUEUE_S3_BUCKET"]).ensure_bucket()

    def run_cli(self, *args: str, timeout_s: float = 120) -> str:
        """Run ``python <args>`` with the stack's env; its stdout (not logged: it may hold a token)."""
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env=self._env(), capture_output=True,
                              text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise StackError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_api(self, timeout_s: float = 60) -> None:
        command = [sys.executable, "-m", "gunicorn", "apps.reelqueue_api.wsgi:application",
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.api_workers),
                   "--threads", str(self.api_threads), "--worker-class", "gthread",
                   "--timeout", "60", "--graceful-timeout", "10",
                   "--no-control-socket"]  # its default path is shared by every gunicorn of the user
        self._spawn("api", command, {})
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive("api")
            try:
                requests.get(f"{self.api_url}/jobs", timeout=10)  # 401 is fine: it answers
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise StackError(f"the API did not answer in {timeout_s} s; see {self.log_dir}") from None
                time.sleep(0.1)

    def stop_api(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int | None:
        return self._stop("api", sig, timeout_s)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or restart) the worker ``name`` of the specs given to the constructor."""
        spec = self.specs[name]
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            raise StackError(f"worker {name!r} is already running")
        return self._spawn(name, spec.command(), spec.env)

    def stop_worker(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int | None:
        """Send ``sig`` and wait for the exit; its return code (None: still running, SIGSTOP)."""
        return self._stop(name, sig, timeout_s)

    def spawn(self, name: str, command: Sequence[str],
              env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start another process of the stack (e.g. ``cli reconcile --loop``) with the stack's env
        plus ``env``; logged, stopped and checked like the others (by ``stop_worker(name)``)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            raise StackError(f"process {name!r} is already running")
        return self._spawn(name, list(command), env or {})

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
        for name in list(self.procs):
            self._stop(name, signal.SIGTERM, 20)

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("REELQUEUE_")}
        return {**base, **self.env, **(extra or {})}

    def _spawn(self, name: str, command: list[str], extra: Mapping[str, str]) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.stdout.log").open("ab") as out, \
                (self.log_dir / f"{name}.stderr.log").open("ab") as err:
            proc = subprocess.Popen(command, cwd=ROOT, env=self._env(extra), stdout=out, stderr=err,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def _stop(self, name: str, sig: int, timeout_s: float) -> int | None:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is not None:
            return proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the group: gunicorn's workers, too
        if sig in (signal.SIGSTOP, signal.SIGTSTP):
            return None
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=10)

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = (self.log_dir / f"{name}.stderr.log").read_text(errors="replace")[-3000:]
            raise StackError(f"{name} exited with {proc.returncode}:\n{tail}")

    # --- logs ------------------------------------------------------------------------------------

    def log_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log"))

    def logs(self) -> list[str]:
        """Every line every process of this stack wrote (stdout and stderr), for scanning."""
        lines: list[str] = []
        for path in self.log_files():
            lines.extend(path.read_text(errors="replace").splitlines())
        return lines

    # --- users and HTTP --------------------------------------------------------------------------

    def create_user(self, name: str, *, staff: bool = False) -> str:
        """Create a user with ``create_api_token``; returns the token. The command shows a token
        only when it makes one (only its digest is stored): a name seen before gets the token
        this stack was shown, a user already in the database a new one (``--rotate``)."""
        if name in self.tokens:
            return self.tokens[name]
        args = ["-m", "apps.manage", "create_api_token", name, "--rotate"] + (["--staff"] if staff else [])
        token = self.run_cli(*args).split()[-1]
        self.tokens[name] = token
        return token

    def staff_token(self) -> str:
        if self._staff_token is None:
            self._staff_token = self.create_user(f"staff-{uuid.uuid4().hex[:6]}", staff=True)
        return self._staff_token

    def client(self, token: str | None = None) -> requests.Session:
        """A session sending ``Authorization: Token <token>`` (none: anonymous). Reused per token."""
        key = token or ""
        if key not in self._sessions:
            session = requests.Session()
            if token:
                session.headers["Authorization"] = f"Token {token}"
            self._sessions[key] = session
        return self._sessions[key]

    def upload(self, token: str, data: bytes | Path, content_type: str) -> str:
        """``POST /uploads`` then PUT the bytes to the presigned URL; returns the storage key."""
        body = data.read_bytes() if isinstance(data, Path) else data
        answer = self.client(token).post(f"{self.api_url}/uploads", json={"content_type": content_type},
                                         timeout=30)
        _expect(answer, 201)
        grant = answer.json()
        put = requests.request(grant.get("method", "PUT"), grant["url"], data=body,
                               headers=grant["headers"], timeout=60)
        if put.status_code >= 300:
            raise StackError(f"presigned PUT answered {put.status_code}: {put.text[:500]}")
        return str(grant["key"])

    def submit_video(self, token: str, source: str, **fields: Any) -> dict[str, Any]:
        """``POST /video-jobs``; the accepted job (202), else StackError with the answer."""
        answer = self.client(token).post(f"{self.api_url}/video-jobs", json={"source": source, **fields},
                                         timeout=30)
        _expect(answer, 202)
        return dict(answer.json())

    def submit_ai(self, token: str, **fields: Any) -> dict[str, Any]:
        """``POST /ai-jobs`` with these fields (model, mode, prompt, ...); the accepted job."""
        answer = self.client(token).post(f"{self.api_url}/ai-jobs", json=fields, timeout=30)
        _expect(answer, 202)
        return dict(answer.json())

    def job(self, job_id: str, token: str | None = None) -> dict[str, Any]:
        """``GET /jobs/{id}`` (default: as staff)."""
        answer = self.client(token or self.staff_token()).get(f"{self.api_url}/jobs/{job_id}", timeout=30)
        _expect(answer, 200)
        return dict(answer.json())

    def jobs(self, token: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Every job visible to ``token`` (default: staff) matching ``filters``, all pages."""
        session = self.client(token or self.staff_token())
        results: list[dict[str, Any]] = []
        url: str | None = f"{self.api_url}/jobs"
        params: dict[str, Any] | None = {"limit": PAGE, **filters}
        while url:
            answer = session.get(url, params=params, timeout=30)
            _expect(answer, 200)
            page = answer.json()
            results.extend(page["results"])
            url, params = page["next"], None
        return results

    def wait_terminal(self, ids: Iterable[str], timeout_s: float, *, token: str | None = None,
                      interval_s: float = 0.25) -> dict[str, dict[str, Any]]:
        """Poll until every job is succeeded, failed or cancelled; their last views.

        Polls ``GET /jobs`` (all pages, one request per ``PAGE`` jobs) and records every sample seen
        of each job in :attr:`samples`. Raises StackError naming the unfinished jobs at the deadline,
        or when a stack process died.
        """
        pending = set(ids)
        final: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while pending:
            self._check_processes()
            try:
                views = self.jobs(token)
            except (requests.RequestException, StackError):
                views = []  # the API may be restarting (a fault test): keep polling
            now = time.monotonic()
            for view in views:
                job_id = view["id"]
                if job_id not in pending:
                    continue
                self._record(now, view)
                if view["status"] in TERMINAL:
                    final[job_id] = view
                    pending.discard(job_id)
            if not pending:
                break
            if now > deadline:
                raise StackError(f"{len(pending)} job(s) not finished after {timeout_s} s: "
                                 f"{sorted(pending)[:10]}")
            time.sleep(interval_s)
        return final

    @contextlib.contextmanager
    def watching(self, interval_s: float = 0.1, *, token: str | None = None) -> Iterator[None]:
        """While the block runs, a thread polls ``GET /jobs?status=processing`` every ``interval_s``
        and records what it sees in :attr:`samples` (catches short jobs' live progress, even while
        the test is still submitting)."""
        stop = threading.Event()

        def poll() -> None:
            session = requests.Session()  # its own: Sessions are not shared across threads
            session.headers["Authorization"] = f"Token {token or self.staff_token()}"
            while not stop.is_set():
                try:
                    sent_s = time.monotonic()
                    answer = session.get(f"{self.api_url}/jobs", timeout=10,
                                         params={"status": "processing", "limit": PAGE})
                    if answer.status_code == 200:
                        for view in answer.json()["results"]:
                            self._record(sent_s, view, by="watch")
                except requests.RequestException:
                    pass  # the API may be down on purpose
                stop.wait(interval_s)
            session.close()

        self.staff_token()  # created here, not in the thread
        thread = threading.Thread(target=poll, name="stack-watcher", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=15)

    def _record(self, at_s: float, view: Mapping[str, Any], *, by: str = "wait") -> None:
        sample = Sample(at_s, view["status"], view.get("stage"), view.get("percent"),
                        view.get("attempts", 0), by)
        with self._samples_lock:
            self.samples.setdefault(view["id"], []).append(sample)

    def _check_processes(self) -> None:
        for name in self.procs:
            proc = self.procs[name]
            if proc.returncode is None and proc.poll() is not None:
                self._check_alive(name)


def _expect(answer: requests.Response, status: int) -> None:
    if answer.status_code != status:
        raise StackError(f"{answer.request.method} {answer.url} answered {answer.status_code} "
                         f"(expected {status}): {answer.text[:1000]}")
