"""The toy model's own parts: a colour-mosaic VAE and a UNet that can learn colours.

Two measured problems of the tiny random model as a base for a visible demo:

- **VAE.** A tiny VAE with random weights decodes every latent to the same grey-green
  noise, so whatever the UNet or a LoRA learns can never be *seen* (measured: a demo
  artwork encoded and decoded again came back as noise, 100+ RGB units from its own
  palette). Training a tiny VAE well takes far longer than the rest of the toy model on
  a CPU (30 min gave washed-out colours). `mosaic_vae` needs no training: its encoder
  averages each 8x8 block's colour and its decoder paints the block back, so a latent
  image is a 1/8-scale picture of the image, and a decoded one a mosaic.
- **UNet.** The tiny UNet normalises over 32 groups of 32-64 channels, i.e. one or two
  channels per group: each channel's mean over the picture is removed before the last
  convolution, so a LoRA can hardly move the overall colour. SD's own UNet has 10
  channels per group. Measured on the demo style (400-step toys, guidance 7, 3 seeds,
  mean RGB distance to the style's palette): with 32 groups even a LoRA at lr 1e-2,
  batch 4, 300 steps left the outputs no closer (102 -> 126); with 8 groups (4-8
  channels each) the Quick draft preset of the time (lr 2e-4) took them from 143 to 98.

The VAE is an `AutoencoderKL` of the tiny model's shape (blocks 8/16/32/32, 8x down),
so diffusers saves, loads and runs it like any VAE. Every residual branch and attention
output is zero, so each block passes its input on; the downsamplers average, the
upsamplers repeat. The one non-linear step, GroupNorm + SiLU before each `conv_out`, is
made linear: with one group whose channels are (c, -c, K, -K) the mean is exactly zero
and the spread is K-dominated (error < 2e-4 for K = 100), and a lift of 10 puts SiLU
where it is the identity to within 0.1%. `norm_num_groups` is 1 for that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline, UNet2DConditionModel
from torch import nn

from style_studio.base.family import TOY_SIDE
from style_studio.base.files import atomic_write_json

from .tiny import TINY_MARKER, build_tiny_pipeline

COLOURS = 3
K = 100.0  # the constant channels that keep GroupNorm linear (fp16-safe: K^2 = 1e4)
LIFT = 10.0  # SiLU(x) = x to within 0.1% for x in [9, 11]
LOGVAR = -20.0  # the posterior's spread: std ~ 5e-5, i.e. none
UNET_GROUPS = 8


@dataclass(frozen=True)
class ToyRecipe:
    """How a toy is pretrained (both toys; the FLUX.1 one takes 2000 steps): full weights,
    lr 1e-3 decaying, 32x32 latents. Measured in STACK-NOTES and benchmarks.md."""

    # 1600 steps of 8 from 192 pictures (cosine decay): 1200 at a constant rate left the
    # zero-terminal-SNR model's samples grainy; 400 of 4 from 48 were noisy throughout.
    steps: int = 1600
    learning_rate: float = 1e-3
    batch_size: int = 8
    image_size: int = TOY_SIDE
    pool_size: int = 192
    texture_share: float = 0.5  # stripes and dots in random colours, beside the shapes
    caption_dropout: float = 0.1  # empty prompts, so classifier-free guidance has an anchor


def toy_pipeline(seed: int = 0) -> DiffusionPipeline:
    """The tiny SD 1.x pipeline with the toy's UNet and VAE, before any pretraining."""
    pipe = build_tiny_pipeline("sd15", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel.from_config(pipe.unet.config, norm_num_groups=UNET_GROUPS,
                                                sample_size=TOY_SIDE // 8)
    pipe.register_modules(unet=unet, vae=mosaic_vae(), scheduler=zero_snr_scheduler(pipe))
    return pipe


def zero_snr_scheduler(pipe: DiffusionPipeline) -> DDIMScheduler:
    """SD's betas rescaled to zero terminal SNR, v-prediction, trailing timesteps.

    With SD's own schedule the noisiest training step still holds 7% of the image, so
    a model learns to *read* each channel's mean colour from its input instead of
    making it; sampling starts from pure noise, so that mean stays grey (measured on the
    old toy: predicted mean colour from pure noise 0.0-0.3, from noise carrying the
    style's means 1.1-1.7; benchmarks.md). Lin et al. 2024, "Common Diffusion Noise
    Schedules and Sample Steps are Flawed", give this fix; diffusers implements it.
    """
    return DDIMScheduler.from_config(
        pipe.scheduler.config, rescale_betas_zero_snr=True, prediction_type="v_prediction",
        timestep_spacing="trailing", clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def mosaic_vae(latent_channels: int = 4, flow: bool = False) -> AutoencoderKL:
    """The codec: latent channels 0-2 = mean R, G, B of each 8x8 block in [-1, 1],
    channel 3 = their mean (the decoder ignores it), any further channels 0. `flow`
    gives the FLUX.1 VAE's layout (16 channels, no quant convolutions)."""
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 32, 32), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels, norm_num_groups=1, layers_per_block=1,
        sample_size=TOY_SIDE, scaling_factor=1.0, shift_factor=0.0 if flow else None,
        use_quant_conv=not flow, use_post_quant_conv=not flow)
    with torch.no_grad():
        for param in vae.parameters():
            param.zero_()
        _set_passthrough(vae)
        _set_encoder_ends(vae.encoder.conv_in, vae.encoder.conv_norm_out, vae.encoder.conv_out,
                          latent_channels)
        _set_decoder_ends(vae.decoder.conv_in, vae.decoder.conv_norm_out, vae.decoder.conv_out)
    vae.eval()
    return vae


def _centre(conv: nn.Conv2d, out_ch: int, in_ch: int, weight: float) -> None:
    k = conv.kernel_size[0] // 2
    conv.weight[out_ch, in_ch, k, k] = weight


def _identity(conv: nn.Conv2d) -> None:
    for ch in range(min(conv.in_channels, conv.out_channels)):
        _centre(conv, ch, ch, 1.0)


def _set_passthrough(vae: AutoencoderKL) -> None:
    """Shortcuts carry channels on; downsamplers average 2x2; upsamplers repeat."""
    for name, module in vae.named_modules():
        if name.endswith("conv_shortcut") or name in ("quant_conv", "post_quant_conv"):
            _identity(module)
        elif ".downsamplers." in name and isinstance(module, nn.Conv2d):
            for ch in range(module.out_channels):  # pad (0,1,0,1) then stride 2: taps 0..1
                module.weight[ch, ch, 0:2, 0:2] = 0.25
        elif ".upsamplers." in name and isinstance(module, nn.Conv2d):
            _identity(module)  # after nearest-neighbour interpolation


def _signed_channels(conv_in: nn.Conv2d, sources: range) -> None:
    """Channels (c..., -c..., K, -K): one GroupNorm group over them is linear in c."""
    for ch in sources:
        _centre(conv_in, ch, ch, 1.0)
        _centre(conv_in, COLOURS + ch, ch, -1.0)
    conv_in.bias[2 * COLOURS] = K
    conv_in.bias[2 * COLOURS + 1] = -K


def _linear_norm(norm: nn.GroupNorm) -> None:
    """GroupNorm's spread is K * sqrt(2 / channels): scale back to c, then lift."""
    spread = K * (2.0 / norm.num_channels) ** 0.5
    norm.weight[: 2 * COLOURS] = spread
    norm.bias[: 2 * COLOURS] = LIFT


def _set_encoder_ends(conv_in: nn.Conv2d, norm: nn.GroupNorm, conv_out: nn.Conv2d,
                      latent_channels: int) -> None:
    _signed_channels(conv_in, range(COLOURS))
    _linear_norm(norm)
    for ch in range(COLOURS):
        _centre(conv_out, ch, ch, 1.0)
        _centre(conv_out, COLOURS, ch, 1.0 / COLOURS)
    conv_out.bias[: COLOURS + 1] = -LIFT  # the mean channels; the rest of them stay 0
    conv_out.bias[latent_channels:] = LOGVAR


def _set_decoder_ends(conv_in: nn.Conv2d, norm: nn.GroupNorm, conv_out: nn.Conv2d) -> None:
    _signed_channels(conv_in, range(COLOURS))
    _linear_norm(norm)
    for ch in range(COLOURS):
        _centre(conv_out, ch, ch, 1.0)
    conv_out.bias[:] = -LIFT


def save_toy(pipe: DiffusionPipeline, folder: Path, family: str, seed: int, label: str,
             recipe: object, losses: list[float]) -> Path:
    """Save a pretrained toy with the marker that says what it is and how it was made."""
    window = min(50, max(1, len(losses) // 4))  # mean loss over the first / last steps
    pipe.save_pretrained(folder, safe_serialization=True)
    marker = {"kind": "toy", "family": family, "seed": seed, "note": label,
              "recipe": recipe.__dict__,
              "vae_scaling_factor": pipe.vae.config.scaling_factor,
              "loss_start": float(np.mean(losses[:window])),
              "loss_end": float(np.mean(losses[-window:])), "loss_window": window}
    atomic_write_json(folder / TINY_MARKER, marker)
    return folder


def pretrain_loop(module: nn.Module, steps: int, learning_rate: float,
                  loss_of_step: Callable[[], torch.Tensor]) -> list[float]:
    """Train `module`'s full weights for `steps` with AdamW and a cosine decay to zero (the
    last steps settle the weights instead of jittering at full rate, which left the toy
    SD model's samples grainy); `loss_of_step` draws a batch and returns its loss."""
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    for _ in range(steps):
        loss = loss_of_step()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    module.eval()
    return losses
