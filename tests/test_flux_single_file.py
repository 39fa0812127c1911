"""FLUX.1's common single file (`flux1-dev.safetensors`: the transformer in Black Forest
Labs' names) loads offline, with its text encoders, VAE and configs from the hub repo's
snapshot in the local Hugging Face cache.

No real file can be downloaded here, so the tests write one from the tiny FLUX.1 twin. The
writer below renames diffusers keys to BFL ones as the inverse of diffusers'
`convert_flux_transformer_checkpoint_to_diffusers` (diffusers 0.42, loaders/
single_file_utils.py): q, k, v fused into `qkv`, a single block's q, k, v and MLP input
into `linear1`, RMSNorm `.weight` as `.scale`, the final modulation's halves swapped to
(shift, scale). Module names come from tool_keys (the names ComfyUI maps); that the writer
is exactly diffusers' inverse is checked at the real model's width, where diffusers'
converter runs, on one-column weights.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers
from safetensors.torch import save_file

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.models.checkpoint_files import single_file_model_type
from style_studio.models.devices import pick_device
from style_studio.models.families.flux1 import build_tiny_flux1
from style_studio.models.families.flux1_file import bfl_to_diffusers
from style_studio.models.families.tool_keys import _flux1_place
from style_studio.models.loading import (
    describe_source,
    guess_family,
    load_pipeline,
    reference_repo,
)

REPOS = {"dev": "black-forest-labs/FLUX.1-dev", "schnell": "black-forest-labs/FLUX.1-schnell"}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMFY = "model.diffusion_model."
NORMS = {  # diffusers RMSNorm -> BFL, per block kind (the converter's "qk_norm" lines)
    "attn.norm_q": "img_attn.norm.query_norm", "attn.norm_k": "img_attn.norm.key_norm",
    "attn.norm_added_q": "txt_attn.norm.query_norm",
    "attn.norm_added_k": "txt_attn.norm.key_norm",
}
SINGLE_NORMS = {"attn.norm_q": "norm.query_norm", "attn.norm_k": "norm.key_norm"}
REAL = {"num_attention_heads": 24, "attention_head_dim": 128}  # FLUX.1: 3072 wide, MLP 4x


# ------------------------------------------------------------------ writing a BFL file


def to_bfl(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """diffusers FluxTransformer2DModel weights -> the original (BFL) checkpoint names."""
    norms = {"transformer_blocks": NORMS, "single_transformer_blocks": SINGLE_NORMS}
    fused: dict[str, dict[int, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, _, kind = key.rpartition(".")
        block, _, rest = module.partition(".")
        index, _, inner = rest.partition(".")
        if inner in norms.get(block, {}):
            prefix = "double_blocks" if block == "transformer_blocks" else "single_blocks"
            out[f"{prefix}.{index}.{norms[block][inner]}.scale"] = value
            continue
        place = _flux1_place(module, config)
        if place.parts is not None:
            fused.setdefault(f"{place.native}.{kind}", {})[place.part] = value
        elif place.swap_halves:
            scale, shift = value.chunk(2, dim=0)
            out[f"{place.native}.{kind}"] = torch.cat([shift, scale], dim=0)
        else:
            out[f"{place.native}.{kind}"] = value
    for key, parts in fused.items():
        out[key] = torch.cat([parts[i] for i in sorted(parts)], dim=0)
    return {key: value.contiguous() for key, value in out.items()}


def write_bfl_file(pipe, path: Path, prefix: str = "") -> Path:
    transformer = pipe.transformer
    bfl = to_bfl(transformer.state_dict(), dict(transformer.config))
    save_file({prefix + key: value for key, value in bfl.items()}, path)
    return path


def cache_snapshot(pipe, repo_id: str, with_weights: bool = True) -> Path:
    """The hub repo as `base_parts_command` leaves it in the cache: every config and
    tokenizer, the text encoders' and VAE's weights, the transformer's config and shard
    index but not its weights."""
    repo = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    pipe.save_pretrained(snapshot, safe_serialization=True)
    for weights in snapshot.glob("*/*.safetensors"):
        if weights.parent.name == "transformer" or not with_weights:
            weights.unlink()
    index = {"metadata": {}, "weight_map": {
        "x_embedder.weight": "diffusion_pytorch_model-00001-of-00003.safetensors"}}
    (snapshot / "transformer" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps(index))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture
def no_network(monkeypatch):
    """Online mode, but every connection fails: loading must not even try one."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _draw(pipe) -> np.ndarray:
    out = pipe(prompt="a lighthouse, ink wash", height=32, width=32, num_inference_steps=2,
               guidance_scale=3.5, max_sequence_length=32, output_type="np",
               generator=torch.Generator().manual_seed(1))
    return np.asarray(out.images[0], dtype=np.float32)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize(("variant", "prefix"), [("dev", ""), ("schnell", COMFY)])
def test_a_bfl_file_loads_offline_with_the_twins_weights_and_picture(
        variant, prefix, tmp_path, no_network):
    twin = build_tiny_flux1(0, guidance=variant == "dev")
    path = write_bfl_file(twin, tmp_path / f"flux1-{variant}.safetensors", prefix)
    assert single_file_model_type(path) == f"flux-{variant}"
    assert guess_family(str(path), tmp_path) == "flux1"
    assert reference_repo(str(path), tmp_path) == REPOS[variant]  # whose licence binds it
    with pytest.raises(ModelUnavailable):
        load_pipeline(str(path), "flux1", tmp_path, pick_device("cpu"))

    cache_snapshot(twin, REPOS[variant])
    source = describe_source(str(path), "flux1", tmp_path)
    assert source.available and source.family == "flux1" and source.kind == "file"
    assert f"FLUX.1 [{variant}]" in source.label and REPOS[variant] in source.detail
    assert not describe_source(REPOS[variant], "flux1", tmp_path).available  # no transformer

    loaded = load_pipeline(str(path), "flux1", tmp_path, pick_device("cpu"))
    assert type(loaded).__name__ == "FluxPipeline"
    mine, theirs = loaded.transformer.state_dict(), twin.transformer.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[key], theirs[key]) for key in mine)
    assert not any(p.is_meta for p in loaded.transformer.parameters())
    assert np.allclose(_draw(loaded), _draw(twin), atol=1e-5)


def test_missing_snapshot_names_the_download_without_the_transformer(tmp_path, no_network):
    twin = build_tiny_flux1(0)
    path = write_bfl_file(twin, tmp_path / "flux1-dev.safetensors")
    command = ("hf download black-forest-labs/FLUX.1-dev --include '*.json' --include '*.txt' "
               "--include '*.model' --include 'text_encoder/*.safetensors' "
               "--include 'text_encoder_2/*.safetensors' --include 'vae/*.safetensors'")
    with pytest.raises(ModelUnavailable) as caught:
        load_pipeline(str(path), "flux1", tmp_path, pick_device("cpu"))
    message = str(caught.value)
    assert command in message and "tiny-flux1" in message and "transformer" in message
    assert "*/*.safetensors" not in message
    source = describe_source(str(path), "flux1", tmp_path)
    assert not source.available and source.family == "flux1" and command in source.detail

    # configs only (what the SD message asks for) are not enough: the encoders are missing
    cache_snapshot(twin, REPOS["dev"], with_weights=False)
    with pytest.raises(ModelUnavailable, match="text encoders"):
        load_pipeline(str(path), "flux1", tmp_path, pick_device("cpu"))
    assert not describe_source(str(path), "flux1", tmp_path).available


def test_the_file_is_refused_for_other_families_and_when_it_does_not_fit(tmp_path):
    twin = build_tiny_flux1(0, guidance=False)
    path = write_bfl_file(twin, tmp_path / "flux1-schnell.safetensors")
    assert single_file_model_type(path) == "flux-schnell"
    with pytest.raises(InvalidInput, match="flux1 checkpoint, but sd15"):
        load_pipeline(str(path), "sd15", tmp_path)
    other = describe_source(str(path), "sdxl", tmp_path)
    assert not other.available and other.family == "flux1"

    cache_snapshot(build_tiny_flux1(0, guidance=False), REPOS["schnell"])
    bfl = to_bfl(twin.transformer.state_dict(), dict(twin.transformer.config))
    del bfl["single_blocks.0.linear2.weight"]
    save_file(bfl, path)
    with pytest.raises(InvalidInput, match=r"single_transformer_blocks\.0\.proj_out\.weight"):
        load_pipeline(str(path), "flux1", tmp_path, pick_device("cpu"))
    save_file({**bfl, "double_blocks.0.img_attn.extra.weight": torch.zeros(2)}, path)
    with pytest.raises(InvalidInput, match="no place for"):
        load_pipeline(str(path), "flux1", tmp_path, pick_device("cpu"))


def test_the_renames_are_diffusers_own_at_the_real_width():
    """diffusers' converter (fixed at 3072 wide) and ours agree on a real-width FLUX.1 layout
    with one-column weights, and the test's writer gives back the file diffusers read."""
    twin = build_tiny_flux1(0)
    names = to_bfl(twin.transformer.state_dict(), dict(twin.transformer.config))
    rows = {"qkv": 3 * 3072, "linear1": 7 * 3072, "adaLN_modulation": 2 * 3072}
    generator = torch.Generator().manual_seed(0)
    real = {}
    for key, value in names.items():
        count = next((n for part, n in rows.items() if part in key), 4)
        shape = (count, 1) if key.endswith(".weight") else (count,)
        real[key] = torch.randn(shape, generator=generator, dtype=value.dtype)
    theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(real))
    ours, unknown = bfl_to_diffusers({COMFY + key: value for key, value in real.items()}, REAL)
    assert unknown == [] and ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    back = to_bfl(theirs, REAL)
    assert back.keys() == real.keys() and all(torch.equal(back[k], real[k]) for k in real)


def test_a_flux_lora_or_a_flux2_file_is_not_taken_for_flux1(tmp_path):
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": torch.zeros(2, 2)},
              lora)
    with pytest.raises(InvalidInput, match="LoRA"):
        load_pipeline(str(lora), "flux1", tmp_path)
    flux2 = tmp_path / "flux2.safetensors"
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(6, 2),
               "single_blocks.0.linear1.weight": torch.zeros(6, 2),
               "single_stream_modulation.lin.weight": torch.zeros(2, 2)}, flux2)
    assert not describe_source(str(flux2), "flux1", tmp_path).available
    with pytest.raises(InvalidInput, match="flux-2"):
        load_pipeline(str(flux2), "flux1", tmp_path)
