"""Transcode benchmark: a 60 s 1080p clip to 720p, our job handler vs the plain ffmpeg command.

    python -m bench.transcode [--duration-s 60] [--rounds 2] [--speed veryfast]

Both sides use the same settings: libx264 (same x264 preset, crf 23), bicubic scaling to
1280x720, yuv420p, AAC at 128 kb/s, ``+faststart``. The handler side runs the whole video job
(storage download, probe, disk check, transcode, poster, upload) with in-memory adapters and the
real PyAVTranscoder; the command side is imageio-ffmpeg's bundled ``ffmpeg``. Each side runs
``--rounds`` times, alternating; the best time of each is compared (the fastest run is the one
least disturbed by other work on the machine). CPU time (user + system, every thread) is
printed too: unlike wall time it barely moves when other processes share the cores.
Not a test: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

from src.application.handlers import ProcessVideoJobHandler
from src.application.retry import RetryPolicy
from src.domain.jobs import VideoJob
from src.domain.status import JobStatus
from src.infrastructure.media.fetcher import HttpUrlFetcher
from src.infrastructure.media.presets import PRESETS, fit
from src.infrastructure.media.samples import make_clip
from src.infrastructure.media.transcoder import PyAVTranscoder
from src.infrastructure.memory import (
    FakeClock,
    InMemoryDatabase,
    InMemoryIdempotency,
    InMemoryJobRepository,
    InMemoryProgress,
    InMemoryStorage,
)

PRESET = "720p"


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        source = make_clip(Path(tmp) / "source.mp4", width=1920, height=1080,
                           duration_s=args.duration_s, fps=30, speed="ultrafast")
        ours, plain = _rounds(source, Path(tmp), args)
    _print_table(args, ours=ours, plain=plain)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--speed", default="veryfast", help="the libx264 preset, both sides")
    return parser.parse_args()


Timing = tuple[float, float]  # wall seconds, CPU seconds


def _rounds(source: Path, tmp: Path, args: argparse.Namespace) -> tuple[list[Timing], list[Timing]]:
    ours: list[Timing] = []
    plain: list[Timing] = []
    for round_ in range(args.rounds):
        ours.append(_through_handler(source, tmp, speed=args.speed))
        plain.append(_through_command(source, tmp / "plain.mp4", speed=args.speed))
        print(f"round {round_ + 1}: handler {ours[-1][0]:.2f} s (CPU {ours[-1][1]:.2f} s), "
              f"ffmpeg {plain[-1][0]:.2f} s (CPU {plain[-1][1]:.2f} s), "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return ours, plain


def _through_handler(source: Path, tmp: Path, *, speed: str) -> Timing:
    clock = FakeClock()
    jobs = InMemoryJobRepository(InMemoryDatabase(clock), VideoJob)
    storage = InMemoryStorage()
    storage.put_bytes("inputs/source.mp4", source.read_bytes(), "video/mp4")
    handler = ProcessVideoJobHandler(
        storage=storage, transcoder=PyAVTranscoder(speed=speed), fetcher=HttpUrlFetcher(),
        workdir=tmp, jobs=jobs, locks=InMemoryIdempotency(clock),
        progress=InMemoryProgress(clock), clock=clock, retry_policy=RetryPolicy(),
    )
    now = clock.now()
    job = VideoJob(owner_id="bench", source="inputs/source.mp4", preset=PRESET,
                   created_at=now, updated_at=now)
    jobs.add([job], [])
    started, cpu_started = time.perf_counter(), time.process_time()
    handler.handle(job.id)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    done = jobs.get(job.id)
    if done.status is not JobStatus.SUCCEEDED:
        raise SystemExit(f"the job did not succeed: {done.status.value} {done.error}")
    return elapsed, cpu


def _through_command(source: Path, dest: Path, *, speed: str) -> Timing:
    width, height = fit(1920, 1080, PRESETS[PRESET])
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
        "-vf", f"scale={width}:{height}:flags=bicubic", "-c:v", "libx264", "-preset", speed,
        "-crf", str(PRESETS[PRESET].crf), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", str(PRESETS[PRESET].audio_bitrate), "-movflags", "+faststart", str(dest),
    ]
    started, cpu_started = time.perf_counter(), _children_cpu_s()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, _children_cpu_s() - cpu_started


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _print_table(args: argparse.Namespace, *, ours: list[Timing], plain: list[Timing]) -> None:
    print()
    print(f"{args.duration_s:.0f} s 1920x1080 30 fps H.264+AAC -> {PRESET} (x264 {args.speed}, "
          f"crf {PRESETS[PRESET].crf}), {args.rounds} rounds, {os.cpu_count()} CPUs")
    print()
    print("| pipeline | best wall time | median wall time | best CPU time |")
    print("|---|---|---|---|")
    for name, runs in (("job handler (PyAVTranscoder)", ours), ("ffmpeg command line", plain)):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"| {name} | {min(walls):.2f} s | {statistics.median(walls):.2f} s | {min(cpus):.2f} s |")
    print()
    wall_ratio = min(w for w, _ in plain) / min(w for w, _ in ours)
    cpu_ratio = min(c for _, c in plain) / min(c for _, c in ours)
    print(f"speed ratio, ffmpeg time / handler time (target >= 0.90x): wall {wall_ratio:.2f}x, "
          f"CPU {cpu_ratio:.2f}x")


if __name__ == "__main__":
    main()
