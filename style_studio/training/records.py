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
    processes: int = 1  # of the launch that trained it last (`accelerate launch`)
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


@dataclass
class PublicFile:
    """One file a Hub push makes public: where it lands in the repo, and where it is now."""

    path_in_repo: str
    source: Path
    size: int


@dataclass
class PushPlan:
    """What publishing a run to the Hub would make public, and why it may not (yet)."""

    run_id: str
    repo_id: str
    files: list[PublicFile] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # empty: the push may go ahead
    kept_private: list[str] = field(default_factory=list)  # what never leaves the machine

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class PushResult:
    """A finished push: the repo's address and the files uploaded."""

    run_id: str
    repo_id: str
    url: str
    private: bool
    files: list[str] = field(default_factory=list)
    commit_url: str = ""
