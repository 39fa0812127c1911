"""Does the flow-matching trainer learn a style? A FLUX.1 LoRA trained on magenta stripes
must lower the velocity loss on unseen stripes clearly more than on unseen green dots.

The flow counterpart of test_training_learning.py, on the toy FLUX.1 (models/toy_flow.py:
the tiny FLUX.1 twin, wider, pretrained here on generated shapes; a random transformer
learns only generic denoising). The run goes through the real Trainer (`Studio.training`);
evaluation uses fixed noise and σ. The margins are half of the effects measured in
docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from training_helpers import add_cleared_images, training_threads, write_images

from style_studio.base.family import TOY_FLUX1_ID
from style_studio.images.style_signature import StyleSignature, style_distance
from style_studio.models.devices import pick_device
from style_studio.models.families import family_spec
from style_studio.models.families.flow import noisy_and_target
from style_studio.models.loading import describe_source, load_pipeline
from style_studio.models.synthetic import style_images
from style_studio.models.toy import ToyRecipe, ensure_toy_model
from style_studio.models.toy_flow import TOY_FLUX1_LABEL, build_toy_flux1
from style_studio.studio import Studio
from style_studio.training.config import TrainConfig

PROMPT = "stylea, a pattern"
HELD_OUT = 8
DRAWS = 4  # noise draws per held-out image
SAMPLE_SEEDS = (1, 2, 3, 4)
SAMPLE_STEPS = 12
# Half of each effect measured on the shipped toy FLUX.1 (docs/benchmarks.md, 2026-12-02).
HELD_OUT_GAIN = 0.075  # stripes' held-out velocity loss fell 15.5 %
HELD_OUT_LEAD = 0.21  # ... while dots' rose 27.8 %: a lead of 43 points
GEN_MARGIN_DOTS = 0.12  # generated: 0.373 to stripes vs 0.613 to dots
GEN_MARGIN_BASE = 0.10  # generated: 0.373 with the LoRA vs 0.585 for the base
TRAIN = dict(rank=8, alpha=8.0, learning_rate=5e-3, max_steps=120, batch_size=4,
             resolution=256, lr_scheduler="constant", lr_warmup_steps=0, sample_every=0,
             checkpoint_every=0, sample_prompts=[PROMPT], sample_seeds=[3], sample_steps=4)


def _latents(pipe, images) -> torch.Tensor:
    pixels = torch.from_numpy(np.stack([np.asarray(i) for i in images])).float()
    pixels = pixels.permute(0, 3, 1, 2) / 127.5 - 1.0
    with torch.no_grad():
        raw = pipe.vae.encode(pixels).latent_dist.mean
    return family_spec("flux1").flow.latents(pipe, raw)


@torch.no_grad()
def heldout_loss(pipe, latents: torch.Tensor) -> float:
    """Mean velocity MSE with noise and σ fixed by seed (the same for every model)."""
    adapter = family_spec("flux1").flow
    gen = torch.Generator().manual_seed(1234)
    batch = latents.repeat(DRAWS, 1, 1, 1)
    noise = torch.randn(batch.shape, generator=gen)
    sigmas = 0.05 + 0.9 * torch.rand(len(batch), generator=gen)
    noisy, target = noisy_and_target(batch, noise, sigmas)
    text = adapter.encode(pipe, [PROMPT], "cpu")[0]
    total = 0.0
    for i in range(0, len(batch), 8):
        chunk = noisy[i:i + 8]
        pred = adapter.velocity(pipe.transformer, chunk, sigmas[i:i + 8],
                                adapter.collate([text] * len(chunk), "cpu"))
        total += float(F.mse_loss(pred, target[i:i + 8], reduction="sum"))
    return total / noise.numel()


@torch.no_grad()
def generated(pipe, seeds=SAMPLE_SEEDS) -> list[Image.Image]:
    """A short sampling at the toy's size, as the Playground would draw it."""
    return [pipe(PROMPT, num_inference_steps=SAMPLE_STEPS, guidance_scale=3.5, height=256,
                 width=256, generator=torch.Generator().manual_seed(seed)).images[0]
            for seed in seeds]


def _train(tmp_path: Path, style: str) -> tuple[Path, Path]:
    """A LoRA trained on 12 pictures of `style` through the real trainer; (LoRA, models)."""
    with Studio.open(tmp_path / f"workspace-{style}") as studio:
        created = studio.styles.create(style.title(), trigger="stylea", family="flux1",
                                       base_model=TOY_FLUX1_ID)
        paths = write_images(tmp_path / f"train-{style}", style_images(style, 12, 256, seed=1))
        add_cleared_images(studio, created.id, paths, caption=f"stylea, {style}")
        job = studio.training.start(created.id, TrainConfig.preset("quick", **TRAIN))
        job = studio.jobs.wait(job.id, 1500)
        assert job.status == "done", job.error
        run = studio.training.get_run(job.result["run_id"])
        assert run.base_model == TOY_FLUX1_ID and run.config["resolution"] == 256
        return run.run_dir / "lora", studio.workspace.models_dir


def _effects(tmp_path: Path, style: str) -> dict[str, float]:
    lora, models = _train(tmp_path, style)
    pipe = load_pipeline(TOY_FLUX1_ID, "flux1", models, pick_device("cpu"))
    held = {name: _latents(pipe, style_images(name, HELD_OUT, 256, seed=99))
            for name in ("stripes", "dots")}
    before = {name: heldout_loss(pipe, latents) for name, latents in held.items()}
    base_images = generated(pipe)
    pipe.load_lora_weights(str(lora))
    after = {name: heldout_loss(pipe, latents) for name, latents in held.items()}
    lora_images = generated(pipe)
    signatures = {name: StyleSignature.of(style_images(name, 12, 256, seed=1))
                  for name in ("stripes", "dots")}
    effects = {f"change_{n}": after[n] / before[n] - 1 for n in held}
    effects.update({f"lora_to_{n}": style_distance(lora_images, s).total
                    for n, s in signatures.items()})
    effects.update({f"base_to_{n}": style_distance(base_images, s).total
                    for n, s in signatures.items()})
    _grid(tmp_path / f"grid-{style}.png", base_images, lora_images)
    print(f"{style} LoRA: " + json.dumps({k: round(v, 4) for k, v in effects.items()}))
    return effects


def _grid(path: Path, top: list[Image.Image], bottom: list[Image.Image]) -> None:
    """Base pictures above, LoRA pictures below: for a person to look at (the test's
    artifacts folder keeps it when STYLE_STUDIO_ARTIFACTS is set)."""
    grid = Image.new("RGB", (256 * len(top), 512), "white")
    for n, (a, b) in enumerate(zip(top, bottom, strict=True)):
        grid.paste(a, (256 * n, 0))
        grid.paste(b, (256 * n, 256))
    grid.save(path)
    keep = os.environ.get("STYLE_STUDIO_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        grid.save(Path(keep) / path.name)


def test_toy_flux1_build_lowers_its_loss_and_loads_as_flux1(tmp_path):
    """The pretraining path itself (the shipped asset is made by the same function)."""
    recipe = ToyRecipe(steps=12, pool_size=6, image_size=64, batch_size=2)
    folder = build_toy_flux1(tmp_path / "toy", seed=1, recipe=recipe)
    info = json.loads((folder / "STYLE_STUDIO_MODEL.json").read_text())
    assert info["kind"] == "toy" and info["family"] == "flux1"
    assert info["loss_end"] < info["loss_start"]
    models = tmp_path / "models"
    shipped = ensure_toy_model(models, toy_id=TOY_FLUX1_ID)
    assert shipped.name == TOY_FLUX1_ID and (shipped / "transformer").is_dir()
    source = describe_source(TOY_FLUX1_ID, "flux1", models)
    assert source.available and source.label == TOY_FLUX1_LABEL
    assert not describe_source(TOY_FLUX1_ID, "sd15", models).available
    pipe = load_pipeline(TOY_FLUX1_ID, "flux1", models, pick_device("cpu"))
    assert type(pipe).__name__ == "FluxPipeline" and pipe.vae.config.latent_channels == 16


@pytest.mark.slow
@pytest.mark.timeout(1800)  # under a minute on 2 idle cores; far longer on a loaded machine
def test_a_flow_lora_learns_its_style_not_just_denoising(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(training_threads())
    try:
        stripes = _effects(tmp_path, "stripes")
    finally:
        torch.set_num_threads(threads)
    # Generic denoising would improve both held-out sets alike; a LoRA of its style
    # improves its own clearly more (half the measured gain and lead).
    assert stripes["change_stripes"] < -HELD_OUT_GAIN, "no gain on its own style"
    assert stripes["change_stripes"] < stripes["change_dots"] - HELD_OUT_LEAD, \
        "the LoRA improved the other style about as much"
    # It also draws the style: the measure that noise, a blank picture and the base
    # cannot pass (tests/test_style_signature.py).
    assert stripes["lora_to_stripes"] < stripes["lora_to_dots"] - GEN_MARGIN_DOTS
    assert stripes["lora_to_stripes"] < stripes["base_to_stripes"] - GEN_MARGIN_BASE
