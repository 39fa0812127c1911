"""Writing a trained LoRA: the diffusers/PEFT file and the kohya file other tools load.

- diffusers: `unet.<module>.lora_A/lora_B.weight` (+ `text_encoder(_2).…`), with the
  LoRA config under `lora_adapter_metadata` so `pipe.load_lora_weights` restores alpha.
- kohya (A1111, ComfyUI, Forge): `lora_unet_<module>` / `lora_te(1|2)_<module>` with
  `.lora_down.weight`, `.lora_up.weight` and `.alpha`. SD 1.x uses diffusers module
  names, as kohya's sd-scripts do; SDXL uses the original (sgm) block names
  `input_blocks_4_1_…`, as sd-scripts write them for SDXL. Text-encoder modules are
  named in the original CLIP layout (`text_model.encoder.layers.0…`), which
  transformers 5's `CLIPTextModel` no longer has: without `text_model_` the tools
  silently skip every first-encoder module.
Both carry provenance in `__metadata__` (string values only). Files are written to a
temp file and renamed, so a failed save never leaves a half-written LoRA behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save

from style_studio.base.files import atomic_write_bytes

DIFFUSERS_NAME = "pytorch_lora_weights.safetensors"
ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # what diffusers reads back
KOHYA_PREFIX = {"unet": "lora_unet_", "text_encoder": "lora_te_", "text_encoder_2": "lora_te2_"}
_RESNET_SGM = {"conv1": "in_layers.2", "conv2": "out_layers.3",
               "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}


def lora_state(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """PEFT state of each adapted model, prefixed ("unet.", "text_encoder.", ...)."""
    state: dict[str, torch.Tensor] = {}
    for prefix, model in models.items():
        for key, value in get_peft_model_state_dict(model).items():
            state[f"{prefix}.{key}"] = value.detach().to("cpu", torch.float32).contiguous()
    return state


def adapter_metadata(configs: dict[str, LoraConfig]) -> str:
    """The LoRA configs in diffusers' packed form ("unet.r", "unet.lora_alpha", ...)."""
    packed: dict[str, Any] = {}
    for prefix, config in configs.items():
        for key, value in config.to_dict().items():
            if isinstance(value, set):
                value = sorted(value)
            packed[f"{prefix}.{key}"] = value
    return json.dumps(packed, sort_keys=True, default=str)


def all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state.values())


def _strings(metadata: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k, v in metadata.items()}


def write_diffusers(path: Path, state: dict[str, torch.Tensor], configs: dict[str, LoraConfig],
                    metadata: dict[str, Any]) -> Path:
    """The diffusers/PEFT-format file; `metadata` values are stored as strings."""
    meta = {"format": "pt", **_strings(metadata), ADAPTER_METADATA_KEY: adapter_metadata(configs)}
    atomic_write_bytes(path, save(state, metadata=meta))
    return path


# --------------------------------------------------------------------------- kohya


def sgm_module(path: str, layers_per_block: int) -> str:
    """The original SD (sgm) name of a diffusers UNet module, e.g.
    down_blocks.1.attentions.0.proj_in -> input_blocks.4.1.proj_in (layers_per_block 2)."""
    parts = path.split(".")
    span = layers_per_block + 1
    if parts[0] == "down_blocks":
        block, kind, rest = int(parts[1]), parts[2], parts[3:]
        if kind == "downsamplers":
            return ".".join([f"input_blocks.{(block + 1) * span}.0", "op", *rest[2:]])
        index = 1 + block * span + int(rest[0])
        return _inner(f"input_blocks.{index}", kind, rest[1:])
    if parts[0] == "mid_block":
        kind, layer, rest = parts[1], int(parts[2]), parts[3:]
        index = 1 if kind == "attentions" else 2 * layer
        return ".".join([f"middle_block.{index}", *_resnet(kind, rest)])
    if parts[0] == "up_blocks":
        block, kind, rest = int(parts[1]), parts[2], parts[3:]
        if kind == "upsamplers":
            raise ValueError(f"LoRA on an upsampler ({path}) has no kohya name here.")
        return _inner(f"output_blocks.{block * span + int(rest[0])}", kind, rest[1:])
    replacements = {"conv_in": "input_blocks.0.0", "conv_out": "out.2",
                    "time_embedding.linear_1": "time_embed.0",
                    "time_embedding.linear_2": "time_embed.2",
                    "add_embedding.linear_1": "label_emb.0.0",
                    "add_embedding.linear_2": "label_emb.0.2"}
    for old, new in replacements.items():
        if path.startswith(old):
            return new + path[len(old):]
    raise ValueError(f"No kohya (sgm) name for UNet module {path}.")


def _inner(block: str, kind: str, rest: list[str]) -> str:
    inner = "1" if kind == "attentions" else "0"
    return ".".join([block, inner, *_resnet(kind, rest)])


def _resnet(kind: str, rest: list[str]) -> list[str]:
    if kind == "resnets" and rest and rest[0] in _RESNET_SGM:
        return [_RESNET_SGM[rest[0]], *rest[1:]]
    return rest


def clip_module(path: str) -> str:
    """A CLIP text-encoder module path in the original layout sd-scripts names it by.

    transformers 4 (and the OpenAI/sd-scripts layout) put everything of the text tower
    under `text_model.`; transformers 5's `CLIPTextModel` dropped that level, while
    `CLIPTextModelWithProjection` keeps it next to `text_projection`.
    """
    if path.startswith("text_model.") or path.split(".", 1)[0] == "text_projection":
        return path
    return f"text_model.{path}"


def kohya_state(state: dict[str, torch.Tensor], alphas: dict[str, float], family: str,
                layers_per_block: int) -> dict[str, torch.Tensor]:
    """Convert the prefixed PEFT state to kohya keys with down/up weights and alpha."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix, rest = key.split(".", 1)
        if ".lora_A." not in rest and ".lora_B." not in rest:
            raise ValueError(f"Unexpected LoRA tensor {key}.")
        module, tail = rest.rsplit(".lora_", 1)
        if prefix == "unet" and family == "sdxl":
            module = sgm_module(module, layers_per_block)
        elif prefix != "unet":
            module = clip_module(module)
        kohya_prefix = KOHYA_PREFIX[prefix]
        if family == "sdxl" and prefix == "text_encoder":
            kohya_prefix = "lora_te1_"
        name = kohya_prefix + module.replace(".", "_")
        part = "lora_down" if tail.startswith("A.") else "lora_up"
        out[f"{name}.{part}.weight"] = value
        out[f"{name}.alpha"] = torch.tensor(float(alphas[prefix]))
    return out


def write_kohya(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    atomic_write_bytes(path, save(state, metadata=_strings(metadata)))
    return path
