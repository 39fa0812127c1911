"""FLUX.1's common single file (`flux1-dev.safetensors`): Black Forest Labs' layout in
diffusers' names.

The file holds the transformer only, in BFL's names: q, k and v fused into one `qkv`
weight, a single block's q, k, v and MLP input fused into one `linear1`, and the final
modulation's rows in (shift, scale) order where diffusers has (scale, shift). diffusers'
own converter (`convert_flux_transformer_checkpoint_to_diffusers`) does the same renames
but fixes the sizes of the real model (3072 wide, MLP 4x), so it cannot read any other
width; this one takes the width from the transformer's config. Splits are views, so only the
small final modulation is copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from style_studio.models.checkpoint_files import COMFY_PREFIX

# BFL module -> diffusers module, per double block, per single block and outside blocks
_DOUBLE = {
    "img_mod.lin": "norm1.linear", "txt_mod.lin": "norm1_context.linear",
    "img_attn.proj": "attn.to_out.0", "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj", "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj", "txt_mlp.2": "ff_context.net.2",
}
_DOUBLE_NORMS = {  # RMSNorm scales: BFL `.scale`, diffusers `.weight`
    "img_attn.norm.query_norm": "attn.norm_q", "img_attn.norm.key_norm": "attn.norm_k",
    "txt_attn.norm.query_norm": "attn.norm_added_q", "txt_attn.norm.key_norm": "attn.norm_added_k",
}
_DOUBLE_FUSED = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
                 "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
_SINGLE = {"modulation.lin": "norm.linear", "linear2": "proj_out"}
_SINGLE_NORMS = {"norm.query_norm": "attn.norm_q", "norm.key_norm": "attn.norm_k"}
_SINGLE_FUSED = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")  # rows of `linear1`
_GLOBAL = {
    "img_in": "x_embedder", "txt_in": "context_embedder", "final_layer.linear": "proj_out",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
}
_FINAL_MODULATION = ("final_layer.adaLN_modulation.1", "norm_out.linear")

_Handler = Callable[[str, str, torch.Tensor, int], dict[str, torch.Tensor]]
_BLOCK = re.compile(r"(double_blocks|single_blocks)\.(\d+)\.(.+)\.(weight|bias|scale)")
_PLAIN = re.compile(r"(.+)\.(weight|bias)")


def transformer_keys(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The transformer's entries under BFL names: ComfyUI's `model.diffusion_model.`
    prefix removed, and an all-in-one file's VAE and text encoders left out."""
    if any(key.startswith(COMFY_PREFIX) for key in checkpoint):
        return {key[len(COMFY_PREFIX):]: value for key, value in checkpoint.items()
                if key.startswith(COMFY_PREFIX)}
    return dict(checkpoint)


def bfl_to_diffusers(checkpoint: Mapping[str, torch.Tensor],
                     config: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(diffusers state dict, BFL keys it has no name for) of a FLUX.1 transformer file.

    `config` is the diffusers transformer's config: its width splits the fused weights.
    """
    inner = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in transformer_keys(checkpoint).items():
        block = _BLOCK.fullmatch(key)
        if block:
            handle: _Handler = _double if block[1] == "double_blocks" else _single
            prefix = ("transformer_blocks" if block[1] == "double_blocks"
                      else "single_transformer_blocks") + f".{block[2]}."
            named = handle(block[3], block[4], value, inner)
            out.update({prefix + name: tensor for name, tensor in named.items()})
            if not named:
                unknown.append(key)
            continue
        plain = _PLAIN.fullmatch(key)
        if plain and plain[1] in _GLOBAL:
            out[f"{_GLOBAL[plain[1]]}.{plain[2]}"] = value
        elif plain and plain[1] == _FINAL_MODULATION[0]:
            shift, scale = value.chunk(2, dim=0)
            out[f"{_FINAL_MODULATION[1]}.{plain[2]}"] = torch.cat([scale, shift], dim=0)
        else:
            unknown.append(key)
    return out, unknown


def _double(module: str, kind: str, value: torch.Tensor, inner: int) -> dict[str, torch.Tensor]:
    if kind == "scale":
        return {f"{_DOUBLE_NORMS[module]}.weight": value} if module in _DOUBLE_NORMS else {}
    if module in _DOUBLE_FUSED:
        return _split(_DOUBLE_FUSED[module], kind, value, (inner,) * 3)
    return {f"{_DOUBLE[module]}.{kind}": value} if module in _DOUBLE else {}


def _single(module: str, kind: str, value: torch.Tensor, inner: int) -> dict[str, torch.Tensor]:
    if kind == "scale":
        return {f"{_SINGLE_NORMS[module]}.weight": value} if module in _SINGLE_NORMS else {}
    if module == "linear1":
        mlp = value.shape[0] - 3 * inner
        return _split(_SINGLE_FUSED, kind, value, (inner, inner, inner, mlp)) if mlp > 0 else {}
    return {f"{_SINGLE[module]}.{kind}": value} if module in _SINGLE else {}


def _split(names: tuple[str, ...], kind: str, value: torch.Tensor,
           sizes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    if value.shape[0] != sum(sizes):
        return {}  # a width the config does not have: reported as unknown
    parts = torch.split(value, list(sizes), dim=0)
    return {f"{name}.{kind}": part for name, part in zip(names, parts, strict=True)}
