"""Training run records: what a run, its samples and its checkpoints are, as the service,
the Playground and the UI read them (the UI imports them from here, not the service)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESUMABLE = ("cancelled", "interrupted", "failed")


@dataclass(frozen=True)
class FamilyTraining:
    """What the Training tab may offer for a family and base model, so it never shows a
    choice the trainer ignores or refuses: the flow transformers train on their family's
    own LoRA targets, keep their text encoders frozen (their outputs are cached) and have
    no min-SNR weighting; samples draw with the base model's own steps and guidance."""

    family_label: str
    text_encoder: bool        # "Train the text encoder" is offered
    target_presets: bool      # the UNet presets (attention / ff / conv) apply
    default_targets: tuple[str, ...]
    min_snr: bool             # min-SNR weighting applies
    sample_steps: int
    sample_guidance: float


@dataclass
class Run:
    """A training run as the runs table holds it, plus its folder."""

    id: str
    style_id: str
    run_dir: Path
    job_id: str = ""
    status: str = "running"
    base_model: str = ""
    base_model_identity: str = ""
    family: str = "sd15"
    config: dict[str, Any] = field(default_factory=dict)
    image_hashes: list[str] = field(default_factory=list)
    image_count: int = 0
    flags: list[str] = field(default_factory=list)
    manifest_sha256: str = ""
    step: int = 0
    total_steps: int = 0
    created_at: str = ""
    finished_at: str | None = None
    energy: dict[str, Any] | None = None
    error: str | None = None
    queued: bool = False  # "running" in the table, but its job still waits for the device

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    @property
    def active(self) -> bool:
        """Training now or waiting for the device: Cancel can act, Start must wait."""
        return self.status == "running"

    @property
    def shown_status(self) -> str:
        """The status in words a person reads: a queued run is "waiting", not "running"."""
        return "waiting" if self.queued else self.status


@dataclass
class Sample:
    step: int
    index: int
    prompt: str
    seed: int
    path: Path


@dataclass
class Checkpoint:
    step: int | None  # None = the finished LoRA
    label: str
    lora_dir: Path
    diffusers_file: Path
