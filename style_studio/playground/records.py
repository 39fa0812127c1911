"""Playground records: what the artist asks for, the runs and checkpoints offered, and the
images made, as the service and the UI share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .output_metadata import OutputSettings


@dataclass
class GenerateRequest:
    """What the artist asks for. `checkpoint` None = the run's final LoRA; `seed` None =
    a random seed, which is then recorded; `width`/`height` None = the model's native size;
    `steps`/`guidance` None = the base model's own (FLUX.1 [dev] 28 and 3.5, SD 20 and 7)."""

    style_id: str
    run_id: str | None = None
    checkpoint: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    count: int = 1
    lora_scale: float = 1.0


@dataclass
class RunCheckpoint:
    """One loadable LoRA of a run: the final one (step None) or a step checkpoint."""

    step: int | None
    label: str
    lora_dir: Path


@dataclass
class RunChoice:
    """A run the artist can generate with, as the run picker shows it."""

    run_id: str
    label: str
    base_model: str
    family: str
    checkpoints: list[RunCheckpoint]
    flags: list[str] = field(default_factory=list)
    status: str = "done"

    @property
    def finished(self) -> bool:
        """Trained to its last step: the LoRA the artist meant to make."""
        return self.status == "done"


@dataclass
class NearCopyMark:
    """An output found very close to a training image: its name, the measures in words, and
    its thumbnail (None when the job did not record it, or the image was erased since)."""

    filename: str
    description: str
    thumb: Path | None = None


@dataclass
class Output:
    """One saved image and the settings read back from its own PNG."""

    path: Path
    settings: OutputSettings
    label: str = ""
    near_copies: list[NearCopyMark] = field(default_factory=list)
