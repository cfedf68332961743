"""Wan on this machine through diffusers: text-to-video and image-to-video (Wan 2.1 and 2.2).

torch and diffusers are imported only when the first Wan job runs, so importing this module
(or running a remote-only worker) costs nothing. Pipelines are loaded once per process with
``from_pretrained`` from local directories and kept warm in a :class:`PipelineCache`.
Sizes, frame counts and frame rates follow the loaded model's family (Wan 2.1, Wan 2.2 A14B,
Wan 2.2 TI2V-5B), read from its components where they say it (docs/providers.md).
"""

from __future__ import annotations

import gc
import logging
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.application.ports import GeneratedVideo
from src.domain.catalogue import WAN_21, WAN_22_A14B, WAN_22_TI2V_5B, WanFamily
from src.domain.errors import Interrupted, PermanentError
from src.domain.jobs import AIJob, Mode

if TYPE_CHECKING:
    from PIL.Image import Image

    from src.config import Settings

log = logging.getLogger(__name__)

CPU_OOM_SIGNS = ("can't allocate memory", "not enough memory", "out of memory")
PIPELINES = {Mode.TEXT_TO_VIDEO: "WanPipeline", Mode.IMAGE_TO_VIDEO: "WanImageToVideoPipeline"}
SETTINGS = {Mode.TEXT_TO_VIDEO: "REELQUEUE_WAN_MODEL_DIR", Mode.IMAGE_TO_VIDEO: "REELQUEUE_WAN_I2V_MODEL_DIR"}


@dataclass(frozen=True)
class Runtime:
    device: str
    dtype: Any
    accelerator: bool


def pick_runtime(requested: str = "") -> Runtime:
    """cuda with bf16 where a GPU is present (or asked for), else cpu with float32."""
    import torch

    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = not device.startswith("cpu")
    return Runtime(device, torch.bfloat16 if accelerator else torch.float32, accelerator)


class PipelineCache:
    """This process's loaded pipelines; ``loads`` counts real loads (a warm job adds none)."""

    def __init__(self) -> None:
        self.loads = 0
        self.run_lock = threading.Lock()  # one generation at a time: a pipeline keeps state
        self._pipelines: dict[tuple[str, str, str], Any] = {}
        self._load_lock = threading.Lock()

    def get(self, key: tuple[str, str, str], load: Callable[[], Any]) -> Any:
        with self._load_lock:
            if key not in self._pipelines:
                self._pipelines[key] = load()
                self.loads += 1
            return self._pipelines[key]


PROCESS_CACHE = PipelineCache()


class WanLocalGenerator:
    def __init__(
        self,
        *,
        t2v_model_dir: str,
        i2v_model_dir: str,
        fetch_image: Callable[[str], Image],
        num_inference_steps: int = 30,
        default_num_frames: int = 81,
        guidance_scale: float = 5.0,
        device: str = "",
        cpu_offload: bool = True,
        cache: PipelineCache | None = None,
    ) -> None:
        self.model_dirs = {Mode.TEXT_TO_VIDEO: t2v_model_dir, Mode.IMAGE_TO_VIDEO: i2v_model_dir}
        self.fetch_image = fetch_image
        self.num_inference_steps = num_inference_steps
        self.default_num_frames = default_num_frames
        self.guidance_scale = guidance_scale
        self.device = device
        self.cpu_offload = cpu_offload
        self.cache = cache or PROCESS_CACHE

    @classmethod
    def from_settings(cls, settings: Settings, *, fetch_image: Callable[[str], Image]) -> WanLocalGenerator:
        return cls(
            t2v_model_dir=settings.wan_model_dir, i2v_model_dir=settings.wan_i2v_model_dir,
            fetch_image=fetch_image, num_inference_steps=settings.wan_num_inference_steps,
            default_num_frames=settings.wan_num_frames, device=settings.wan_device,
            cpu_offload=settings.wan_cpu_offload,
        )

    @property
    def loads(self) -> int:
        return self.cache.loads

    def generate(self, job: AIJob, *, workdir: Path, on_progress: Callable[[float], None],
                 should_stop: Callable[[], bool]) -> GeneratedVideo:
        pipe = self.pipeline(job.mode)
        shape = model_shape(pipe)
        inputs = self._inputs(job, shape)
        size = Size(width=inputs["width"], height=inputs["height"], frames=inputs["num_frames"])
        watcher = StepWatcher(self.num_inference_steps, on_progress, should_stop)
        with self.cache.run_lock:
            video = self._run(pipe, inputs, watcher, size)
        if video is None:
            raise Interrupted(f"wan stopped after {watcher.done} of {watcher.steps} steps")
        return export(video, workdir / "wan.mp4", size=size, fps=shape.fps)

    def pipeline(self, mode: Mode) -> Any:
        model_dir = self.model_dirs[mode]
        if not model_dir or not Path(model_dir).is_dir():
            raise PermanentError(
                f"wan_local has no {mode.value} weights: set {SETTINGS[mode]} to a local directory"
            )
        runtime = pick_runtime(self.device)
        name = PIPELINES[mode]
        key = (name, str(Path(model_dir).resolve()), runtime.device)
        return self.cache.get(key, lambda: load_pipeline(name, model_dir, runtime, self.cpu_offload))

    def _inputs(self, job: AIJob, shape: ModelShape) -> dict[str, Any]:
        import torch

        frames = frame_count(job.num_frames or self.default_num_frames, shape.frame_step)
        width, height, image = self._canvas(job, shape)
        seed = job.seed if job.seed is not None else secrets.randbelow(2**32)
        log.info("wan %s (%s) %dx%d, %d frames at %d fps, %d steps, seed %d", job.mode.value,
                 shape.family.name, width, height, frames, shape.fps, self.num_inference_steps, seed)
        return image | {
            "prompt": job.prompt, "height": height, "width": width, "num_frames": frames,
            "num_inference_steps": self.num_inference_steps, "guidance_scale": self.guidance_scale,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
        }

    def _canvas(self, job: AIJob, shape: ModelShape) -> tuple[int, int, dict[str, Any]]:
        """(width, height, image input): text-to-video from the ratio; image-to-video from the
        image's aspect ratio within the pixel budget, the image resized to exactly that size."""
        from PIL.Image import Resampling

        if job.mode is not Mode.IMAGE_TO_VIDEO:
            return (*frame_size(job.ratio, shape), {})
        if not job.input_image:
            raise PermanentError("image-to-video needs an input image")
        image = self.fetch_image(job.input_image)
        width, height = fit_image(image.width, image.height, budget_area(job.ratio, shape), shape)
        return width, height, {"image": image.resize((width, height), Resampling.LANCZOS)}

    @staticmethod
    def _run(pipe: Any, inputs: dict[str, Any], watcher: StepWatcher, size: Size) -> Any:
        """Denoise to latents, then decode them unless the job was stopped; ``None`` when stopped.

        Running out of memory at this size is permanent: the same size would fail again.
        """
        try:
            latents = pipe(**inputs, output_type="latent", callback_on_step_end=watcher).frames
            return None if watcher.stopped else decode(pipe, latents)[0]
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is translated here
            if not out_of_memory(exc):
                raise
            cause = exc.with_traceback(None)  # the frames hold the tensors that filled the memory
        release_memory(pipe)
        raise PermanentError(
            f"out of {memory_kind(cause)} generating {size}; try a smaller size or fewer frames"
        ) from cause


@dataclass(frozen=True, kw_only=True)
class Size:
    width: int
    height: int
    frames: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.frames} frames"


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """What the loaded pipeline accepts: read from its components, family defaults for the rest."""

    family: WanFamily
    size_multiple: int
    frame_step: int
    fps: int
    default_size: tuple[int, int]


def model_shape(pipe: Any) -> ModelShape:
    family = wan_family(pipe)
    transformer = getattr(pipe, "transformer", None) or getattr(pipe, "transformer_2", None)
    spatial = getattr(pipe, "vae_scale_factor_spatial", None)
    patch = transformer.config.patch_size if transformer is not None else None
    multiple = spatial * max(patch[1], patch[2]) if spatial and patch else family.size_multiple
    step = getattr(pipe, "vae_scale_factor_temporal", None) or family.frame_step
    width, height = family.default_size
    return ModelShape(family=family, size_multiple=multiple, frame_step=step, fps=family.fps,
                      default_size=(_multiple(width, multiple), _multiple(height, multiple)))


def wan_family(pipe: Any) -> WanFamily:
    """TI2V-5B expands timesteps per token; A14B splits denoising between two experts at a boundary."""
    config = getattr(pipe, "config", {})
    if config.get("expand_timesteps"):
        return WAN_22_TI2V_5B
    if config.get("boundary_ratio") is not None or getattr(pipe, "transformer_2", None) is not None:
        return WAN_22_A14B
    return WAN_21


def decode(pipe: Any, latents: Any) -> Any:
    """The pipeline's own last stage (un-normalise, VAE decode, to numpy), run only when wanted."""
    import torch
    from diffusers.utils.torch_utils import get_module_execution_device

    vae = pipe.vae
    with torch.no_grad():
        latents = latents.to(device=get_module_execution_device(vae), dtype=vae.dtype)
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
        std = torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
        video = vae.decode(latents * std + mean, return_dict=False)[0]
        frames = pipe.video_processor.postprocess_video(video, output_type="np")
    pipe.maybe_free_model_hooks()
    return frames


def out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(sign in str(exc) for sign in CPU_OOM_SIGNS)


def memory_kind(exc: BaseException) -> str:
    import torch

    on_gpu = isinstance(exc, torch.OutOfMemoryError) or "CUDA" in str(exc)
    return "GPU memory" if on_gpu else "memory"


def release_memory(pipe: Any) -> None:
    """Give the cached blocks back before the next job (offloaded models go back to the CPU)."""
    import torch

    try:
        pipe.maybe_free_model_hooks()
    except Exception:  # noqa: BLE001 - freeing is best effort; the job has failed already
        log.warning("could not offload the Wan models after running out of memory", exc_info=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class StepWatcher:
    """``callback_on_step_end``: reports progress and raises the pipeline's interrupt flag."""

    def __init__(self, steps: int, on_progress: Callable[[float], None], should_stop: Callable[[], bool]):
        self.steps = steps
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.done = 0
        self.stopped = False

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        self.done = step + 1
        self.on_progress(100.0 * self.done / self.steps)
        if self.done < self.steps and not self.stopped and self.should_stop():
            pipe._interrupt = True  # diffusers skips the remaining steps
            self.stopped = True
        return {}


def load_pipeline(class_name: str, model_dir: str, runtime: Runtime, cpu_offload: bool) -> Any:
    import diffusers
    import torch

    log.info("loading %s from %s on %s", class_name, model_dir, runtime.device)
    extra: dict[str, Any] = {}
    try:
        if runtime.accelerator:  # the Wan VAE stays in float32, as the model card advises
            extra["vae"] = diffusers.AutoencoderKLWan.from_pretrained(model_dir, subfolder="vae",
                                                                      dtype=torch.float32)
        pipe = getattr(diffusers, class_name).from_pretrained(model_dir, dtype=runtime.dtype, **extra)
    except (OSError, ValueError) as exc:
        raise PermanentError(f"cannot load {class_name} weights from {model_dir}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    if runtime.accelerator and cpu_offload:
        pipe.enable_model_cpu_offload(device=runtime.device)
    else:
        pipe.to(runtime.device)
    if runtime.accelerator:
        pipe.vae.enable_tiling()
    return pipe


def export(frames: Any, path: Path, *, size: Size, fps: int) -> GeneratedVideo:
    from diffusers.utils import export_to_video

    export_to_video(list(frames), str(path), fps=fps)
    return GeneratedVideo(path=path, num_frames=len(frames), width=size.width, height=size.height, fps=fps)


def frame_size(ratio: str | None, shape: ModelShape) -> tuple[int, int]:
    """Text-to-video (width, height): ``"W:H"`` in pixels, each rounded down to the model's multiple
    (16 for Wan 2.1 and 2.2 A14B, 32 for TI2V-5B, at least one multiple); default the family's size."""
    if not ratio:
        return shape.default_size
    width, height = _pixels(ratio)
    return _multiple(width, shape.size_multiple), _multiple(height, shape.size_multiple)


def budget_area(ratio: str | None, shape: ModelShape) -> int:
    """Image-to-video pixel budget: the area of ``"W:H"`` when given (as Wan's ``--size`` is a
    max area for i2v), else the family's default size."""
    if not ratio:
        return shape.default_size[0] * shape.default_size[1]
    width, height = _pixels(ratio)
    return width * height


def fit_image(image_width: int, image_height: int, max_area: int, shape: ModelShape) -> tuple[int, int]:
    """(width, height) with the image's aspect ratio within ``max_area``, in the model's multiples
    (diffusers' Wan image-to-video example)."""
    multiple = shape.size_multiple
    aspect = image_height / image_width
    height = _multiple(round(math.sqrt(max_area * aspect)), multiple)
    width = _multiple(round(math.sqrt(max_area / aspect)), multiple)
    # a very thin image: one side stays at one multiple, the other may not outgrow the budget
    capped_width = _multiple(min(width, max_area // height), multiple)
    return capped_width, _multiple(min(height, max_area // width), multiple)


def _pixels(ratio: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in ratio.split(":"))
    except ValueError:
        raise PermanentError(f"wan_local needs a ratio as WIDTH:HEIGHT in pixels, got {ratio!r}") from None
    if width <= 0 or height <= 0:
        raise PermanentError(f"wan_local needs a positive WIDTH:HEIGHT, got {ratio!r}")
    return width, height


def _multiple(pixels: int, multiple: int) -> int:
    return max(multiple, pixels - pixels % multiple)


def frame_count(requested: int, step: int = 4) -> int:
    """The nearest ``step*k+1`` frame count not above ``requested`` (Wan's VAE packs ``step`` frames
    per latent frame; 4 for every released Wan VAE)."""
    return max(1, (requested - 1) // step * step + 1)
