"""Write a diffusers SD 1.x or SDXL pipeline as one original-layout `.safetensors` file.

Artists download single-file checkpoints from model sites in the original Stable Diffusion
layout (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.*` or SDXL's
`conditioner.embedders.{0,1}.*`). No such
file can be downloaded here, so the tests make one from a tiny pipeline built in code: the
key renames below are the inverse of the ones diffusers applies when it loads such a file,
so a round trip through `from_single_file` must give back the same weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from safetensors.torch import save_file

RESNET_PARTS = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3",
                "conv_shortcut": "skip_connection"}
UNET_LAYERS = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
OPEN_CLIP_PARTS = {"text_model.encoder.layers.": "transformer.resblocks.",
                   "layer_norm1": "ln_1", "layer_norm2": "ln_2", ".mlp.fc1.": ".mlp.c_fc.",
                   ".mlp.fc2.": ".mlp.c_proj.", ".self_attn.": ".attn."}
VAE_ATTENTION_PARTS = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                       "to_out.0": "proj_out"}


Rule = tuple[str, Callable[[re.Match], str]]


def _resnet(rest: str) -> str:
    part, _, tail = rest.partition(".")
    return f"{RESNET_PARTS.get(part, part)}.{tail}"


def _renamed(key: str, rules: list[Rule], what: str) -> str:
    for pattern, rename in rules:
        if m := re.fullmatch(pattern, key):
            return rename(m)
    raise KeyError(f"no LDM name for {what} key {key}")


def unet_key(key: str, config: dict) -> str:
    """diffusers UNet key -> key under `model.diffusion_model.`"""
    per_block = config["layers_per_block"] + 1

    def down(m: re.Match) -> str:
        index = 1 + int(m[1]) * per_block + int(m[3])
        return (f"input_blocks.{index}.0.{_resnet(m[4])}" if m[2] == "resnets"
                else f"input_blocks.{index}.1.{m[4]}")

    def up(m: re.Match) -> str:
        index = int(m[1]) * per_block + int(m[3])
        return (f"output_blocks.{index}.0.{_resnet(m[4])}" if m[2] == "resnets"
                else f"output_blocks.{index}.1.{m[4]}")

    def upsampler(m: re.Match) -> str:
        block = int(m[1])
        slot = 2 if "CrossAttn" in config["up_block_types"][block] else 1  # after attention
        return f"output_blocks.{(block + 1) * per_block - 1}.{slot}.conv.{m[2]}"

    rules: list[Rule] = [
        *((re.escape(old) + r"\.(.*)", lambda m, new=new: f"{new}.{m[1]}")
          for old, new in UNET_LAYERS.items()),
        (r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", down),
        (r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)",
         lambda m: f"input_blocks.{(int(m[1]) + 1) * per_block}.0.op.{m[2]}"),
        (r"mid_block\.resnets\.(\d+)\.(.*)",
         lambda m: f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"),
        (r"mid_block\.attentions\.0\.(.*)", lambda m: f"middle_block.1.{m[1]}"),
        (r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", up),
        (r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", upsampler),
    ]
    return _renamed(key, rules, "UNet")


def vae_key(key: str, config: dict) -> str:
    """diffusers VAE key -> key under `first_stage_model.`"""
    last = len(config["up_block_types"]) - 1  # LDM numbers the decoder's blocks backwards
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    rules: list[Rule] = [
        (r"encoder\.down_blocks\.(\d+)\.resnets\.(.*)",
         lambda m: f"encoder.down.{m[1]}.block.{m[2]}"),
        (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)",
         lambda m: f"encoder.down.{m[1]}.downsample.{m[2]}"),
        (r"decoder\.up_blocks\.(\d+)\.resnets\.(.*)",
         lambda m: f"decoder.up.{last - int(m[1])}.block.{m[2]}"),
        (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)",
         lambda m: f"decoder.up.{last - int(m[1])}.upsample.{m[2]}"),
        (r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)",
         lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"),
        (r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)",
         lambda m: f"{m[1]}.mid.attn_1.{VAE_ATTENTION_PARTS[m[2]]}.{m[3]}"),
        (r"(.*)", lambda m: m[1]),  # conv_in, conv_out, quant convs: same names
    ]
    return _renamed(key, rules, "VAE")


def _clip_l(encoder) -> dict[str, torch.Tensor]:
    # transformers 5 names CLIPTextModel's weights without the `text_model.` that
    # original checkpoints (written from transformers 4) carry.
    return {(k if k.startswith("text_model.") else "text_model." + k): v
            for k, v in encoder.state_dict().items()}


def _open_clip(encoder) -> dict[str, torch.Tensor]:
    """SDXL's second text encoder in OpenCLIP's layout: fused q/k/v, transposed projection."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    named = {"text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias"}
    for key, value in _clip_l(encoder).items():
        if key in named:
            out[named[key]] = value
        elif key == "text_projection.weight" or key == "text_model.text_projection.weight":
            out["text_projection"] = value.T
        elif m := re.fullmatch(r"(.*)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            fused.setdefault(f"{m[1]}.self_attn.in_proj_{m[3]}", {})[m[2]] = value
        else:
            for old, new in OPEN_CLIP_PARTS.items():
                key = key.replace(old, new)
            out[key] = value
    for key, parts in fused.items():
        for old, new in OPEN_CLIP_PARTS.items():
            key = key.replace(old, new)
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def ldm_state_dict(pipe: DiffusionPipeline) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and text encoder(s) under their original names."""
    out: dict[str, torch.Tensor] = {}
    for key, value in pipe.unet.state_dict().items():
        out["model.diffusion_model." + unet_key(key, pipe.unet.config)] = value
    for key, value in pipe.vae.state_dict().items():
        name = vae_key(key, pipe.vae.config)
        if ".mid.attn_1." in name and value.ndim == 2:  # LDM keeps these as 1x1 convs
            value = value[:, :, None, None]
        out["first_stage_model." + name] = value
    if getattr(pipe, "text_encoder_2", None) is None:
        out.update({"cond_stage_model.transformer." + k: v
                    for k, v in _clip_l(pipe.text_encoder).items()})
    else:
        out.update({"conditioner.embedders.0.transformer." + k: v
                    for k, v in _clip_l(pipe.text_encoder).items()})
        out.update({"conditioner.embedders.1.model." + k: v
                    for k, v in _open_clip(pipe.text_encoder_2).items()})
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def write_ldm_checkpoint(pipe: DiffusionPipeline, path: Path) -> Path:
    save_file(ldm_state_dict(pipe), str(path))
    return path
