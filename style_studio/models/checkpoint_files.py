"""Weight files: what a `.safetensors` file holds (from its header), and pickles refused.

Model sites publish base models as one file in the original layout: Stable Diffusion's
(`model.diffusion_model.*` and the VAE and text encoders), or Black Forest Labs' for FLUX.1
(`double_blocks.*`, `single_blocks.*`: the transformer only, sometimes under ComfyUI's
`model.diffusion_model.` prefix). The header names every tensor and its shape, enough to
tell SD 1.x from SDXL from FLUX.1 [dev] or [schnell] from a LoRA without reading
gigabytes. Pickled formats (`.ckpt`, `.bin`, `.pt`) are refused, as single files and inside
diffusers folders alike, because loading a pickle can run code.
"""

from __future__ import annotations

import json
import shlex
import struct
from pathlib import Path
from typing import Any

import torch

from style_studio.base.errors import InvalidInput
from style_studio.base.family import Family

PICKLE_SUFFIXES = frozenset({".ckpt", ".bin", ".pt", ".pth"})
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack"})
# single-file model types (diffusers' names) Style Studio can train on, per family
SINGLE_FILE_TYPES: dict[str, Family] = {"v1": "sd15", "xl_base": "sdxl",
                                        "flux-dev": "flux1", "flux-schnell": "flux1"}
# A FLUX.1 file holds the transformer only: the hub repo whose snapshot gives its configs,
# text encoders and VAE (dev has a guidance embedding, schnell has none).
SINGLE_FILE_BASE_REPOS: dict[str, str] = {
    "flux-dev": "black-forest-labs/FLUX.1-dev",
    "flux-schnell": "black-forest-labs/FLUX.1-schnell",
}
# Black Forest Labs' transformer names (FLUX.1 and FLUX.2 alike), bare or under ComfyUI's prefix
BFL_KEYS = ("double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight")
COMFY_PREFIX = "model.diffusion_model."
# folder components Style Studio never loads (it passes None for them), so never checks
UNLOADED_COMPONENTS = frozenset({"safety_checker", "feature_extractor"})
CONVERT_MODULE = "style_studio.models.weight_conversion"


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file (tensor names, shapes, metadata).

    Reads a few kilobytes, never the weights, so listing a folder of 7 GB files is cheap.
    """
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise InvalidInput(f"{path.name} is too short to be a .safetensors file.")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * 1024 * 1024:
            raise InvalidInput(f"{path.name} is not a valid .safetensors file.")
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise InvalidInput(f"{path.name} is not a valid .safetensors file.") from exc
    if not isinstance(header, dict):
        raise InvalidInput(f"{path.name} is not a valid .safetensors file.")
    return header


def single_file_model_type(path: Path) -> str:
    """diffusers' name for the architecture in a checkpoint ("v1", "xl_base", "flux-dev",
    "flux-schnell", ...)."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    header = read_safetensors_header(path)
    # Shapes only, on the meta device: inference looks at names and shapes, not values.
    meta = {
        name: torch.empty(entry["shape"], device="meta")
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and "shape" in entry
    }
    bfl = any(prefix + key in meta for key in BFL_KEYS for prefix in ("", COMFY_PREFIX))
    if not bfl and not any(name.startswith(COMFY_PREFIX) for name in meta):
        raise InvalidInput(
            f"{path.name} does not look like a Stable Diffusion or FLUX.1 checkpoint "
            "(no model.diffusion_model.* or double_blocks.* weights; is it a LoRA?)."
        )
    return infer_diffusers_model_type(meta)


def pickle_message(path: Path) -> str:
    """Why a pickled checkpoint is refused, and what to do instead."""
    return (
        f"{path.name} is a pickled checkpoint ({path.suffix}). Loading a pickle can run "
        "arbitrary code, so Style Studio refuses it. Convert it to .safetensors first (or "
        "download the .safetensors version) and pick that file instead."
    )


def single_file_family(path: Path) -> Family:
    """The family of a checkpoint Style Studio can train on, else a clear refusal."""
    model_type = single_file_model_type(path)
    if model_type not in SINGLE_FILE_TYPES:
        raise InvalidInput(
            f"{path.name} looks like a '{model_type}' checkpoint; as single files Style "
            "Studio trains Stable Diffusion 1.x, SDXL and FLUX.1 [dev] or [schnell] base "
            "models only."
        )
    return SINGLE_FILE_TYPES[model_type]


# --------------------------------------------------------------------------- folders


def _is_safetensors(path: Path) -> bool:
    return path.name.endswith((".safetensors", ".safetensors.index.json"))


def pickle_only_components(folder: Path) -> dict[str, list[str]]:
    """Components of a diffusers folder whose weights exist in no .safetensors file.

    Maps each such component (as named in model_index.json) to its weight file names.
    Reads names only: nothing is opened, so a booby-trapped pickle stays inert.
    """
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, list[str]] = {}
    for name, value in (index.items() if isinstance(index, dict) else ()):
        if (name.startswith("_") or name in UNLOADED_COMPONENTS or not isinstance(value, list)
                or not value or value[0] is None):
            continue
        component = folder / name
        if not component.is_dir():
            continue
        files = [p for p in component.iterdir() if p.is_file()]
        weights = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
        if weights and not any(_is_safetensors(p) for p in files):
            found[name] = sorted(p.name for p in weights)
    return found


def convert_command(folder: Path) -> str:
    """The shell command that writes .safetensors copies of a folder's pickled weights."""
    return f"python -m {CONVERT_MODULE} {shlex.quote(str(folder))}"


def folder_pickle_message(folder: Path, components: dict[str, list[str]]) -> str:
    """Why a folder with pickled weights is refused, and the command that fixes it."""
    parts = ", ".join(f"{name} ({', '.join(files)})" for name, files in components.items())
    return (
        f"{folder.name} stores weights only as pickles: {parts}. Loading a pickle can run "
        "arbitrary code, so Style Studio loads model folders from .safetensors files only. "
        "Convert the folder once (tensors only; nothing in the files is run) with: "
        f"{convert_command(folder)}   or download the model's .safetensors version, then "
        "pick it again."
    )
