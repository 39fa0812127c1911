"""A real training run on the tiny SD 1.x and SDXL models: files, metadata, loading, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from safetensors.torch import load_file
from training_helpers import make_trainable_style, tiny_config

from style_studio.base.files import sha256_file
from style_studio.models.devices import pick_device
from style_studio.models.loading import load_pipeline
from style_studio.studio import Studio
from style_studio.training.export import DIFFUSERS_NAME

FAMILIES = ("sd15", "sdxl")
REQUIRED_METADATA = ("modelspec.sai_model_spec", "modelspec.title", "modelspec.author",
                     "modelspec.license", "modelspec.trigger_phrase", "modelspec.date",
                     "modelspec.architecture", "style_studio.manifest_sha256",
                     "style_studio.image_count", "style_studio.creators",
                     "style_studio.base.licences", "style_studio.trigger_word",
                     "style_studio.base_model")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run per family, trained once for the whole module."""
    tmp = tmp_path_factory.mktemp("training")
    with Studio.open(tmp / "workspace") as studio:
        runs = {}
        for family in FAMILIES:
            style, ids = make_trainable_style(studio, tmp, family=family, count=4,
                                              name=f"Shapes {family}",
                                              sizes=[(96, 96), (128, 64)])
            job = studio.jobs.wait(studio.training.start(
                style.id, tiny_config(sample_every=3), base_model=f"tiny-{family}").id, 300)
            assert job.status == "done", (job.error, job.log[-3:])
            runs[family] = (style, ids, studio.training.get_run(job.result["run_id"]), job)
        yield studio, runs


def _render(pipe, seed: int = 0) -> np.ndarray:
    return pipe("shapestyle, a house", num_inference_steps=2, height=64, width=64,
                generator=torch.Generator().manual_seed(seed), output_type="np").images[0]


def _metadata(path) -> dict[str, str]:
    with safe_open(str(path), "pt") as handle:
        return handle.metadata()


@pytest.mark.parametrize("family", FAMILIES)
def test_run_writes_every_file_and_record(trained, family):
    studio, runs = trained
    _, _, run, job = runs[family]
    folder = run.run_dir
    for name in ("config.json", "manifest.json", "metrics.jsonl", "README.md", "provenance.md",
                 f"lora/{DIFFUSERS_NAME}", "lora/shapes-" + family + ".kohya.safetensors"):
        assert (folder / name).is_file(), name
    assert run.status == "done" and run.step == run.total_steps == 6
    assert run.manifest_sha256 == sha256_file(folder / "manifest.json")
    assert run.image_count == 4 and len(run.image_hashes) == 4
    assert run.base_model == f"tiny-{family}" and run.base_model_identity
    assert run.energy["estimated"] is True and run.energy["wall_s"] > 0
    assert "estimate" in run.energy["method"]
    metrics = studio.training.metrics(run.id)
    assert [m["step"] for m in metrics] == list(range(1, 7))
    assert {"loss", "loss_smooth", "lr", "steps_per_s", "eta_s", "time"} <= set(metrics[0])
    # The ETA (eta.StepClock) times every step from the first, pauses included.
    assert all(m["eta_s"] is not None and m["eta_s"] >= 0 for m in metrics)
    assert metrics[-1]["eta_s"] == 0
    samples = studio.training.samples(run.id)
    assert [(s.step, s.index) for s in samples] == [(3, 0), (6, 0)]
    assert samples[0].prompt == "shapestyle, a house" and samples[0].seed == 7
    checkpoints = studio.training.checkpoints(run.id)
    assert checkpoints[0].step is None and checkpoints[0].diffusers_file.is_file()
    assert [c.step for c in checkpoints[1:]] == [4, 2]
    assert job.extra["step"] == 6 and job.extra["total_steps"] == 6


@pytest.mark.parametrize("family", FAMILIES)
def test_manifest_records_images_consent_and_base(trained, family):
    _, runs = trained
    _, _, run, _ = runs[family]
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["image_count"] == 4
    assert sorted(i["sha256"] for i in manifest["images"]) == sorted(run.image_hashes)
    image = manifest["images"][0]
    assert image["creator"] == "Ana Artist" and image["licence"] == "LicenseRef-OwnWork"
    assert image["consent_status"] == "cleared"
    assert image["training_caption"].startswith("shapestyle, a picture of shapes")
    assert manifest["config"]["rank"] == 4 and manifest["seed"] == 42
    assert manifest["base_model"]["identity"] == run.base_model_identity
    assert {"torch", "diffusers", "peft", "transformers"} <= set(manifest["libraries"])


@pytest.mark.parametrize("family", FAMILIES)
def test_metadata_in_both_files_parses(trained, family):
    _, runs = trained
    _, _, run, _ = runs[family]
    lora = run.run_dir / "lora"
    for path in (lora / DIFFUSERS_NAME, next(lora.glob("*.kohya.safetensors"))):
        meta = _metadata(path)
        for key in REQUIRED_METADATA:
            assert isinstance(meta.get(key), str) and meta[key], (path.name, key)
        assert meta["style_studio.manifest_sha256"] == run.manifest_sha256
        assert meta["style_studio.image_count"] == "4"
        assert json.loads(meta["style_studio.creators"]) == ["Ana Artist"]
        assert json.loads(meta["style_studio.base.licences"]) == {"LicenseRef-OwnWork": 4}
        assert sorted(json.loads(meta["style_studio.image_hashes"])) == sorted(run.image_hashes)
        assert meta["modelspec.trigger_phrase"] == "shapestyle"
        expected = {"sd15": "stable-diffusion-v1/lora",
                    "sdxl": "stable-diffusion-xl-v1-base/lora"}[family]
        assert meta["modelspec.architecture"] == expected
        assert json.loads(meta["style_studio.training.energy"])["estimated"] is True
    assert _metadata(next(lora.glob("*.kohya.safetensors")))["ss_network_dim"] == "4"


@pytest.mark.parametrize("family", FAMILIES)
def test_model_card_loads_with_hub_keys_and_a_widget_of_real_samples(trained, family):
    _, runs = trained
    _, _, run, _ = runs[family]
    card = ModelCard.load(run.run_dir / "README.md")
    data = card.data.to_dict()
    assert data["base_model"] == f"tiny-{family}"
    assert data["base_model_relation"] == "adapter"
    # own work only: no Hub licence id fits, so it is named and linked to the card's own
    # section on the images' licences (provenance.md is never published: test_push)
    assert data["license"] == "other" and data["license_name"] == "per-image-licences"
    assert data["license_link"] == "README.md#training-data-and-consent"
    assert "\n## Training data and consent\n" in card.text
    assert {"template:sd-lora", "lora", "text-to-image"} <= set(data["tags"])
    assert data["pipeline_tag"] == "text-to-image" and data["instance_prompt"] == "shapestyle"
    # the widget shows the last sampled step's pictures, which exist in the run folder
    assert data["widget"] == [{"text": "shapestyle, a house",
                               "output": {"url": "samples/step-000006-0.png"}}]
    assert (run.run_dir / data["widget"][0]["output"]["url"]).is_file()
    assert "`LicenseRef-OwnWork`" in card.text


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_loads_changes_output_and_kohya_matches(trained, family):
    studio, runs = trained
    _, _, run, _ = runs[family]
    lora = run.run_dir / "lora"
    device = pick_device("cpu")
    models = studio.workspace.models_dir
    base = _render(load_pipeline(f"tiny-{family}", family, models, device))
    with_diffusers = load_pipeline(f"tiny-{family}", family, models, device)
    with_diffusers.load_lora_weights(str(lora))
    diffusers_out = _render(with_diffusers)
    assert np.abs(diffusers_out - base).max() > 1e-3  # the LoRA changes the picture
    with_kohya = load_pipeline(f"tiny-{family}", family, models, device)
    with_kohya.load_lora_weights(str(next(lora.glob("*.kohya.safetensors"))))
    assert np.abs(_render(with_kohya) - diffusers_out).max() < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_kohya_keys_and_shapes(trained, family):
    _, runs = trained
    _, _, run, _ = runs[family]
    lora = run.run_dir / "lora"
    diffusers = load_file(lora / DIFFUSERS_NAME)
    kohya = load_file(next(lora.glob("*.kohya.safetensors")))
    assert all(k.startswith("lora_unet_") for k in kohya)
    names = {k.split(".")[0] for k in kohya}
    assert len(names) * 3 == len(kohya) == len(diffusers) // 2 * 3
    for name in names:
        down, up = kohya[f"{name}.lora_down.weight"], kohya[f"{name}.lora_up.weight"]
        assert down.shape[0] == 4 and up.shape[1] == 4
        assert float(kohya[f"{name}.alpha"]) == 4.0
    prefix = "lora_unet_input_blocks_" if family == "sdxl" else "lora_unet_down_blocks_"
    assert any(n.startswith(prefix) and n.endswith("attn1_to_q") for n in names)
    assert any(n.endswith("_to_out_0") for n in names)


def test_cache_is_reused_keyed_and_erased_with_the_image(trained, tmp_path):
    studio, runs = trained
    style, ids, run, first = runs["sd15"]
    assert first.result["cache_misses"] == 4 * 2 and first.result["cache_hits"] == 0
    job = studio.jobs.wait(studio.training.start(
        style.id, tiny_config(max_steps=1, checkpoint_every=0), base_model="tiny-sd15").id, 300)
    assert job.status == "done", job.error
    assert job.result["cache_hits"] == 8 and job.result["cache_misses"] == 0
    # a new resolution is a new cache entry, next to the old one
    job = studio.jobs.wait(studio.training.start(
        style.id, tiny_config(max_steps=1, checkpoint_every=0, resolution=128),
        base_model="tiny-sd15").id, 300)
    assert job.result["cache_misses"] == 4  # latents only: the text embeddings are reused
    image = studio.store.get("images", ids[0])
    folder = studio.workspace.cache_dir(style.id) / image["sha256"]
    assert len(list(folder.glob("latent-*.safetensors"))) == 2
    assert len(list(folder.glob("text-*.safetensors"))) == 1
    studio.images.remove(ids[0], reason="test")
    assert not folder.exists()
    assert "contains erased data" in studio.training.get_run(run.id).flags


def test_text_encoder_ff_conv_lora_with_checkpointing_and_adafactor(tmp_path):
    """The optional parts: text-encoder LoRA (both SDXL encoders), ff + conv targets,
    gradient checkpointing and another optimizer, written and loaded both ways."""
    with Studio.open(tmp_path / "workspace") as studio:
        style, _ = make_trainable_style(studio, tmp_path, family="sdxl", count=2)
        config = tiny_config(max_steps=2, checkpoint_every=0, train_text_encoder=True,
                             targets="attention+ff+conv", gradient_checkpointing=True,
                             optimizer="adafactor", caption_dropout=0.5)
        job = studio.jobs.wait(studio.training.start(style.id, config,
                                                     base_model="tiny-sdxl").id, 300)
        assert job.status == "done", job.error
        assert job.extra["lr"] == pytest.approx(1e-2)
        lora = studio.training.get_run(job.result["run_id"]).run_dir / "lora"
        diffusers = load_file(lora / DIFFUSERS_NAME)
        for prefix in ("unet.", "text_encoder.", "text_encoder_2."):
            assert any(k.startswith(prefix) for k in diffusers), prefix
        assert any(".conv1.lora_A." in k for k in diffusers)
        assert any(".ff.net.2.lora_B." in k for k in diffusers)
        kohya_file = next(lora.glob("*.kohya.safetensors"))
        kohya = load_file(kohya_file)
        for prefix in ("lora_unet_", "lora_te1_", "lora_te2_"):
            assert any(k.startswith(prefix) for k in kohya), prefix
        assert kohya["lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight"].ndim == 4
        models, device = studio.workspace.models_dir, pick_device("cpu")
        outputs = []
        for source in (lora, kohya_file):
            pipe = load_pipeline("tiny-sdxl", "sdxl", models, device)
            pipe.load_lora_weights(str(source))
            outputs.append(_render(pipe))
        assert np.abs(outputs[0] - outputs[1]).max() < 1e-4
