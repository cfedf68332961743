"""Output presets: H.264 + AAC in MP4, fitted into a box that never upscales."""

from __future__ import annotations

from dataclasses import dataclass

from src.domain.errors import PermanentError


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A box (long side x short side) the picture fits in, and the encoder's quality knobs."""

    name: str
    long_side: int
    short_side: int
    crf: int = 23
    audio_bitrate: int = 128_000


PRESETS: dict[str, Preset] = {
    "1080p": Preset(name="1080p", long_side=1920, short_side=1080, crf=22, audio_bitrate=192_000),
    "720p": Preset(name="720p", long_side=1280, short_side=720, crf=23, audio_bitrate=128_000),
    "480p": Preset(name="480p", long_side=854, short_side=480, crf=24, audio_bitrate=96_000),
}


def preset_named(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise PermanentError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def fit(width: int, height: int, preset: Preset) -> tuple[int, int]:
    """The output size: aspect ratio kept, never larger than the source, both sides even."""
    box_w, box_h = (preset.long_side, preset.short_side) if width >= height else (
        preset.short_side, preset.long_side)
    scale = min(1.0, box_w / width, box_h / height)
    return _even(width * scale), _even(height * scale)


def _even(value: float) -> int:
    return max(2, int(round(value)) // 2 * 2)
