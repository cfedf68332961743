"""WanLocalGenerator through diffusers, on tiny random pipelines loaded like real weights.

The device is chosen at run time: the same tests run on a GPU where one is present.
"""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime, timezone

import av
import numpy as np
import pytest
from PIL import Image

from src.application.handlers import ProcessAIJobHandler
from src.application.outcomes import Action
from src.application.retry import RetryPolicy
from src.domain.errors import Interrupted, PermanentError
from src.domain.jobs import AIJob, Mode
from src.domain.status import JobStatus
from src.infrastructure.inference.images import StorageImageFetcher
from src.infrastructure.inference.wan_local import (
    PipelineCache,
    WanLocalGenerator,
    fit_image,
    frame_count,
    frame_size,
    model_shape,
)
from src.infrastructure.memory import (
    FakeClock,
    InMemoryDatabase,
    InMemoryIdempotency,
    InMemoryJobRepository,
    InMemoryProgress,
    InMemoryStorage,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def wan_job(mode: Mode = Mode.TEXT_TO_VIDEO, *, seed: int | None = 1, ratio: str = "32:32",
            **fields: object) -> AIJob:
    return AIJob(owner_id="u", model="wan_local", provider="wan_local", production_path="fashion",
                 mode=mode, prompt="a red dress", ratio=ratio, num_frames=5, seed=seed,
                 created_at=NOW, updated_at=NOW, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def storage() -> InMemoryStorage:
    store = InMemoryStorage()
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 30, 60)).save(buffer, format="PNG")
    store.put_bytes("inputs/look.png", buffer.getvalue(), "image/png")
    for name, size in (("portrait", (40, 80)), ("landscape", (80, 40))):
        buffer = io.BytesIO()
        Image.new("RGB", size, (20, 120, 200)).save(buffer, format="PNG")
        store.put_bytes(f"inputs/{name}.png", buffer.getvalue(), "image/png")
    return store


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache()


def generator_for(models, storage, cache, i2v_dir=None, t2v_dir=None, **options) -> WanLocalGenerator:  # type: ignore[no-untyped-def]
    return WanLocalGenerator(t2v_model_dir=str(t2v_dir or models.t2v),
                             i2v_model_dir=str(i2v_dir or models.i2v_21),
                             fetch_image=StorageImageFetcher(storage), num_inference_steps=2,
                             default_num_frames=5, cache=cache, **options)


@pytest.fixture(scope="module")
def wan(tiny_wan_models, storage, cache) -> WanLocalGenerator:
    return generator_for(tiny_wan_models, storage, cache)


def decode(path) -> np.ndarray:  # type: ignore[no-untyped-def]
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def frame_rate(path) -> float:  # type: ignore[no-untyped-def]
    with av.open(str(path)) as container:
        return float(container.streams.video[0].average_rate)


def count_vae_decodes(wan: WanLocalGenerator, mode: Mode, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls to the loaded pipeline's own VAE decoder (the expensive last stage)."""
    vae = wan.pipeline(mode).vae
    calls: list[int] = []
    real = vae.decode

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vae, "decode", counted)
    return calls


def run(wan, job, tmp_path, should_stop=lambda: False):  # type: ignore[no-untyped-def]
    progress: list[float] = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    video = wan.generate(job, workdir=tmp_path, on_progress=progress.append, should_stop=should_stop)
    return video, progress


def test_text_to_video_writes_an_mp4_with_the_asked_frames_and_size(wan, tmp_path):
    video, progress = run(wan, wan_job(), tmp_path)

    assert (video.num_frames, video.width, video.height, video.fps) == (5, 32, 32, 16)
    assert decode(video.path).shape == (5, 32, 32, 3)
    assert progress == [50.0, 100.0]


def test_the_same_seed_gives_the_same_frames_and_another_seed_does_not(wan, tmp_path):
    first, _ = run(wan, wan_job(seed=7), tmp_path / "a")
    again, _ = run(wan, wan_job(seed=7), tmp_path / "b")
    other, _ = run(wan, wan_job(seed=8), tmp_path / "c")

    assert np.array_equal(decode(first.path), decode(again.path))
    assert not np.array_equal(decode(first.path), decode(other.path))


def test_a_stop_request_interrupts_between_steps(wan, tmp_path):
    with pytest.raises(Interrupted, match="after 1 of 2 steps"):
        run(wan, wan_job(), tmp_path, should_stop=lambda: True)

    assert not (tmp_path / "wan.mp4").exists()


@pytest.mark.parametrize("mode", [Mode.TEXT_TO_VIDEO, Mode.IMAGE_TO_VIDEO])
def test_a_cancelled_job_never_reaches_the_vae_decoder(mode, wan, tmp_path, monkeypatch):
    decodes = count_vae_decodes(wan, mode, monkeypatch)
    job = wan_job(mode, input_image="inputs/look.png" if mode is Mode.IMAGE_TO_VIDEO else None)

    with pytest.raises(Interrupted):
        run(wan, job, tmp_path / "stopped", should_stop=lambda: True)
    assert decodes == []
    assert not (tmp_path / "stopped" / "wan.mp4").exists()

    run(wan, job, tmp_path / "finished")
    assert decodes == [1]


def test_a_warm_process_loads_each_pipeline_once(tiny_wan_models, storage, tmp_path):
    cache = PipelineCache()
    wan = generator_for(tiny_wan_models, storage, cache)

    run(wan, wan_job(), tmp_path / "a")
    run(generator_for(tiny_wan_models, storage, cache), wan_job(seed=3), tmp_path / "b")

    assert wan.loads == 1


@pytest.mark.parametrize("version", ["2.1 with a CLIP image encoder", "2.2 with two transformers"])
def test_image_to_video_from_a_stored_image(version, tiny_wan_models, storage, cache, tmp_path):
    i2v_dir = tiny_wan_models.i2v_21 if version.startswith("2.1") else tiny_wan_models.i2v_22
    wan = generator_for(tiny_wan_models, storage, cache, i2v_dir=i2v_dir)

    video, progress = run(wan, wan_job(Mode.IMAGE_TO_VIDEO, input_image="inputs/look.png"), tmp_path)

    # a 48x40 image within a 32x32 budget: 35x29, rounded down to multiples of 16
    assert decode(video.path).shape == (5, 16, 32, 3)
    assert progress == sorted(progress) and progress[-1] == 100.0


@pytest.mark.parametrize(("image", "width", "height"), [("portrait", 32, 80), ("landscape", 80, 32)])
def test_image_to_video_keeps_the_image_aspect_ratio_within_the_pixel_budget(
    image, width, height, wan, tmp_path
):
    job = wan_job(Mode.IMAGE_TO_VIDEO, input_image=f"inputs/{image}.png", ratio="64:64")

    video, _ = run(wan, job, tmp_path)

    # 2:1 within 64x64 = 4096 pixels: round(sqrt(4096*2)) = 91 -> 80, round(sqrt(4096/2)) = 45 -> 32
    assert (video.width, video.height) == (width, height)
    assert decode(video.path).shape == (5, height, width, 3)


def test_wan_22_ti2v_5b_sizes_in_multiples_of_32_at_24_fps(tiny_wan_models, storage, cache, tmp_path):
    wan = generator_for(tiny_wan_models, storage, cache, i2v_dir=tiny_wan_models.ti2v_5b,
                        t2v_dir=tiny_wan_models.ti2v_5b)

    text, _ = run(wan, wan_job(ratio="80:48"), tmp_path / "t2v")
    image, _ = run(wan, wan_job(Mode.IMAGE_TO_VIDEO, input_image="inputs/portrait.png", ratio="64:64"),
                   tmp_path / "i2v")

    assert decode(text.path).shape == (5, 32, 64, 3)  # 80x48 rounded down to multiples of 32
    assert decode(image.path).shape == (5, 64, 32, 3)  # 45x91 within the budget -> 32x64
    assert text.fps == image.fps == 24
    assert frame_rate(text.path) == frame_rate(image.path) == 24.0
    assert model_shape(wan.pipeline(Mode.TEXT_TO_VIDEO)).family.name == "Wan 2.2 TI2V-5B"


def test_wan_21_and_22_a14b_play_at_16_fps(tiny_wan_models, storage, cache, tmp_path):
    wan = generator_for(tiny_wan_models, storage, cache, i2v_dir=tiny_wan_models.i2v_22)

    video, _ = run(wan, wan_job(Mode.IMAGE_TO_VIDEO, input_image="inputs/look.png"), tmp_path)

    assert video.fps == 16 and frame_rate(video.path) == 16.0
    assert model_shape(wan.pipeline(Mode.IMAGE_TO_VIDEO)).family.name == "Wan 2.2 A14B"
    assert model_shape(wan.pipeline(Mode.TEXT_TO_VIDEO)).family.name == "Wan 2.1"


def test_running_out_of_memory_fails_permanently_naming_the_size(wan, tmp_path):
    import torch

    before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    huge = wan_job(ratio="16777216:16777216")  # latents alone would need 2**49 bytes

    with pytest.raises(PermanentError, match=(
        r"out of (GPU )?memory generating 16777216x16777216x5 frames; try a smaller size or fewer frames"
    )):
        run(wan, huge, tmp_path / "huge")

    if torch.cuda.is_available():
        assert torch.cuda.memory_allocated() == before
    video, _ = run(wan, wan_job(), tmp_path / "next")  # the worker goes on with the next job
    assert decode(video.path).shape == (5, 32, 32, 3)


def test_image_to_video_without_a_readable_image_fails_permanently(wan, storage, tmp_path):
    storage.put_bytes("inputs/not-an-image.png", b"plain text")

    with pytest.raises(PermanentError, match="not a readable image"):
        run(wan, wan_job(Mode.IMAGE_TO_VIDEO, input_image="inputs/not-an-image.png"), tmp_path)


def test_missing_weights_fail_permanently_and_name_the_setting(storage, tmp_path):
    wan = WanLocalGenerator(t2v_model_dir="", i2v_model_dir="", fetch_image=StorageImageFetcher(storage))

    with pytest.raises(PermanentError, match="REELQUEUE_WAN_MODEL_DIR"):
        run(wan, wan_job(), tmp_path)


def test_a_job_that_runs_out_of_memory_fails_once_and_is_not_retried(wan):
    clock = FakeClock()
    jobs = InMemoryJobRepository(InMemoryDatabase(clock), AIJob)
    handler = ProcessAIJobHandler(
        storage=InMemoryStorage(), local={"wan_local": wan}, jobs=jobs, locks=InMemoryIdempotency(clock),
        progress=InMemoryProgress(clock), clock=clock, cancel_check_interval_s=0,
        retry_policy=RetryPolicy(max_attempts=5, base_delay_s=10, rng=lambda: 0.5),
    )
    job = wan_job(ratio="16777216:16777216")
    jobs.add([job], [])

    outcome = handler.handle(job.id)

    failed = jobs.get(job.id)
    assert outcome.action is Action.ACK
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)
    assert "16777216x16777216x5 frames; try a smaller size or fewer frames" in failed.error


def test_sizes_are_multiples_of_the_model_and_frame_counts_4k_plus_1(wan):
    shape = model_shape(wan.pipeline(Mode.TEXT_TO_VIDEO))

    assert frame_size("840:482", shape) == (832, 480)
    assert frame_size(None, shape) == (832, 480)
    assert [frame_count(n) for n in (1, 5, 8, 81, 83)] == [1, 5, 5, 81, 81]


def test_a_very_thin_image_never_outgrows_the_pixel_budget(wan):
    shape = model_shape(wan.pipeline(Mode.IMAGE_TO_VIDEO))

    assert fit_image(1080, 1920, 832 * 480, shape) == (464, 832)
    assert fit_image(1, 10_000, 832 * 480, shape) == (16, 24_960)  # 16 wide at least, 399,360 pixels
    assert fit_image(10_000, 1, 832 * 480, shape) == (24_960, 16)


def test_a_remote_only_worker_never_imports_torch():
    code = (
        "import sys\n"
        "import src.infrastructure.inference.wan_local\n"
        "from src import bootstrap\n"
        "from src.config import Settings\n"
        "adapters = bootstrap.build(Settings(queue_backend='memory', worker_type='remote'))\n"
        "handler = bootstrap.ai_handler(adapters)\n"
        "assert set(handler.remote) == {'runway', 'luma'}\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
