"""Wan on this machine through diffusers: text-to-video and image-to-video (Wan 2.1 and 2.2).

torch and diffusers are imported only when the first Wan job runs, so importing this module
(or running a remote-only worker) costs nothing. Pipelines are loaded once per process with
``from_pretrained`` from local directories and kept warm in a :class:`PipelineCache`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.application.ports import GeneratedVideo
from src.domain.catalogue import WAN_FPS
from src.domain.errors import Interrupted, PermanentError, TransientError
from src.domain.jobs import AIJob, Mode

if TYPE_CHECKING:
    from PIL.Image import Image

    from src.config import Settings

log = logging.getLogger(__name__)

DEFAULT_WIDTH, DEFAULT_HEIGHT = 832, 480
SIZE_MULTIPLE = 16
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
        width, height = frame_size(job.ratio)
        frames = frame_count(job.num_frames or self.default_num_frames)
        pipe = self.pipeline(job.mode)
        inputs = self._inputs(job, width, height, frames)
        watcher = StepWatcher(self.num_inference_steps, on_progress, should_stop)
        with self.cache.run_lock:
            video = self._run(pipe, inputs, watcher)
        if watcher.stopped:
            raise Interrupted(f"wan stopped after {watcher.done} of {watcher.steps} steps")
        return export(video, workdir / "wan.mp4", width=width, height=height)

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

    def _inputs(self, job: AIJob, width: int, height: int, frames: int) -> dict[str, Any]:
        import torch

        seed = job.seed if job.seed is not None else secrets.randbelow(2**32)
        log.info("wan %s %dx%d, %d frames, %d steps, seed %d", job.mode.value, width, height, frames,
                 self.num_inference_steps, seed)
        inputs: dict[str, Any] = {
            "prompt": job.prompt, "height": height, "width": width, "num_frames": frames,
            "num_inference_steps": self.num_inference_steps, "guidance_scale": self.guidance_scale,
            "generator": torch.Generator(device="cpu").manual_seed(seed), "output_type": "np",
        }
        if job.mode is Mode.IMAGE_TO_VIDEO:
            if not job.input_image:
                raise PermanentError("image-to-video needs an input image")
            inputs["image"] = self.fetch_image(job.input_image)
        return inputs

    @staticmethod
    def _run(pipe: Any, inputs: dict[str, Any], watcher: StepWatcher) -> Any:
        import torch

        try:
            return pipe(**inputs, callback_on_step_end=watcher).frames[0]
        except torch.cuda.OutOfMemoryError as exc:
            raise TransientError("wan ran out of GPU memory") from exc


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


def export(frames: Any, path: Path, *, width: int, height: int) -> GeneratedVideo:
    from diffusers.utils import export_to_video

    export_to_video(list(frames), str(path), fps=WAN_FPS)
    return GeneratedVideo(path=path, num_frames=len(frames), width=width, height=height, fps=WAN_FPS)


def frame_size(ratio: str | None) -> tuple[int, int]:
    """(width, height) from ``"W:H"`` in pixels, each a multiple of 16 (rounded down, at least 16)."""
    if not ratio:
        return DEFAULT_WIDTH, DEFAULT_HEIGHT
    try:
        width, height = (int(part) for part in ratio.split(":"))
    except ValueError:
        raise PermanentError(f"wan_local needs a ratio as WIDTH:HEIGHT in pixels, got {ratio!r}") from None
    return _multiple(width), _multiple(height)


def _multiple(pixels: int) -> int:
    return max(SIZE_MULTIPLE, pixels - pixels % SIZE_MULTIPLE)


def frame_count(requested: int) -> int:
    """The nearest 4k+1 frame count not above ``requested`` (Wan's VAE packs 4 frames per latent)."""
    return max(1, (requested - 1) // 4 * 4 + 1)
