"""The built-in toy model: the tiny SD 1.x model, pretrained here as a generic denoiser.

A tiny UNet with random weights learns no style at all: a LoRA on it only learns to
denoise, whatever the images (STACK-NOTES). Pretraining the tiny UNet for a few hundred
steps on procedurally drawn shapes in random colours gives it a generic prior, and
then a LoRA visibly learns a palette and texture. It is the learning test's base and
the offline demo's base; its outputs are coloured blobs, not art.

Its VAE and UNet shape come from `toy_parts.py`: a colour-mosaic VAE (a random VAE
decodes everything to noise, so nothing learned could be seen) and 8 norm groups (with
32, a LoRA could not move the colours). Measured reasons are there.

The seed-0 model ships in `assets/toy-sd15/` (made by `python -m style_studio.models.toy`)
so tests and the demo copy it instead of spending ~12 minutes of CPU on every fresh
machine; other seeds, or a checkout without the asset, are built on first use.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DiffusionPipeline

from style_studio.base.family import TOY_FLUX1_ID, TOY_ID, TOY_MODELS
from style_studio.base.files import ensure_folder

from .objective import denoising_target
from .synthetic import pool_image
from .toy_parts import ToyRecipe, pretrain_loop, save_toy, toy_pipeline

TOY_LABEL = ("Built-in toy model — trained here on generated shapes, for trying the "
             "workflow; real styles need SD 1.5 or SDXL")
ASSETS = Path(__file__).resolve().parents[2] / "assets"
ASSET_DIR = ASSETS / TOY_ID
SD_RECIPE = ToyRecipe()  # 1600 steps: the measured recipe (toy_parts.ToyRecipe)


def toy_folder_name(seed: int, toy_id: str = TOY_ID) -> str:
    return toy_id if seed == 0 else f"{toy_id}-seed{seed}"


def _encode_pool(pipe: DiffusionPipeline, rng: np.random.Generator,
                 recipe: ToyRecipe) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (VAE means), text embeddings and the empty prompt's embedding of a pool
    of random shape and texture images.

    The random VAE's latents are far smaller than a real VAE's, so its scaling factor is
    set here to 1 / their std, as SD's own factor was chosen: otherwise the noisy latents
    are almost pure noise and the UNet has no image left to learn from.
    """
    pictures, captions = zip(*(pool_image(rng, recipe.image_size, recipe.texture_share)
                               for _ in range(recipe.pool_size)), strict=True)
    pixels = torch.from_numpy(np.stack([np.asarray(p) for p in pictures])).float()
    pixels = pixels.permute(0, 3, 1, 2) / 127.5 - 1.0
    with torch.no_grad():
        latents = torch.cat([pipe.vae.encode(chunk).latent_dist.mean
                             for chunk in pixels.split(8)])
        pipe.vae.register_to_config(scaling_factor=round(1.0 / float(latents.std()), 5))
        latents = latents * pipe.vae.config.scaling_factor
        ids = pipe.tokenizer([*captions, ""], padding="max_length", truncation=True,
                             max_length=pipe.tokenizer.model_max_length,
                             return_tensors="pt").input_ids
        embeds = pipe.text_encoder(ids)[0]
    return latents, embeds[:-1], embeds[-1]


def pretrain(pipe: DiffusionPipeline, seed: int, recipe: ToyRecipe = SD_RECIPE) -> list[float]:
    """Train the tiny UNet's full weights as a denoiser of the pool; returns losses.

    The target is the scheduler's (v-prediction on the zero-terminal-SNR schedule,
    `toy_parts.zero_snr_scheduler`), and a share of the captions is dropped to the empty
    prompt, as SD was trained, so guidance has an unconditional prediction to push from.
    """
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    latents, embeds, empty = _encode_pool(pipe, rng, recipe)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    unet = pipe.unet

    def loss_of_step() -> torch.Tensor:
        pick = torch.randint(0, len(latents), (recipe.batch_size,), generator=gen)
        clean = latents[pick]
        noise = torch.randn(clean.shape, generator=gen)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps,
                                  (recipe.batch_size,), generator=gen)
        drop = torch.rand(recipe.batch_size, generator=gen) < recipe.caption_dropout
        cond = torch.where(drop[:, None, None], empty, embeds[pick])
        noisy = scheduler.add_noise(clean, noise, timesteps)
        pred = unet(noisy, timesteps, cond).sample
        return F.mse_loss(pred, denoising_target(scheduler, clean, noise, timesteps))

    return pretrain_loop(unet, recipe.steps, recipe.learning_rate, loss_of_step)


def build_toy_model(folder: Path, seed: int = 0, recipe: ToyRecipe = SD_RECIPE) -> Path:
    """Pretrain the tiny SD 1.x model and save it as a diffusers folder at `folder`."""
    with torch.random.fork_rng(devices=[]):
        pipe = toy_pipeline(seed)
        losses = pretrain(pipe, seed, recipe)
    return save_toy(pipe, folder, "sd15", seed, TOY_LABEL, recipe, losses)


def _builder(toy_id: str):
    if toy_id == TOY_FLUX1_ID:
        from .toy_flow import build_toy_flux1  # pretraining code only a rebuild needs

        return build_toy_flux1
    return build_toy_model


def ensure_toy_model(models_dir: Path, seed: int = 0, toy_id: str = TOY_ID) -> Path:
    """A toy model's folder under `models_dir`, made once (copied from assets for seed 0).

    Written into a hidden temp folder and renamed into place, so an interrupted build
    never leaves a folder that looks complete.
    """
    if toy_id not in TOY_MODELS:
        raise ValueError(f"Unknown toy model {toy_id!r}.")
    asset = ASSETS / toy_id

    def fill(tmp: Path) -> None:
        if seed == 0 and (asset / "model_index.json").is_file():
            shutil.copytree(asset, tmp, dirs_exist_ok=True)
        else:
            _builder(toy_id)(tmp, seed)

    return ensure_folder(Path(models_dir) / toy_folder_name(seed, toy_id), fill,
                         "model_index.json")


def main(argv: list[str] | None = None) -> None:
    """Rebuild a shipped toy model: python -m style_studio.models.toy [--model toy-flux1]"""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", choices=sorted(TOY_MODELS), default=TOY_ID)
    parser.add_argument("--out", type=Path, default=None, help="default: assets/<model>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out or ASSETS / args.model
    if out.exists():
        shutil.rmtree(out)
    _builder(args.model)(out, args.seed)
    print(f"toy model written to {out}")


if __name__ == "__main__":
    main()
