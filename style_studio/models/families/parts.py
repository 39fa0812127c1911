"""Tiny parts the flow-matching twins share: the 16-channel VAE and small Qwen3 configs.

Sizes keep the real models' shape rules (an 8x VAE, 2x2 latent packing), so a picture
size that works on the tiny twin works on the real model; weights are random.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from transformers import Qwen3Config

FLUX_VAE_SCALE, FLUX_VAE_SHIFT = 0.3611, 0.1159  # the FLUX.1 VAE's latent normalisation


def tiny_flow_vae(seed: int, latent_channels: int = 16) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels, norm_num_groups=8, layers_per_block=1, sample_size=64,
        use_quant_conv=False, use_post_quant_conv=False, scaling_factor=FLUX_VAE_SCALE,
        shift_factor=FLUX_VAE_SHIFT)


def tiny_qwen3_config(vocab_size: int, layers: int) -> Qwen3Config:
    return Qwen3Config(hidden_size=16, intermediate_size=16, num_hidden_layers=layers,
                       num_attention_heads=2, num_key_value_heads=2, head_dim=8,
                       vocab_size=vocab_size, max_position_embeddings=512)


def ready(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """Modules made from config start in training mode (T5 keeps 10 % dropout): switch them
    to inference, as `from_pretrained` does, so the same seed draws the same picture."""
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe
