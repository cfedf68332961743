"""ProcessVideoJobHandler: download, transcode, poster, upload — progress at each stage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from src.application.handlers.base import HandlerDependencies, JobHandler, Stopper
from src.application.outcomes import Outcome
from src.application.ports import MediaInfo, Storage, Transcoder, UrlFetcher
from src.domain.errors import Interrupted, PermanentError, TransientError
from src.domain.jobs import Output, VideoJob
from src.domain.sources import is_url


@dataclass(frozen=True, kw_only=True)
class VideoLimits:
    max_source_bytes: int = 2 * 1024**3
    max_duration_s: float = 3 * 3600
    max_width: int = 7680
    max_height: int = 7680
    disk_headroom: float = 3.0  # free space needed, as a multiple of the source size


class ProcessVideoJobHandler(JobHandler[VideoJob]):
    def __init__(
        self,
        *,
        storage: Storage,
        transcoder: Transcoder,
        fetcher: UrlFetcher,
        limits: VideoLimits = VideoLimits(),
        **base: Unpack[HandlerDependencies[VideoJob]],
    ) -> None:
        super().__init__(**base)
        self.storage = storage
        self.transcoder = transcoder
        self.fetcher = fetcher
        self.limits = limits

    def run(self, job: VideoJob, should_stop: Stopper) -> Outcome:
        job = self.start(job)
        return self.produce(job, lambda tmp: self.process(job, tmp, should_stop))

    def process(self, job: VideoJob, tmp: Path, should_stop: Stopper) -> tuple[Output, ...]:
        source = self.fetch_source(job, tmp / "source")
        info = self.check_source(source)
        self.check_disk(tmp, source)
        if should_stop():
            raise Interrupted("stopped before transcoding")
        transcoded = self.transcoder.transcode(
            source, tmp / "video.mp4", preset=job.preset,
            on_progress=_checkpoint(self.report(job, "transcoding"), should_stop),
        )
        poster_at = min(job.poster_offset_s, max(info.duration_s - 0.1, 0))
        poster = self.transcoder.poster(source, tmp / "poster.jpg", offset_s=poster_at)
        return self.upload(job, tmp, transcoded, poster)

    def fetch_source(self, job: VideoJob, dest: Path) -> Path:
        record = self.report(job, "downloading")
        record(0)
        if is_url(job.source):
            self.fetcher.fetch(job.source, dest, max_bytes=self.limits.max_source_bytes)
        else:
            self.storage.download(job.source, dest)
        record(100)
        return dest

    def check_source(self, source: Path) -> MediaInfo:
        size = source.stat().st_size
        if size == 0:
            raise PermanentError("the source file is empty (0 bytes)")
        if size > self.limits.max_source_bytes:
            raise PermanentError(f"the source is {size} bytes; the limit is {self.limits.max_source_bytes}")
        info = self.transcoder.probe(source)
        if info.duration_s > self.limits.max_duration_s:
            raise PermanentError(
                f"the source lasts {info.duration_s:.0f} s; the limit is {self.limits.max_duration_s:.0f} s"
            )
        if info.width > self.limits.max_width or info.height > self.limits.max_height:
            raise PermanentError(
                f"the source is {info.width}x{info.height}; the limit is "
                f"{self.limits.max_width}x{self.limits.max_height}"
            )
        return info

    def check_disk(self, tmp: Path, source: Path) -> None:
        needed = int(source.stat().st_size * self.limits.disk_headroom)
        free = shutil.disk_usage(tmp).free
        if free < needed:
            raise TransientError(f"not enough disk space to transcode: {free} bytes free, {needed} needed")

    def upload(
        self, job: VideoJob, tmp: Path, video: MediaInfo, poster: MediaInfo
    ) -> tuple[Output, ...]:
        record = self.report(job, "uploading")
        record(0)
        video_key = f"outputs/{job.id}/video.mp4"
        poster_key = f"outputs/{job.id}/poster.jpg"
        video_size = self.storage.upload(video_key, tmp / "video.mp4", content_type="video/mp4")
        record(90)
        poster_size = self.storage.upload(poster_key, tmp / "poster.jpg", content_type="image/jpeg")
        record(100)
        return (
            Output(key=video_key, role="video", content_type="video/mp4", size_bytes=video_size,
                   duration_s=video.duration_s, width=video.width, height=video.height,
                   codec=video.video_codec),
            Output(key=poster_key, role="poster", content_type="image/jpeg", size_bytes=poster_size,
                   width=poster.width, height=poster.height, codec="mjpeg"),
        )


def _checkpoint(record: Callable[[float], None], should_stop: Stopper) -> Callable[[float], None]:
    """A progress callback that is also a checkpoint: a long transcode stops when asked to."""

    def report(percent: float) -> None:
        record(percent)
        if should_stop():
            raise Interrupted(f"stopped while transcoding, at {percent:.0f}%")

    return report
