"""Training settings: one dataclass, three presets, and validation in plain words.

The presets are what an artist picks; every field is still there for the "Advanced"
panel. `validate()` lists every problem at once so a form is fixed in one go.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from style_studio.base.errors import InvalidInput
from style_studio.base.family import native_side
from style_studio.models.families import family_spec

from .records import FamilyTraining

PRESET_LABELS: dict[str, str] = {
    "quick": "Quick draft",
    "balanced": "Balanced",
    "fine": "Fine detail",
}
OPTIMIZERS: dict[str, str] = {"adamw": "AdamW", "adafactor": "Adafactor", "sgd": "SGD"}
LR_SCHEDULES: dict[str, str] = {
    "constant": "Constant",
    "constant_with_warmup": "Constant after warm-up",
    "cosine": "Cosine decay",
    "linear": "Linear decay",
}
# LoRA targets: attention only is the classic style LoRA; ff and conv add capacity.
TARGETS: dict[str, tuple[str, ...]] = {
    "attention": ("to_q", "to_k", "to_v", "to_out.0"),
    "attention+ff": ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2"),
    "attention+ff+conv": ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2",
                          "conv1", "conv2"),
}
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
PRECISIONS = ("auto", "no", "fp16", "bf16")
DEFAULT_SAMPLE_SUBJECTS = ("a landscape with trees", "a portrait of a woman",
                           "a still life with fruit")


@dataclass
class TrainConfig:
    """Everything that decides a run's result; saved as the run's config.json."""

    preset_name: str = "balanced"
    rank: int = 16
    alpha: float = 16.0
    learning_rate: float = 1e-4
    text_encoder_lr: float = 5e-5
    optimizer: str = "adamw"
    weight_decay: float = 1e-2
    max_steps: int = 1500  # used when epochs is 0
    epochs: int = 0  # > 0: train this many passes over the images instead of max_steps
    batch_size: int = 1
    resolution: int = 0  # 0 = the family's native size (512 SD 1.x, 1024 SDXL)
    repeats: int = 1
    seed: int = 42
    min_snr_gamma: float = 5.0  # 0 turns min-SNR weighting off
    noise_offset: float = 0.0
    gradient_checkpointing: bool = False
    caption_dropout: float = 0.0
    flip: bool = False
    lr_scheduler: str = "cosine"
    lr_warmup_steps: int = 0
    targets: str = "attention"
    train_text_encoder: bool = False
    mixed_precision: str = "auto"
    max_grad_norm: float = 1.0
    sample_every: int = 250  # 0 = samples only at the end
    sample_prompts: list[str] = field(default_factory=list)  # empty = trigger-word defaults
    sample_seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    # None = the base model's own convention (steps: 20 for SD here, 28 for FLUX.1 [dev],
    # 4 for [schnell]; guidance: 7 for SD, 3.5 for [dev]'s distilled guidance, 0 for
    # [schnell], ...): `steps_for` and `guidance_for`, resolved when a run starts.
    sample_steps: int | None = None
    sample_guidance: float | None = None
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    device: str = "auto"

    # -- construction -------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """"quick", "balanced" or "fine", with any field overridden."""
        key = (name or "").strip().lower()
        by_label = {label.lower(): k for k, label in PRESET_LABELS.items()}
        key = by_label.get(key, key)
        if key not in PRESET_LABELS:
            names = ", ".join(f"'{k}' ({v})" for k, v in PRESET_LABELS.items())
            raise InvalidInput(f"Unknown preset '{name}'. Choose one of: {names}.")
        base = cls(preset_name=key, **_PRESETS[key])
        return replace(base, **overrides) if overrides else base

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From config.json or a form; unknown keys are refused, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"Unknown training setting(s): {', '.join(unknown)}.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- derived values -----------------------------------------------------------------
    def resolution_for(self, family: str) -> int:
        return self.resolution or native_side(family)

    def steps_per_epoch(self, image_count: int) -> int:
        return max(1, math.ceil(image_count * self.repeats / self.batch_size))

    def total_steps(self, image_count: int) -> int:
        """Optimizer steps for this many images (an upper bound with buckets: see data)."""
        if self.epochs > 0:
            return self.epochs * self.steps_per_epoch(image_count)
        return self.max_steps

    def steps_for(self, family: str, base_model: str | None = None) -> int:
        """The samples' denoising steps: the artist's, else the base model's own (FLUX.1
        [schnell] is distilled for 4, [dev] wants 28)."""
        if self.sample_steps is not None:
            return int(self.sample_steps)
        return family_training(family, base_model).sample_steps

    def guidance_for(self, family: str, base_model: str | None = None) -> float:
        """The samples' guidance: the artist's, else the base model's own convention (a
        FLUX.1 [dev] sample at SD's 7 would be burnt)."""
        if self.sample_guidance is not None:
            return float(self.sample_guidance)
        return family_training(family, base_model).sample_guidance

    def prompts_for(self, trigger: str) -> list[str]:
        """The sample prompts: the artist's, else defaults that use the trigger word."""
        prompts = [p.strip() for p in self.sample_prompts if p and p.strip()]
        if prompts:
            return prompts
        lead = f"{trigger}, " if trigger else ""
        return [f"{lead}{subject}" for subject in DEFAULT_SAMPLE_SUBJECTS]

    def seed_for(self, index: int) -> int:
        seeds = self.sample_seeds or [1]
        return int(seeds[index % len(seeds)])

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> TrainConfig:
        """Raise InvalidInput naming every setting that is out of range; else return self."""
        problems = [p for check in _CHECKS if (p := check(self))]
        if problems:
            raise InvalidInput("Please fix these training settings: " + "; ".join(problems) + ".")
        return self


def _range(name: str, label: str, low: float, high: float, hint: str = "",
           optional: bool = False):
    def check(cfg: TrainConfig) -> str | None:
        value = getattr(cfg, name)
        if optional and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return f"{label} must be a number (it is {value!r})"
        if not low <= value <= high:
            return f"{label} must be between {low:g} and {high:g} (it is {value:g}){hint}"
        return None

    return check


def _choice(name: str, label: str, allowed) -> Any:
    def check(cfg: TrainConfig) -> str | None:
        value = getattr(cfg, name)
        if value not in allowed:
            return f"{label} must be one of {', '.join(allowed)} (it is {value!r})"
        return None

    return check


def _resolution(cfg: TrainConfig) -> str | None:
    if cfg.resolution == 0:
        return None
    if not isinstance(cfg.resolution, int) or not 64 <= cfg.resolution <= 2048:
        return f"resolution must be 0 (automatic) or 64-2048 pixels (it is {cfg.resolution})"
    if cfg.resolution % 64:
        return f"resolution must be a multiple of 64, such as 512 or 768 (it is {cfg.resolution})"
    return None


def _length(cfg: TrainConfig) -> str | None:
    if cfg.epochs == 0 and cfg.max_steps < 1:
        return "set either steps (1 or more) or epochs"
    return None


def _prompts(cfg: TrainConfig) -> str | None:
    if not isinstance(cfg.sample_prompts, list) or len(cfg.sample_prompts) > 8:
        return "use at most 8 sample prompts"
    if not cfg.sample_seeds or not all(isinstance(s, int) and s >= 0 for s in cfg.sample_seeds):
        return "sample seeds must be whole numbers of 0 or more"
    return None


_CHECKS = (
    _choice("preset_name", "preset", [*PRESET_LABELS, "custom"]),
    _range("rank", "rank", 1, 256, " (4-32 suits a style)"),
    _range("alpha", "alpha", 0.01, 1024),
    _range("learning_rate", "learning rate", 1e-7, 1.0,
           " (1e-4 suits long runs, 1e-3 a short draft)"),
    _range("text_encoder_lr", "text-encoder learning rate", 1e-8, 1.0),
    _choice("optimizer", "optimizer", list(OPTIMIZERS)),
    _range("weight_decay", "weight decay", 0, 1),
    _range("max_steps", "steps", 0, 100_000),
    _range("epochs", "epochs", 0, 1000),
    _length,
    _range("batch_size", "batch size", 1, 64),
    _resolution,
    _range("repeats", "repeats", 1, 100),
    _range("seed", "seed", 0, 2**32 - 1),
    _range("min_snr_gamma", "min-SNR gamma", 0, 100, " (5 is usual; 0 turns it off)"),
    _range("noise_offset", "noise offset", 0, 1, " (0.0-0.1 is usual)"),
    _range("caption_dropout", "caption dropout", 0, 0.9),
    _choice("lr_scheduler", "learning-rate schedule", list(LR_SCHEDULES)),
    _range("lr_warmup_steps", "warm-up steps", 0, 100_000),
    _choice("targets", "LoRA targets", list(TARGETS)),
    _choice("mixed_precision", "mixed precision", list(PRECISIONS)),
    _range("max_grad_norm", "gradient clipping", 0, 1000),
    _range("sample_every", "sample every", 0, 100_000),
    _range("sample_steps", "sample steps", 1, 150, optional=True),
    _range("sample_guidance", "sample guidance", 0, 30, optional=True),
    _range("checkpoint_every", "checkpoint every", 0, 100_000),
    _range("keep_checkpoints", "checkpoints kept", 1, 100),
    _prompts,
)

def family_training(family: str, base_model: str | None = None) -> FamilyTraining:
    """What training offers for `family` (and `base_model`'s sampling convention); it
    mirrors what the trainer does with a flow family: its own targets, frozen encoders,
    no min-SNR."""
    spec = family_spec(family)
    unet = spec.flow is None
    sampling = spec.sampling(base_model)
    return FamilyTraining(spec.label, text_encoder=unet, target_presets=unet,
                          default_targets=spec.default_targets, min_snr=unet,
                          sample_steps=sampling.steps, sample_guidance=sampling.guidance)


_PRESETS: dict[str, dict[str, Any]] = {
    # Quick draft: 1e-3, the top of what sd-scripts' LoRA guide recommends (1e-4..1e-3), so
    # 400 steps show the style; LoRA on attention, feed-forward and the resnets' convs
    # (LoCon-style), because texture lives in the convs. Measured on the demo style and
    # the toy model (A/B, guidance 1, 4 seeds, style distance, lower is closer): attention
    # only 0.58 -> 0.30, a mushy maze; with ff + conv 0.58 -> 0.19, mauve stripe texture
    # (benchmarks.md, issue 11).
    "quick": dict(rank=8, alpha=8.0, learning_rate=1e-3, max_steps=400, lr_scheduler="constant",
                  targets="attention+ff+conv", sample_every=100, checkpoint_every=100),
    "balanced": dict(rank=16, alpha=16.0, learning_rate=1e-4, max_steps=1500,
                     lr_scheduler="cosine", lr_warmup_steps=50, sample_every=250,
                     checkpoint_every=250),
    "fine": dict(rank=32, alpha=16.0, learning_rate=5e-5, max_steps=3000, lr_scheduler="cosine",
                 lr_warmup_steps=100, targets="attention+ff", noise_offset=0.03,
                 sample_every=500, checkpoint_every=500),
}
