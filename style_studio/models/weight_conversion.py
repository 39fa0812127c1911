"""Give a diffusers folder .safetensors weights, without running anything in its pickles.

Style Studio loads base-model folders from .safetensors only: unpickling a `.bin` can run
code. Older folders ship `diffusion_pytorch_model.bin` / `pytorch_model.bin`; this writes a
`.safetensors` file next to each (the names diffusers and transformers look for), read
with torch's weights-only unpickler, which accepts tensors and plain containers and
refuses anything else, so a booby-trapped file fails here instead of running. The pickles
are left in place; delete them once the folder loads.

    python -m style_studio.models.weight_conversion /path/to/model-folder
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_json

from .checkpoint_files import CONVERT_MODULE, pickle_only_components

_BIN_INDEX = ".bin.index.json"


def safetensors_name(name: str) -> str:
    """The name diffusers/transformers give the .safetensors twin of a pickled file.

    diffusion_pytorch_model(-00001-of-00002).bin -> same stem + .safetensors;
    pytorch_model(…).bin -> model(…).safetensors; the `.bin.index.json` of shards likewise.
    """
    if name.endswith(_BIN_INDEX):
        new = name[: -len(_BIN_INDEX)] + ".safetensors.index.json"
    elif name.endswith(".bin"):
        new = name[: -len(".bin")] + ".safetensors"
    else:
        raise InvalidInput(f"{name}: only diffusers/transformers .bin weight files are converted.")
    return "model" + new[len("pytorch_model"):] if new.startswith("pytorch_model") else new


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    """A pickled state dict, read by the weights-only unpickler (code in it never runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise InvalidInput(
            f"{path} holds more than tensors (or is damaged), so it was not converted; "
            f"nothing in it was run. ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        ) from exc
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InvalidInput(f"{path} is not a plain state dict of tensors; it was not converted.")
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        # safetensors refuses tensors sharing memory (tied weights): give those a copy
        pointer = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone().contiguous() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    return out


def convert_file(path: Path) -> Path:
    """Write the .safetensors twin of one pickled weight file (or shard index)."""
    target = path.with_name(safetensors_name(path.name))
    if path.name.endswith(_BIN_INDEX):
        index = json.loads(path.read_text(encoding="utf-8"))
        index["weight_map"] = {k: safetensors_name(v) for k, v in index["weight_map"].items()}
        atomic_write_json(target, index)
        return target
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        save_file(_tensors(path), str(tmp), metadata={"format": "pt"})
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def convert_folder(folder: Path) -> list[Path]:
    """Convert every component of a diffusers folder that has pickled weights only.

    Shards are written before their index, so an interrupted run is simply run again.
    """
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise InvalidInput(f"{folder} is not a diffusers model folder (no model_index.json).")
    written: list[Path] = []
    for component in pickle_only_components(folder):
        files = sorted((folder / component).iterdir())
        bins = [p for p in files if p.name.endswith(".bin")]
        if not bins:
            raise InvalidInput(f"{folder / component} has no .bin weights this tool knows; "
                               "convert it with the tool that made it.")
        written += [convert_file(p) for p in bins]
        written += [convert_file(p) for p in files if p.name.endswith(_BIN_INDEX)]
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: convert one folder, say what was written, exit 1 with the reason."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {CONVERT_MODULE} FOLDER", file=sys.stderr)
        return 2
    try:
        written = convert_folder(Path(args[0]))
    except InvalidInput as exc:
        print(f"Not converted: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print("Done: the folder now loads from .safetensors." if written
          else "Nothing to convert: every component already has .safetensors weights.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
