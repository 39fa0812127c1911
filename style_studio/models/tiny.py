"""The built-in tiny models: SD 1.x and SDXL architectures at ~1 M parameters, and the
flow families' twins (declared in `families/`, under 1 M parameters each).

Random weights built from config in code (no download), deterministic by seed, saved
once and loaded back through the same `from_pretrained` path as any local folder. They
exist for tests and for trying the workflow offline; their images are noise, not art.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from style_studio.base.family import FLOW_FAMILIES, Family, check_family
from style_studio.base.files import atomic_write_json, ensure_folder

from .tokenizer_assets import build_clip_tokenizer, tiny_clip_text_config

TINY_IDS: dict[Family, str] = {"sd15": "tiny-sd15", "sdxl": "tiny-sdxl", "flux1": "tiny-flux1",
                               "flux2_klein": "tiny-flux2-klein", "zimage": "tiny-zimage"}
TINY_LABEL = "Tiny random model (random weights, for trying the workflow)"
TINY_MARKER = "STYLE_STUDIO_MODEL.json"
TINY_NOTE = "random weights, for trying the workflow; not a real model"
# "tiny-sd15" is seed 0; other seeds live beside it as "tiny-sd15-seed<N>".
_TINY_RE = re.compile(r"^(tiny-[a-z0-9-]+?)(?:-seed(\d+))?$")




def _tiny_unet(family: Family) -> UNet2DConditionModel:
    common: dict[str, Any] = {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 32,
    }
    if family == "sd15":
        return UNet2DConditionModel(**common, cross_attention_dim=32, attention_head_dim=8)
    # SDXL: prompt embeds = 32 + 32 (two encoders) = cross_attention_dim 64; the added
    # embedding sees pooled text (projection_dim 32) + 6 time ids x 8 = 80 features.
    return UNet2DConditionModel(
        **common,
        cross_attention_dim=64,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,
    )


def _tiny_vae(family: Family) -> AutoencoderKL:
    # Four blocks -> 8x downsampling, like the real SD/SDXL VAE.
    return AutoencoderKL(
        block_out_channels=(8, 16, 32, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=64,
        scaling_factor=0.18215 if family == "sd15" else 0.13025,
    )


def _tiny_scheduler(family: Family) -> PNDMScheduler | EulerDiscreteScheduler:
    # The real models' schedules; DDPMScheduler.from_config(...) gives the training twin.
    common: dict[str, Any] = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "steps_offset": 1,
        "prediction_type": "epsilon",
    }
    if family == "sd15":
        return PNDMScheduler(**common, skip_prk_steps=True, set_alpha_to_one=False)
    return EulerDiscreteScheduler(**common, timestep_spacing="leading")


def build_tiny_components(family: Family, seed: int = 0) -> dict[str, Any]:
    """Components of a 5-7 MB model with random weights, built in code (no download).

    Same seed, same weights: the seed is reset before each component so adding or
    reordering one never changes the others. The schedulers use the real models' betas,
    1000 training steps and epsilon prediction, so `DDPMScheduler.from_config` trains it.
    """
    check_family(family)
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state untouched
        return _seeded_components(family, seed)


def _seeded_components(family: Family, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    unet = _tiny_unet(family)
    torch.manual_seed(seed)
    vae = _tiny_vae(family)
    tokenizer = build_clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(tiny_clip_text_config(len(tokenizer)))
    components: dict[str, Any] = {
        "unet": unet,
        "scheduler": _tiny_scheduler(family),
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "feature_extractor": None,
        "image_encoder": None,
    }
    if family == "sd15":
        components["safety_checker"] = None
    else:
        torch.manual_seed(seed)
        components["text_encoder_2"] = CLIPTextModelWithProjection(
            tiny_clip_text_config(len(tokenizer), projection_dim=32)
        )
        components["tokenizer_2"] = build_clip_tokenizer()
    return components


def build_tiny_pipeline(family: Family, seed: int = 0) -> DiffusionPipeline:
    """The tiny model as an in-memory pipeline (what `ensure_tiny_model` saves)."""
    if family in FLOW_FAMILIES:
        raise ValueError(f"The {family} twin is built by its family module (families/).")
    components = build_tiny_components(family, seed)
    if family == "sd15":
        pipe = StableDiffusionPipeline(**components, requires_safety_checker=False)
    else:
        pipe = StableDiffusionXLPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_id(family: Family, seed: int = 0) -> str:
    """The ref of a tiny model; seed 0 gets the plain name the UI lists."""
    return TINY_IDS[family] if seed == 0 else f"{TINY_IDS[family]}-seed{seed}"


def parse_tiny_id(ref: str) -> tuple[Family, int] | None:
    """(family, seed) for a tiny ref such as "tiny-sdxl" or "tiny-sd15-seed3", else None."""
    match = _TINY_RE.match(ref.strip())
    family = next((f for f, name in TINY_IDS.items() if match and name == match.group(1)), None)
    return (family, int(match.group(2) or 0)) if match and family else None


def ensure_tiny_model(family: Family, models_dir: Path, seed: int = 0,
                      build: Callable[[Family, int], DiffusionPipeline] | None = None) -> Path:
    """Save the tiny model under `models_dir` once and return its folder.

    It is written into a hidden temp folder and renamed into place, so a crash or a
    concurrent caller never leaves a half-written model that looks complete.
    """
    check_family(family)

    def fill(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state untouched
            pipe = (build or build_tiny_pipeline)(family, seed)
        pipe.save_pretrained(tmp, safe_serialization=True)
        marker = {"kind": "tiny-random", "family": family, "seed": seed, "note": TINY_NOTE}
        atomic_write_json(tmp / TINY_MARKER, marker)

    return ensure_folder(Path(models_dir) / tiny_id(family, seed), fill, "model_index.json")
