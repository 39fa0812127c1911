"""The LoRA file ComfyUI, Forge and the kohya trainers load, for each flow-matching family.

The trainer holds a PEFT LoRA on the diffusers transformer (`transformer.<module>.lora_A/B`).
ComfyUI and Forge patch their own copy of the model, which keeps the original layout of
Black Forest Labs (FLUX) or Tongyi (Z-Image): FLUX's q, k and v are one `qkv` weight, and a
FLUX.1 single block's q, k, v and MLP input are one `linear1`. They find a LoRA module by
name, so the names below are the ones their loaders map:

- FLUX.1 and FLUX.2 [klein]: `lora_unet_` + the original module path with dots as
  underscores (`lora_unet_double_blocks_0_img_attn_qkv`), `.lora_down.weight`,
  `.lora_up.weight` and `.alpha`. These are the names sd-scripts (networks/lora_flux.py,
  "make ComfyUI compatible") and musubi-tuner (networks/lora_flux_2.py) write. ComfyUI's
  comfy/lora.py maps `lora_unet_<path>` onto every weight `diffusion_model.<path>.weight`
  of the loaded model; Forge has the same rule; diffusers reads the FLUX.2 form back.
  Where the original fuses modules, the parts are fused here the way sd-scripts'
  networks/convert_flux_lora.py does: down = the parts' A stacked, up = their B placed
  block-diagonally in each part's rows (the rows of a part without LoRA stay zero), and
  alpha multiplied by the number of parts, so that alpha / rank is unchanged.
- Z-Image: `diffusion_model.<diffusers module>.lora_A.weight` / `.lora_B.weight` / `.alpha`.
  ComfyUI treats Z-Image as Lumina2 and maps exactly these diffusers names onto slices of
  its fused weights (comfy/utils.py `z_image_to_diffusers`), and diffusers reads them back,
  so nothing needs fusing. Forge has no Z-Image support in the files read.

ComfyUI and Forge ignore safetensors metadata: every module carries its own `.alpha`
tensor, and they scale up @ down by alpha / rank (rank = rows of the down matrix).
The sources and their commits are cited in tests/test_flow_tool_keys.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

# modelspec.architecture of a LoRA, as the kohya trainers write it ("<arch>/lora"):
# sd-scripts library/sai_model_spec.py (flux-1-dev, flux-1-schnell; flux-1 when the variant
# is unknown) and musubi-tuner src/musubi_tuner/utils/sai_model_spec.py (Flux.2-klein-4b for
# both klein 4B models, Z-Image for base and Turbo).
ARCHITECTURE: dict[str, str] = {
    "flux1": "flux-1/lora",
    "flux2_klein": "Flux.2-klein-4b/lora",
    "zimage": "Z-Image/lora",
}
ARCHITECTURE_BY_MODEL: dict[str, str] = {
    "black-forest-labs/FLUX.1-dev": "flux-1-dev/lora",
    "black-forest-labs/FLUX.1-schnell": "flux-1-schnell/lora",
    "black-forest-labs/FLUX.2-klein-base-4B": "Flux.2-klein-4b/lora",
    "black-forest-labs/FLUX.2-klein-4B": "Flux.2-klein-4b/lora",
    "Tongyi-MAI/Z-Image": "Z-Image/lora",
    "Tongyi-MAI/Z-Image-Turbo": "Z-Image/lora",
}

# How each family's tool file names its tensors (for documentation and the UI).
TOOL_FORMAT: dict[str, str] = {
    "flux1": "kohya/sd-scripts: lora_unet_<BFL module>.lora_down/.lora_up.weight + .alpha",
    "flux2_klein": "kohya/musubi-tuner: lora_unet_<BFL module>.lora_down/.lora_up.weight + .alpha",
    "zimage": "diffusion_model.<diffusers module>.lora_A/.lora_B.weight + .alpha",
}

_STATE_KEY = re.compile(r"transformer\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight")


@dataclass(frozen=True)
class _Place:
    """Where a diffusers module sits in the original model."""

    native: str                        # original module path
    part: int = 0                      # index among the modules fused into `native`
    parts: tuple[int, ...] | None = None  # row counts of the fused parts; None: not fused
    swap_halves: bool = False          # original rows (shift, scale), diffusers (scale, shift)


def architecture(family: str, hub_id: str | None = None) -> str:
    """The modelspec.architecture of a LoRA trained on `hub_id` (or on the family)."""
    if hub_id in ARCHITECTURE_BY_MODEL:
        return ARCHITECTURE_BY_MODEL[hub_id]
    return ARCHITECTURE[family]


def tool_state(family: str, state: Mapping[str, torch.Tensor], alpha: float, rank: int,
               transformer_config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tool-facing LoRA tensors of `family` for the trainer's PEFT state.

    `state` holds `transformer.<diffusers module>.lora_A.weight` / `.lora_B.weight`;
    `alpha` and `rank` are the LoRA's lora_alpha and r; `transformer_config` is the
    diffusers transformer's config (it gives the sizes of fused weights). Raises
    ValueError for a tensor or module the family's tool file has no name for.
    """
    pairs = _pairs(state, rank)
    if family == "zimage":
        return _zimage_state(pairs, alpha, transformer_config)
    if family == "flux1":
        places = {module: _flux1_place(module, transformer_config) for module in pairs}
    elif family == "flux2_klein":
        places = {module: _klein_place(module, transformer_config) for module in pairs}
    else:
        raise ValueError(f"No tool-facing LoRA format for family '{family}'.")
    return _kohya_state(pairs, places, alpha, rank)


def _pairs(state: Mapping[str, torch.Tensor],
           rank: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{diffusers module: (A, B)}, checked for completeness and rank."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _STATE_KEY.fullmatch(key)
        if match is None:
            raise ValueError(f"Unexpected LoRA tensor '{key}': expected "
                             "transformer.<module>.lora_A.weight or .lora_B.weight.")
        found.setdefault(match["module"], {})[match["part"]] = value
    pairs = {}
    for module, parts in found.items():
        if set(parts) != {"A", "B"}:
            raise ValueError(f"LoRA module '{module}' lacks its lora_A or lora_B weight.")
        down, up = parts["A"], parts["B"]
        if down.shape[0] != rank or up.shape[1] != rank:
            raise ValueError(f"LoRA module '{module}' has rank {down.shape[0]}, not {rank}.")
        pairs[module] = (down, up)
    return pairs


def _alpha(value: float) -> torch.Tensor:
    return torch.tensor(float(value), dtype=torch.float32)


# ----------------------------------------------------------------------------- FLUX


def _inner(config: Mapping[str, Any]) -> int:
    return int(config["num_attention_heads"]) * int(config["attention_head_dim"])


def _split(module: str) -> tuple[str, str | None, str]:
    """(block kind, block index, rest) of a diffusers FLUX module path."""
    match = re.fullmatch(r"(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)", module)
    if match is None:
        return "", None, module
    return match[1], match[2], match[3]


_QKV = ("to_q", "to_k", "to_v")
_ADD_QKV = ("add_q_proj", "add_k_proj", "add_v_proj")


def _double_qkv(rest: str, inner: int) -> tuple[str, int, tuple[int, ...]] | None:
    """Fused qkv place of a double-block attention projection (same in FLUX.1 and 2)."""
    for fused, names in (("img_attn.qkv", _QKV), ("txt_attn.qkv", _ADD_QKV)):
        for part, name in enumerate(names):
            if rest == f"attn.{name}":
                return fused, part, (inner,) * 3
    return None


# ComfyUI comfy/utils.py flux_to_diffusers: diffusers path -> original path
_FLUX1_DOUBLE = {
    "attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj",
    "norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin",
    "ff.net.0.proj": "img_mlp.0", "ff.net.2": "img_mlp.2",
    "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2",
}
_FLUX1_SINGLE = {"proj_out": "linear2", "norm.linear": "modulation.lin"}
_FLUX1_GLOBAL = {
    "x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
    "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
    "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
    "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
    "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
}
# diffusers' FluxTransformer2DModel builds single blocks with mlp_ratio 4
_FLUX1_MLP_RATIO = 4

# FLUX.2: diffusers' single_file_utils convert_flux2_transformer_checkpoint_to_diffusers
# (and ComfyUI flux_to_diffusers' "Flux 2" entries), read backwards
_KLEIN_DOUBLE = {
    "attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj",
    "ff.linear_in": "img_mlp.0", "ff.linear_out": "img_mlp.2",
    "ff_context.linear_in": "txt_mlp.0", "ff_context.linear_out": "txt_mlp.2",
}
_KLEIN_SINGLE = {"attn.to_qkv_mlp_proj": "linear1", "attn.to_out": "linear2"}
_KLEIN_GLOBAL = {
    "x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
    "time_guidance_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_guidance_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "time_guidance_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
    "time_guidance_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
    "double_stream_modulation_img.linear": "double_stream_modulation_img.lin",
    "double_stream_modulation_txt.linear": "double_stream_modulation_txt.lin",
    "single_stream_modulation.linear": "single_stream_modulation.lin",
}
_FINAL_MODULATION = "final_layer.adaLN_modulation.1"  # from diffusers' norm_out.linear


def _no_name(family: str, module: str) -> ValueError:
    return ValueError(f"The {family} LoRA module '{module}' has no name in the file ComfyUI "
                      "and Forge load; leave it out of the LoRA targets.")


def _flux1_place(module: str, config: Mapping[str, Any]) -> _Place:
    inner = _inner(config)
    kind, index, rest = _split(module)
    if kind == "transformer_blocks":
        prefix = f"double_blocks.{index}"
        qkv = _double_qkv(rest, inner)
        if qkv is not None:
            return _Place(f"{prefix}.{qkv[0]}", qkv[1], qkv[2])
        if rest in _FLUX1_DOUBLE:
            return _Place(f"{prefix}.{_FLUX1_DOUBLE[rest]}")
    elif kind == "single_transformer_blocks":
        prefix = f"single_blocks.{index}"
        linear1 = (inner, inner, inner, _FLUX1_MLP_RATIO * inner)
        fused = {f"attn.{name}": part for part, name in enumerate(_QKV)} | {"proj_mlp": 3}
        if rest in fused:
            return _Place(f"{prefix}.linear1", fused[rest], linear1)
        if rest in _FLUX1_SINGLE:
            return _Place(f"{prefix}.{_FLUX1_SINGLE[rest]}")
    elif module in _FLUX1_GLOBAL:
        return _Place(_FLUX1_GLOBAL[module])
    elif module == "norm_out.linear":
        return _Place(_FINAL_MODULATION, swap_halves=True)
    raise _no_name("FLUX.1", module)


def _klein_place(module: str, config: Mapping[str, Any]) -> _Place:
    kind, index, rest = _split(module)
    if kind == "transformer_blocks":
        prefix = f"double_blocks.{index}"
        qkv = _double_qkv(rest, _inner(config))
        if qkv is not None:
            return _Place(f"{prefix}.{qkv[0]}", qkv[1], qkv[2])
        if rest in _KLEIN_DOUBLE:
            return _Place(f"{prefix}.{_KLEIN_DOUBLE[rest]}")
    elif kind == "single_transformer_blocks":
        if rest in _KLEIN_SINGLE:
            return _Place(f"single_blocks.{index}.{_KLEIN_SINGLE[rest]}")
    elif module in _KLEIN_GLOBAL:
        return _Place(_KLEIN_GLOBAL[module])
    elif module == "norm_out.linear":
        return _Place(_FINAL_MODULATION, swap_halves=True)
    raise _no_name("FLUX.2 [klein]", module)


def _swap_halves(up: torch.Tensor) -> torch.Tensor:
    first, second = up.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _kohya_state(pairs: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 places: dict[str, _Place], alpha: float,
                 rank: int) -> dict[str, torch.Tensor]:
    groups: dict[str, dict[int, tuple[str, _Place]]] = {}
    for module, place in places.items():
        group = groups.setdefault(place.native, {})
        if place.part in group:
            raise ValueError(f"LoRA modules '{group[place.part][0]}' and '{module}' both map "
                             f"to '{place.native}'.")
        group[place.part] = (module, place)
    out: dict[str, torch.Tensor] = {}
    for native, group in groups.items():
        name = "lora_unet_" + native.replace(".", "_")
        first = next(iter(group.values()))[1]
        if first.parts is None:
            module, place = group[0]
            down, up = pairs[module]
            if place.swap_halves:
                up = _swap_halves(up)
            fused = 1
        else:
            present = {part: pairs[module] for part, (module, _) in group.items()}
            down, up, fused = _fuse(first.parts, present, rank, native)
        out[f"{name}.lora_down.weight"] = down.contiguous()
        out[f"{name}.lora_up.weight"] = up.contiguous()
        out[f"{name}.alpha"] = _alpha(alpha * fused)
    return out


def _fuse(sizes: tuple[int, ...], present: dict[int, tuple[torch.Tensor, torch.Tensor]],
          rank: int, native: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(down, up, number of parts) of the fused weight `native` whose parts have `sizes`
    rows; `present` holds (A, B) of the parts that have LoRA."""
    order = sorted(present)
    some_up = present[order[0]][1]
    down = torch.cat([present[part][0] for part in order], dim=0)
    up = torch.zeros(sum(sizes), rank * len(order), dtype=some_up.dtype, device=some_up.device)
    for column, part in enumerate(order):
        part_up = present[part][1]
        if part_up.shape[0] != sizes[part]:
            raise ValueError(f"LoRA part {part} of '{native}' has {part_up.shape[0]} rows, but "
                             f"the transformer config gives {sizes[part]}.")
        start = sum(sizes[:part])
        up[start:start + sizes[part], column * rank:(column + 1) * rank] = part_up
    return down, up, len(order)


# ----------------------------------------------------------------------------- Z-Image


def _zimage_modules(config: Mapping[str, Any]) -> set[str]:
    """The diffusers Linear modules ComfyUI's z_image_to_diffusers maps (comfy/utils.py)."""
    blocks = [f"layers.{i}" for i in range(int(config["n_layers"]))]
    refiners = int(config["n_refiner_layers"])
    blocks += [f"{kind}.{i}" for kind in ("noise_refiner", "context_refiner")
               for i in range(refiners)]
    inner = ("attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0",
             "feed_forward.w1", "feed_forward.w2", "feed_forward.w3", "adaLN_modulation.0")
    modules = {f"{block}.{name}" for block in blocks for name in inner}
    return modules | {"all_final_layer.2-1.linear", "all_final_layer.2-1.adaLN_modulation.1",
                      "all_x_embedder.2-1", "cap_embedder.1", "t_embedder.mlp.0",
                      "t_embedder.mlp.2"}


def _zimage_state(pairs: dict[str, tuple[torch.Tensor, torch.Tensor]], alpha: float,
                  config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    known = _zimage_modules(config)
    out: dict[str, torch.Tensor] = {}
    for module, (down, up) in pairs.items():
        if module not in known:
            raise _no_name("Z-Image", module)
        name = f"diffusion_model.{module}"
        out[f"{name}.lora_A.weight"] = down.contiguous()
        out[f"{name}.lora_B.weight"] = up.contiguous()
        out[f"{name}.alpha"] = _alpha(alpha)
    return out
