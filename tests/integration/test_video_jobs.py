"""Video jobs end to end through ProcessVideoJobHandler: the real transcoder, in-memory everything else.

Clips are generated here (test pattern + 440 Hz tone); outputs are checked by decoding them.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from src.application.handlers import ProcessVideoJobHandler, VideoLimits
from src.application.outcomes import Action
from src.application.retry import RetryPolicy
from src.domain.jobs import VideoJob
from src.domain.status import JobStatus
from src.infrastructure.media.fetcher import HttpUrlFetcher
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

DURATION_S = 2.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("job-clips")
    made = {
        "landscape": make_clip(root / "l.mp4", width=640, height=360, duration_s=DURATION_S),
        "portrait": make_clip(root / "p.mp4", width=360, height=640, duration_s=DURATION_S),
        "odd": make_clip(root / "o.mp4", width=333, height=199, duration_s=DURATION_S),
        "audio-only": make_clip(root / "a.m4a", video=False, duration_s=1.0),
        "absurd": make_clip(root / "s.mp4", width=1280, height=16, duration_s=0.5, audio=False),
    }
    data = {name: path.read_bytes() for name, path in made.items()}
    data["zero-bytes"] = b""
    data["noise"] = bytes(range(256)) * 64
    data["truncated"] = data["landscape"][: len(data["landscape"]) // 2]
    return data


@dataclass
class World:
    handler: ProcessVideoJobHandler
    jobs: InMemoryJobRepository
    storage: InMemoryStorage
    progress: InMemoryProgress
    clock: FakeClock
    workdir: Path

    def submit(self, source: str, *, preset: str = "720p", data: bytes | None = None) -> VideoJob:
        if data is not None:
            self.storage.put_bytes(source, data, "video/mp4")
        now = self.clock.now()
        job = VideoJob(owner_id="tests", source=source, preset=preset, poster_offset_s=1.0,
                       created_at=now, updated_at=now)
        self.jobs.add([job], [])
        return job

    def stages(self, job_id: str) -> list[tuple[str, float]]:
        return [(p.stage, p.percent) for p in self.progress.history[job_id]]


def make_world(tmp_path: Path, *, limits: VideoLimits = VideoLimits()) -> World:
    clock = FakeClock()
    jobs = InMemoryJobRepository(InMemoryDatabase(clock), VideoJob)
    storage, progress = InMemoryStorage(), InMemoryProgress(clock)
    workdir = tmp_path / "work"
    workdir.mkdir()
    fetcher = HttpUrlFetcher(timeout_s=1.0, resolver=lambda host, port: ["127.0.0.1"],
                             allow_http_hosts={"media.test"}, allowed_private_networks={"127.0.0.0/8"})
    handler = ProcessVideoJobHandler(
        storage=storage, transcoder=PyAVTranscoder(speed="ultrafast"), fetcher=fetcher, limits=limits,
        workdir=workdir, jobs=jobs, locks=InMemoryIdempotency(clock), progress=progress, clock=clock,
        retry_policy=RetryPolicy(max_attempts=3, rng=lambda: 0.5),
    )
    return World(handler, jobs, storage, progress, clock, workdir)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


# --- success --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "preset", "size"),
    [("landscape", "720p", (640, 360)), ("portrait", "480p", (360, 640)), ("odd", "720p", (332, 198))],
)
def test_a_video_job_succeeds_with_verified_outputs(world, clips, tmp_path, clip, preset, size):
    job = world.submit(f"inputs/{clip}.mp4", preset=preset, data=clips[clip])
    assert world.jobs.get(job.id).status is JobStatus.QUEUED

    outcome = world.handler.handle(job.id)

    done = world.jobs.get(job.id)
    assert outcome.action is Action.ACK and done.status is JobStatus.SUCCEEDED, done.error
    video, poster = done.outputs
    assert (video.role, video.width, video.height, video.codec) == ("video", *size, "h264")
    assert video.duration_s == pytest.approx(DURATION_S, abs=0.15)
    _check_video(world.storage, video.key, size, tmp_path)
    _check_poster(world.storage, poster.key, (poster.width, poster.height))
    assert video.size_bytes == len(world.storage.objects[video.key][0])
    assert list(world.workdir.iterdir()) == []


def test_the_job_reports_each_stage_in_order_with_rising_transcoding_percent(world, clips):
    job = world.submit("inputs/landscape.mp4", data=clips["landscape"])
    world.handler.handle(job.id)

    stages = world.stages(job.id)
    assert [s for s, _ in _runs(stages)] == ["downloading", "transcoding", "uploading"]
    transcoding = [p for s, p in stages if s == "transcoding"]
    assert transcoding == sorted(transcoding) and len(transcoding) > 10 and transcoding[-1] == 100
    done = world.jobs.get(job.id)
    assert (done.stage, done.percent, done.attempts) == ("uploading", 100, 1)


# --- bad inputs: one attempt, failed for good, with a reason -------------------------------------


@pytest.mark.parametrize(
    ("clip", "reason"),
    [
        ("audio-only", "the source has no video stream (it holds audio only)"),
        ("zero-bytes", "the source file is empty (0 bytes)"),
        ("noise", "the source is not a readable video"),
        ("truncated", "the source is truncated or corrupt: only"),
        ("absurd", "the source has absurd dimensions (1280x16)"),
    ],
)
def test_a_bad_source_fails_once_and_permanently_with_a_readable_reason(world, clips, clip, reason):
    job = world.submit(f"inputs/{clip}.mp4", data=clips[clip])

    outcome = world.handler.handle(job.id)

    _assert_failed_once(world, job, outcome, reason)


def test_a_source_longer_than_the_limit_fails_permanently(tmp_path, clips):
    world = make_world(tmp_path, limits=VideoLimits(max_duration_s=1.0))
    job = world.submit("inputs/landscape.mp4", data=clips["landscape"])
    _assert_failed_once(world, job, world.handler.handle(job.id), "the source lasts 2 s; the limit is 1 s")


def test_a_source_larger_than_the_dimension_limit_fails_permanently(tmp_path, clips):
    world = make_world(tmp_path, limits=VideoLimits(max_width=320, max_height=320))
    job = world.submit("inputs/landscape.mp4", data=clips["landscape"])
    outcome = world.handler.handle(job.id)
    _assert_failed_once(world, job, outcome, "the source is 640x360; the limit is 320x320")


def test_a_refused_url_fails_permanently(world):
    job = world.submit("https://10.0.0.1/clip.mp4")
    _assert_failed_once(world, job, world.handler.handle(job.id), "the source URL is not allowed")


# --- transient trouble: requeued, tried again later -----------------------------------------------


def test_a_network_error_while_downloading_is_transient_and_the_job_is_requeued(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    job = world.submit(f"http://media.test:{closed_port}/clip.mp4")

    outcome = world.handler.handle(job.id)

    again = world.jobs.get(job.id)
    assert outcome.action is Action.RETRY_LATER and outcome.delay_s > 0
    assert (again.status, again.attempts) == (JobStatus.QUEUED, 1)
    assert "could not download" in (again.error or "")
    assert list(world.workdir.iterdir()) == []


def test_too_little_disk_space_is_transient_and_checked_before_transcoding(tmp_path, clips):
    world = make_world(tmp_path, limits=VideoLimits(disk_headroom=1e15))
    job = world.submit("inputs/landscape.mp4", data=clips["landscape"])

    outcome = world.handler.handle(job.id)

    again = world.jobs.get(job.id)
    assert outcome.action is Action.RETRY_LATER and again.status is JobStatus.QUEUED
    assert "not enough disk space to transcode" in (again.error or "")
    assert "transcoding" not in [s for s, _ in world.stages(job.id)]
    assert list(world.workdir.iterdir()) == []


# --- wiring ----------------------------------------------------------------------------------------


def test_the_composition_root_builds_the_real_adapters_from_settings():
    from src import bootstrap
    from src.config import Settings

    settings = Settings(queue_backend="memory", transcode_speed="fast", fetch_timeout_s=5.0,
                        fetch_allowed_private_networks="127.0.0.0/8, 10.0.0.0/8")
    handler = bootstrap.video_handler(bootstrap.build(settings))
    assert isinstance(handler.transcoder, PyAVTranscoder) and handler.transcoder.speed == "fast"
    assert isinstance(handler.fetcher, HttpUrlFetcher)
    assert [str(n) for n in handler.fetcher.policy.allowed_private_networks] == ["127.0.0.0/8", "10.0.0.0/8"]
    assert not bootstrap.video_handler(bootstrap.build(Settings(queue_backend="memory"))).fetcher.policy \
        .allow_http_hosts


# --- helpers ---------------------------------------------------------------------------------------


def _assert_failed_once(world: World, job: VideoJob, outcome, reason: str) -> None:
    done = world.jobs.get(job.id)
    assert outcome.action is Action.ACK
    assert (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert reason in (done.error or ""), done.error
    assert world.handler.handle(job.id).action is Action.ACK  # a redelivery does not run it again
    assert world.jobs.get(job.id).attempts == 1
    assert list(world.workdir.iterdir()) == []


def _runs(stages: list[tuple[str, float]]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for stage, _ in stages:
        if not runs or runs[-1][0] != stage:
            runs.append((stage, 0))
    return runs


def _check_video(storage: InMemoryStorage, key: str, size: tuple[int, int], tmp_path: Path) -> None:
    data, content_type = storage.objects[key]
    assert content_type == "video/mp4"
    assert _top_level_boxes(data).index(b"moov") < _top_level_boxes(data).index(b"mdat")  # +faststart
    path = tmp_path / "check.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as result:
        video, audio = result.streams.video[0], result.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert (video.codec_context.width, video.codec_context.height) == size
        assert video.codec_context.pix_fmt == "yuv420p"
        frames = list(result.decode(video=0))
    assert len(frames) == pytest.approx(DURATION_S * 30, abs=3)
    assert frames[-1].time == pytest.approx(DURATION_S, abs=0.15)


def _check_poster(storage: InMemoryStorage, key: str, size: tuple[int, int]) -> None:
    data, content_type = storage.objects[key]
    assert content_type == "image/jpeg"
    assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"
    codec = av.CodecContext.create("mjpeg", "r")
    (frame,) = codec.decode(av.Packet(data))
    assert (frame.width, frame.height) == size


def _top_level_boxes(data: bytes) -> list[bytes]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind)
        if size < 8:
            break
        offset += size
    return boxes
