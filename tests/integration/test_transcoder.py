"""PyAVTranscoder on clips generated here: probe verdicts, progress, sizes, the poster."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from src.domain.errors import PermanentError
from src.infrastructure.media.presets import PRESETS, fit
from src.infrastructure.media.samples import make_clip
from src.infrastructure.media.transcoder import PyAVTranscoder


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "wide": make_clip(root / "wide.mp4", width=960, height=540, duration_s=1.0),
        "plain": make_clip(root / "plain.mp4", width=320, height=180, duration_s=2.0, faststart=False),
        "strip": make_clip(root / "strip.mp4", width=1280, height=16, duration_s=0.5, audio=False),
        "audio": make_clip(root / "audio.m4a", video=False, duration_s=1.0),
    }


@pytest.fixture(scope="module")
def transcoder() -> PyAVTranscoder:
    return PyAVTranscoder(speed="ultrafast")


@pytest.mark.parametrize(
    ("source", "preset", "expected"),
    [
        ((1920, 1080), "720p", (1280, 720)),
        ((1080, 1920), "720p", (720, 1280)),
        ((640, 360), "1080p", (640, 360)),
        ((333, 199), "480p", (332, 198)),
        ((3840, 1600), "1080p", (1920, 800)),
        ((960, 540), "480p", (852, 480)),
    ],
)
def test_the_output_fits_the_preset_keeps_the_aspect_ratio_and_has_even_sides(source, preset, expected):
    assert fit(*source, PRESETS[preset]) == expected


def test_probe_describes_a_readable_clip(transcoder, clips):
    info = transcoder.probe(clips["wide"])
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (960, 540, "h264", "aac")
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert info.size_bytes == clips["wide"].stat().st_size


def test_transcoding_downscales_and_reports_rising_percent_up_to_100(transcoder, clips, tmp_path):
    seen: list[float] = []
    info = transcoder.transcode(clips["wide"], tmp_path / "out.mp4", preset="480p", on_progress=seen.append)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (852, 480, "h264", "aac")
    assert info.size_bytes == (tmp_path / "out.mp4").stat().st_size
    assert seen == sorted(seen) and len(seen) > 5 and seen[-1] == 100


def test_a_poster_past_the_end_takes_the_last_frame(transcoder, clips, tmp_path):
    info = transcoder.poster(clips["wide"], tmp_path / "p.jpg", offset_s=30.0)
    assert (info.width, info.height, info.video_codec) == (960, 540, "mjpeg")
    assert (tmp_path / "p.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda clips, tmp: clips["audio"], r"no video stream \(it holds audio only\)"),
        (lambda clips, tmp: _write(tmp / "empty.mp4", b""), r"empty \(0 bytes\)"),
        (lambda clips, tmp: _write(tmp / "noise.mp4", bytes(range(256)) * 64), "not a readable video"),
        (lambda clips, tmp: _truncated(clips["plain"], tmp), "not a readable video"),
        (lambda clips, tmp: clips["strip"], r"absurd dimensions \(1280x16\)"),
    ],
    ids=["audio-only", "zero-bytes", "noise", "truncated-moov-at-end", "absurd-dimensions"],
)
def test_probe_refuses_an_unusable_source_with_a_readable_reason(transcoder, clips, tmp_path, make, reason):
    with pytest.raises(PermanentError, match=reason):
        transcoder.probe(make(clips, tmp_path))


def test_an_unknown_preset_is_permanent(transcoder, clips, tmp_path):
    with pytest.raises(PermanentError, match="unknown preset '4k'"):
        transcoder.transcode(clips["wide"], tmp_path / "out.mp4", preset="4k", on_progress=print)


def test_the_output_is_an_mp4_that_av_reads_back(transcoder, clips, tmp_path):
    transcoder.transcode(clips["plain"], tmp_path / "out.mp4", preset="720p", on_progress=lambda p: None)
    with av.open(str(tmp_path / "out.mp4")) as result:
        assert result.format.name.startswith("mov,mp4")
        assert result.streams.video[0].codec_context.pix_fmt == "yuv420p"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(source: Path, tmp: Path) -> Path:
    data = source.read_bytes()
    return _write(tmp / "cut.mp4", data[: len(data) // 2])
