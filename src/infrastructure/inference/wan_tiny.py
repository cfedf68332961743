"""Tiny, randomly initialised Wan pipelines for offline tests and the embedded demo.

They go through the same ``from_pretrained`` loading as real weights. The configurations are
the smallest known to work (issue 5); a 32x32, 5-frame, 2-step call takes a fraction of a
second on a CPU. torch, diffusers and transformers are imported only when building.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

VOCAB = ["<pad>", "</s>", "<unk>"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
    "red", "dress", "film", "light", "slow", "camera", "a", "the", "shot",
]
TEXT_DIM = 32
CLIP_HIDDEN = 4


@dataclass(frozen=True)
class TinyWanModels:
    t2v: Path
    i2v_21: Path  # Wan 2.1 style: CLIP image encoder
    i2v_22: Path  # Wan 2.2 style: no image encoder, two transformers and a boundary
    ti2v_5b: Path  # Wan 2.2 TI2V-5B style: 48-channel VAE (16x spatial), expand_timesteps


def build_tiny_wan_models(root: Path) -> TinyWanModels:
    import torch

    torch.manual_seed(0)
    models = TinyWanModels(t2v=root / "wan-t2v", i2v_21=root / "wan21-i2v", i2v_22=root / "wan22-i2v",
                           ti2v_5b=root / "wan22-ti2v-5b")
    _t2v().save_pretrained(models.t2v)
    _i2v_21().save_pretrained(models.i2v_21)
    _i2v_22().save_pretrained(models.i2v_22)
    _ti2v_5b().save_pretrained(models.ti2v_5b)
    return models


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


def _shared(vae: Any = None) -> dict[str, Any]:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(VOCAB), d_model=TEXT_DIM, num_layers=2, num_heads=4, d_kv=8, d_ff=64,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    ))
    vae = vae or AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                  temperal_downsample=[False, True, True])
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        flow_shift=3.0)
    return {"tokenizer": _tokenizer(), "text_encoder": text_encoder, "vae": vae, "scheduler": scheduler}


def _transformer(**changes: Any) -> Any:
    from diffusers import WanTransformer3DModel

    config: dict[str, Any] = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
        out_channels=16, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    config.update(changes)
    return WanTransformer3DModel(**config)


def _t2v() -> Any:
    from diffusers import WanPipeline

    return WanPipeline(transformer=_transformer(), **_shared())


def _i2v_21() -> Any:
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=CLIP_HIDDEN, projection_dim=CLIP_HIDDEN, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, intermediate_size=16, patch_size=1,
    ))
    transformer = _transformer(in_channels=36, image_dim=CLIP_HIDDEN, added_kv_proj_dim=24)
    return WanImageToVideoPipeline(transformer=transformer, image_encoder=encoder,
                                   image_processor=CLIPImageProcessor(crop_size=32, size=32), **_shared())


def _i2v_22() -> Any:
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline(
        transformer=_transformer(in_channels=36), transformer_2=_transformer(in_channels=36),
        image_encoder=None, image_processor=None, boundary_ratio=0.875, **_shared(),
    )


def _ti2v_5b() -> Any:
    """Wan 2.2 TI2V-5B's shape: a patchified 48-channel VAE with 16x spatial compression (so sizes
    are multiples of 32) and per-token timesteps; one transformer, no boundary."""
    from diffusers import AutoencoderKLWan, WanPipeline

    vae = AutoencoderKLWan(
        base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
    )
    transformer = _transformer(in_channels=48, out_channels=48)
    return WanPipeline(transformer=transformer, expand_timesteps=True, **_shared(vae))
