"""PyAVTranscoder: the Transcoder port on PyAV (FFmpeg's libraries, shipped in the wheel).

Decoding, scaling and encoding run in this process: demux -> decode (frame threads) ->
swscale (threads) -> libx264 (its own threads) / AAC -> MP4 with ``+faststart``. Failures that
come from the source itself are :class:`PermanentError` with a reason a person can read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.stream import Stream
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from src.application.ports import MediaInfo
from src.domain.errors import PermanentError
from src.infrastructure.media.pipeline import prefetched
from src.infrastructure.media.presets import PRESETS, Preset, fit, preset_named

log = logging.getLogger(__name__)

MAX_DIMENSION = 16384  # FFmpeg's own ceiling for H.264; anything larger is a broken header
MAX_ASPECT = 20.0  # wider or taller than 20:1 is not a video anyone watches
TRUNCATION_TOLERANCE_S = 0.5  # decoded time may fall this short of the declared duration...
TRUNCATION_TOLERANCE = 0.05  # ...or this share of it, whichever is more
POSTER_PRESET = PRESETS["1080p"]
PREFETCH_FRAMES = 8  # decoded frames waiting for the encoder (8 at 1080p: about 25 MB)


class PyAVTranscoder:
    def __init__(self, *, speed: str = "veryfast", max_dimension: int = MAX_DIMENSION,
                 max_aspect: float = MAX_ASPECT) -> None:
        self.speed = speed  # the libx264 preset: ultrafast ... veryslow
        self.max_dimension = max_dimension
        self.max_aspect = max_aspect

    def probe(self, path: Path) -> MediaInfo:
        size = _size_of(path)
        with _open_input(path) as source:
            video = _video_stream(source)
            self._check_dimensions(video)
            _first_frame(source, video)
        with _open_input(path) as source:
            return _describe(source, size)

    def transcode(
        self, src: Path, dest: Path, *, preset: str, on_progress: Callable[[float], None]
    ) -> MediaInfo:
        spec = preset_named(preset)
        info = self.probe(src)
        with _open_input(src) as source, _open_output(dest) as target:
            encoding = _Encoding(source, target, spec, speed=self.speed)
            decoded_s = encoding.run(_Progress(info.duration_s, on_progress))
            expected_s = _stream_duration_s(encoding.video_in) or info.duration_s
        _check_complete(decoded_s, expected_s)
        with _open_input(dest) as result:
            return _describe(result, _size_of(dest))

    def poster(self, src: Path, dest: Path, *, offset_s: float) -> MediaInfo:
        with _open_input(src) as source:
            frame = _frame_at(source, _video_stream(source), offset_s)
        width, height = fit(frame.width, frame.height, POSTER_PRESET)
        image = frame.reformat(width=width, height=height, format="yuvj420p", interpolation="BICUBIC")
        Path(dest).write_bytes(_jpeg_bytes(image))
        return MediaInfo(duration_s=0.0, width=width, height=height, video_codec="mjpeg",
                         size_bytes=_size_of(dest))

    def _check_dimensions(self, video: VideoStream) -> None:
        width, height = video.codec_context.width, video.codec_context.height
        absurd = (
            width <= 0 or height <= 0 or max(width, height) > self.max_dimension
            or max(width, height) / min(width, height) > self.max_aspect
        )
        if absurd:
            raise PermanentError(f"the source has absurd dimensions ({width}x{height})")


class _Progress:
    """Percent from decoded time over duration, reported only when the whole percent rises."""

    def __init__(self, duration_s: float, callback: Callable[[float], None]) -> None:
        self.duration_s = duration_s
        self.callback = callback
        self.last = -1

    def at(self, seconds: float) -> None:
        percent = int(min(99.0, max(0.0, seconds / self.duration_s * 100))) if self.duration_s else 0
        if percent > self.last:
            self.last = percent
            self.callback(percent)

    def done(self) -> None:
        self.callback(100)


class _Encoding:
    """One pass over the source, in two threads, like the ffmpeg CLI's pipeline: one demuxes,
    decodes and scales; this one encodes and muxes. A short queue joins them."""

    def __init__(self, source: InputContainer, target: OutputContainer, spec: Preset, *,
                 speed: str) -> None:
        self.source = source
        self.target = target
        self.video_in = _video_stream(source)
        self.video_in.thread_type = "AUTO"  # frame + slice threads, as the ffmpeg CLI decodes
        self.audio_in = source.streams.audio[0] if source.streams.audio else None
        self.size = fit(self.video_in.codec_context.width, self.video_in.codec_context.height, spec)
        self.video_out = _add_video(target, self.video_in, self.size, spec, speed)
        self.audio_out = _add_audio(target, self.audio_in, spec) if self.audio_in else None
        self.scaler = VideoReformatter()  # one scaler, reused: its context is cached across frames

    def run(self, progress: _Progress) -> float:
        decoded_s = 0.0
        for frame in prefetched(self._decoded(), depth=PREFETCH_FRAMES):
            if isinstance(frame, VideoFrame):
                self.target.mux(self.video_out.encode(frame))
                decoded_s = max(decoded_s, float(frame.time or 0.0))
                progress.at(decoded_s)
            else:
                assert self.audio_out is not None  # an audio frame comes only from an audio input
                self.target.mux(self.audio_out.encode(frame))
        self._flush()
        progress.done()
        return decoded_s

    def _decoded(self) -> Iterator[VideoFrame | AudioFrame]:
        """Source frames in decoding order: video scaled for the encoder, audio as it is."""
        inputs = [s for s in (self.video_in, self.audio_in) if s is not None]
        last_pts: int | None = None
        for packet in _demux(self.source, inputs):
            for frame in _decode(packet):
                if packet.stream is not self.video_in:
                    yield frame
                elif frame.pts is not None and (last_pts is None or frame.pts > last_pts):
                    last_pts = frame.pts  # a frame without a later timestamp has no place to go
                    yield self._scaled(frame)

    def _scaled(self, frame: VideoFrame) -> VideoFrame:
        width, height = self.size
        scaled = self.scaler.reformat(frame, width=width, height=height, format="yuv420p",
                                      interpolation="BICUBIC")
        scaled.pts = frame.pts
        scaled.pict_type = PictureType.NONE  # the source's frame types would force x264's choices
        return scaled

    def _flush(self) -> None:
        self.target.mux(self.video_out.encode(None))
        if self.audio_out is not None:
            self.target.mux(self.audio_out.encode(None))


# --- opening and describing files ----------------------------------------------------------------


@contextmanager
def _open_input(path: Path) -> Iterator[InputContainer]:
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise PermanentError(f"the source is not a readable video: {_reason(exc)}") from exc
    with container:
        yield container


@contextmanager
def _open_output(path: Path) -> Iterator[OutputContainer]:
    container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
    with container:
        yield container


def _add_video(target: OutputContainer, video_in: VideoStream, size: tuple[int, int], spec: Preset,
               speed: str) -> VideoStream:
    rate = video_in.average_rate or Fraction(30)
    stream = target.add_stream("libx264", rate=rate,
                               options={"crf": str(spec.crf), "preset": speed})
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    if video_in.time_base is not None:
        stream.codec_context.time_base = video_in.time_base
    stream.codec_context.thread_count = 0  # libx264 picks its own thread count...
    stream.codec_context.thread_type = "FRAME"  # ...of frame threads, as the CLI does (slices cost bits)
    return stream


def _add_audio(target: OutputContainer, audio_in: AudioStream, spec: Preset) -> AudioStream:
    channels = audio_in.codec_context.channels
    stream = target.add_stream("aac", rate=audio_in.codec_context.sample_rate or 48000)
    stream.codec_context.layout = "mono" if channels == 1 else "stereo"
    stream.codec_context.bit_rate = spec.audio_bitrate
    return stream


def _describe(container: InputContainer, size: int) -> MediaInfo:
    video = _video_stream(container)
    audio = container.streams.audio[0] if container.streams.audio else None
    return MediaInfo(
        duration_s=_duration_s(container, video), width=video.codec_context.width,
        height=video.codec_context.height, video_codec=video.codec_context.name,
        audio_codec=audio.codec_context.name if audio else None, size_bytes=size,
    )


def _video_stream(container: InputContainer) -> VideoStream:
    if container.streams.video:
        return container.streams.video[0]
    if container.streams.audio:
        raise PermanentError("the source has no video stream (it holds audio only)")
    raise PermanentError("the source has no video stream")


def _duration_s(container: InputContainer, video: VideoStream) -> float:
    if container.duration:
        return container.duration / av.time_base
    return _stream_duration_s(video) or _scan_duration_s(container, video)


def _stream_duration_s(stream: Stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _scan_duration_s(container: InputContainer, video: VideoStream) -> float:
    """No declared duration (a raw stream): read the packets' timestamps instead."""
    end = 0.0
    for packet in _demux(container, [video]):
        if packet.pts is not None and packet.time_base:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    if end <= 0:
        raise PermanentError("the source's duration cannot be determined")
    return end


def _size_of(path: Path) -> int:
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise PermanentError("the source file is missing") from None
    if size == 0:
        raise PermanentError("the source file is empty (0 bytes)")
    return size


# --- decoding ------------------------------------------------------------------------------------


def _demux(container: InputContainer, streams: list[VideoStream | AudioStream]
           ) -> Iterator[av.Packet[Any]]:
    try:
        yield from container.demux(streams)
    except av.error.FFmpegError as exc:
        raise PermanentError(f"the source is corrupt: {_reason(exc)}") from exc


def _decode(packet: av.Packet[Any]) -> list[Any]:
    try:
        return packet.decode()
    except av.error.FFmpegError as exc:
        raise PermanentError(f"the source is corrupt: {_reason(exc)}") from exc


def _first_frame(container: InputContainer, video: VideoStream) -> VideoFrame:
    frame: VideoFrame  # the demuxer reads the video stream alone
    for packet in _demux(container, [video]):
        for frame in _decode(packet):
            return frame
    raise PermanentError("the source is corrupt or truncated: no video frame could be decoded")


def _frame_at(container: InputContainer, video: VideoStream, offset_s: float) -> VideoFrame:
    """The first frame at or after ``offset_s``; the last frame if the video is shorter."""
    if offset_s > 0 and video.time_base:
        _seek(container, video, offset_s)
    found: VideoFrame | None = None
    frame: VideoFrame  # the demuxer reads the video stream alone
    for packet in _demux(container, [video]):
        for frame in _decode(packet):
            found = frame
            if frame.time is None or frame.time >= offset_s:
                return frame
    if found is None:
        raise PermanentError("the source is corrupt or truncated: no video frame could be decoded")
    return found


def _seek(container: InputContainer, video: VideoStream, offset_s: float) -> None:
    try:
        container.seek(int(offset_s / (video.time_base or 1)), stream=video, backward=True)
    except av.error.FFmpegError as exc:
        log.info("seek to %.2f s failed (%s); decoding from the start", offset_s, _reason(exc))


def _check_complete(decoded_s: float, duration_s: float) -> None:
    missing_s = duration_s - decoded_s
    if decoded_s <= 0 or missing_s > max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE * duration_s):
        raise PermanentError(
            f"the source is truncated or corrupt: only {decoded_s:.1f} s of {duration_s:.1f} s "
            "could be decoded"
        )


def _jpeg_bytes(image: VideoFrame) -> bytes:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = image.width, image.height
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"qmin": "2", "qmax": "4"}
    image.pts = 0
    packets = codec.encode(image) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)


def _reason(exc: av.error.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)
