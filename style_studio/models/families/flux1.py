"""FLUX.1 [dev] and [schnell]: a rectified-flow transformer with CLIP and T5 text encoders.

[dev] is guidance-distilled (a guidance embedding, about 3.5) and non-commercial; [schnell]
is timestep-distilled for 4 steps and Apache-2.0. Both pack 2x2 latent patches of a
16-channel VAE into tokens.
"""

from __future__ import annotations

import torch
from diffusers import (
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
)
from transformers import CLIPTextModel, T5Config, T5EncoderModel

from style_studio.models.tokenizer_assets import (
    build_clip_tokenizer,
    build_t5_tokenizer,
    tiny_clip_text_config,
)

from .flow import Flux1Flow
from .parts import ready, tiny_flow_vae
from .spec import FamilySpec, ReferenceModel, TokenReader

FLUX1_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                 "to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj",
                 "ff_context.net.2")


def build_tiny_flux1(seed: int = 0, guidance: bool = True) -> DiffusionPipeline:
    """A FLUX.1-shaped pipeline with random weights (about 0.4 M parameters)."""
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
        guidance_embeds=guidance, axes_dims_rope=(4, 6, 6))
    clip_tokenizer, t5_tokenizer = build_clip_tokenizer(), build_t5_tokenizer()
    torch.manual_seed(seed + 1)
    clip = CLIPTextModel(tiny_clip_text_config(len(clip_tokenizer)))
    torch.manual_seed(seed + 2)
    t5 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0))
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxPipeline(scheduler=scheduler, vae=tiny_flow_vae(seed + 3), text_encoder=clip,
                        tokenizer=clip_tokenizer, text_encoder_2=t5, tokenizer_2=t5_tokenizer,
                        transformer=transformer)
    return ready(pipe)


FLUX1 = FamilySpec(
    key="flux1", label="FLUX.1", pipeline="FluxPipeline", denoiser="transformer",
    objective="flow_matching", native_side=1024, latent_packing=True,
    text_encoders=("CLIPTextModel", "T5EncoderModel"), caption_token_limit=512,
    default_targets=FLUX1_TARGETS,
    references=(
        ReferenceModel("black-forest-labs/FLUX.1-dev", "FLUX.1 [dev]",
                       "FLUX.1 [dev] Non-Commercial License", False, 24.0, download="34 GB"),
        ReferenceModel("black-forest-labs/FLUX.1-schnell", "FLUX.1 [schnell]", "Apache-2.0",
                       True, 24.0, download="34 GB", sample_steps=4,
                       sample_guidance=0.0),
    ),
    build_tiny=build_tiny_flux1, trainable=True, flow=Flux1Flow(),
    sample_steps=28, sample_guidance=3.5,
    # T5 reads 512 tokens of the caption; CLIP only its first 77, for the pooled vector.
    token_readers=(TokenReader("tokenizer_2", "T5", 512),
                   TokenReader("tokenizer", "CLIP", 77, pooled=True)),
    negative_prompt="never",
    guidance_note="distilled guidance, a number the model reads (not classifier-free "
                  "guidance): about 3.5 for [dev]; [schnell] ignores it")
