"""Service instances a test starts itself, on its own ports and data directories.

The fault suite restarts PostgreSQL and Redis in the middle of a run; it must never touch the
machine's shared services, so each test session runs its own:

    with OwnPostgres(tmp_path / "pg") as pg, OwnRedis() as cache:
        pg.url, cache.url          # SQLAlchemy and redis URLs on 127.0.0.1
        pg.restart(); cache.restart()

PostgreSQL refuses to run as root: when this process is root, ``initdb`` and ``pg_ctl`` run as
the ``postgres`` system user (``runuser``), and the data directory is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = START_TIMEOUT_S, *, up: bool = True) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections (``up``) or refuses them."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                accepting = True
        except OSError:
            accepting = False
        if accepting is up:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} still {'closed' if up else 'open'} after {timeout_s}s")
        time.sleep(0.05)


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]  # the newest installed major version
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return path


class OwnPostgres:
    """A private PostgreSQL cluster: trust authentication, 127.0.0.1 only, no fsync."""

    def __init__(self, *, port: int | None = None, database: str = "reelqueue") -> None:
        # its own directory under the system's temp dir, never inside pytest's: pytest makes its
        # base directory private (0700) at each session start, which would lock the postgres user out
        self.root = Path(tempfile.mkdtemp(prefix="rq-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.database = database
        self.log_file = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        self._initialised = False
        self._created = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=60)

    def _init(self) -> None:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-instructions")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.data}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 200\nshared_buffers = 64MB\n"
            )
        self._initialised = True

    def start(self) -> OwnPostgres:
        if not self._initialised:
            self._init()
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), "-w",
                  "-t", str(int(START_TIMEOUT_S)), "start")
        wait_for_port(self.port)
        if not self._created:
            self._run(_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      self.database)
            self._created = True
        return self

    def stop(self) -> None:
        if self._initialised and self.running():
            self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            wait_for_port(self.port, up=False)

    def restart(self) -> None:
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), "-m", "fast",
                  "-w", "-t", str(int(START_TIMEOUT_S)), "restart")
        wait_for_port(self.port)

    def running(self) -> bool:
        return self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> OwnPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class OwnRedis:
    """A private redis-server on its own port, without persistence (a restart empties it)."""

    def __init__(self, *, port: int | None = None, root: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="rq-redis-"))
        self.log_file = self.root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        if self.process is not None and self.process.poll() is None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError("redis-server is not installed")
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        wait_for_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> OwnRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
