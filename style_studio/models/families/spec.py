"""What a base-model family declares, so that code asks the family instead of its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from diffusers import DiffusionPipeline

from .flow import FlowAdapter

Objective = Literal["epsilon", "v_prediction", "flow_matching"]


@dataclass(frozen=True)
class ReferenceModel:
    """A real model of the family an artist may train on, with what using it implies."""

    hub_id: str
    label: str
    licence: str           # SPDX id, or the licence's own name when it has none
    commercial_use: bool   # False: the model card forbids commercial use of outputs/LoRAs
    train_vram_gb: float   # rough need for LoRA training in bf16 at native size, batch 1
    verified: bool = True  # False: licence or size taken from third-party pages
    download: str = "size unknown"  # rough download in bf16 (transformer + text encoders)


@dataclass(frozen=True)
class FamilySpec:
    """One family of base models: its pipeline, objective, text side, LoRA targets, real
    models and the tiny twin the tests run it on."""

    key: str
    label: str
    pipeline: str                 # the diffusers pipeline class
    denoiser: Literal["unet", "transformer"]
    objective: Objective
    native_side: int              # pixels
    latent_packing: bool          # 2x2 latent patches packed into tokens (flow transformers)
    text_encoders: tuple[str, ...]
    caption_token_limit: int      # what the first text encoder reads of a caption
    default_targets: tuple[str, ...]
    references: tuple[ReferenceModel, ...]
    build_tiny: Callable[[int], DiffusionPipeline]
    trainable: bool               # the trainer supports it (the UI offers only these)
    flow: FlowAdapter | None = None  # what the flow trainer needs (None for the UNets)
    sample_steps: int = 20        # the pipeline's usual steps and guidance for samples
    sample_guidance: float = 7.0

    def non_commercial(self) -> list[ReferenceModel]:
        return [ref for ref in self.references if not ref.commercial_use]
