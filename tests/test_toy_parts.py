"""The toy model's parts: the mosaic VAE shows what a latent holds; the UNet's groups."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler
from PIL import Image
from safetensors.torch import load_file

from style_studio.base.family import TOY_SIDE
from style_studio.demo import DemoAssets
from style_studio.images.style_signature import StyleSignature, style_distance
from style_studio.models.toy import (
    ASSET_DIR,
    TOY_ID,
    ToyRecipe,
    build_toy_model,
    ensure_toy_model,
)
from style_studio.models.toy_parts import mosaic_vae, toy_pipeline
from style_studio.playground.service import native_size
from style_studio.training.config import TrainConfig


def _pixels(images: list[Image.Image]) -> torch.Tensor:
    stacked = np.stack([np.asarray(i.convert("RGB")) for i in images])
    return torch.from_numpy(stacked).float().permute(0, 3, 1, 2) / 127.5 - 1.0


def _public(config) -> dict:
    """A scheduler config without diffusers' bookkeeping keys (_class_name, ...)."""
    return {key: value for key, value in config.items() if not key.startswith("_")}


def test_mosaic_vae_encodes_block_colours_and_paints_them_back(tmp_path):
    files = DemoAssets.load().files[:3]
    pixels = _pixels([Image.open(p) for p in files])
    vae = mosaic_vae()
    with torch.no_grad():
        posterior = vae.encode(pixels).latent_dist
        decoded = vae.decode(posterior.mean).sample
    blocks = F.avg_pool2d(pixels, 8)
    assert posterior.mean.shape == (3, 4, 32, 32)
    assert (posterior.mean[:, :3] - blocks).abs().max() < 0.01
    assert (posterior.mean[:, 3] - blocks.mean(dim=1)).abs().max() < 0.01
    assert posterior.std.max() < 1e-3
    mosaic = F.interpolate(blocks, scale_factor=8, mode="nearest")
    assert (decoded - mosaic).abs().max() < 0.01
    # A decoded picture keeps its style: as close to its originals as an unseen picture
    # of the same painter (0.19-0.33, benchmarks.md); a random VAE's came back as noise.
    originals = StyleSignature.of([Image.open(p) for p in files])
    image = Image.fromarray(((decoded[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0)
                            .numpy().astype(np.uint8))
    assert style_distance([image], originals).total < 0.35

    vae.save_pretrained(tmp_path / "vae")
    reloaded = AutoencoderKL.from_pretrained(tmp_path / "vae")
    with torch.no_grad():
        assert torch.allclose(reloaded.decode(posterior.mean).sample, decoded, atol=1e-5)


def test_toy_pipeline_and_the_shipped_toy_use_these_parts():
    pipe = toy_pipeline(0)
    assert pipe.unet.config.norm_num_groups == 8 and pipe.vae.config.norm_num_groups == 1
    assert pipe.unet.config.sample_size * 8 == TOY_SIDE == 256
    shipped = AutoencoderKL.load_config(ASSET_DIR / "vae")
    assert shipped["norm_num_groups"] == 1
    # Zero terminal SNR, v-prediction, trailing timesteps (why: benchmarks.md, issue 11).
    scheduler = DDIMScheduler.from_pretrained(ASSET_DIR / "scheduler")
    assert _public(scheduler.config) == _public(pipe.scheduler.config)
    assert scheduler.alphas_cumprod[-1] < 1e-6
    assert scheduler.config.prediction_type == "v_prediction"
    assert native_size(TOY_ID, "sd15") == 256 and native_size("tiny-sd15", "sd15") == 64


def test_automatic_resolution_is_256_px_on_the_toy_model(studio):
    style = studio.demo.open()
    assert studio.playground.default_request(style.id).width == 256
    job = studio.training.start(style.id, TrainConfig.preset("quick"))
    run_id = job.params["run_id"]
    studio.training.cancel(run_id)
    studio.jobs.wait(job.id, timeout=120)
    assert studio.training.get_run(run_id).config["resolution"] == 256
    explicit = studio.training.start(style.id, TrainConfig.preset("quick", resolution=128))
    studio.training.cancel(explicit.params["run_id"])
    studio.jobs.wait(explicit.id, timeout=120)
    assert studio.training.get_run(explicit.params["run_id"]).config["resolution"] == 128


def _unet_weights(folder) -> dict[str, torch.Tensor]:
    return load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")


def test_toy_build_is_deterministic_by_seed_and_made_once(tmp_path, monkeypatch):
    recipe = ToyRecipe(steps=6, pool_size=4, image_size=64, batch_size=2)
    first = _unet_weights(build_toy_model(tmp_path / "a", seed=3, recipe=recipe))
    again = _unet_weights(build_toy_model(tmp_path / "b", seed=3, recipe=recipe))
    other = _unet_weights(build_toy_model(tmp_path / "c", seed=4, recipe=recipe))
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)

    models = tmp_path / "models"
    folder = ensure_toy_model(models)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.read_bytes() == (ASSET_DIR / "unet" / weights.name).read_bytes()
    stamp = weights.stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the toy model was built again")

    monkeypatch.setattr("style_studio.models.toy.build_toy_model", no_rebuild)
    monkeypatch.setattr("style_studio.models.toy.shutil.copytree", no_rebuild)
    assert ensure_toy_model(models) == folder and weights.stat().st_mtime_ns == stamp
    assert [p.name for p in models.iterdir()] == [TOY_ID]  # no temp folder left behind
