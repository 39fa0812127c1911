"""Base-model families Style Studio trains: Stable Diffusion 1.x and SDXL (UNets), and the
flow-matching transformers FLUX.1, FLUX.2 [klein] and Z-Image. What each family *is* lives
in `models/families/`; these names and sizes are here so light modules need not import it."""

from __future__ import annotations

from typing import Literal, get_args

from .errors import InvalidInput

Family = Literal["sd15", "sdxl", "flux1", "flux2_klein", "zimage"]
FAMILIES: tuple[Family, ...] = get_args(Family)
FAMILY_LABELS: dict[str, str] = {"sd15": "Stable Diffusion 1.x", "sdxl": "Stable Diffusion XL",
                                 "flux1": "FLUX.1", "flux2_klein": "FLUX.2 [klein]",
                                 "zimage": "Z-Image"}
NATIVE_SIDE: dict[str, int] = {"sd15": 512, "sdxl": 1024, "flux1": 1024, "flux2_klein": 1024,
                               "zimage": 1024}  # pixels each family was trained at
FLOW_FAMILIES = ("flux1", "flux2_klein", "zimage")  # rectified-flow transformers
# The built-in toy models (models/toy.py, models/toy_flow.py): tiny models pretrained here
# on generated shapes. Named here so light modules need not import torch.
TOY_ID = "toy-sd15"
TOY_FLUX1_ID = "toy-flux1"
TOY_MODELS: dict[str, Family] = {TOY_ID: "sd15", TOY_FLUX1_ID: "flux1"}
TOY_SIDE = 256  # pixels: the size they are pretrained, trained and sampled at


def native_side(family: str, base_model: str | None = None) -> int:
    """Pixels a base model works at: its family's native size, or a toy model's 256."""
    return TOY_SIDE if base_model in TOY_MODELS else NATIVE_SIDE.get(family, 512)


def is_toy(ref: str | None) -> bool:
    return (ref or "").strip() in TOY_MODELS


def check_family(family: str) -> None:
    if family not in FAMILIES:
        choices = ", ".join(f"{k} ({v})" for k, v in FAMILY_LABELS.items())
        raise InvalidInput(f"Unknown base-model family {family!r}. Choose one of: {choices}.")
