"""The near-copy guard: is a generated picture (nearly) one of the training images?

Training a style should not teach replication. Two independent measures must both agree
before an output is flagged, so neither a shared palette nor a shared layout alone trips
it: the DCT perceptual hash (`perceptual.phash`, layout in the low frequencies, blind to
colour) and the correlation of small colour thumbnails after removing each channel's
mean and scale (colour and detail, blind to a global brightness change). A training
image resized and re-encoded scores close on both; two pictures of the same style score
far apart on at least one (figures at HASH_BITS).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .perceptual import FLAT_HASH, hamming, phash

# Measured on the demo's 20 striped artworks (tests/test_near_copy.py): a copy resized to
# 77 px, brightened 8 % and saved as JPEG q60 differs by 0-16 bits and correlates >= 0.975;
# two different artworks differ by >= 12 bits and correlate <= 0.35. The hash is the loose
# gate (stripes make it touchy), the correlation decides.
HASH_BITS = 20        # of 64: at most this many differing bits ...
CORRELATION = 0.90    # ... and at least this thumbnail correlation: "very close"
THUMB_SIDE = 32


@dataclass(frozen=True)
class Reference:
    """One training image as the guard compares it: its id, name, hash and thumbnail."""

    image_id: str
    filename: str
    phash: str
    thumb: np.ndarray  # (THUMB_SIDE, THUMB_SIDE, 3), each channel zero-mean, unit-scale

    @classmethod
    def of(cls, image_id: str, filename: str, image: Image.Image) -> Reference:
        return cls(image_id, filename, phash(image), _thumb(image))


@dataclass(frozen=True)
class NearCopy:
    """An output found very close to a training image, with both measures."""

    image_id: str
    filename: str
    hash_bits: int
    correlation: float

    def describe(self) -> str:
        return (f"very close to training image {self.filename} (perceptual hash differs "
                f"in {self.hash_bits} of 64 bits, colour correlation {self.correlation:.2f})")


def _thumb(image: Image.Image) -> np.ndarray:
    small = image.convert("RGB").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float64)
    pixels = pixels - pixels.mean(axis=(0, 1), keepdims=True)
    scale = np.sqrt((pixels ** 2).mean())
    return pixels / scale if scale > 1e-6 else pixels


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    denominator = np.sqrt((a ** 2).sum() * (b ** 2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def references(items: Iterable[tuple[str, str, Path]]) -> list[Reference]:
    """(image id, file name, path) of the training images -> what the guard compares."""
    found = []
    for image_id, filename, path in items:
        with Image.open(path) as image:
            found.append(Reference.of(image_id, filename, image))
    return found


def near_copies(output: Image.Image, training: list[Reference]) -> list[NearCopy]:
    """The training images this output is very close to, closest first."""
    mine, thumb = phash(output), _thumb(output)
    if mine == FLAT_HASH:
        return []  # a flat picture has no structure to have copied
    hits = []
    for ref in training:
        if ref.phash == FLAT_HASH:
            continue
        bits = hamming(mine, ref.phash)
        if bits > HASH_BITS:
            continue
        score = correlation(thumb, ref.thumb)
        if score >= CORRELATION:
            hits.append(NearCopy(ref.image_id, ref.filename, bits, round(score, 3)))
    return sorted(hits, key=lambda h: (h.hash_bits, -h.correlation))
