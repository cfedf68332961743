"""Small helpers shared by the provider tests (not fixtures)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import av

from src.application.ports import RemoteProvider, RemoteState, RemoteTask
from src.domain.jobs import AIJob, Mode

TERMINAL = (RemoteState.SUCCEEDED, RemoteState.FAILED, RemoteState.CANCELLED)


def ai_job(*, model: str, provider: str, prompt: str = "a red dress turning", mode: Mode = Mode.TEXT_TO_VIDEO,
           **fields: object) -> AIJob:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return AIJob(owner_id="owner-1", model=model, provider=provider, production_path="fashion", mode=mode,
                 prompt=prompt, created_at=now, updated_at=now, **fields)  # type: ignore[arg-type]


def poll_until_done(provider: RemoteProvider, task_id: str, timeout_s: float = 5.0) -> list[RemoteTask]:
    """Every answer seen while polling, the last one terminal."""
    seen: list[RemoteTask] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen.append(provider.poll(task_id))
        if seen[-1].state in TERMINAL:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1]}")


def frame_count(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a video, by decoding it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.width, stream.codec_context.height
