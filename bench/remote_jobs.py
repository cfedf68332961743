"""Remote jobs never hold a worker slot: 100 Runway jobs, 30 s generation, one worker at concurrency 4.

    python -m bench.remote_jobs [--jobs 100] [--generation-s 30] [--concurrency 4]

A real AI worker process (remote providers only) on the embedded default (SQLite, SQL lease
queue, local storage) against the fake Runway server. A worker that waited for the provider
would need jobs x generation / concurrency (the naive bound); one that submits, frees its slot
and checks back later needs about one generation time. Also measured: the remote-only worker's
start-up time and peak memory, in the project's environment (torch installed) and in a fresh
one with only requirements-worker.txt (no torch, no Django).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from src import bootstrap
from src.application.commands import SubmitAIJob
from src.config import Settings
from src.infrastructure.db.migrations import upgrade
from tests.fakes import FakeRunway

ROOT = Path(__file__).resolve().parents[1]
SLIM_VENV = ROOT / "bench" / ".venv-worker"


def worker_env(workdir: Path, runway: FakeRunway, concurrency: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELQUEUE_")}
    env.update({
        "REELQUEUE_DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "REELQUEUE_QUEUE_BACKEND": "sql",
        "REELQUEUE_STORAGE_BACKEND": "local",
        "REELQUEUE_STORAGE_ROOT": str(workdir / "storage"),
        "REELQUEUE_RUNWAY_BASE_URL": runway.base_url,
        "REELQUEUE_RUNWAY_API_KEY": runway.api_key,
        "REELQUEUE_WORKER_TYPE": "remote",
        "REELQUEUE_CONCURRENCY": str(concurrency),
        "REELQUEUE_HEALTH_FILE": str(workdir / "health"),
        "REELQUEUE_LOG_LEVEL": "WARNING",
    })
    return env


def submit(settings: Settings, jobs: int) -> list[str]:
    adapters = bootstrap.build(settings)
    adapters.storage.upload("uploads/bench/cat.png", _png(), content_type="image/png")
    service = bootstrap.job_service(adapters)
    command = SubmitAIJob(owner_id="bench", model="gen4_turbo", mode="i2v", prompt="a cat",
                          production_path="fashion",
                          input_image="uploads/bench/cat.png", duration_s=5, ratio="1280:720")
    return [service.submit_ai(command).id for _ in range(jobs)]


def _png() -> Path:
    path = Path(tempfile.mkstemp(suffix=".png")[1])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return path


def wait_done(settings: Settings, ids: list[str], timeout_s: float) -> dict[str, int]:
    adapters = bootstrap.build(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = [adapters.ai_jobs.get(i).status for i in ids]
        if all(s.is_terminal for s in statuses):
            break
        time.sleep(0.5)
    counts: dict[str, int] = {}
    for job_id in ids:
        status = adapters.ai_jobs.get(job_id).status.value
        counts[status] = counts.get(status, 0) + 1
    return counts


def start_worker(python: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([python, "-m", "src.interfaces.workers.ai.main"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(health: Path, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until the worker's loop turned once (it touches its health file)."""
    started = time.monotonic()
    while not health.exists() and proc.poll() is None and time.monotonic() - started < 60:
        time.sleep(0.01)
    return time.monotonic() - started


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def drain(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeRunway(generation_s=args.generation_s,
                                                         queue_s=0.5) as runway:
        workdir = Path(tmp)
        env = worker_env(workdir, runway, args.concurrency)
        settings = Settings.from_env(env)
        upgrade(settings.database_url)
        proc = start_worker(sys.executable, env)
        wait_ready(workdir / "health", proc)
        started = time.monotonic()  # from the first submission, with the worker already running
        ids = submit(settings, args.jobs)
        try:
            counts = wait_done(settings, ids, timeout_s=args.generation_s * 10 + 120)
        finally:
            wall_s = time.monotonic() - started
            stop(proc)
        creates = runway.create_count()
    naive_s = args.jobs * args.generation_s / args.concurrency
    print(f"\n{args.jobs} remote jobs, generation {args.generation_s:.0f} s, concurrency "
          f"{args.concurrency}: {counts}, provider creates {creates}")
    print("| measure | seconds | ratio |\n|---|--:|--:|")
    print(f"| wall time, all jobs finished | {wall_s:.1f} | {wall_s / args.generation_s:.2f}x "
          "the generation time (target < 1.5x) |")
    print(f"| naive bound (jobs x generation / concurrency) | {naive_s:.0f} | "
          f"{naive_s / wall_s:.1f}x slower than measured |")


def startup(python: str, label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeRunway() as runway:
        workdir = Path(tmp)
        env = worker_env(workdir, runway, 4)
        upgrade(Settings.from_env(env).database_url)
        proc = start_worker(python, env)
        ready_s = wait_ready(workdir / "health", proc)
        time.sleep(1.0)
        peak_kib = _peak_rss_kib(proc.pid)
        imported = _imports_torch(python)
        stop(proc)
    print(f"| {label} | {ready_s:.2f} | {peak_kib / 1024:.0f} | {imported} |")


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _imports_torch(python: str) -> str:
    code = ("import sys; from src import bootstrap; from src.config import Settings; "
            "a = bootstrap.build(Settings(queue_backend='memory')); bootstrap.ai_handler(a); "
            "print('torch' in sys.modules)")
    done = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return "torch imported" if done.stdout.strip() == "True" else "torch not imported"


def slim_python() -> str:
    python = SLIM_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SLIM_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                        str(ROOT / "requirements-worker.txt")], check=True)
    return str(python)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--generation-s", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    drain(args)
    if args.skip_startup:
        return
    print("\n| remote-only AI worker | start-up to first loop turn (s) | peak RSS (MiB) | torch |")
    print("|---|--:|--:|---|")
    startup(sys.executable, "project environment (torch + diffusers installed)")
    startup(slim_python(), "requirements-worker.txt only (no torch, no Django)")


if __name__ == "__main__":
    main()
