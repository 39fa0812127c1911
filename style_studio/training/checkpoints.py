"""Checkpoint folders of a run: written whole or not at all, the last K kept.

`checkpoints/step-000100/` holds the LoRA in diffusers format (what the Playground
loads) and `training_state/` (LoRA, optimizer, LR schedule, RNG and position) from
which a resumed run continues exactly. A checkpoint is built in a hidden temp folder
and renamed into place: a crash or a full disk mid-save leaves the older ones intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from style_studio.base.files import atomic_write_bytes, atomic_write_json, fsync_dir

STEP_RE = re.compile(r"^step-(\d{6,})$")
STATE_DIR = "training_state"
DIFFUSERS_NAME = "pytorch_lora_weights.safetensors"


def step_name(step: int) -> str:
    return f"step-{step:06d}"


@dataclass
class TrainingState:
    """What a resumed run needs besides the model itself."""

    step: int
    lora: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    generator: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)


def _torch_bytes(value: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def write_state(folder: Path, state: TrainingState) -> None:
    """The LoRA itself is the checkpoint's diffusers file next to this folder."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "rng.safetensors", save({"generator": state.generator}))
    atomic_write_bytes(folder / "optimizer.pt", _torch_bytes(state.optimizer))
    atomic_write_bytes(folder / "scheduler.pt", _torch_bytes(state.scheduler))
    atomic_write_json(folder / "state.json", {"step": state.step, **state.extra})


def read_state(folder: Path) -> TrainingState:
    """Load a training state; weights_only loading never runs code from the files."""
    info = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    return TrainingState(
        step=int(info.pop("step")),
        lora=load_file(folder.parent / DIFFUSERS_NAME),
        optimizer=torch.load(folder / "optimizer.pt", weights_only=True),
        scheduler=torch.load(folder / "scheduler.pt", weights_only=True),
        generator=load_file(folder / "rng.safetensors")["generator"],
        extra=info,
    )


class CheckpointFolder:
    """The `checkpoints/` folder of one run."""

    def __init__(self, run_dir: Path):
        self.root = Path(run_dir) / "checkpoints"

    def steps(self) -> list[int]:
        """Complete checkpoints, oldest first (temp folders never match)."""
        if not self.root.is_dir():
            return []
        found = [int(m.group(1)) for p in self.root.iterdir()
                 if p.is_dir() and (m := STEP_RE.match(p.name))
                 and (p / STATE_DIR / "state.json").is_file()]
        return sorted(found)

    def path(self, step: int) -> Path:
        return self.root / step_name(step)

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def write(self, step: int, fill: Callable[[Path], None], keep: int) -> Path:
        """Let `fill` write into a temp folder, then rename it to step-NNNNNN and prune."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{step_name(step)}.", suffix=".tmp", dir=self.root))
        try:
            fill(tmp)
            final = self.path(step)
            if final.exists():  # a re-run of the same step after a resume: replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(self.root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.prune(keep)
        return final

    def prune(self, keep: int) -> None:
        for step in self.steps()[:-keep] if keep > 0 else []:
            shutil.rmtree(self.path(step), ignore_errors=True)

    def drop_after(self, step: int) -> None:
        """Forget checkpoints newer than the one a run resumes from."""
        for later in (s for s in self.steps() if s > step):
            shutil.rmtree(self.path(later), ignore_errors=True)

    def clean_temp(self) -> None:
        """Remove half-written temp folders a crash left behind."""
        if self.root.is_dir():
            for path in self.root.glob(".step-*.tmp"):
                shutil.rmtree(path, ignore_errors=True)


def replace_folder(target: Path, fill: Callable[[Path], None]) -> Path:
    """Build a folder next to `target` and swap it in; the old one survives any failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        fill(tmp)
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            os.rename(target, old)
        os.rename(tmp, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
