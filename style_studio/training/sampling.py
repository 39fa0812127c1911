"""Sample images during training: fixed prompts and seeds, so steps can be compared.

Files are `samples/step-<NNNNNN>-<k>.png` (k = prompt index) with the prompt, seed,
step and run id in PNG text chunks. Sampling stops between denoising steps when the
artist cancels, so a cancel never waits for a whole grid.

Each step's samples are also scored against the training set's style signature
(`style_signature.py`) into `style.jsonl`: the artist sees when the style arrives and
when it starts to break, and which checkpoint to keep.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from PIL import PngImagePlugin

from style_studio.base.files import atomic_write_bytes
from style_studio.images.style_signature import StyleSignature, style_distance

from .config import TrainConfig

SIGNATURE_NAME = "style_signature.json"
SCORES_NAME = "style.jsonl"


class _Stop(Exception):
    """Raised from the pipeline callback to abandon a sample when cancelled."""


def sample_name(step: int, index: int) -> str:
    return f"step-{step:06d}-{index}.png"


class SampleWriter:
    def __init__(self, pipe: DiffusionPipeline, run_dir: Path, config: TrainConfig, family: str,
                 device: torch.device, cancelled: Callable[[], bool],
                 prompt_kwargs: list[dict] | None = None):
        """`prompt_kwargs`: each prompt already encoded as pipeline arguments (the flow
        families free their text encoders before training); None: pass the text."""
        self.pipe = pipe
        self.folder = Path(run_dir) / "samples"
        self.config = config
        self.size = config.resolution_for(family)
        self.steps = config.steps_for(family)
        self.guidance = config.guidance_for(family)
        self.device = device
        self.cancelled = cancelled
        self.prompts = list(config.sample_prompts)
        self.prompt_kwargs = prompt_kwargs
        self.run_dir = Path(run_dir)
        self.signature: StyleSignature | None = None

    def set_style(self, image_paths: list[Path]) -> None:
        """The training images' signature, saved beside the run (kept on resume)."""
        path = self.run_dir / SIGNATURE_NAME
        if path.is_file():
            self.signature = StyleSignature.load(path)
        else:
            self.signature = StyleSignature.of_files(image_paths)
            self.signature.save(path)

    def _stop_if_cancelled(self, pipe, step, timestep, kwargs):  # diffusers callback shape
        if self.cancelled():
            raise _Stop
        return kwargs

    @torch.no_grad()
    def write(self, step: int, run_id: str) -> list[Path]:
        """One image per prompt at this step; returns the files written."""
        written = []
        for index, prompt in enumerate(self.prompts):
            if self.cancelled():
                break
            seed = self.config.seed_for(index)
            generator = torch.Generator(device=self.device).manual_seed(seed)
            text = ({"prompt": prompt} if self.prompt_kwargs is None
                    else self.prompt_kwargs[index])
            try:
                image = self.pipe(**text, num_inference_steps=self.steps,
                                  guidance_scale=self.guidance,
                                  generator=generator, height=self.size, width=self.size,
                                  callback_on_step_end=self._stop_if_cancelled).images[0]
            except _Stop:
                break
            info = PngImagePlugin.PngInfo()
            for key, value in (("prompt", prompt), ("seed", str(seed)), ("step", str(step)),
                               ("run_id", run_id), ("Software", "Style Studio")):
                info.add_text(key, value)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", pnginfo=info)
            path = self.folder / sample_name(step, index)
            atomic_write_bytes(path, buffer.getvalue())
            written.append((path, image))
        if written and len(written) == len(self.prompts):
            self._score(step, [image for _, image in written])
        return [path for path, _ in written]

    def _score(self, step: int, images: list) -> None:
        if self.signature is None:
            return
        distance = style_distance(images, self.signature)
        row = {"step": step, "style_distance": round(distance.total, 4),
               "colour": round(distance.colour, 4), "structure": round(distance.structure, 4),
               "hf_ratio": round(distance.hf_ratio, 4)}
        with (self.run_dir / SCORES_NAME).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

