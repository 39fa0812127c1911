"""The training set: what the gate allows, cut to aspect-ratio buckets, encoded once.

Each image is resized to cover the bucket nearest its aspect ratio and centre-cropped;
its VAE latent (the posterior mean) and its caption's text embedding are cached
under `cache/<image sha256>/`, keyed by caption, base-model identity and size, so a
second run reuses them and erasing the image removes them with its folder.
The batch order is a pure function of (seed, epoch): a resumed run replays it exactly.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_bytes
from style_studio.consent.gate import TrainItem

CACHE_VERSION = "2"
PROMPTS = "prompts"  # cache/prompts/: the empty caption and sample prompts (no image's)
MAX_ASPECT = 3.0

ImageEncoder = Callable[[torch.Tensor], torch.Tensor]
TextEncoder = Callable[[str], tuple[torch.Tensor, torch.Tensor | None]]
Progress = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- captions


def training_caption(caption: str, trigger: str) -> str:
    """The caption the model sees: the trigger word first, unless it is already there."""
    caption = " ".join((caption or "").split())
    if not trigger or re.search(rf"(?<![\w-]){re.escape(trigger)}(?![\w-])", caption, re.I):
        return caption
    return f"{trigger}, {caption}" if caption else trigger


# --------------------------------------------------------------------------- buckets


def bucket_sizes(resolution: int, step: int) -> list[tuple[int, int]]:
    """(width, height) pairs, multiples of `step`, area at most resolution², aspect <= 3."""
    sizes = set()
    low = max(step, (resolution // 2) // step * step)
    for width in range(low, resolution * 2 + 1, step):
        height = min(resolution * resolution // width // step * step, resolution * 2)
        if height >= low and max(width, height) / min(width, height) <= MAX_ASPECT + 1e-9:
            sizes.add((width, height))
    sizes.add((resolution, resolution))
    return sorted(sizes)


def choose_bucket(width: int, height: int, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest the image's (log scale), larger area on ties."""
    aspect = math.log(width / height)
    return min(sizes, key=lambda s: (abs(math.log(s[0] / s[1]) - aspect), -s[0] * s[1]))


@dataclass
class Fitted:
    pixels: torch.Tensor  # (3, h, w) in [-1, 1]
    original_size: tuple[int, int]  # (h, w) before resizing, for SDXL's time ids
    crop_top_left: tuple[int, int]


def fit_to_bucket(image: Image.Image, bucket: tuple[int, int]) -> Fitted:
    """Resize to cover the bucket, centre-crop, scale to [-1, 1]."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    bw, bh = bucket
    scale = max(bw / image.width, bh / image.height)
    rw, rh = max(bw, round(image.width * scale)), max(bh, round(image.height * scale))
    resized = image.resize((rw, rh), Image.Resampling.LANCZOS)
    left, top = (rw - bw) // 2, (rh - bh) // 2
    cropped = resized.crop((left, top, left + bw, top + bh))
    array = np.asarray(cropped, dtype=np.float32) / 127.5 - 1.0
    pixels = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    return Fitted(pixels, (image.height, image.width), (top, left))


# --------------------------------------------------------------------------- examples


@dataclass
class TrainExample:
    """One image ready to train on: cached tensors plus what SDXL's time ids need."""

    image_id: str
    sha256: str
    caption: str
    bucket: tuple[int, int]
    original_size: tuple[int, int]
    crop_top_left: tuple[int, int]
    latent: torch.Tensor  # (C, h, w): the VAE posterior's mean, unscaled
    latent_flipped: torch.Tensor | None = None
    embeds: torch.Tensor | None = None
    pooled: torch.Tensor | None = None


def _key(*parts: object) -> str:
    text = "\x1f".join(str(p) for p in (CACHE_VERSION, *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _save(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save as to_bytes

    atomic_write_bytes(path, to_bytes({k: v.contiguous() for k, v in tensors.items()}))


def _load(path: Path) -> dict[str, torch.Tensor] | None:
    try:
        return load_file(path) if path.is_file() else None
    except (OSError, ValueError, RuntimeError):
        return None  # a damaged cache file is recomputed, never trusted


def cached_text_ok(path: Path) -> bool:
    """A cached text embedding that can be read back (what `LatentCache.text` would use)."""
    cached = _load(path)
    return cached is not None and "embeds" in cached


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class LatentCache:
    """Files under cache/<sha256>/: latent-<key> and text-<key> safetensors.

    `writes=False` (the non-main processes of a launch) computes a missing entry without
    saving it: only the main process writes into the workspace."""

    def __init__(self, root: Path, identity: str, writes: bool = True):
        self.root = Path(root)
        self.identity = identity
        self.writes = writes
        self.stats = CacheStats()

    def latent_path(self, sha256: str, bucket: tuple[int, int], flipped: bool) -> Path:
        key = _key("latent", self.identity, sha256, f"{bucket[0]}x{bucket[1]}", int(flipped))
        return self.root / sha256 / f"latent-{key}.safetensors"

    def text_path(self, sha256: str, caption: str) -> Path:
        return self.root / sha256 / f"text-{_key('text', self.identity, caption)}.safetensors"

    def latent(self, sha256: str, bucket: tuple[int, int], flipped: bool,
               compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        path = self.latent_path(sha256, bucket, flipped)
        cached = _load(path)
        if cached is not None and "latent" in cached:
            self.stats.hits += 1
            return cached["latent"]
        self.stats.misses += 1
        value = compute().float().cpu()
        if self.writes:
            _save(path, {"latent": value})
        return value

    def text(self, sha256: str, caption: str,
             compute: Callable[[], tuple[torch.Tensor, torch.Tensor | None]]
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        path = self.text_path(sha256, caption)
        cached = _load(path)
        if cached is not None and "embeds" in cached:
            self.stats.hits += 1
            return cached["embeds"], cached.get("pooled")
        self.stats.misses += 1
        embeds, pooled = compute()
        tensors = {"embeds": embeds.float().cpu()}
        if pooled is not None:
            tensors["pooled"] = pooled.float().cpu()
        if self.writes:
            _save(path, tensors)
        return tensors["embeds"], tensors.get("pooled")


@dataclass
class DatasetSpec:
    resolution: int
    bucket_step: int
    trigger: str
    flip: bool
    cache_text: bool  # False while a text-encoder LoRA trains: embeddings change each step


def build_examples(items: list[TrainItem], spec: DatasetSpec, cache: LatentCache,
                   encode_image: ImageEncoder, encode_text: TextEncoder,
                   progress: Progress | None = None,
                   check_cancelled: Callable[[], None] | None = None) -> list[TrainExample]:
    """Encode (or load from the cache) every image the gate allowed, in gate order."""
    sizes = bucket_sizes(spec.resolution, spec.bucket_step)
    examples = []
    for done, item in enumerate(items):
        if check_cancelled:
            check_cancelled()
        if progress:
            progress(done, len(items), f"Preparing images: {done}/{len(items)}")
        examples.append(_example(item, spec, sizes, cache, encode_image, encode_text))
    if progress:
        progress(len(items), len(items), f"Prepared {len(items)} images")
    return examples


def _open(item: TrainItem) -> Image.Image:
    try:
        with Image.open(item.path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"The stored copy of image {item.image_id} cannot be read "
                           f"({exc}); remove it and add it again.") from exc


def _example(item: TrainItem, spec: DatasetSpec, sizes: list[tuple[int, int]],
             cache: LatentCache, encode_image: ImageEncoder,
             encode_text: TextEncoder) -> TrainExample:
    image = _open(item)
    bucket = choose_bucket(image.width, image.height, sizes)
    fitted = fit_to_bucket(image, bucket)

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        return encode_image(pixels[None])[0]

    latent = cache.latent(item.sha256, bucket, False, lambda: encode(fitted.pixels))
    flipped = None
    if spec.flip:
        flipped = cache.latent(item.sha256, bucket, True,
                               lambda: encode(torch.flip(fitted.pixels, dims=[2])))
    caption = training_caption(item.caption, spec.trigger)
    embeds = pooled = None
    if spec.cache_text:
        embeds, pooled = cache.text(item.sha256, caption, lambda: encode_text(caption))
    return TrainExample(item.image_id, item.sha256, caption, bucket, fitted.original_size,
                        fitted.crop_top_left, latent, flipped, embeds, pooled)


# --------------------------------------------------------------------------- order


class BatchOrder:
    """Which examples form each step's batch: same-bucket batches, reshuffled each epoch.

    Everything derives from (seed, epoch), so step N's batch is the same in a resumed
    run as in an uninterrupted one.
    """

    def __init__(self, buckets: list[tuple[int, int]], batch_size: int, repeats: int,
                 seed: int):
        self.buckets = buckets
        self.batch_size = batch_size
        self.repeats = repeats
        self.seed = seed
        self.steps_per_epoch = len(self.epoch(0))

    def epoch(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        groups: dict[tuple[int, int], list[int]] = {}
        for index, bucket in enumerate(self.buckets):
            groups.setdefault(bucket, []).extend([index] * self.repeats)
        batches = []
        for bucket in sorted(groups):
            members = [groups[bucket][i] for i in rng.permutation(len(groups[bucket]))]
            batches += [members[i:i + self.batch_size]
                        for i in range(0, len(members), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def batch_at(self, step: int) -> tuple[int, list[int]]:
        """(epoch, example indices) of the 0-based optimizer step."""
        epoch, position = divmod(step, self.steps_per_epoch)
        return epoch, self.epoch(epoch)[position]


def pixel_step(vae_scale: int, down_blocks: int) -> int:
    """Bucket sides must survive the VAE's and the UNet's downsampling."""
    return vae_scale * 2 ** max(0, down_blocks - 1)
