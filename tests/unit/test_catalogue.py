import pytest

from src.domain.catalogue import (
    CATALOGUE,
    GenerationParams,
    WorkerType,
    model_spec,
    prompt_length,
    validate_generation,
)
from src.domain.errors import ValidationError
from src.domain.jobs import Mode

T2V, I2V = Mode.TEXT_TO_VIDEO, Mode.IMAGE_TO_VIDEO
GEN4 = ["1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"]
VEO = ["1280:720", "720:1280", "1080:1920", "1920:1080"]
LUMA = ["1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"]


def params(model, mode, **kw):
    defaults = {"prompt": "a cat walking", "input_image": "uploads/u/cat.png" if mode is I2V else None}
    defaults.update(kw)
    return GenerationParams(model=model, mode=mode, **defaults)


def errors_of(p):
    with pytest.raises(ValidationError) as info:
        validate_generation(p)
    return info.value.fields


VALID = [
    ("wan_local", T2V, {"num_frames": 81, "ratio": "832:480", "seed": 7}),
    ("wan_local", I2V, {"num_frames": 5, "ratio": "32:32"}),
    *[("gen4_turbo", I2V, {"duration_s": d, "ratio": r, "seed": 1}) for d in (2, 10) for r in GEN4],
    *[("gen4.5", I2V, {"duration_s": 5, "ratio": r}) for r in GEN4],
    *[("gen4.5", T2V, {"duration_s": d, "ratio": r}) for d in (2, 10) for r in ("1280:720", "720:1280")],
    *[("veo3", m, {"duration_s": 8, "ratio": r}) for m in (T2V, I2V) for r in VEO],
    *[(v, m, {"duration_s": d, "ratio": r}) for v in ("veo3.1", "veo3.1_fast") for m in (T2V, I2V)
      for d in (4, 6, 8) for r in VEO],
    *[(v, m, {"duration_s": d, "ratio": r}) for v in ("ray-2", "ray-flash-2") for m in (T2V, I2V)
      for d in (5, 9) for r in LUMA],
]


@pytest.mark.parametrize("model,mode,kw", VALID)
def test_every_documented_combination_is_accepted(model, mode, kw):
    assert validate_generation(params(model, mode, **kw)).name == model


INVALID = [
    ("gen4_turbo", T2V, {"duration_s": 5, "ratio": "1280:720"}, "mode"),
    ("gen4_turbo", I2V, {"duration_s": 1}, "duration_s"),
    ("gen4_turbo", I2V, {"duration_s": 11}, "duration_s"),
    ("gen4_turbo", I2V, {"duration_s": 5, "ratio": "16:9"}, "ratio"),
    ("gen4.5", I2V, {}, "duration_s"),  # required
    ("gen4.5", T2V, {"duration_s": 5, "ratio": "960:960"}, "ratio"),  # i2v-only ratio
    ("veo3", T2V, {"duration_s": 6}, "duration_s"),
    ("veo3", T2V, {"duration_s": 8, "seed": 3}, "seed"),
    ("veo3", T2V, {"duration_s": 8, "ratio": "1104:832"}, "ratio"),
    ("veo3.1", I2V, {"duration_s": 5}, "duration_s"),
    ("veo3.1_fast", T2V, {"duration_s": 4, "seed": 1}, "seed"),
    ("ray-2", T2V, {"duration_s": 6}, "duration_s"),
    ("ray-flash-2", T2V, {"duration_s": 5, "ratio": "1280:720"}, "ratio"),
    ("ray-2", I2V, {"duration_s": 5, "seed": 9}, "seed"),
    ("wan_local", T2V, {"num_frames": 80}, "num_frames"),
    ("wan_local", T2V, {"duration_s": 5}, "duration_s"),
    ("wan_local", T2V, {"ratio": "830:480"}, "ratio"),
    ("wan_local", T2V, {"ratio": "wide"}, "ratio"),
    ("gen4.5", T2V, {"duration_s": 5, "num_frames": 81}, "num_frames"),
    ("gen4.5", T2V, {"duration_s": 5, "prompt": ""}, "prompt"),
    ("gen4.5", T2V, {"duration_s": 5, "prompt": "x" * 1001}, "prompt"),
    ("gen4_turbo", I2V, {"duration_s": 5, "input_image": None}, "input_image"),
    ("gen4.5", T2V, {"duration_s": 5, "input_image": "uploads/x.png"}, "input_image"),
    ("wan_local", T2V, {"seed": -1}, "seed"),
]


@pytest.mark.parametrize("model,mode,kw,field", INVALID)
def test_each_rule_of_the_catalogue_rejects_with_a_field_error(model, mode, kw, field):
    assert field in errors_of(params(model, mode, **kw))


def test_the_sunset_gen3a_turbo_names_the_current_alternatives():
    message = " ".join(errors_of(params("gen3a_turbo", I2V, duration_s=5))["model"])
    assert "removed" in message and "gen4_turbo" in message and "gen4.5" in message


def test_an_unknown_model_lists_the_known_ones():
    message = " ".join(errors_of(params("sora", T2V))["model"])
    assert "wan_local" in message and "ray-2" in message


def test_all_problems_are_reported_at_once():
    fields = errors_of(params("veo3", T2V, duration_s=5, ratio="1:1", seed=1))
    assert {"duration_s", "ratio", "seed"} <= set(fields)


def test_wan_runs_on_gpu_workers_and_every_other_model_on_remote_workers():
    assert model_spec("wan_local").worker_type is WorkerType.GPU
    assert {s.worker_type for n, s in CATALOGUE.items() if n != "wan_local"} == {WorkerType.REMOTE}


def test_known_credit_costs_per_second_are_recorded():
    costs = {name: spec.credits_per_second for name, spec in CATALOGUE.items()}
    assert costs["gen4.5"] == (12, 12) and costs["gen4_turbo"] == (5, 5) and costs["veo3"] == (40, 40)
    assert costs["veo3.1"] == (20, 40) and costs["veo3.1_fast"] == (10, 15)


def test_each_entry_describes_itself_for_user_interfaces():
    described = model_spec("gen4_turbo").describe()
    assert described["speed"] == "fast" and described["cost"] == "cheap"
    assert described["modes"] == ["i2v"] and described["ratios"] == {"i2v": GEN4}


def test_only_the_veo31_models_take_an_audio_choice():
    assert {name for name, spec in CATALOGUE.items() if spec.audio_supported} == {"veo3.1", "veo3.1_fast"}
    for model in ("veo3.1", "veo3.1_fast"):
        for audio in (True, False):
            validate_generation(params(model, T2V, duration_s=4, audio=audio))


@pytest.mark.parametrize("model", ["gen4.5", "veo3", "ray-2", "wan_local"])
@pytest.mark.parametrize("audio", [True, False])
def test_an_audio_choice_for_a_model_without_one_is_a_field_error(model, audio):
    extra = {"duration_s": 8 if model == "veo3" else 5} if model != "wan_local" else {}
    assert "audio" in errors_of(params(model, T2V, audio=audio, **extra))


def test_the_price_per_second_follows_the_audio_choice():
    assert model_spec("veo3.1").credits_per_second_for(audio=False) == 20
    assert model_spec("veo3.1").credits_per_second_for(audio=True) == 40
    assert model_spec("veo3.1_fast").credits_per_second_for(audio=False) == 10
    assert model_spec("veo3.1_fast").credits_per_second_for(audio=True) == 15
    assert model_spec("veo3").credits_per_second_for(audio=False) == 40  # Veo 3 has no choice


def test_the_prompt_limit_counts_utf16_code_units_as_runway_does():
    assert prompt_length("\U0001F3AC") == 2 and prompt_length("é") == 1
    validate_generation(params("gen4.5", T2V, duration_s=5, prompt="\U0001F3AC" * 500))
    assert "prompt" in errors_of(params("gen4.5", T2V, duration_s=5, prompt="\U0001F3AC" * 500 + "x"))


def test_gen45_needs_a_prompt_in_both_modes_while_the_others_only_for_text_to_video():
    assert "prompt" in errors_of(params("gen4.5", I2V, duration_s=5, prompt=""))
    validate_generation(params("gen4_turbo", I2V, prompt=""))
    validate_generation(params("veo3.1", I2V, prompt=""))
