"""LoRA runs made by hand, laid out exactly as the Training contract says the trainer will.

The playground must not wait for the trainer to be tested: these helpers add a peft LoRA
to the tiny UNet, give it non-zero weights (peft's "gaussian" init leaves lora_B at zero,
which would make every LoRA a no-op and every test pass for the wrong reason), save it
with diffusers' `save_lora_weights` into `checkpoints/step-N/` and `lora/`, and insert a
matching `runs` document. `studio.training` lists them like the runs it trains, so the
same playground code path serves both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import diffusers
import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image

from style_studio.base.errors import ModelUnavailable
from style_studio.base.files import atomic_write_json
from style_studio.base.store import utc_now
from style_studio.models.families import family_spec
from style_studio.models.loading import model_identity
from style_studio.models.tiny import TINY_IDS, build_tiny_components
from style_studio.playground.records import GenerateRequest

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]


def save_random_lora(folder: Path, seed: int, strength: float = 0.5,
                     family: str = "sd15") -> Path:
    """A rank-4 LoRA for a tiny model's denoiser (the SD 1.5 UNet, or a flow family's
    transformer on its default targets) with random, non-zero up and down weights."""
    spec = family_spec(family)
    if spec.denoiser == "unet":
        denoiser, targets = build_tiny_components(family)["unet"], LORA_TARGETS
    else:
        denoiser, targets = spec.build_tiny(0).transformer, list(spec.default_targets)
    denoiser.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                    target_modules=targets))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in denoiser.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * strength)
    layers = get_peft_model_state_dict(denoiser)
    folder.mkdir(parents=True, exist_ok=True)
    if spec.denoiser == "unet":
        StableDiffusionPipeline.save_lora_weights(
            folder, unet_lora_layers=convert_state_dict_to_diffusers(layers),
            safe_serialization=True)
    else:  # peft's own names, as the trainer writes them (klein's loader needs lora_A/B)
        pipeline = getattr(diffusers, spec.pipeline)
        pipeline.save_lora_weights(folder, transformer_lora_layers=layers,
                                   safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def make_lora_run(studio, style_id: str, steps: tuple[int, ...] = (100, 200),
                  final: bool = True, seed: int = 1, flags: list[str] | None = None,
                  family: str = "sd15", base: str | None = None) -> str:
    """A finished run of the style with step checkpoints and (optionally) a final LoRA."""
    base = base or TINY_IDS[family]
    doc = studio.store.insert("runs", {"style_id": style_id, "status": "running"})
    run_id = doc["id"]
    run_dir = studio.workspace.run_dir(style_id, run_id)
    manifest = {"run_id": run_id, "style_id": style_id, "base_model": base, "images": []}
    atomic_write_json(run_dir / "manifest.json", manifest)
    atomic_write_json(run_dir / "config.json", {"preset": "fixture", "steps": max(steps)})
    for index, step in enumerate(steps):
        folder = run_dir / "checkpoints" / f"step-{step:06d}"
        save_random_lora(folder, seed * 100 + index, family=family)
        # a complete checkpoint also holds its resume state; the playground never reads it
        atomic_write_json(folder / "training_state" / "state.json", {"step": step})
    if final:
        save_random_lora(run_dir / "lora", seed * 100 + 99, family=family)
    manifest_sha = hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    studio.store.update("runs", run_id, **{
        "job_id": None, "status": "done" if final else "cancelled", "base_model": base,
        "base_model_identity": _identity(base, studio.workspace.models_dir),
        "family": family, "config": {"preset": "fixture"}, "image_hashes": [],
        "image_count": 0, "flags": flags or [], "manifest_sha256": manifest_sha,
        "step": max(steps), "total_steps": max(steps), "created_at": utc_now(),
        "finished_at": utc_now(), "error": None,
        "energy": {"wall_s": 0.0, "device": "cpu", "energy_wh": 0.0, "estimated": True,
                   "method": "fixture"},
    })
    return run_id


def _identity(base: str, models_dir: Path) -> str:
    """A real model that is not on this machine has no identity yet (conventions tests)."""
    try:
        return model_identity(base, models_dir)
    except ModelUnavailable:
        return ""


def manifest_sha256(studio, style_id: str, run_id: str) -> str:
    path = studio.workspace.run_dir(style_id, run_id) / "manifest.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_summary(studio, run_id: str) -> dict:
    """The runs doc as JSON-friendly data (handy in assertion messages)."""
    return json.loads(json.dumps(studio.store.get("runs", run_id)))


def pixels(output) -> np.ndarray:
    """An output's pixels as signed ints, so differences do not wrap around."""
    return np.asarray(Image.open(output.path).convert("RGB"), dtype=np.int16)


def one(studio, request: GenerateRequest):
    """Generate through the service, wait, and return the first output of a done job."""
    outputs = studio.playground.generate(request, timeout=120)
    job = studio.playground.latest_job(request.style_id)
    assert job.status == "done", job.error
    assert len(outputs) == request.count
    return outputs[0]
