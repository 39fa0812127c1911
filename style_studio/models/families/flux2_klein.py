"""FLUX.2 [klein] 4B: a flow transformer reading stacked hidden states of a Qwen3 model.

Black Forest Labs recommend the undistilled Base model for LoRA training; the distilled
model samples in 4 steps. The pipeline reads the text encoder's layers 9, 18 and 27, so
even the tiny twin has 27 layers. Its first positional argument is `image`: always call
it with `prompt=`.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLFlux2,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)
from transformers import Qwen3ForCausalLM

from style_studio.models.tokenizer_assets import build_qwen_tokenizer

from .flow import Flux2KleinFlow
from .parts import ready, tiny_qwen3_config
from .spec import FamilySpec, ReferenceModel, TokenReader

KLEIN_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "to_qkv_mlp_proj")


def build_tiny_flux2_klein(seed: int = 0) -> DiffusionPipeline:
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=48, timestep_guidance_channels=256,
        axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLFlux2(in_channels=3, out_channels=3, block_out_channels=(8, 16, 32, 32),
                             latent_channels=32, norm_num_groups=8, layers_per_block=1,
                             sample_size=64, use_quant_conv=False, use_post_quant_conv=False)
    tokenizer = build_qwen_tokenizer()
    torch.manual_seed(seed + 2)
    text_encoder = Qwen3ForCausalLM(tiny_qwen3_config(len(tokenizer), layers=27))
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        is_distilled=True)
    return ready(pipe)


FLUX2_KLEIN = FamilySpec(
    key="flux2_klein", label="FLUX.2 [klein]", pipeline="Flux2KleinPipeline",
    denoiser="transformer", objective="flow_matching", native_side=1024, latent_packing=True,
    text_encoders=("Qwen3ForCausalLM",), caption_token_limit=512,
    default_targets=KLEIN_TARGETS,
    references=(
        ReferenceModel("black-forest-labs/FLUX.2-klein-base-4B", "FLUX.2 [klein] 4B Base",
                       "Apache-2.0", True, 16.0, verified=False, download="16 GB",
                       sample_steps=50, sample_guidance=4.0),  # undistilled: CFG
        ReferenceModel("black-forest-labs/FLUX.2-klein-4B", "FLUX.2 [klein] 4B", "Apache-2.0",
                       True, 16.0, verified=False, download="16 GB"),
    ),
    build_tiny=build_tiny_flux2_klein, trainable=True, flow=Flux2KleinFlow(),
    sample_steps=4, sample_guidance=1.0,
    token_readers=(TokenReader("tokenizer", "Qwen3", 512, chat_thinking=False),),
    negative_prompt="never",  # CFG of the Base model guides against the empty prompt
    guidance_note="ignored by the distilled [klein] (4 steps); the Base model uses "
                  "classifier-free guidance above 1 (about 4, with 50 steps)")
