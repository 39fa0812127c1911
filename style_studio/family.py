"""Base-model families Style Studio trains: Stable Diffusion 1.x and SDXL."""

from __future__ import annotations

from typing import Literal, get_args

from .errors import InvalidInput

Family = Literal["sd15", "sdxl"]
FAMILIES: tuple[Family, ...] = get_args(Family)
FAMILY_LABELS: dict[str, str] = {"sd15": "Stable Diffusion 1.x", "sdxl": "Stable Diffusion XL"}


def check_family(family: str) -> None:
    if family not in FAMILIES:
        choices = ", ".join(f"{k} ({v})" for k, v in FAMILY_LABELS.items())
        raise InvalidInput(f"Unknown base-model family {family!r}. Choose one of: {choices}.")
