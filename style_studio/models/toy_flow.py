"""The built-in toy FLUX.1: the tiny FLUX.1 twin, wider, pretrained here on generated shapes.

The flow-matching counterpart of the toy SD model (toy.py), for the same measured reason:
a transformer with random weights has no prior, so a LoRA on it learns only generic
denoising and never a style. Pretrained as a rectified-flow model (velocity target, the
trainer's own σ density and shift, FLUX.1 [dev]'s constant guidance embedding) on random
shapes and two-colour stripes and dots, it becomes a base on which a style LoRA visibly
learns its palette and texture: the flow learning test's base. Its pictures are coloured
mosaics, not art.

Its VAE is the toy SD model's colour mosaic (toy_parts.py) in FLUX.1's 16-channel layout:
channels 0-2 are each 8x8 block's colour, the rest carry nothing. Its text encoders are the
tiny twin's random CLIP and T5: different captions still give different embeddings, which
is all a conditioned toy needs.

The seed-0 model ships in `assets/toy-flux1/` (`python -m style_studio.models.toy --model
toy-flux1`, 25 minutes on this shared 2-core machine); other seeds are built on first
use. Measured effects and what its pictures look like: docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, FluxTransformer2DModel

from .families.flow import Flux1Flow, TextTensors, noisy_and_target, sample_sigmas
from .families.flux1 import build_tiny_flux1
from .families.parts import ready
from .synthetic import pool_image
from .toy_parts import COLOURS, ToyRecipe, mosaic_vae, pretrain_loop, save_toy

TOY_FLUX1_LABEL = ("Built-in toy FLUX.1-shaped model — trained here on generated shapes, for "
                   "trying the workflow; real styles need FLUX.1, FLUX.2 [klein] or Z-Image")


# 2000 steps, not the SD toy's 1600: at 800 every sample was speckled (benchmarks.md).
FLOW_RECIPE = ToyRecipe(steps=2000)


def toy_flux1_pipeline(seed: int = 0) -> DiffusionPipeline:
    """The tiny FLUX.1 pipeline with a wider transformer (4 heads of 32, two double and
    two single blocks; 128 wide against the twin's 32) and the mosaic VAE, untrained."""
    pipe = build_tiny_flux1(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=2, num_single_layers=2,
            attention_head_dim=32, num_attention_heads=4, joint_attention_dim=32,
            pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(8, 12, 12))
    pipe.register_modules(transformer=transformer, vae=mosaic_vae(16, flow=True))
    return ready(pipe)


def _encode_pool(pipe: DiffusionPipeline, rng: np.random.Generator, recipe: ToyRecipe,
                 adapter: Flux1Flow) -> tuple[torch.Tensor, list[TextTensors], TextTensors]:
    """Latents, per-caption text tensors and the empty caption's, of a random pool.

    The mosaic's colour channels span [-1, 1]; the VAE's scaling factor is set to 1 / their
    spread (as FLUX's own factor was chosen), so noise and picture start on equal terms.
    """
    pictures, captions = zip(*(pool_image(rng, recipe.image_size, recipe.texture_share)
                               for _ in range(recipe.pool_size)), strict=True)
    pixels = torch.from_numpy(np.stack([np.asarray(p) for p in pictures])).float()
    pixels = pixels.permute(0, 3, 1, 2) / 127.5 - 1.0
    with torch.no_grad():
        raw = torch.cat([pipe.vae.encode(chunk).latent_dist.mean for chunk in pixels.split(8)])
        spread = float(raw[:, :COLOURS].std())
        pipe.vae.register_to_config(scaling_factor=round(1.0 / spread, 5))
        texts = adapter.encode(pipe, [*captions, ""], "cpu")
    return adapter.latents(pipe, raw), texts[:-1], texts[-1]


def pretrain(pipe: DiffusionPipeline, seed: int,
             recipe: ToyRecipe = FLOW_RECIPE) -> list[float]:
    """Train the transformer's full weights on the pool with the trainer's flow objective
    (same adapter, σ density and shift); returns the losses."""
    adapter = Flux1Flow()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    latents, texts, empty = _encode_pool(pipe, rng, recipe, adapter)
    seq_len = adapter.image_seq_len(latents)

    def loss_of_step() -> torch.Tensor:
        pick = torch.randint(0, len(latents), (recipe.batch_size,), generator=gen)
        clean = latents[pick]
        noise = torch.randn(clean.shape, generator=gen)
        sigmas = sample_sigmas(recipe.batch_size, adapter.recipe, pipe.scheduler.config,
                               seq_len, gen, "cpu")
        drop = torch.rand(recipe.batch_size, generator=gen) < recipe.caption_dropout
        text = adapter.collate([empty if d else texts[int(i)]
                                for d, i in zip(drop.tolist(), pick, strict=True)], "cpu")
        noisy, target = noisy_and_target(clean, noise, sigmas)
        return F.mse_loss(adapter.velocity(pipe.transformer, noisy, sigmas, text), target)

    return pretrain_loop(pipe.transformer, recipe.steps, recipe.learning_rate, loss_of_step)


def build_toy_flux1(folder: Path, seed: int = 0,
                    recipe: ToyRecipe = FLOW_RECIPE) -> Path:
    """Pretrain the toy FLUX.1 and save it as a diffusers folder at `folder`."""
    with torch.random.fork_rng(devices=[]):
        pipe = toy_flux1_pipeline(seed)
        losses = pretrain(pipe, seed, recipe)
    return save_toy(pipe, folder, "flux1", seed, TOY_FLUX1_LABEL, recipe, losses)
