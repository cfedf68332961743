from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from src.application.ports import MediaInfo
from src.domain.errors import PermanentError, TransientError


class FakeTranscoder:
    """Reads a tiny text "container": ``FAKEVIDEO <width> <height> <duration_s>``."""

    def probe(self, path: Path) -> MediaInfo:
        try:
            magic, width, height, duration = Path(path).read_text().split()
            assert magic == "FAKEVIDEO"
            return MediaInfo(duration_s=float(duration), width=int(width), height=int(height),
                             video_codec="fake", size_bytes=Path(path).stat().st_size)
        except (ValueError, AssertionError, UnicodeDecodeError):
            raise PermanentError("the source is not a readable video") from None

    def transcode(self, src: Path, dest: Path, *, preset: str,
                  on_progress: Callable[[float], None]) -> MediaInfo:
        info = self.probe(src)
        for percent in (25, 50, 75, 100):
            on_progress(percent)
        target = int(preset.rstrip("p"))
        height = min(target, info.height)
        width = (info.width * height // info.height) // 2 * 2
        dest.write_text(f"FAKEVIDEO {width} {height} {info.duration_s}")
        return MediaInfo(duration_s=info.duration_s, width=width, height=height,
                         video_codec="h264", audio_codec="aac", size_bytes=dest.stat().st_size)

    def poster(self, src: Path, dest: Path, *, offset_s: float) -> MediaInfo:
        info = self.probe(src)
        dest.write_bytes(b"\xff\xd8fake-jpeg\xff\xd9")
        return MediaInfo(duration_s=0, width=info.width, height=info.height, video_codec="mjpeg")


class FakeUrlFetcher:
    """Serves registered URLs; others are unreachable (a transient error)."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        self.failures_left: dict[str, int] = {}

    def fetch(self, url: str, dest: Path, *, max_bytes: int) -> int:
        if self.failures_left.get(url, 0) > 0:
            self.failures_left[url] -= 1
            raise TransientError(f"connection to {url} reset")
        if url not in self.pages:
            raise TransientError(f"could not reach {url}")
        data = self.pages[url]
        if len(data) > max_bytes:
            raise PermanentError(f"the download is over {max_bytes} bytes")
        dest.write_bytes(data)
        return len(data)
