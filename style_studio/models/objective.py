"""What a denoiser is trained to predict, read from its scheduler's config.

One place for the target and the min-SNR weight, shared by the LoRA trainer, the toy
model's pretraining, the learning test and the benchmarks, so none of them can drift
from the others (the old learning test measured an epsilon loss by hand).
"""

from __future__ import annotations

import torch
from diffusers.training_utils import compute_snr


def denoising_target(scheduler, latents: torch.Tensor, noise: torch.Tensor,
                     timesteps: torch.Tensor) -> torch.Tensor:
    """The noise (epsilon) or the velocity (v-prediction), as the scheduler says."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if kind == "sample":
        return latents
    raise ValueError(f"Unsupported prediction type {kind!r}.")


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """min-SNR-γ loss weights (Hang et al. 2023), as diffusers' training scripts compute them.

    On a zero-terminal-SNR schedule the last timestep has SNR 0: its epsilon weight
    min(SNR, γ) / SNR is 0/0, taken as its limit 1 instead of NaN.
    """
    snr = compute_snr(scheduler, timesteps)
    clamped = torch.clamp(snr, max=gamma)
    kind = scheduler.config.prediction_type
    if kind == "v_prediction":
        return clamped / (snr + 1)
    if kind == "sample":
        return clamped
    return torch.where(snr > 0, clamped / snr.clamp(min=1e-12), torch.ones_like(snr))


def zero_terminal_snr(scheduler) -> bool:
    """True when the noisiest training step holds no image at all (Lin et al. 2024)."""
    return bool(getattr(scheduler.config, "rescale_betas_zero_snr", False))


def effective_min_snr_gamma(scheduler, gamma: float) -> float:
    """The min-SNR γ a run can use on this schedule.

    min-SNR weights the noisiest steps by their SNR, i.e. by nothing as SNR reaches 0.
    On a zero-terminal-SNR model those steps are where a picture's overall colour and
    layout are decided: a LoRA trained with the weight cannot move them (measured on the
    toy model: the demo LoRA's mean colour from pure noise stayed at the base's, 0.04 of
    the style's 1.15 in blue; without it, 0.99). So it is off there.
    """
    return 0.0 if zero_terminal_snr(scheduler) else gamma
