"""What a base-model family declares, so that code asks the family instead of its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from diffusers import DiffusionPipeline

from .flow import FlowAdapter

Objective = Literal["epsilon", "v_prediction", "flow_matching"]
# When the pipeline reads a negative prompt: always (SD's classifier-free guidance), only
# while guidance is on (Z-Image: guidance above 0 is CFG), or never (FLUX.1 is
# guidance-distilled; FLUX.2 [klein] takes no negative text).
NegativePrompt = Literal["always", "with_guidance", "never"]


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
    # This model's own sampling convention where it differs from its family's (FLUX.1
    # [schnell]: 4 steps, no guidance; the undistilled klein and Z-Image: 50 steps, CFG 4).
    sample_steps: int | None = None
    sample_guidance: float | None = None

    def terms(self) -> str:
        """Licence, commercial use, training memory and download, in plain words."""
        use = ("commercial use allowed" if self.commercial_use else
               "**non-commercial**: LoRAs and images made with it may not be used "
               "commercially")
        checked = "" if self.verified else " (as stated by third-party pages; check the card)"
        return (f"Licence: {self.licence} · {use}{checked} · LoRA training needs roughly "
                f"{self.train_vram_gb:g} GB of GPU memory · download {self.download}")

    def short_terms(self) -> str:
        """The same in a few words, for a dropdown entry."""
        use = "commercial use OK" if self.commercial_use else "non-commercial"
        return f"{self.licence} · {use} · ~{self.train_vram_gb:g} GB to train"


@dataclass(frozen=True)
class TokenReader:
    """How one text encoder reads a caption: its tokenizer folder, how many tokens it keeps,
    and whether the pipeline first wraps the caption in Qwen's chat template (whose tokens
    then count against the limit too)."""

    subfolder: str               # "tokenizer", "tokenizer_2"
    encoder: str                 # "CLIP", "T5", "Qwen3": the name the Captions tab shows
    limit: int
    pooled: bool = False         # only the start feeds one overall vector (FLUX.1's CLIP)
    chat_thinking: bool | None = None  # None: no chat template; else its enable_thinking


@dataclass(frozen=True)
class SamplingDefaults:
    """What a base model's pipeline expects when drawing, so the Playground's form starts
    where the model works: steps, guidance and its meaning, the negative prompt's use."""

    steps: int
    guidance: float
    negative_prompt: NegativePrompt
    guidance_note: str

    def uses_negative(self, guidance: float) -> bool:
        if self.negative_prompt == "with_guidance":
            return guidance > 0
        return self.negative_prompt == "always"


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
    token_readers: tuple[TokenReader, ...] = (TokenReader("tokenizer", "CLIP", 77),)
    negative_prompt: NegativePrompt = "always"
    # The tool file's name, `<style>.<tool_names>.safetensors`: what its keys are named after
    # ("kohya": sd-scripts/musubi names; "comfyui": ComfyUI's own diffusion_model.* names).
    tool_names: str = "kohya"
    guidance_note: str = "classifier-free guidance: how strongly the prompt steers"

    def non_commercial(self) -> list[ReferenceModel]:
        return [ref for ref in self.references if not ref.commercial_use]

    def reference(self, ref: str | None) -> ReferenceModel | None:
        """The real model of this family behind a hub id, if `ref` is one."""
        return next((model for model in self.references if model.hub_id == ref), None)

    def sampling(self, ref: str | None = None) -> SamplingDefaults:
        """Steps and guidance for `ref` (its own where it has them, else the family's)."""
        model = self.reference(ref)
        steps = model.sample_steps if model and model.sample_steps else self.sample_steps
        guidance = (model.sample_guidance if model and model.sample_guidance is not None
                    else self.sample_guidance)
        return SamplingDefaults(steps, guidance, self.negative_prompt, self.guidance_note)
