"""Base-model loading, offline: tiny models built in code, refusals and clear errors."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import hashlib
import json
import shutil
import time
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from ldm_checkpoint import write_ldm_checkpoint
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModelWithProjection

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.models.devices import pick_device
from style_studio.models.families import ensure_twin
from style_studio.models.loading import (
    describe_source,
    list_base_models,
    load_pipeline,
    model_identity,
    text_token_limit,
)
from style_studio.models.tiny import (
    TINY_IDS,
    TINY_LABEL,
    TINY_MARKER,
    build_tiny_pipeline,
    ensure_tiny_model,
)

SD15_HUB = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SDXL_HUB = "stabilityai/stable-diffusion-xl-base-1.0"
SIZES = {"sd15": (64, 64), "sdxl": (64, 96)}  # (height, width)
V1_KEY = "model.diffusion_model.input_blocks.0.0.weight"
XL_KEY = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path, monkeypatch):
    """An empty, private HF cache: a machine with real models cached behaves the same."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for family in TINY_IDS:
        ensure_twin(family, folder)
    return folder


def _generate(pipe, family: str, seed: int = 1):
    height, width = SIZES[family]
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(
        "a red circle",
        height=height,
        width=width,
        num_inference_steps=2,
        generator=generator,
        output_type="pil",
    ).images[0]


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_tiny_model_generates_requested_size_and_reload_is_identical(family, models_dir):
    loaded = load_pipeline(TINY_IDS[family], family, models_dir, pick_device("cpu"))
    image = _generate(loaded, family)
    height, width = SIZES[family]
    assert image.size == (width, height)
    assert text_token_limit(loaded) == 77
    training = DDPMScheduler.from_config(loaded.scheduler.config)
    assert training.config.num_train_timesteps == 1000
    assert training.config.prediction_type == "epsilon"
    in_memory = _generate(build_tiny_pipeline(family, seed=0), family)
    assert np.array_equal(np.asarray(image), np.asarray(in_memory))


def test_ensure_tiny_model_is_deterministic_atomic_and_reused(tmp_path):
    first = ensure_tiny_model("sd15", tmp_path / "a", seed=0)
    second = ensure_tiny_model("sd15", tmp_path / "b", seed=0)
    other = ensure_tiny_model("sd15", tmp_path / "a", seed=1)
    weights = "unet/diffusion_pytorch_model.safetensors"
    a, b, c = (load_file(folder / weights) for folder in (first, second, other))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert any(not torch.equal(a[key], c[key]) for key in a)
    assert other != first

    marker = json.loads((first / TINY_MARKER).read_text())
    assert marker["kind"] == "tiny-random" and marker["family"] == "sd15"
    assert marker["seed"] == 0 and "not a real model" in marker["note"]
    assert [p.name for p in (tmp_path / "a").iterdir() if p.name.startswith(".")] == []

    stamp = (first / "model_index.json").stat().st_mtime_ns
    assert ensure_tiny_model("sd15", tmp_path / "a") == first
    assert (first / "model_index.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_tokenizers_really_tokenize(family, models_dir):
    pipe = load_pipeline(TINY_IDS[family], family, models_dir, pick_device("cpu"))
    tokenizers = [pipe.tokenizer] + ([pipe.tokenizer_2] if family == "sdxl" else [])
    for tokenizer in tokenizers:
        ids = tokenizer("a red circle", add_special_tokens=False).input_ids
        assert len(ids) > 3
        assert tokenizer.unk_token_id not in ids
        assert tokenizer("a blue circle").input_ids != tokenizer("a red circle").input_ids


def test_pickled_checkpoint_is_refused(tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"not really a pickle")
    with pytest.raises(InvalidInput) as caught:
        load_pipeline(str(checkpoint), "sd15", tmp_path)
    message = str(caught.value).lower()
    assert "pickle" in message and "safetensors" in message


def test_hub_id_not_in_cache_fails_fast_with_the_fetch_command(tmp_path):
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        load_pipeline(SD15_HUB, "sd15", tmp_path)
    assert time.monotonic() - started < 5
    assert f"hf download {SD15_HUB}" in str(caught.value)
    assert "tiny" in str(caught.value)
    with pytest.raises(ModelUnavailable):
        model_identity(SD15_HUB, tmp_path)


def test_cached_hub_model_loads_and_is_identified_by_commit(tmp_path, empty_hub_cache, models_dir):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hub_cache / "models--someone--tiny-sd"
    shutil.copytree(models_dir / TINY_IDS["sd15"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    pipe = load_pipeline("someone/tiny-sd", "sd15", tmp_path, pick_device("cpu"))
    assert pipe.unet.config.cross_attention_dim == 32
    assert model_identity("someone/tiny-sd", tmp_path) == f"hub:someone/tiny-sd@{commit}"
    assert describe_source("someone/tiny-sd", "sd15", tmp_path).available


def test_missing_and_invalid_paths_give_clear_errors(tmp_path, models_dir):
    with pytest.raises(InvalidInput, match="not found"):
        load_pipeline(str(tmp_path / "no-such-model"), "sd15", tmp_path)
    with pytest.raises(InvalidInput, match="not found"):
        load_pipeline(str(tmp_path / "no-such.safetensors"), "sd15", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"model_index\.json"):
        load_pipeline(str(tmp_path / "empty"), "sd15", tmp_path)
    with pytest.raises(InvalidInput, match="sdxl"):
        load_pipeline(TINY_IDS["sdxl"], "sd15", models_dir)


def test_single_file_checks_without_loading_weights(tmp_path):
    v1 = tmp_path / "v1.safetensors"
    save_file({V1_KEY: torch.zeros(8, 4, 3, 3)}, v1)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=f"hf download {SD15_HUB}"):
        load_pipeline(str(v1), "sd15", tmp_path)
    assert time.monotonic() - started < 5

    xl = tmp_path / "xl.safetensors"
    save_file({V1_KEY: torch.zeros(8, 4, 3, 3), XL_KEY: torch.zeros(4)}, xl)
    with pytest.raises(InvalidInput, match="sdxl"):
        load_pipeline(str(xl), "sd15", tmp_path)

    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.lora_up.weight": torch.zeros(2, 2)}, lora)
    with pytest.raises(InvalidInput, match="LoRA"):
        load_pipeline(str(lora), "sd15", tmp_path)


def test_list_base_models(tmp_path, models_dir):
    local = tmp_path / "models"
    shutil.copytree(models_dir / TINY_IDS["sdxl"], local / "my-xl")
    (local / "my-xl" / TINY_MARKER).unlink()
    save_file({V1_KEY: torch.zeros(8, 4, 3, 3)}, local / "single.safetensors")

    sources = {source.ref: source for source in list_base_models(local, extra_refs=["a/b"])}
    for family, ref in TINY_IDS.items():
        assert sources[ref].available and sources[ref].kind == "tiny"
        assert sources[ref].family == family and TINY_LABEL in sources[ref].label
    for ref, family in ((SD15_HUB, "sd15"), (SDXL_HUB, "sdxl")):
        assert not sources[ref].available and sources[ref].family == family
        assert "hf download" in sources[ref].detail
    folder = sources[str(local / "my-xl")]
    assert folder.kind == "folder" and folder.family == "sdxl" and folder.available
    single = sources[str(local / "single.safetensors")]
    assert single.kind == "file" and single.family == "sd15" and single.available
    assert sources["a/b"].kind == "hub" and not sources["a/b"].available
    assert not any(TINY_IDS["sd15"] in ref and ref != TINY_IDS["sd15"] for ref in sources)


def test_model_identity(tmp_path, models_dir):
    assert model_identity("tiny-sd15", models_dir) == "tiny-sd15@seed0"
    assert model_identity("tiny-sdxl-seed3", models_dir) == "tiny-sdxl@seed3"

    single = tmp_path / "single.safetensors"
    save_file({V1_KEY: torch.ones(8, 4, 3, 3)}, single)
    expected = hashlib.sha256(single.read_bytes()).hexdigest()
    assert model_identity(str(single), tmp_path) == f"sha256:{expected}"

    folder = tmp_path / "copy"
    shutil.copytree(models_dir / TINY_IDS["sd15"], folder)
    before = model_identity(str(folder), tmp_path)
    assert before == model_identity(str(folder), tmp_path)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    assert model_identity(str(folder), tmp_path) != before


def test_building_does_not_disturb_the_callers_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_pipeline("sd15", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_pick_device():
    assert pick_device("cpu").dtype == torch.float32
    choice = pick_device()
    assert choice.device in {"cpu", "cuda", "mps"} and choice.label
    if not torch.cuda.is_available():
        assert pick_device().device in {"cpu", "mps"}
        with pytest.raises(InvalidInput, match="CUDA"):
            pick_device("cuda")


def _reference_folder(family: str, models_dir: Path, tmp_path: Path) -> Path:
    """A diffusers folder to turn into a single file. diffusers tells SDXL from SD 1.x by
    the 10th block of the OpenCLIP encoder, and the two SDXL encoders apart by width, so
    the tiny SDXL gets a 10-layer, 48-wide second encoder here (real: 32 layers, 1280)."""
    if family == "sd15":
        return models_dir / TINY_IDS["sd15"]
    pipe = build_tiny_pipeline("sdxl", 0)
    torch.manual_seed(0)
    config = pipe.text_encoder_2.config
    config.num_hidden_layers, config.hidden_size = 10, 48
    unet = UNet2DConditionModel.from_config(pipe.unet.config, cross_attention_dim=32 + 48)
    pipe.register_modules(text_encoder_2=CLIPTextModelWithProjection(config), unet=unet)
    pipe.save_pretrained(tmp_path / "tiny-xl-10")
    return tmp_path / "tiny-xl-10"


@pytest.mark.parametrize(("family", "hub_id"), [("sd15", SD15_HUB), ("sdxl", SDXL_HUB)])
def test_single_file_checkpoint_loads_offline_with_its_own_weights(
        family, hub_id, tmp_path, empty_hub_cache, models_dir):
    """An original-layout checkpoint (as model sites publish them) becomes the same pipeline."""
    folder = _reference_folder(family, models_dir, tmp_path)
    reference = load_pipeline(str(folder), family, models_dir, pick_device("cpu"))
    checkpoint = write_ldm_checkpoint(reference, tmp_path / "my-base.safetensors")
    with pytest.raises(ModelUnavailable, match=f"hf download {hub_id}"):
        load_pipeline(str(checkpoint), family, tmp_path)

    # The base repo's config files only (what that message asks for), no weights.
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = empty_hub_cache / f"models--{hub_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit,
                    ignore=shutil.ignore_patterns("*.safetensors", TINY_MARKER))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert not describe_source(hub_id, family, tmp_path).available  # configs are not a model

    loaded = load_pipeline(str(checkpoint), family, tmp_path, pick_device("cpu"))
    parts = ["unet", "vae", "text_encoder"] + (["text_encoder_2"] if family == "sdxl" else [])
    for part in parts:
        mine, theirs = getattr(loaded, part).state_dict(), getattr(reference, part).state_dict()
        assert mine.keys() == theirs.keys(), part
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), part
    assert np.array_equal(np.asarray(_generate(loaded, family)),
                          np.asarray(_generate(reference, family)))
    expected = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert model_identity(str(checkpoint), tmp_path) == f"sha256:{expected}"
