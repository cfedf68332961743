"""The provider catalogue: every model a job may ask for, and what it accepts.

This is data, not if-chains. :func:`validate_generation` checks a request against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from src.domain.errors import ValidationError
from src.domain.jobs import Mode


class WorkerType(str, Enum):
    GPU = "gpu"
    REMOTE = "remote"


class Speed(int, Enum):
    VERY_SLOW = 1
    SLOW = 2
    MEDIUM = 3
    FAST = 4
    VERY_FAST = 5


class Quality(int, Enum):
    FAIR = 2
    GOOD = 3
    VERY_GOOD = 4
    BEST = 5


class Cost(int, Enum):
    FREE = 0
    VERY_CHEAP = 1
    CHEAP = 2
    MODERATE = 3
    EXPENSIVE = 4


WAN_FPS = 16  # Wan 2.1 and Wan 2.2 A14B; Wan 2.2 TI2V-5B plays at 24 (see WAN_FAMILIES)
MAX_PROMPT_CHARS = 1000
MAX_SEED = 4_294_967_295
RUNWAY_GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
RUNWAY_GEN45_T2V_RATIOS = ("1280:720", "720:1280")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
# Luma: openapi.yaml AspectRatio (lumalabs/lumaai-api); durations "5s"/"9s" (VideoModelOutputDuration)
LUMA_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")


@dataclass(frozen=True, kw_only=True)
class WanFamily:
    """The documented defaults of one Wan model family (the Wan-Video repositories' configs).

    The adapter reads what it can from the loaded pipeline (VAE strides, patch size) and uses
    these where the weights carry no such field (frame rate, the default pixel budget).
    """

    name: str
    fps: int
    default_size: tuple[int, int]  # (width, height), landscape; its area is the pixel budget
    size_multiple: int  # VAE spatial stride x transformer patch size
    frame_step: int = 4  # num_frames is frame_step * k + 1 (the VAE's temporal stride)

    @property
    def max_area(self) -> int:
        return self.default_size[0] * self.default_size[1]


WAN_21 = WanFamily(name="Wan 2.1", fps=16, default_size=(832, 480), size_multiple=16)
WAN_22_A14B = WanFamily(name="Wan 2.2 A14B", fps=16, default_size=(832, 480), size_multiple=16)
WAN_22_TI2V_5B = WanFamily(name="Wan 2.2 TI2V-5B", fps=24, default_size=(1280, 704), size_multiple=32)
WAN_FAMILIES = (WAN_21, WAN_22_A14B, WAN_22_TI2V_5B)


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model: who runs it, how it compares, and which parameters it accepts."""

    name: str
    provider: str  # "wan_local" | "runway" | "luma"
    display_name: str
    speed: Speed
    quality: Quality
    cost: Cost
    use_for: str
    worker_type: WorkerType
    modes: frozenset[Mode]
    durations_s: tuple[int, ...] | None  # allowed durations; None: given as frames (Wan)
    duration_required: bool = False
    ratios: Mapping[Mode, tuple[str, ...]] | None = None  # None: any W:H, multiples of 16
    seed_supported: bool = True
    prompt_required: frozenset[Mode] = frozenset({Mode.TEXT_TO_VIDEO})
    audio_supported: bool = False  # takes an explicit ``audio`` choice (priced differently)
    credits_per_second: tuple[int, int] | None = None  # (low, high) where known
    credits_per_second_without_audio: int | None = None  # where audio_supported
    credits_per_second_with_audio: int | None = None  # where audio_supported

    def credits_per_second_for(self, *, audio: bool) -> int | None:
        """What one second costs at the provider for this choice (the high end where unsure)."""
        if self.audio_supported:
            return self.credits_per_second_with_audio if audio else self.credits_per_second_without_audio
        return self.credits_per_second[1] if self.credits_per_second else None

    @property
    def queue(self) -> str:
        return "ai-gpu" if self.worker_type is WorkerType.GPU else "ai-remote"

    def describe(self) -> dict[str, object]:
        """A plain description for UIs (``GET /providers``)."""
        return {
            "model": self.name,
            "provider": self.provider,
            "display_name": self.display_name,
            "speed": self.speed.name.lower(),
            "quality": self.quality.name.lower(),
            "cost": self.cost.name.lower(),
            "tiers": {"speed": int(self.speed), "quality": int(self.quality), "cost": int(self.cost)},
            "use_for": self.use_for,
            "worker_type": self.worker_type.value,
            "modes": sorted(m.value for m in self.modes),
            "durations_s": list(self.durations_s) if self.durations_s else None,
            "duration_required": self.duration_required,
            "ratios": (
                {m.value: list(r) for m, r in self.ratios.items()} if self.ratios else None
            ),
            "seed_supported": self.seed_supported,
            "prompt_required": sorted(m.value for m in self.prompt_required),
            "audio_supported": self.audio_supported,
            "credits_per_second": list(self.credits_per_second) if self.credits_per_second else None,
            "credits_per_second_without_audio": self.credits_per_second_without_audio,
            "credits_per_second_with_audio": self.credits_per_second_with_audio,
        }


_BOTH = frozenset({Mode.TEXT_TO_VIDEO, Mode.IMAGE_TO_VIDEO})
_GEN_RANGE = tuple(range(2, 11))


def _same(ratios: tuple[str, ...]) -> Mapping[Mode, tuple[str, ...]]:
    return MappingProxyType({Mode.TEXT_TO_VIDEO: ratios, Mode.IMAGE_TO_VIDEO: ratios})


_SPECS = (
    ModelSpec(
        name="wan_local", provider="wan_local", display_name="Wan (local GPU)",
        speed=Speed.VERY_SLOW, quality=Quality.GOOD, cost=Cost.FREE, use_for="saving cost",
        worker_type=WorkerType.GPU, modes=_BOTH, durations_s=None, ratios=None,
        seed_supported=True,
    ),
    ModelSpec(
        name="gen4_turbo", provider="runway", display_name="Runway Gen-4 Turbo",
        speed=Speed.FAST, quality=Quality.GOOD, cost=Cost.CHEAP, use_for="production default",
        worker_type=WorkerType.REMOTE, modes=frozenset({Mode.IMAGE_TO_VIDEO}),
        durations_s=_GEN_RANGE,
        ratios=MappingProxyType({Mode.IMAGE_TO_VIDEO: RUNWAY_GEN4_RATIOS}),
        credits_per_second=(5, 5),
    ),
    ModelSpec(
        name="gen4.5", provider="runway", display_name="Runway Gen-4.5",
        speed=Speed.FAST, quality=Quality.VERY_GOOD, cost=Cost.MODERATE,
        use_for="production, recommended", worker_type=WorkerType.REMOTE, modes=_BOTH,
        durations_s=_GEN_RANGE, duration_required=True, prompt_required=_BOTH,
        ratios=MappingProxyType(
            {Mode.IMAGE_TO_VIDEO: RUNWAY_GEN4_RATIOS, Mode.TEXT_TO_VIDEO: RUNWAY_GEN45_T2V_RATIOS}
        ),
        credits_per_second=(12, 12),
    ),
    ModelSpec(
        name="veo3", provider="runway", display_name="Google Veo 3 (via Runway)",
        speed=Speed.SLOW, quality=Quality.BEST, cost=Cost.EXPENSIVE,
        use_for="when the best quality is needed", worker_type=WorkerType.REMOTE, modes=_BOTH,
        durations_s=(8,), ratios=_same(VEO_RATIOS), seed_supported=False,
        credits_per_second=(40, 40),
    ),
    ModelSpec(
        name="veo3.1", provider="runway", display_name="Google Veo 3.1 (via Runway)",
        speed=Speed.MEDIUM, quality=Quality.BEST, cost=Cost.EXPENSIVE, use_for="important work",
        worker_type=WorkerType.REMOTE, modes=_BOTH, durations_s=(4, 6, 8),
        ratios=_same(VEO_RATIOS), seed_supported=False, audio_supported=True,
        credits_per_second=(20, 40), credits_per_second_without_audio=20,
        credits_per_second_with_audio=40,
    ),
    ModelSpec(
        name="veo3.1_fast", provider="runway", display_name="Google Veo 3.1 Fast (via Runway)",
        speed=Speed.FAST, quality=Quality.GOOD, cost=Cost.MODERATE,
        use_for="fast high quality", worker_type=WorkerType.REMOTE, modes=_BOTH,
        durations_s=(4, 6, 8), ratios=_same(VEO_RATIOS), seed_supported=False,
        audio_supported=True, credits_per_second=(10, 15), credits_per_second_without_audio=10,
        credits_per_second_with_audio=15,
    ),
    ModelSpec(
        name="ray-2", provider="luma", display_name="Luma Ray 2",
        speed=Speed.MEDIUM, quality=Quality.VERY_GOOD, cost=Cost.MODERATE,
        use_for="cinematic motion", worker_type=WorkerType.REMOTE, modes=_BOTH,
        durations_s=(5, 9), ratios=_same(LUMA_RATIOS), seed_supported=False,
    ),
    ModelSpec(
        name="ray-flash-2", provider="luma", display_name="Luma Ray Flash 2",
        speed=Speed.FAST, quality=Quality.GOOD, cost=Cost.CHEAP, use_for="fast drafts",
        worker_type=WorkerType.REMOTE, modes=_BOTH, durations_s=(5, 9),
        ratios=_same(LUMA_RATIOS), seed_supported=False,
    ),
)

CATALOGUE: Mapping[str, ModelSpec] = MappingProxyType({s.name: s for s in _SPECS})

SUNSET: Mapping[str, str] = MappingProxyType(
    {
        "gen3a_turbo": "Runway has removed gen3a_turbo; use gen4_turbo (fast, cheap) "
        "or gen4.5 (recommended)",
        "gen4.5_turbo": "gen4.5_turbo is not a Runway model; use gen4.5",
    }
)

DEFAULT_MODEL = "gen4_turbo"


def model_spec(name: str) -> ModelSpec:
    """The catalogue entry for ``name``, or a validation error that names the alternatives."""
    if name in SUNSET:
        raise ValidationError({"model": SUNSET[name]})
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise ValidationError({"model": f"unknown model {name!r}; choose one of: {known}"}) from None


@dataclass(frozen=True, kw_only=True)
class GenerationParams:
    """The provider-facing part of an AI job request."""

    model: str
    mode: Mode
    prompt: str = ""
    input_image: str | None = None
    duration_s: int | None = None
    ratio: str | None = None
    seed: int | None = None
    num_frames: int | None = None
    audio: bool | None = None  # None: not given


def prompt_length(prompt: str) -> int:
    """The prompt's length as Runway counts it: UTF-16 code units (an emoji counts two)."""
    return len(prompt.encode("utf-16-le")) // 2


AddError = Callable[[str, str], None]
"""``add(field_name, message)``: records one problem of the request being validated."""


def validate_generation(params: GenerationParams) -> ModelSpec:
    """Check ``params`` against the catalogue; raise one :class:`ValidationError` with every problem."""
    spec = model_spec(params.model)
    errors: dict[str, list[str]] = {}

    def add(field_name: str, message: str) -> None:
        errors.setdefault(field_name, []).append(message)

    if params.mode not in spec.modes:
        allowed = ", ".join(sorted(m.value for m in spec.modes))
        add("mode", f"{spec.name} does not support {params.mode.value}; it supports: {allowed}")
    if params.mode is Mode.IMAGE_TO_VIDEO and not params.input_image:
        add("input_image", "image-to-video needs an input image")
    if params.mode is Mode.TEXT_TO_VIDEO and params.input_image:
        add("input_image", "text-to-video takes no input image; use mode i2v")
    if params.mode in spec.prompt_required and not params.prompt.strip():
        add("prompt", f"{spec.name} ({params.mode.value}) needs a prompt")
    if prompt_length(params.prompt) > MAX_PROMPT_CHARS:
        add("prompt", f"at most {MAX_PROMPT_CHARS} UTF-16 code units (got {prompt_length(params.prompt)})")
    if params.audio is not None and not spec.audio_supported:
        with_audio = ", ".join(s.name for s in _SPECS if s.audio_supported)
        add("audio", f"{spec.name} does not take an audio choice; only {with_audio} do")

    _check_duration(spec, params, add)
    _check_ratio(spec, params, add)

    if params.seed is not None:
        if not spec.seed_supported:
            add("seed", f"{spec.name} does not accept a seed")
        elif not 0 <= params.seed <= MAX_SEED:
            add("seed", f"must be between 0 and {MAX_SEED}")
    if errors:
        raise ValidationError(errors)
    return spec


def _check_duration(spec: ModelSpec, params: GenerationParams, add: AddError) -> None:
    if spec.durations_s is None:  # Wan: frames 4k+1 at 16 fps
        if params.duration_s is not None:
            add("duration_s", f"{spec.name} takes num_frames (4k+1; {WAN_FPS} fps, 24 for Wan 2.2 "
                "TI2V-5B), not seconds")
        if params.num_frames is not None and (params.num_frames < 1 or params.num_frames % 4 != 1):
            add("num_frames", "must be 4k+1 (for example 5, 33, 81)")
        return
    if params.num_frames is not None:
        add("num_frames", f"{spec.name} takes duration_s, not num_frames")
    if params.duration_s is None:
        if spec.duration_required:
            add("duration_s", f"{spec.name} requires a duration: one of {_list(spec.durations_s)}")
        return
    if params.duration_s not in spec.durations_s:
        add("duration_s", f"{spec.name} accepts {_list(spec.durations_s)} seconds")


def _check_ratio(spec: ModelSpec, params: GenerationParams, add: AddError) -> None:
    if params.ratio is None:
        return
    if spec.ratios is None:  # Wan: any WIDTH:HEIGHT in multiples of 16
        try:
            width, height = (int(part) for part in params.ratio.split(":"))
        except ValueError:
            add("ratio", "must be WIDTH:HEIGHT in pixels, for example 832:480")
            return
        if width <= 0 or height <= 0 or width % 16 or height % 16:
            add("ratio", "width and height must be positive multiples of 16")
        elif width * height > 1280 * 1280:
            add("ratio", "at most 1280x1280 pixels")
        return
    allowed = spec.ratios.get(params.mode, ())
    if params.ratio not in allowed:
        add("ratio", f"{spec.name} ({params.mode.value}) accepts {', '.join(allowed)}")


def _list(values: tuple[int, ...]) -> str:
    if len(values) > 3 and values == tuple(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)
