"""The embedded default, end to end: two jobs submitted over HTTP, their progress shown live.

Run through ``./scripts/demo`` (which prepares the virtual environment). Everything lives
under ``var/demo``; no Postgres, Redis or AWS is needed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the library, for the tiny demo model builder
VAR = ROOT / "var" / "demo"
BAR_WIDTH = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(port: int, wan_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "REELQUEUE_DATABASE_URL": f"sqlite:///{VAR / 'reelqueue.sqlite3'}",
        "REELQUEUE_QUEUE_BACKEND": "sql",
        "REELQUEUE_STORAGE_BACKEND": "local",
        "REELQUEUE_STORAGE_ROOT": str(VAR / "storage"),
        "REELQUEUE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "REELQUEUE_WAN_MODEL_DIR": str(wan_dir),
        "REELQUEUE_WAN_NUM_INFERENCE_STEPS": env.get("REELQUEUE_WAN_NUM_INFERENCE_STEPS", "8"),
        "REELQUEUE_LOG_FORMAT": "text",
        "REELQUEUE_LOG_LEVEL": "WARNING",
        "REELQUEUE_SECRET_KEY": env.get("REELQUEUE_SECRET_KEY", secrets.token_urlsafe(32)),
        "REELQUEUE_RETRY_BASE_DELAY_S": "2",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def prepare(env: dict[str, str], wan_dir: Path) -> str:
    VAR.mkdir(parents=True, exist_ok=True)
    step("migrating the SQLite database")
    run(["-m", "src.interfaces.cli", "migrate"], env)
    run(["-m", "apps.manage", "migrate", "--no-input", "-v", "0"], env)
    if not (wan_dir / "model_index.json").exists():
        step("building a TINY RANDOM Wan model (offline demo weights: the video is noise; "
             "set WAN_MODEL_DIR to real weights)")
        from src.infrastructure.inference.wan_tiny import build_tiny_wan_models

        built = build_tiny_wan_models(wan_dir.parent / "tiny-wan-build")
        built.t2v.rename(wan_dir)
    step("generating a 4 s test clip")
    make_clip(VAR / "clip.mp4")
    step("creating the demo user and its API token")
    return run(["-m", "apps.manage", "create_api_token", "demo", "--rotate"], env).split()[-1]


def make_clip(path: Path) -> None:
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(96):
            x = np.arange(640, dtype=np.uint16)[None, :, None]
            frame = np.broadcast_to(((x + i * 8) % 256).astype(np.uint8), (360, 640, 3)).copy()
            frame[:, :, 1] = (i * 3) % 256
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def start(env: dict[str, str], port: int) -> list[subprocess.Popen[bytes]]:
    logs = VAR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "api": ["-m", "apps.manage", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "video-worker": ["-m", "src.interfaces.workers.video.main", "--concurrency", "1"],
        "ai-worker": ["-m", "src.interfaces.workers.ai.main", "--worker-type", "gpu"],
    }
    procs = []
    for name, args in commands.items():
        out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        procs.append(subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    step(f"started the API on http://127.0.0.1:{port}, a video worker and a Wan worker "
         f"(logs in {logs.relative_to(ROOT)})")
    return procs


def wait_for_api(base: str, token: str, procs: list[subprocess.Popen[bytes]]) -> None:
    for _ in range(300):
        if any(p.poll() is not None for p in procs):
            sys.exit("a process stopped early; see var/demo/logs/")
        try:
            if requests.get(f"{base}/providers", headers=auth(token), timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    sys.exit("the API did not start; see var/demo/logs/api.log")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def upload(base: str, token: str, path: Path) -> str:
    """Upload through a presigned PUT, as any client would; returns the storage key."""
    slot = requests.post(f"{base}/uploads", json={"content_type": "video/mp4"}, headers=auth(token),
                         timeout=10)
    slot.raise_for_status()
    grant = slot.json()
    upload = requests.put(grant["url"], data=path.read_bytes(), headers=grant["headers"], timeout=30)
    upload.raise_for_status()
    return grant["key"]


def submit(base: str, token: str) -> dict[str, str]:
    source = upload(base, token, VAR / "clip.mp4")
    jobs = {
        "video transcode (720p)": ("video-jobs", {"source": source, "preset": "720p"}),
        "Wan text-to-video (tiny model)": ("ai-jobs", {
            "model": "wan_local", "mode": "t2v", "prompt": "a paper boat on a pond",
            "production_path": "cinema", "ratio": "64:64", "num_frames": 9, "seed": 42,
        }),
    }
    ids = {}
    for label, (path, body) in jobs.items():
        answer = requests.post(f"{base}/{path}", json=body, headers=auth(token), timeout=10)
        if answer.status_code != 202:
            sys.exit(f"{label}: {answer.status_code} {answer.text}")
        ids[label] = answer.json()["id"]
    return ids


def watch(base: str, token: str, ids: dict[str, str]) -> dict[str, dict]:
    final: dict[str, dict] = {}
    drawn = 0
    print()
    while len(final) < len(ids):
        lines = []
        for label, job_id in ids.items():
            job = requests.get(f"{base}/jobs/{job_id}", headers=auth(token), timeout=10).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                final[label] = job
            lines.append(bar(label, job))
        if drawn:
            sys.stdout.write(f"\x1b[{drawn}A")  # redraw the bars in place
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        drawn = len(lines)
        time.sleep(0.3)
    return final


def bar(label: str, job: dict) -> str:
    percent = 100.0 if job["status"] == "succeeded" else float(job.get("percent") or 0)
    filled = int(BAR_WIDTH * percent / 100)
    stage = job.get("stage") or job["status"]
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"  {label:<32} [{bar}] {percent:5.1f}% {stage:<12} {job['status']:<10}"


def report(final: dict[str, dict], base: str, token: str, some_id: str) -> bool:
    print()
    ok = True
    for label, job in final.items():
        if job["status"] != "succeeded":
            ok = False
            print(f"  {label}: {job['status']} — {job.get('error')}")
            continue
        for output in job["outputs"]:
            print(f"  {label}: {VAR.relative_to(ROOT) / 'storage' / output['key']}")
    print(f"\nTry the API:\n  curl -H 'Authorization: Token {token}' {base}/jobs/{some_id}\n")
    return ok


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit-when-done", action="store_true",
                        help="stop everything once both jobs have finished (for scripts and tests)")
    args = parser.parse_args()
    port = free_port()
    wan_dir = Path(os.environ.get("WAN_MODEL_DIR") or VAR / "tiny-wan")
    env = environment(port, wan_dir)
    token = prepare(env, wan_dir)
    procs = start(env, port)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for_api(base, token, procs)
        ids = submit(base, token)
        ok = report(watch(base, token, ids), base, token, next(iter(ids.values())))
        if not args.exit_when_done:
            step("running; press Ctrl-C to stop")
            signal.pause()
    except KeyboardInterrupt:
        ok = True
    finally:
        step("stopping")
        stop(procs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
