"""How close pictures are to a style: a signature of an image set and a distance to it.

The first measure (mean RGB distance to the style's palette) was fooled by noise:
saturated speckle averages toward any palette, so a LoRA that drew speckle "improved".
A style here is two distributions that noise, a blank image and an unchanged base
cannot fake together:

- **colour**: a histogram of the pictures' pixels in CIELAB (perceptual, so equal steps
  are roughly equal visible differences; the conversion is Pillow's ImageCms);
- **structure**: the radially averaged power spectrum of lightness, as the share of
  the picture's contrast at each spatial frequency (flat for noise, nothing at all for
  a blank picture, concentrated at the stripe frequency for stripes).

Each part's distance is the Hellinger distance between the two distributions (0 = the
same, 1 = nothing in common); the style distance is their mean. Both histograms are
blurred by one bin, so one picture's spiky histogram is compared fairly with a set's.
`fine_energy` is how much colour and lightness sits in detail finer than 1/16 of the
picture: the high-frequency energy that speckle has in excess (measured in
benchmarks.md: the broken demo LoRA's outputs 2x the training images', clean stripes 1.2x
at most). Everything is numpy and Pillow, so the UI, the trainer and
the tests can all call it without loading a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_text

SIDE = 128  # analysis size: every picture is compared at the same scale
LAB_BINS = (6, 8, 8)  # lightness, a (green-red), b (blue-yellow)
SPECTRUM_BINS = 12  # log-spaced, from one cycle per picture to the sampling limit
FINE_DETAIL = 16  # cycles per picture: above this is fine detail (or speckle)
SPECKLE_RATIO = 1.5  # fine detail over the style's: clean stripes 1.2, the speckle 2.0


@cache
def _to_lab() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransformFromOpenProfiles(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def _prepare(image: Image.Image) -> np.ndarray:
    """(SIDE, SIDE, 3) float Lab: Pillow stores L as 0-255 and a, b offset by 128."""
    rgb = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX)
    return np.asarray(ImageCms.applyTransform(rgb, _to_lab()), dtype=np.float64)


def _smooth(values: np.ndarray) -> np.ndarray:
    """A [1/4, 1/2, 1/4] blur along every axis: a single picture's histogram is spiky,
    and a colour one bin away from the style's should count as near, not as absent."""
    for axis in range(values.ndim):
        padded = np.moveaxis(np.pad(np.moveaxis(values, axis, 0), [(1, 1)] +
                                    [(0, 0)] * (values.ndim - 1), mode="edge"), 0, axis)
        take = [slice(None)] * values.ndim
        parts = []
        for lo in (0, 1, 2):
            take[axis] = slice(lo, lo + values.shape[axis])
            parts.append(padded[tuple(take)])
        values = 0.25 * parts[0] + 0.5 * parts[1] + 0.25 * parts[2]
    return values


def _colour_histogram(lab: np.ndarray) -> np.ndarray:
    hist, _ = np.histogramdd(lab.reshape(-1, 3), bins=LAB_BINS,
                             range=((0, 256), (0, 256), (0, 256)))
    hist = _smooth(hist)
    return hist.ravel() / hist.sum()


@cache
def _frequency_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each FFT cell's spectrum bin (-1 = DC), its fine-detail mask, the Hann window."""
    freq = np.fft.fftfreq(SIDE)
    radius = np.hypot(freq[:, None], freq[None, :])
    edges = np.geomspace(1.0 / SIDE, 0.5, SPECTRUM_BINS + 1)
    index = np.clip(np.digitize(radius, edges) - 1, 0, SPECTRUM_BINS - 1)
    index[radius < edges[0]] = -1
    fine = radius > FINE_DETAIL / SIDE
    return index, fine, np.outer(np.hanning(SIDE), np.hanning(SIDE))


def _spectrum(lab: np.ndarray) -> np.ndarray:
    """Radial power shares of lightness (sum 1); all zeros for a flat picture."""
    index, _, window = _frequency_grid()
    light = lab[..., 0]
    power = np.abs(np.fft.fft2((light - light.mean()) * window)) ** 2
    keep = index >= 0
    bins = _smooth(np.bincount(index[keep], weights=power[keep], minlength=SPECTRUM_BINS))
    total = bins.sum()
    return bins / total if total > 1e-6 * SIDE * SIDE else np.zeros(SPECTRUM_BINS)


def _fine_energy(lab: np.ndarray) -> float:
    """Mean square of the picture's Lab detail finer than 1/FINE_DETAIL of its side
    (Parseval: FFT power / pixels²), colour included: speckle is fine *and* colourful."""
    _, fine, _ = _frequency_grid()
    return float(sum((np.abs(np.fft.fft2(lab[..., c])[fine]) ** 2).sum()
                     for c in range(3)) / SIDE ** 4)


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """0 for equal distributions, 1 for disjoint ones (or an empty one)."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sqrt(p * q).sum()))))


@dataclass
class StyleSignature:
    """What a set of pictures looks like, kept as plain lists so it saves as JSON."""

    colour: list[float]
    spectrum: list[float]
    fine_energy: float
    images: int

    @classmethod
    def of(cls, images: Iterable[Image.Image]) -> StyleSignature:
        return cls.merge([cls._of_one(image) for image in images])

    @classmethod
    def _of_one(cls, image: Image.Image) -> StyleSignature:
        lab = _prepare(image)
        return cls(_colour_histogram(lab).tolist(), _spectrum(lab).tolist(),
                   _fine_energy(lab), 1)

    @classmethod
    def merge(cls, parts: list[StyleSignature]) -> StyleSignature:
        """The signature of the pictures of several signatures together, each weighed by
        its number of pictures: per-image signatures once, then any set of them."""
        if not parts:
            raise InvalidInput("A style signature needs at least one picture.")
        weights = [part.images for part in parts]
        spectrum = np.average([part.spectrum for part in parts], axis=0, weights=weights)
        total = spectrum.sum()
        return cls(np.average([part.colour for part in parts], axis=0,
                              weights=weights).tolist(),
                   (spectrum / total if total > 0 else spectrum).tolist(),
                   float(np.average([part.fine_energy for part in parts], weights=weights)),
                   sum(weights))

    @classmethod
    def of_files(cls, paths: Iterable[Path]) -> StyleSignature:
        def opened():
            for path in paths:
                with Image.open(path) as image:
                    yield image.convert("RGB")

        return cls.of(opened())

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> StyleSignature:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class StyleDistance:
    """How far pictures are from a style: 0 = indistinguishable, 1 = nothing in common."""

    colour: float
    structure: float
    hf_ratio: float  # the pictures' fine-detail energy over the style's

    @property
    def total(self) -> float:
        return (self.colour + self.structure) / 2


def style_distance(images: Iterable[Image.Image] | StyleSignature,
                   style: StyleSignature) -> StyleDistance:
    """Distance of a picture set (or its signature) to a style's signature."""
    sig = images if isinstance(images, StyleSignature) else StyleSignature.of(images)
    colour = hellinger(np.asarray(sig.colour), np.asarray(style.colour))
    structure = hellinger(np.asarray(sig.spectrum), np.asarray(style.spectrum))
    ratio = sig.fine_energy / style.fine_energy if style.fine_energy > 0 else float("inf")
    return StyleDistance(colour, structure, ratio)


@dataclass
class StyleComparison:
    """How far an A/B's base images (A) and LoRA images (B) are from a style, overall
    and seed by seed (0 = indistinguishable, 1 = nothing in common)."""

    base: StyleDistance
    lora: StyleDistance
    per_seed: list[tuple[int, float, float]]  # (seed, base distance, LoRA distance)

    @property
    def closer_on(self) -> int:
        """Seeds on which the LoRA image is closer to the style than the base image."""
        return sum(1 for _, a, b in self.per_seed if b < a)

    def shows_style(self, max_hf_ratio: float = 1.0) -> bool:
        """Closer than the base on every seed, without more fine detail than the style:
        what the demo must show (speckle is closer than unrelated base colours, but fails
        the second half)."""
        return self.closer_on == len(self.per_seed) and self.lora.hf_ratio <= max_hf_ratio

    def summary(self) -> str:
        line = (f"Style distance to the training images (lower is closer): "
                f"A (base) {self.base.total:.2f} · B (LoRA) {self.lora.total:.2f}; "
                f"B closer on {self.closer_on} of {len(self.per_seed)} seeds.")
        if self.lora.hf_ratio > SPECKLE_RATIO:
            line += (f" ⚠ B has {self.lora.hf_ratio:.1f}× the fine detail of the training "
                     "images: speckle, a sign of overtraining (try an earlier checkpoint or "
                     "a lower LoRA scale).")
        return line


def compare_ab(base: list[Image.Image], lora: list[Image.Image], style: StyleSignature,
               seeds: list[int]) -> StyleComparison:
    """Score A/B pairs (same seeds, same order) against a style; each picture is
    analysed once, for its own distance and for its set's."""
    singles = {label: [StyleSignature.of([image]) for image in images]
               for label, images in (("A", base), ("B", lora))}
    per_seed = [(seed, style_distance(a, style).total, style_distance(b, style).total)
                for seed, a, b in zip(seeds, singles["A"], singles["B"], strict=True)]
    return StyleComparison(style_distance(StyleSignature.merge(singles["A"]), style),
                           style_distance(StyleSignature.merge(singles["B"]), style), per_seed)
