"""Commands the publisher sends to the application: imperative, plain data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class SubmitVideoJob:
    owner_id: str
    source: str
    preset: str = "720p"
    poster_offset_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class SubmitAIJob:
    owner_id: str
    model: str
    mode: str
    production_path: str | None = None
    prompt: str = ""
    input_image: str | None = None
    duration_s: int | None = None
    ratio: str | None = None
    seed: int | None = None
    num_frames: int | None = None
    audio: bool | None = None  # None: not asked for (False where the model takes it)
