"""Where models run: CUDA, Apple MPS or CPU, and in which precision.

Chosen once per job from what this machine has; asking for a device that is not there is
an error the artist can act on, never a silent fall back to a slower one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from style_studio.base.errors import InvalidInput


@dataclass
class DeviceChoice:
    """Where the pipeline runs and in which precision; `label` is shown to the artist."""

    device: str
    dtype: torch.dtype
    label: str


def pick_device(prefer: str | None = None) -> DeviceChoice:
    """CUDA (bf16 where supported, else fp16), then Apple MPS (fp16), else CPU (fp32).

    `prefer` ("cpu", "cuda", "cuda:1", "mps", "auto"/None) forces a device; asking for
    one that is not there is an InvalidInput rather than a silent fallback.
    """
    wanted = (prefer or "auto").strip().lower()
    if wanted == "auto":
        if torch.cuda.is_available():
            return _cuda_choice("cuda")
        if _mps_available():
            return _mps_choice()
        return _cpu_choice()
    if wanted == "cpu":
        return _cpu_choice()
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidInput("CUDA was asked for, but no NVIDIA GPU is usable here.")
        return _cuda_choice(wanted)
    if wanted == "mps":
        if not _mps_available():
            raise InvalidInput("MPS was asked for, but Apple's Metal backend is not usable here.")
        return _mps_choice()
    raise InvalidInput(f"Unknown device {prefer!r}: use auto, cpu, cuda, cuda:N or mps.")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def _cuda_choice(device: str) -> DeviceChoice:
    index = torch.device(device).index or 0
    bf16 = torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    name = torch.cuda.get_device_name(index)
    return DeviceChoice(device, dtype, f"GPU {name} ({'bfloat16' if bf16 else 'float16'})")


def _mps_choice() -> DeviceChoice:
    return DeviceChoice("mps", torch.float16, "Apple GPU (MPS, float16)")


def _cpu_choice() -> DeviceChoice:
    return DeviceChoice("cpu", torch.float32, "CPU (float32; slow, fine for the tiny model)")
