"""Sample clips made on the spot: a moving test pattern with a sine tone (tests, benchmarks, demos).

The pictures and the tone come from FFmpeg's own ``testsrc2`` and ``sine`` sources, run
through PyAV's filter graph, so making a clip costs about as much as encoding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import av.filter
from av.frame import Frame

Track = tuple[Any, Iterator[Frame]]
"""A video or an audio stream with the frames it encodes (PyAV types each stream's own frames)."""

SAMPLE_RATE = 48000


def make_clip(
    path: Path, *, width: int = 640, height: int = 360, duration_s: float = 2.0, fps: int = 30,
    audio: bool = True, video: bool = True, faststart: bool = True, speed: str = "ultrafast",
) -> Path:
    """Write an MP4 (H.264 + AAC) test clip; ``video=False`` makes an audio-only file."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as out:
        tracks: list[Track] = []
        if video:
            tracks.append((_video_stream(out, width, height, fps, speed),
                           _source(f"testsrc2=size={width}x{height}:rate={fps}:duration={duration_s}")))
        if audio:
            tracks.append((_audio_stream(out),
                           _source(f"sine=frequency=440:sample_rate={SAMPLE_RATE}:duration={duration_s}")))
        for stream, frame in _interleaved(tracks):
            out.mux(stream.encode(frame))
        for stream, _ in tracks:
            out.mux(stream.encode(None))
    return Path(path)


def _interleaved(tracks: list[Track]) -> Iterator[tuple[Any, Frame]]:
    """Frames of every track in time order, so the muxer never holds a whole track back."""
    heads: dict[int, Frame] = {}
    for i, (_, frames) in enumerate(tracks):
        if (first := next(frames, None)) is not None:
            heads[i] = first
    while heads:
        i = min(heads, key=lambda i: heads[i].time or 0.0)
        yield tracks[i][0], heads[i]
        following = next(tracks[i][1], None)
        if following is None:
            del heads[i]
        else:
            heads[i] = following


def _video_stream(out: av.container.OutputContainer, width: int, height: int, fps: int,
                  speed: str) -> av.video.stream.VideoStream:
    stream = out.add_stream("libx264", rate=fps, options={"preset": speed, "crf": "28"})
    stream.width, stream.height = width, height
    # 4:2:0 needs even sides; an odd-sized sample is stored in 4:4:4 (what a camera rarely does,
    # but what an odd-sized upload usually is: a screen capture or an edited export)
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return stream


def _audio_stream(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=SAMPLE_RATE)
    stream.codec_context.layout = "stereo"
    stream.codec_context.bit_rate = 96_000
    return stream


def _source(description: str) -> Iterator[Frame]:
    """Frames from one FFmpeg source filter until it ends."""
    graph = av.filter.Graph()
    name, _, args = description.partition("=")
    source = graph.add(name, args)
    sink = graph.add("buffersink" if name != "sine" else "abuffersink")
    source.link_to(sink)
    graph.configure()
    while True:
        try:
            frame = sink.pull()
        except (av.error.EOFError, BlockingIOError):
            return
        frame.time_base = frame.time_base or Fraction(1, SAMPLE_RATE)
        yield frame
