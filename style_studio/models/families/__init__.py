"""Base-model families, one module each: what the family's pipeline, denoiser, objective,
text encoders, LoRA targets and real models are, and how to build its tiny twin.

All five are trainable. The flow-matching families (FLUX.1, FLUX.2 [klein], Z-Image) carry
their training adapter (`flow.py`), their ComfyUI-side key names (`tool_keys.py`) and their
sampling conventions; the research behind them is docs/research/flow-families.md.
"""

from __future__ import annotations

from pathlib import Path

from style_studio.base.errors import InvalidInput
from style_studio.models.tiny import ensure_tiny_model

from .flux1 import FLUX1
from .flux2_klein import FLUX2_KLEIN
from .sd import SD15, SDXL
from .spec import FamilySpec, ReferenceModel
from .zimage import ZIMAGE

FAMILIES: dict[str, FamilySpec] = {spec.key: spec for spec in
                                   (SD15, SDXL, FLUX1, FLUX2_KLEIN, ZIMAGE)}

__all__ = ["FAMILIES", "FamilySpec", "ReferenceModel", "ensure_twin", "family_spec",
           "reference_model"]


def family_spec(key: str) -> FamilySpec:
    try:
        return FAMILIES[key]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise InvalidInput(f"Unknown base-model family '{key}'; known: {known}.") from None


def ensure_twin(family: str, models_dir: Path, seed: int = 0) -> Path:
    """The family's tiny twin saved under `models_dir` (built once, from config)."""
    spec = family_spec(family)
    return ensure_tiny_model(spec.key, models_dir, seed,  # type: ignore[arg-type]
                             build=lambda _family, s: spec.build_tiny(s))


def reference_model(hub_id: str) -> ReferenceModel | None:
    """The known real model behind a hub id (its licence and needs), if it is one."""
    return next((ref for spec in FAMILIES.values() for ref in spec.references
                 if ref.hub_id == hub_id), None)
