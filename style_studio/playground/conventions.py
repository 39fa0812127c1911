"""How each base model draws: picture size, steps, guidance and the prompt arguments its
pipeline takes.

The pipelines differ in ways that fail late or silently: FLUX.2 [klein]'s first positional
argument is an image and it has no negative prompt (passing one raises); FLUX.1 [dev]'s
guidance is a distilled number, not classifier-free guidance, and it ignores a negative
prompt; Z-Image reads one only while guidance (its CFG) is above 0. The family and the
reference model declare these (`FamilySpec.sampling`); this module applies them.
"""

from __future__ import annotations

from typing import Any

from style_studio.base.family import native_side
from style_studio.models.families import family_spec
from style_studio.models.families.spec import SamplingDefaults
from style_studio.models.tiny import parse_tiny_id

__all__ = ["SamplingDefaults", "conventions_for", "native_size", "prompt_arguments"]


def native_size(base_model: str, family: str) -> int:
    """The side the base model was trained at; the tiny models are 64 px, the toy 256."""
    return 64 if parse_tiny_id(base_model) else native_side(family, base_model)


def conventions_for(base_model: str, family: str) -> SamplingDefaults:
    """Steps, guidance and negative-prompt use of `base_model` (its own, else its family's)."""
    return family_spec(family).sampling(base_model)


def prompt_arguments(conventions: SamplingDefaults, prompt: str, negative: str,
                     guidance: float) -> tuple[dict[str, Any], str]:
    """The pipeline's prompt keywords (always by keyword), and the negative prompt it
    really reads: "" when the family ignores it, so a PNG never records a negative prompt
    that did nothing. A pipeline without a negative prompt is not given one."""
    if conventions.negative_prompt == "never":
        return {"prompt": prompt}, ""
    used = negative if conventions.uses_negative(guidance) else ""
    return {"prompt": prompt, "negative_prompt": used or None}, used
