"""Z-Image: a 6B single-stream flow transformer with a Qwen3 text encoder.

It patches latents itself, takes the timestep as (1000 - t) / 1000 and predicts the
negated velocity; the Turbo model samples in 8 steps.
"""

from __future__ import annotations

import torch
from diffusers import (
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from transformers import Qwen3Model

from style_studio.models.tokenizer_assets import build_qwen_tokenizer

from .flow import ZImageFlow
from .parts import ready, tiny_flow_vae, tiny_qwen3_config
from .spec import FamilySpec, ReferenceModel, TokenReader

ZIMAGE_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def build_tiny_zimage(seed: int = 0) -> DiffusionPipeline:
    torch.manual_seed(seed)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2,
        n_refiner_layers=1, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True,
        cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0, axes_dims=[8, 4, 4],
        axes_lens=[256, 32, 32])
    tokenizer = build_qwen_tokenizer()
    torch.manual_seed(seed + 1)
    text_encoder = Qwen3Model(tiny_qwen3_config(len(tokenizer), layers=2))
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                          vae=tiny_flow_vae(seed + 2), text_encoder=text_encoder,
                          tokenizer=tokenizer, transformer=transformer)
    return ready(pipe)


ZIMAGE = FamilySpec(
    key="zimage", label="Z-Image", pipeline="ZImagePipeline", denoiser="transformer",
    objective="flow_matching", native_side=1024, latent_packing=True,
    text_encoders=("Qwen3Model",), caption_token_limit=512, default_targets=ZIMAGE_TARGETS,
    references=(
        ReferenceModel("Tongyi-MAI/Z-Image", "Z-Image", "Apache-2.0", True, 20.0,
                       verified=False, download="21 GB", sample_steps=50,
                       sample_guidance=4.0),  # the undistilled model: CFG (3-5 is usual)
        ReferenceModel("Tongyi-MAI/Z-Image-Turbo", "Z-Image Turbo", "Apache-2.0", True, 20.0,
                       verified=False, download="21 GB"),
    ),
    build_tiny=build_tiny_zimage, trainable=True, flow=ZImageFlow(),
    sample_steps=8, sample_guidance=0.0,
    token_readers=(TokenReader("tokenizer", "Qwen3", 512, chat_thinking=True),),
    negative_prompt="with_guidance", tool_names="comfyui",
    guidance_note="0 = off, as Z-Image Turbo draws (8 steps); above 0 it is "
                  "classifier-free guidance (about 4 for the base Z-Image, with 50 steps)")
