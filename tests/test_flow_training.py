"""The flow-matching families (FLUX.1, FLUX.2 [klein], Z-Image) through the real trainer,
on their tiny twins: both files written and loadable, metadata, exact resume after a
cancel, the text-embedding cache reused and erased with its image, and the family adapters
agreeing with the pipelines' own sampling step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import Flux2KleinPipeline, FluxPipeline
from safetensors import safe_open
from safetensors.torch import load_file
from training_helpers import make_trainable_style, tiny_config

from style_studio.models.devices import pick_device
from style_studio.models.families import family_spec
from style_studio.models.families.tool_keys import tool_state
from style_studio.models.loading import load_pipeline
from style_studio.models.tiny import TINY_IDS
from style_studio.studio import Studio
from style_studio.training.export import DIFFUSERS_NAME
from style_studio.training.run_details import run_files
from style_studio.training.trainer import Trainer

FLOW = ("flux1", "flux2_klein", "zimage")
CALL = {"flux1": {"guidance_scale": 3.5}, "flux2_klein": {"guidance_scale": 1.0},
        "zimage": {"guidance_scale": 0.0}}
STEPS = 6


def flow_config(**overrides):
    """Flip and caption dropout on: the resume test must replay every random draw."""
    return tiny_config(**{"sample_every": 3, "flip": True, "caption_dropout": 0.3,
                          "learning_rate": 5e-3, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run per flow family, trained once for the module."""
    tmp = tmp_path_factory.mktemp("flow")
    with Studio.open(tmp / "workspace") as studio:
        runs = {}
        for family in FLOW:
            style, ids = make_trainable_style(studio, tmp, family=family, count=4,
                                              name=f"Shapes {family}",
                                              sizes=[(96, 96), (128, 64)])
            job = studio.jobs.wait(studio.training.start(
                style.id, flow_config(), base_model=TINY_IDS[family]).id, 300)
            assert job.status == "done", (job.error, job.log[-3:])
            runs[family] = (style, ids, studio.training.get_run(job.result["run_id"]), job)
        yield studio, runs


def _render(pipe, family: str) -> np.ndarray:
    return pipe(prompt="shapestyle, a house", num_inference_steps=2, height=64, width=64,
                generator=torch.Generator().manual_seed(0), output_type="np",
                **CALL[family]).images[0]


def _metadata(path) -> dict[str, str]:
    with safe_open(str(path), "pt") as handle:
        return handle.metadata()


@pytest.mark.parametrize("family", FLOW)
def test_a_flow_run_writes_both_files_samples_and_metadata(trained, family):
    _, runs = trained
    _, _, run, job = runs[family]
    lora = run.run_dir / "lora"
    [tool_file] = [p for p in lora.glob("*.safetensors") if p.name != DIFFUSERS_NAME]
    assert (lora / DIFFUSERS_NAME).is_file()
    assert run.status == "done" and run.step == STEPS
    assert sorted(p.name for p in (run.run_dir / "samples").glob("*.png")) == [
        "step-000003-0.png", "step-000006-0.png"]
    diffusers = load_file(lora / DIFFUSERS_NAME)
    assert diffusers and all(k.startswith("transformer.") for k in diffusers)
    assert all(torch.isfinite(t).all() for t in diffusers.values())
    # The tool file is the diffusers LoRA in the names ComfyUI maps for this family
    # (the names themselves: tests/test_flow_tool_keys.py).
    transformer_config = family_spec(family).build_tiny(0).transformer.config
    expected = tool_state(family, diffusers, 4.0, 4, transformer_config)
    tool = load_file(tool_file)
    assert tool.keys() == expected.keys()
    # Its name says whose names its keys follow: kohya's (lora_unet_*) or ComfyUI's own
    # (diffusion_model.*, Z-Image), and so does its download button.
    comfy_names = all(k.startswith("diffusion_model.") for k in tool)
    assert comfy_names or all(k.startswith("lora_unet_") for k in tool)
    names = "comfyui" if comfy_names else "kohya"
    assert tool_file.name.endswith(f".{names}.safetensors"), tool_file.name
    offered = {f.key: f.label for f in run_files(run.run_dir)}
    assert ("ComfyUI's names" in offered["kohya"]) == comfy_names, offered
    for key, value in expected.items():
        torch.testing.assert_close(tool[key], value)
    for path in (lora / DIFFUSERS_NAME, tool_file):
        meta = _metadata(path)
        assert meta["modelspec.architecture"].endswith("/lora")
        assert meta["modelspec.architecture"] not in ("stable-diffusion-v1/lora",
                                                      "stable-diffusion-xl-v1-base/lora")
        assert meta["modelspec.prediction_type"] == "flow"
        assert json.loads(meta["style_studio.creators"]) == ["Ana Artist"]
        assert meta["style_studio.manifest_sha256"] == run.manifest_sha256
    packed = json.loads(_metadata(lora / DIFFUSERS_NAME)["lora_adapter_metadata"])
    assert packed["transformer.r"] == 4 and packed["transformer.lora_alpha"] == 4.0
    assert job.result["cache_misses"] == 4 * 3  # per image: latent, flipped latent, caption


@pytest.mark.parametrize("family", FLOW)
def test_the_diffusers_file_loads_into_a_fresh_pipeline_and_changes_it(trained, family):
    studio, runs = trained
    run = runs[family][2]
    models, device = studio.workspace.models_dir, pick_device("cpu")
    base = _render(load_pipeline(TINY_IDS[family], family, models, device), family)
    pipe = load_pipeline(TINY_IDS[family], family, models, device)
    pipe.load_lora_weights(str(run.run_dir / "lora"))
    config = next(iter(pipe.transformer.peft_config.values()))
    assert (config.r, config.lora_alpha) == (4, 4.0)  # alpha restored from the metadata
    assert np.abs(_render(pipe, family) - base).max() > 1e-3


def test_text_encoders_are_freed_after_the_captions_are_cached(trained, monkeypatch):
    """T5-XXL / Qwen3 dominate memory: gone before the first step, samples still drawn."""
    studio, runs = trained
    style = runs["flux1"][0]
    seen = {}
    original = Trainer.train_step

    def spy(self, step):
        seen[step] = (self.pipe.text_encoder, self.pipe.text_encoder_2)
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", spy)
    job = studio.jobs.wait(studio.training.start(
        style.id, flow_config(max_steps=1, checkpoint_every=0, sample_every=0),
        base_model="tiny-flux1").id, 300)
    assert job.status == "done", job.error
    assert seen[0] == (None, None)
    run = studio.training.get_run(job.result["run_id"])
    assert list((run.run_dir / "samples").glob("step-000001-0.png"))


@pytest.mark.parametrize("family", FLOW)
def test_cancel_and_resume_equals_an_uninterrupted_flow_run(trained, family, monkeypatch):
    studio, runs = trained
    style, _, reference, _ = runs[family]
    original = Trainer._log

    def log(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.step == 3:
            studio.training.cancel(self.spec.run_id)

    monkeypatch.setattr(Trainer, "_log", log)
    job = studio.jobs.wait(studio.training.start(style.id, flow_config(),
                                                 base_model=TINY_IDS[family]).id, 300)
    monkeypatch.undo()
    run = studio.training.get_run(job.params["run_id"])
    assert job.status == "cancelled" and run.step == 3 and run.resumable
    job = studio.jobs.wait(studio.training.resume(run.id).id, 300)
    assert job.status == "done", job.error
    resumed = load_file(studio.training.get_run(run.id).run_dir / "lora" / DIFFUSERS_NAME)
    expected = load_file(reference.run_dir / "lora" / DIFFUSERS_NAME)
    assert resumed.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], atol=1e-6, rtol=1e-5)
    losses = [m["loss"] for m in studio.training.metrics(run.id)]
    assert losses == pytest.approx([m["loss"] for m in studio.training.metrics(reference.id)])


@pytest.mark.parametrize("family", FLOW)
def test_the_text_embedding_cache_is_reused_and_erased_with_its_image(trained, family,
                                                                      monkeypatch):
    studio, runs = trained
    style, ids, run, first = runs[family]
    assert first.result["cache_hits"] == 0
    loads = []

    def spy(*args, **kwargs):
        loads.append(kwargs.get("skip", ()))
        return load_pipeline(*args, **kwargs)

    monkeypatch.setattr("style_studio.training.trainer.load_pipeline", spy)
    job = studio.jobs.wait(studio.training.start(
        style.id, flow_config(max_steps=1, checkpoint_every=0, sample_every=0),
        base_model=TINY_IDS[family]).id, 300)
    assert job.status == "done", job.error
    assert job.result["cache_misses"] == 0 and job.result["cache_hits"] == first.result[
        "cache_misses"]
    # Every text is cached, so the second run never loads the text encoders (T5-XXL and
    # Qwen3 are most of a flow model's memory and load time).
    assert loads == [("text_encoder", "text_encoder_2")[:len(family_spec(family)
                                                              .text_encoders)]]
    image = studio.store.get("images", ids[0])
    folder = studio.workspace.cache_dir(style.id) / image["sha256"]
    texts = list(folder.glob("text-*.safetensors"))
    assert len(texts) == 1
    cached = load_file(texts[0])
    width = {"flux1": 32, "flux2_klein": 48, "zimage": 16}[family]  # T5 32; 3 Qwen3 layers
    assert cached["embeds"].shape[-1] == width                       # of 16; one of 16
    assert ("pooled" in cached) == (family == "flux1")  # FLUX.1's CLIP vector
    studio.images.remove(ids[0], reason="test")
    assert not folder.exists()
    assert "contains erased data" in studio.training.get_run(run.id).flags


@pytest.mark.parametrize("family", FLOW)
def test_the_family_adapter_predicts_what_the_pipeline_steps_with(family):
    """One Euler step of the pipeline from σ=1 lands at x - σ·v: the adapter's velocity
    (packing, ids, timestep convention, sign) must give the same latents exactly."""
    spec = family_spec(family)
    flow, pipe = spec.flow, spec.build_tiny(0)
    generator = torch.Generator().manual_seed(0)
    if family == "flux2_klein":
        x = torch.randn(1, 128, 2, 2, generator=generator)  # patchified, normalised
    else:
        x = torch.randn(1, 16, 4, 4, generator=generator)
    start = FluxPipeline._pack_latents(x, 1, 16, 4, 4) if family == "flux1" else x
    text = flow.encode(pipe, ["a red fox"], "cpu")
    empty = flow.encode(pipe, [""], "cpu")[0]
    out = pipe(**flow.pipeline_kwargs(text[0], empty, "cpu", torch.float32), height=32,
               width=32, num_inference_steps=1, latents=start.clone(), output_type="latent",
               **CALL[family]).images
    sigma = float(pipe.scheduler.sigmas[0])
    with torch.no_grad():
        mine = x - sigma * flow.velocity(pipe.transformer, x, torch.tensor([sigma]),
                                         flow.collate(text, "cpu"))
    if family == "flux1":
        mine = FluxPipeline._pack_latents(mine, 1, 16, 4, 4)
    elif family == "flux2_klein":  # the pipeline returns the VAE's own latents
        bn = pipe.vae.bn
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps)
        mine = Flux2KleinPipeline._unpatchify_latents(mine * std
                                                      + bn.running_mean.view(1, -1, 1, 1))
    assert out.shape == mine.shape
    torch.testing.assert_close(out, mine, atol=1e-5, rtol=1e-4)
    assert float(mine.abs().mean()) > 0.1  # not a vacuous match of zeros


def test_the_model_card_names_the_base_licence_and_says_non_commercial_plainly(trained):
    from huggingface_hub import ModelCard

    from style_studio.training.provenance import model_card

    _, runs = trained
    run = runs["flux1"][2]
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    card = (run.run_dir / "README.md").read_text()
    assert "tiny test model" in card and "flux" in ModelCard(card).data.tags
    # A LoRA on a single file published with FLUX.1 [dev] is bound by its licence too.
    manifest["base_model"].update(ref="/models/flux1-dev.safetensors",
                                  reference="black-forest-labs/FLUX.1-dev")
    dev = ModelCard(model_card(manifest, "0" * 64, kohya_name="x.kohya.safetensors"))
    assert dev.data.license == "other" and "non-commercial" in dev.data.license_name
    assert "**Non-commercial:**" in dev.text and "may not be used commercially" in dev.text
    manifest["base_model"].update(ref="black-forest-labs/FLUX.1-schnell",
                                  reference="black-forest-labs/FLUX.1-schnell")
    schnell = ModelCard(model_card(manifest, "0" * 64, kohya_name="x.kohya.safetensors"))
    assert "Apache-2.0" in schnell.text and "Non-commercial" not in schnell.text
    assert schnell.data.license != "other" or schnell.data.license_name == "per-image-licences"


def test_a_text_encoder_lora_is_refused_before_anything_is_queued(trained):
    from style_studio.base.errors import InvalidInput

    studio, runs = trained
    style = runs["zimage"][0]
    before = len(studio.training.runs(style.id))
    with pytest.raises(InvalidInput, match="Training the text encoder is not offered for "
                                           "Z-Image"):
        studio.training.start(style.id, flow_config(train_text_encoder=True),
                              base_model="tiny-zimage")
    assert len(studio.training.runs(style.id)) == before


def test_a_run_started_without_sampling_settings_samples_as_the_base_model_does(studio,
                                                                                 tmp_path):
    """From the shell or the API a config has no sample steps or guidance unless the
    artist sets them: a FLUX.1 run samples with FluxPipeline's own defaults (diffusers'
    signature: 28 steps, distilled guidance 3.5), not SD's 20 steps at 7, which burns a
    FLUX.1 [dev] picture; a value set wins."""
    import inspect

    from style_studio.training.config import TrainConfig, family_training

    flux = inspect.signature(FluxPipeline.__call__).parameters
    flux_steps = flux["num_inference_steps"].default
    flux_guidance = flux["guidance_scale"].default
    sd = family_training("sd15")
    quick = dict(max_steps=1, resolution=64, sample_every=0, checkpoint_every=0)
    for family, steps, guidance, want in (
            ("flux1", None, None, (flux_steps, flux_guidance)),
            ("sd15", None, None, (sd.sample_steps, sd.sample_guidance)),
            ("flux1", 6, 2.0, (6, 2.0))):
        style, _ = make_trainable_style(studio, tmp_path, family=family,
                                        name=f"{family} {guidance}")
        config = TrainConfig.preset("quick", sample_steps=steps, sample_guidance=guidance,
                                    **quick)
        job = studio.training.start(style.id, config)
        studio.jobs.wait(job.id, timeout=300)
        run = studio.training.get_run(job.params["run_id"])
        assert (run.config["sample_steps"], run.config["sample_guidance"]) == want, family
    assert (flux_steps, flux_guidance) != (sd.sample_steps, sd.sample_guidance)
