from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class MediaInfo:
    duration_s: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None = None
    size_bytes: int = 0


class Transcoder(Protocol):
    def probe(self, path: Path) -> MediaInfo:
        """Read the file's streams; :class:`PermanentError` if it is not a usable video."""
        ...

    def transcode(
        self, src: Path, dest: Path, *, preset: str, on_progress: Callable[[float], None]
    ) -> MediaInfo:
        """Encode ``src`` to ``dest``; ``on_progress`` gets 0-100 from decoded time over duration."""
        ...

    def poster(self, src: Path, dest: Path, *, offset_s: float) -> MediaInfo:
        """Write a JPEG frame taken at ``offset_s``."""
        ...


class UrlFetcher(Protocol):
    def fetch(self, url: str, dest: Path, *, max_bytes: int) -> int:
        """Download a user-given https URL (never an internal address); returns its size."""
        ...
