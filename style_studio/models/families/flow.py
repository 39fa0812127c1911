"""Rectified-flow training for the transformer families: the objective, and one adapter
per family for what differs (latent normalisation and packing, position ids, the text
encoders' outputs, the timestep convention, guidance).

The objective is the one of the diffusers examples (`train_dreambooth_lora_flux.py`,
`…_flux2_klein.py`, `…_z_image.py`): σ ~ logit-normal, `noisy = (1-σ)·x0 + σ·ε`, the
model predicts the velocity `ε - x0`, plain MSE. Two choices differ from those scripts,
on purpose: σ is drawn from the trainer's own seeded generator (diffusers'
`compute_density_for_timestep_sampling` uses the global RNG, which would break an exact
resume), and σ is shifted the way the family's scheduler shifts it at inference, so the
LoRA trains where sampling spends its steps.

Text encoders run once per caption: each adapter's `encode` gives per-caption tensors that
the data cache stores, `collate` batches them, and `pipeline_kwargs` hands them to the
pipeline for samples, so the encoders can be freed after the cache is filled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

TextTensors = dict[str, torch.Tensor]  # one caption's cached text outputs (no batch dim)


@dataclass(frozen=True)
class FlowRecipe:
    """How σ is drawn and weighted: `density` "logit_normal" (SD3, sd-scripts' "sigmoid")
    or "uniform"; `weighting` "none" (uniform) or "sigma_sqrt" (diffusers' σ⁻²)."""

    density: str = "logit_normal"
    weighting: str = "none"


def sample_sigmas(batch: int, recipe: FlowRecipe, scheduler_config: dict, image_seq_len: int,
                  generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """σ in (0, 1) per sample, shifted like the family's scheduler shifts at inference."""
    if recipe.density == "logit_normal":
        u = torch.sigmoid(torch.randn(batch, generator=generator, device=device))
    elif recipe.density == "uniform":
        u = torch.rand(batch, generator=generator, device=device)
    else:
        raise ValueError(f"Unknown timestep density {recipe.density!r}.")
    u = u.clamp(1e-4, 1 - 1e-4)
    if scheduler_config.get("use_dynamic_shifting"):
        mu = resolution_shift(image_seq_len, scheduler_config)
        return math.exp(mu) / (math.exp(mu) + (1 / u - 1))
    shift = float(scheduler_config.get("shift", 1.0))
    return shift * u / (1 + (shift - 1) * u)


def resolution_shift(image_seq_len: int, config: dict) -> float:
    """FLUX's μ: linear in the number of image tokens between the config's two anchors."""
    base_len = config.get("base_image_seq_len") or 256
    max_len = config.get("max_image_seq_len") or 4096
    base, top = config.get("base_shift") or 0.5, config.get("max_shift") or 1.15
    slope = (top - base) / (max_len - base_len)
    return image_seq_len * slope + base - slope * base_len


def noisy_and_target(x0: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The interpolated latent and the velocity the model must predict."""
    s = sigmas.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - s) * x0 + s * noise, noise - x0


def loss_weights(recipe: FlowRecipe, sigmas: torch.Tensor) -> torch.Tensor:
    """diffusers' `compute_loss_weighting_for_sd3` for the schemes we offer."""
    if recipe.weighting == "sigma_sqrt":
        return (sigmas ** -2.0).float()
    return torch.ones_like(sigmas, dtype=torch.float32)


class FlowAdapter:
    """What one family's pipeline does around its transformer, for training."""

    recipe = FlowRecipe()
    text_length = 512  # tokens the text encoder reads (the pipeline's max_sequence_length)

    def latents(self, pipe, raw: torch.Tensor) -> torch.Tensor:
        """VAE posterior means (B, C, h, w) -> the latents the transformer denoises."""
        vae = pipe.vae.config
        return (raw - (vae.shift_factor or 0.0)) * vae.scaling_factor

    def image_seq_len(self, latents: torch.Tensor) -> int:
        return latents.shape[-2] * latents.shape[-1] // 4  # 2x2 patches

    def encode(self, pipe, captions: list[str], device) -> list[TextTensors]:
        raise NotImplementedError

    def collate(self, texts: list[TextTensors], device) -> TextTensors | list:
        return {k: torch.stack([t[k] for t in texts]).to(device) for k in texts[0]}

    def velocity(self, transformer, noisy: torch.Tensor, sigmas: torch.Tensor,
                 text) -> torch.Tensor:
        raise NotImplementedError

    def pipeline_kwargs(self, text: TextTensors, negative: TextTensors, device, dtype) -> dict:
        """The pipeline's prompt arguments from cached tensors (`negative`: the empty
        caption's, for pipelines that guide against it)."""
        raise NotImplementedError


class Flux1Flow(FlowAdapter):
    """FLUX.1: CLIP pooled + T5 tokens, 2x2 packing, [dev]'s constant guidance embedding."""

    guidance = 3.5  # what the diffusers example trains [dev] with (its inference default)

    def encode(self, pipe, captions, device):
        embeds, pooled, _ = pipe.encode_prompt(prompt=captions, prompt_2=None, device=device,
                                               max_sequence_length=self.text_length)
        return [{"embeds": e, "pooled": p} for e, p in zip(embeds, pooled, strict=True)]

    def velocity(self, transformer, noisy, sigmas, text):
        from diffusers import FluxPipeline

        b, c, h, w = noisy.shape
        packed = FluxPipeline._pack_latents(noisy, b, c, h, w)
        img_ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, noisy.device,
                                                         noisy.dtype)
        txt_ids = torch.zeros(text["embeds"].shape[1], 3, device=noisy.device,
                              dtype=noisy.dtype)
        guidance = (torch.full((b,), self.guidance, device=noisy.device)
                    if transformer.config.guidance_embeds else None)
        out = transformer(hidden_states=packed, timestep=sigmas, guidance=guidance,
                          pooled_projections=text["pooled"],
                          encoder_hidden_states=text["embeds"], txt_ids=txt_ids,
                          img_ids=img_ids, return_dict=False)[0]
        return FluxPipeline._unpack_latents(out, h * 8, w * 8, 8)

    def pipeline_kwargs(self, text, negative, device, dtype):
        return {"prompt_embeds": text["embeds"][None].to(device, dtype),
                "pooled_prompt_embeds": text["pooled"][None].to(device, dtype)}


class Flux2KleinFlow(FlowAdapter):
    """FLUX.2 [klein]: stacked Qwen3 layers, patchified 32-channel latents normalised by
    the VAE's batch-norm statistics, four-axis position ids, no guidance embedding."""

    layers = (9, 18, 27)  # the pipeline's choice (the example script's 10/20/30 is [dev]'s)

    def latents(self, pipe, raw):
        from diffusers import Flux2KleinPipeline

        patched = Flux2KleinPipeline._patchify_latents(raw)
        bn = pipe.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(patched)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps)
        return (patched - mean) / std.to(patched)

    def image_seq_len(self, latents):
        return latents.shape[-2] * latents.shape[-1]  # already patchified

    def encode(self, pipe, captions, device):
        embeds, _ = pipe.encode_prompt(prompt=captions, device=device,
                                       max_sequence_length=self.text_length,
                                       text_encoder_out_layers=self.layers)
        return [{"embeds": e} for e in embeds]

    def velocity(self, transformer, noisy, sigmas, text):
        from diffusers import Flux2KleinPipeline as Klein

        _, _, h, w = noisy.shape
        ids = Klein._prepare_latent_ids(noisy).to(noisy.device)
        txt_ids = Klein._prepare_text_ids(text["embeds"]).to(noisy.device)
        out = transformer(hidden_states=Klein._pack_latents(noisy), timestep=sigmas,
                          guidance=None, encoder_hidden_states=text["embeds"],
                          txt_ids=txt_ids, img_ids=ids, return_dict=False)[0]
        return Klein._unpack_latents_with_ids(out, ids, h, w)

    def pipeline_kwargs(self, text, negative, device, dtype):
        return {"prompt_embeds": text["embeds"][None].to(device, dtype),
                "negative_prompt_embeds": negative["embeds"][None].to(device, dtype)}


class ZImageFlow(FlowAdapter):
    """Z-Image: per-caption Qwen3 features of different lengths (a list, not a tensor); the
    transformer takes t = 1 - σ and predicts the negated velocity (as its pipeline undoes)."""

    def encode(self, pipe, captions, device):
        embeds, _ = pipe.encode_prompt(prompt=captions, device=device,
                                       do_classifier_free_guidance=False,
                                       max_sequence_length=self.text_length)
        return [{"embeds": e} for e in embeds]

    def collate(self, texts, device):
        return [t["embeds"].to(device) for t in texts]

    def velocity(self, transformer, noisy, sigmas, text):
        frames = list(noisy.unsqueeze(2).unbind(0))
        out = transformer(frames, 1 - sigmas, text, return_dict=False)[0]
        return -torch.stack([o.float() for o in out]).squeeze(2).to(noisy.dtype)

    def pipeline_kwargs(self, text, negative, device, dtype):
        return {"prompt_embeds": [text["embeds"].to(device, dtype)],
                "negative_prompt_embeds": [negative["embeds"].to(device, dtype)]}
