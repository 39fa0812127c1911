"""The LoRA file ComfyUI and Forge load for FLUX.1, FLUX.2 [klein] and Z-Image.

ComfyUI cannot run here, so its loader is re-stated below from its source, read at these
commits (rules learned, no code copied):

- Comfy-Org/ComfyUI comfy/lora.py @ 17358c8f73b581a0d22facc3c385822f09b8bfb1
  `model_lora_keys_unet`: every model weight `diffusion_model.<path>.weight` is reachable as
  `lora_unet_<path, dots as underscores>` (all models, FLUX.1 and FLUX.2 included); for
  `model_base.Lumina2` (Z-Image) `diffusion_model.<diffusers key>` is mapped through
  `z_image_to_diffusers`, whose (key, (dim, start, size)) targets `calculate_weight` patches
  through `weight.narrow(dim, start, size)`; targets with a function get it applied to the delta.
- Comfy-Org/ComfyUI comfy/utils.py @ 09708eae709a992a5684bed3595ce4d07e705b4e
  `flux_to_diffusers` (FLUX.1 names and the "Flux 2" entries) and `z_image_to_diffusers`:
  which diffusers module is which original module, and at which rows of a fused weight.
- Comfy-Org/ComfyUI comfy/weight_adapter/lora.py @ 6f98b150e065f1ffc788558574a887835068bd40
  a module is found by `<x>.lora_up.weight` / `.lora_down.weight` or `<x>.lora_B.weight` /
  `.lora_A.weight`; the delta is up @ down * alpha / down.shape[0], alpha from `<x>.alpha`
  (1.0 without it: ComfyUI never reads safetensors metadata).
- Comfy-Org/ComfyUI comfy/lora_convert.py @ 2bffe2f4ce5763dcb83df6a670657b6d5c8f85a5
  `convert_lora` leaves these names alone (none is BFL-control, Wan-Fun, USO or Krea2 `to_qkv`).
- The same generic `lora_unet_` rule in Forge: lllyasviel/stable-diffusion-webui-forge
  packages_3rdparty/comfyui_lora_collection/lora.py @ 00f1cd36bd25431445eb67425ad39434c68c8665.
- Fusing as sd-scripts does: kohya-ss/sd-scripts networks/convert_flux_lora.py
  `convert_to_sd_scripts_cat` and networks/lora_flux.py (`LORA_PREFIX_FLUX = "lora_unet"`)
  @ 48d368fa557731ad0488c07304dfeba8c07910eb.
- modelspec.architecture: sd-scripts library/sai_model_spec.py @ 48d368fa5577 and
  kohya-ss/musubi-tuner src/musubi_tuner/utils/sai_model_spec.py
  @ 30c658c4f4b0bf05038b3346eff9670259b10fc7.
"""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from style_studio.models.families import family_spec
from style_studio.models.families.tool_keys import (
    ARCHITECTURE,
    ARCHITECTURE_BY_MODEL,
    architecture,
    tool_state,
)
from style_studio.training.export import write_diffusers

FLOW = ("flux1", "flux2_klein", "zimage")
RANK, ALPHA = 4, 8.0  # alpha / rank = 2, so a lost alpha shows
SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")
PROMPT = "a lighthouse on a rocky coast, ink wash"
CALL = {"flux1": {"guidance_scale": 3.5, "max_sequence_length": 32},
        "flux2_klein": {"guidance_scale": 1.0, "max_sequence_length": 64},
        "zimage": {"guidance_scale": 0.0, "max_sequence_length": 64}}


# ------------------------------------------------------------------ ComfyUI's rules, re-stated


def swap_halves(delta: torch.Tensor) -> torch.Tensor:
    """utils.py swap_scale_shift: the original's (shift, scale) rows <-> diffusers' order."""
    first, second = delta.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def flux_to_diffusers(config) -> dict[str, tuple[str, int | None, int | None, bool]]:
    """comfy/utils.py flux_to_diffusers for Linear weights: diffusers module -> (original
    module, first row, rows or None for the whole weight, swap halves)."""
    h = config["num_attention_heads"] * config["attention_head_dim"]
    table: dict[str, tuple[str, int | None, int | None, bool]] = {}
    for i in range(config["num_layers"]):
        d, o = f"transformer_blocks.{i}", f"double_blocks.{i}"
        for j, p in enumerate("qkv"):
            table[f"{d}.attn.to_{p}"] = (f"{o}.img_attn.qkv", j * h, h, False)
            table[f"{d}.attn.add_{p}_proj"] = (f"{o}.txt_attn.qkv", j * h, h, False)
        for src, dst in (("attn.to_out.0", "img_attn.proj"), ("norm1.linear", "img_mod.lin"),
                         ("norm1_context.linear", "txt_mod.lin"),
                         ("attn.to_add_out", "txt_attn.proj"), ("ff.net.0.proj", "img_mlp.0"),
                         ("ff.net.2", "img_mlp.2"), ("ff_context.net.0.proj", "txt_mlp.0"),
                         ("ff_context.net.2", "txt_mlp.2"), ("ff.linear_in", "img_mlp.0"),
                         ("ff.linear_out", "img_mlp.2"), ("ff_context.linear_in", "txt_mlp.0"),
                         ("ff_context.linear_out", "txt_mlp.2")):
            table[f"{d}.{src}"] = (f"{o}.{dst}", None, None, False)
    for i in range(config["num_single_layers"]):
        d, o = f"single_transformer_blocks.{i}", f"single_blocks.{i}"
        for j, p in enumerate("qkv"):
            table[f"{d}.attn.to_{p}"] = (f"{o}.linear1", j * h, h, False)
        table[f"{d}.proj_mlp"] = (f"{o}.linear1", 3 * h, 4 * h, False)
        for src, dst in (("norm.linear", "modulation.lin"), ("proj_out", "linear2"),
                         ("attn.to_qkv_mlp_proj", "linear1"), ("attn.to_out", "linear2")):
            table[f"{d}.{src}"] = (f"{o}.{dst}", None, None, False)
    for src, dst in (("proj_out", "final_layer.linear"), ("x_embedder", "img_in"),
                     ("time_text_embed.timestep_embedder.linear_1", "time_in.in_layer"),
                     ("time_text_embed.timestep_embedder.linear_2", "time_in.out_layer"),
                     ("context_embedder", "txt_in"),
                     ("time_text_embed.text_embedder.linear_1", "vector_in.in_layer"),
                     ("time_text_embed.text_embedder.linear_2", "vector_in.out_layer"),
                     ("time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer"),
                     ("time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer")):
        table[src] = (dst, None, None, False)
    table["norm_out.linear"] = ("final_layer.adaLN_modulation.1", None, None, True)
    return table


# FLUX.2's own top-level modules are not in flux_to_diffusers; their original names are the
# ones diffusers' convert_flux2_transformer_checkpoint_to_diffusers renames (0.42.1,
# loaders/single_file_utils.py), i.e. BFL's flux2 checkpoint names, which ComfyUI's Flux
# model (comfy/ldm/flux/model.py, global_modulation) keeps.
FLUX2_TOP = {"time_guidance_embed.timestep_embedder.linear_1": "time_in.in_layer",
             "time_guidance_embed.timestep_embedder.linear_2": "time_in.out_layer",
             "double_stream_modulation_img.linear": "double_stream_modulation_img.lin",
             "double_stream_modulation_txt.linear": "double_stream_modulation_txt.lin",
             "single_stream_modulation.linear": "single_stream_modulation.lin"}


def z_image_to_diffusers(config) -> dict[str, tuple[str, int | None, int | None, bool]]:
    """comfy/utils.py z_image_to_diffusers for Linear weights (same tuple as above)."""
    dim = config["dim"]
    table: dict[str, tuple[str, int | None, int | None, bool]] = {}
    blocks = [f"layers.{i}" for i in range(config["n_layers"])]
    blocks += [f"{kind}.{i}" for kind in ("context_refiner", "noise_refiner")
               for i in range(config["n_refiner_layers"])]
    for b in blocks:
        for j, p in enumerate("qkv"):
            table[f"{b}.attention.to_{p}"] = (f"{b}.attention.qkv", j * dim, dim, False)
        table[f"{b}.attention.to_out.0"] = (f"{b}.attention.out", None, None, False)
        for same in ("feed_forward.w1", "feed_forward.w2", "feed_forward.w3",
                     "adaLN_modulation.0"):
            table[f"{b}.{same}"] = (f"{b}.{same}", None, None, False)
    for src, dst in (("all_final_layer.2-1.linear", "final_layer.linear"),
                     ("all_final_layer.2-1.adaLN_modulation.1", "final_layer.adaLN_modulation.1"),
                     ("all_x_embedder.2-1", "x_embedder"), ("cap_embedder.1", "cap_embedder.1"),
                     ("t_embedder.mlp.0", "t_embedder.mlp.0"),
                     ("t_embedder.mlp.2", "t_embedder.mlp.2")):
        table[src] = (dst, None, None, False)
    return table


def comfy_table(family: str, config) -> dict[str, tuple[str, int | None, int | None, bool]]:
    if family == "zimage":
        return z_image_to_diffusers(config)
    table = flux_to_diffusers(config)
    if family == "flux2_klein":
        table |= {src: (dst, None, None, False) for src, dst in FLUX2_TOP.items()}
    return table


def lora_names(family: str, modules: list[str], config) -> dict[str, str]:
    """The file's module names ComfyUI maps, for the diffusers modules that have LoRA:
    {name in the file: diffusers module it stands for (one of them, for a fused weight)}."""
    table = comfy_table(family, config)
    if family == "zimage":  # Lumina2 branch: diffusion_model.<diffusers key>
        return {f"diffusion_model.{m}": m for m in modules}
    # generic rule: lora_unet_<original path with dots as underscores>
    return {"lora_unet_" + table[m][0].replace(".", "_"): m for m in modules}


def comfy_apply(family: str, tool: dict[str, torch.Tensor], transformer,
                config) -> dict[str, torch.Tensor]:
    """Patch zero original weights as ComfyUI does; returns {original module: delta}."""
    table = comfy_table(family, config)
    weights = dict(transformer.named_modules())
    shapes: dict[str, list[int]] = {}
    for module, (native, start, rows, _) in table.items():
        if module not in weights:
            continue
        out_rows, in_cols = weights[module].weight.shape
        end = out_rows if start is None else start + rows
        shape = shapes.setdefault(native, [0, in_cols])
        shape[0] = max(shape[0], end)
    deltas = {native: torch.zeros(shape) for native, shape in shapes.items()}
    if family == "zimage":
        key_map = {f"diffusion_model.{m}": (native, start, rows, swap)
                   for m, (native, start, rows, swap) in table.items()}
    else:
        key_map = {"lora_unet_" + native.replace(".", "_"): (native, None, None, False)
                   for native in deltas}
    loaded = set()
    for x, (native, start, rows, swap) in key_map.items():
        for up_name, down_name in ((".lora_up.weight", ".lora_down.weight"),
                                   (".lora_B.weight", ".lora_A.weight")):
            if x + up_name in tool:
                up, down = tool[x + up_name], tool[x + down_name]
                alpha = tool[x + ".alpha"].item() if x + ".alpha" in tool else None
                loaded |= {x + up_name, x + down_name, x + ".alpha"}
                scale = 1.0 if alpha is None else alpha / down.shape[0]
                target = deltas[native]
                if start is not None:
                    target = target.narrow(0, start, rows)
                delta = (up @ down * scale).reshape(target.shape)
                target += swap_halves(delta) if swap else delta
    assert set(tool) <= loaded, f"keys ComfyUI would not load: {sorted(set(tool) - loaded)}"
    return deltas


def peft_deltas(family: str, state, transformer, config) -> dict[str, torch.Tensor]:
    """The PEFT LoRA's deltas B @ A * lora_alpha / r, placed where ComfyUI's table says."""
    table = comfy_table(family, config)
    expected = {native: torch.zeros_like(t)
                for native, t in comfy_apply(family, {}, transformer, config).items()}
    for key, a in state.items():
        if ".lora_A." not in key:
            continue
        module = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
        b = state[key.replace(".lora_A.", ".lora_B.")]
        native, start, rows, swap = table[module]
        delta = b @ a * (ALPHA / RANK)
        target = expected[native] if start is None else expected[native].narrow(0, start, rows)
        target += swap_halves(delta) if swap else delta
    return expected


# ------------------------------------------------------------------ the tiny twins' LoRA


def all_linear(transformer) -> list[str]:
    return [name for name, module in transformer.named_modules()
            if isinstance(module, torch.nn.Linear)]


def trained_lora(family: str, targets: str | list[str] = "default", seed: int = 0):
    """(pipeline, PEFT state as the trainer holds it, transformer config) of a tiny twin whose
    LoRA has non-zero B, as after training."""
    spec = family_spec(family)
    pipe = spec.build_tiny(seed)
    transformer = pipe.transformer
    if targets == "default":
        targets = list(spec.default_targets)
    elif targets == "all":
        targets = all_linear(transformer)
    torch.manual_seed(seed + 10)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, init_lora_weights="gaussian",
                        target_modules=targets)
    transformer.add_adapter(config)
    for name, param in transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.3)
    state = {f"transformer.{k}": v.detach().float().contiguous()
             for k, v in get_peft_model_state_dict(transformer).items()}
    return pipe, state, transformer.config, config


def modules_of(state) -> list[str]:
    return sorted({k.removeprefix("transformer.").rsplit(".lora_", 1)[0] for k in state})


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("family", FLOW)
def test_the_tool_files_keys_are_the_names_comfyuis_rules_give(family):
    _, state, config, _ = trained_lora(family)
    names = lora_names(family, modules_of(state), config)
    if family == "zimage":
        expected = {n + s for n in names for s in (".lora_A.weight", ".lora_B.weight", ".alpha")}
    else:
        expected = {n + s for n in names for s in SUFFIXES}
    assert set(tool_state(family, state, ALPHA, RANK, config)) == expected


def test_the_flux1_names_are_sd_scripts_names():
    """Anchors: the rule above yields the names sd-scripts documents for FLUX.1."""
    _, state, config, _ = trained_lora("flux1")
    keys = set(tool_state("flux1", state, ALPHA, RANK, config))
    for name in ("lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_double_blocks_0_txt_attn_qkv",
                 "lora_unet_double_blocks_0_img_attn_proj", "lora_unet_double_blocks_0_img_mlp_0",
                 "lora_unet_single_blocks_0_linear1"):
        assert {name + s for s in SUFFIXES} <= keys


@pytest.mark.parametrize("targets", ["default", "all"])
@pytest.mark.parametrize("family", FLOW)
def test_comfyui_applies_the_same_deltas_as_the_peft_lora(family, targets):
    _, state, config, _ = trained_lora(family, targets)
    pipe_transformer = family_spec(family).build_tiny(0).transformer
    tool = tool_state(family, state, ALPHA, RANK, config)
    got = comfy_apply(family, tool, pipe_transformer, config)
    want = peft_deltas(family, state, pipe_transformer, config)
    assert set(got) == set(want)
    for native in want:
        assert torch.allclose(got[native], want[native], atol=1e-6), native
    assert any(bool(want[n].abs().max() > 1e-3) for n in want)


def test_fused_weights_keep_the_scale_and_leave_parts_without_lora_at_zero():
    _, state, config, _ = trained_lora("flux1")  # single blocks: to_q/k/v, no proj_mlp
    tool = tool_state("flux1", state, ALPHA, RANK, config)
    h = config["num_attention_heads"] * config["attention_head_dim"]
    up = tool["lora_unet_single_blocks_0_linear1.lora_up.weight"]
    assert up.shape == (7 * h, 3 * RANK)
    assert tool["lora_unet_single_blocks_0_linear1.lora_down.weight"].shape[0] == 3 * RANK
    assert not up[3 * h:].any()  # the MLP rows
    assert tool["lora_unet_single_blocks_0_linear1.alpha"].item() == 3 * ALPHA
    assert tool["lora_unet_double_blocks_0_img_attn_proj.alpha"].item() == ALPHA


def _draw(pipe, family: str):
    out = pipe(prompt=PROMPT, height=32, width=32, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0), output_type="latent",
               **CALL[family])
    return out.images


@pytest.mark.parametrize("family", ["flux2_klein", "zimage"])
def test_diffusers_reads_the_tool_file_back_as_the_diffusers_file(family, tmp_path):
    """FLUX.1 is left out: diffusers' kohya FLUX.1 reader hardcodes 19/38 blocks and the
    real sizes of linear1, so it cannot read a tiny twin's single blocks."""
    targets: str | list[str] = "all" if family == "zimage" else [
        *family_spec(family).default_targets, "add_q_proj", "add_k_proj", "add_v_proj",
        "to_add_out", "linear_in", "linear_out", "single_transformer_blocks.0.attn.to_out"]
    _, state, config, lora_config = trained_lora(family, targets)
    diffusers_file = write_diffusers(tmp_path / "lora.safetensors", state,
                                     {"transformer": lora_config}, {})
    base = family_spec(family).build_tiny(0)
    plain = _draw(base, family)
    base.load_lora_weights(str(diffusers_file))
    want = _draw(base, family)
    # Equal up to float32 rounding, which grows with the latents' scale (random weights
    # and B ~ N(0, 0.3) give values in the hundreds: an element-wise 1e-5 failed at 3e-4
    # on a freshly installed machine), while a wrong name, alpha or fusion moves them by
    # about the LoRA's own effect: the tolerance is 1e-5 of the scale, and that effect
    # must be over a thousand times the tolerance.
    tolerance = 1e-5 * float(want.abs().max())
    assert (want - plain).abs().max() > 1000 * tolerance  # the LoRA changes the picture

    fresh = family_spec(family).build_tiny(0)
    fresh.load_lora_weights(tool_state(family, state, ALPHA, RANK, config))
    assert (_draw(fresh, family) - want).abs().max() <= tolerance


@pytest.mark.parametrize("family", FLOW)
def test_a_module_without_a_tool_name_is_refused(family):
    _, state, config, _ = trained_lora(family)
    a = torch.zeros(RANK, 8)
    b = torch.zeros(8, RANK)
    odd = {"transformer.transformer_blocks.0.attn.extra_proj.lora_A.weight": a,
           "transformer.transformer_blocks.0.attn.extra_proj.lora_B.weight": b}
    with pytest.raises(ValueError, match=r"extra_proj.*no name"):
        tool_state(family, state | odd, ALPHA, RANK, config)
    with pytest.raises(ValueError, match="No tool-facing"):
        tool_state("sd15", state, ALPHA, RANK, config)
    with pytest.raises(ValueError, match="Unexpected LoRA tensor"):
        tool_state("flux1", {"unet.x.lora_A.weight": a}, ALPHA, RANK, config)
    with pytest.raises(ValueError, match="rank"):
        tool_state("flux1", state, ALPHA, RANK + 1, config)


def test_each_family_and_reference_model_has_its_modelspec_architecture():
    for family in FLOW:
        assert ARCHITECTURE[family].endswith("/lora")
        for ref in family_spec(family).references:
            assert ref.hub_id in ARCHITECTURE_BY_MODEL
    assert architecture("flux1", "black-forest-labs/FLUX.1-dev") == "flux-1-dev/lora"
    assert architecture("flux1", "black-forest-labs/FLUX.1-schnell") == "flux-1-schnell/lora"
    assert architecture("flux1") == "flux-1/lora"
    assert architecture("flux2_klein", "black-forest-labs/FLUX.2-klein-base-4B") == (
        "Flux.2-klein-4b/lora")
    assert architecture("zimage", "Tongyi-MAI/Z-Image-Turbo") == "Z-Image/lora"
