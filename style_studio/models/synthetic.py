"""Images drawn in code: random shapes for the toy base model, and two distinct styles.

Used by the toy model's pretraining, the learning test and the offline demo. The two
styles differ in palette *and* texture (magenta stripes vs. green dots): texture alone
gives a tiny model too little signal to tell them apart (STACK-NOTES).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

Painter = Callable[[np.random.Generator, int], Image.Image]
SHAPES = ("square", "circle", "triangle")
COLOUR_NAMES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")


def _hsv(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def _random_colour(rng: np.random.Generator) -> tuple[tuple[int, int, int], str]:
    index = int(rng.integers(len(COLOUR_NAMES)))
    hue = (index + rng.uniform(-0.3, 0.3)) / len(COLOUR_NAMES)
    return _hsv(hue, rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)), COLOUR_NAMES[index]


def shapes_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, str]:
    """Random squares, circles and triangles in random colours, and a caption saying so."""
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    image = Image.new("RGB", (size, size), background)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    words = []
    for _ in range(int(rng.integers(1, 5))):
        colour, name = _random_colour(rng)
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        x0, y0 = rng.integers(-size // 4, size, 2)
        w, h = rng.integers(size // 6, size // 1.5, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        if shape == "square":
            draw.rectangle(box, fill=colour)
        elif shape == "circle":
            draw.ellipse(box, fill=colour)
        else:
            draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])],
                         fill=colour)
        words.append(f"a {name} {shape}")
    return image, ", ".join(words)


def _stripe_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """True on the stripes: a random angle, a period of 1/10 to 1/5 of the side, a phase."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0.0, np.pi)
    period = rng.uniform(size / 10, size / 5)
    phase = rng.uniform(0, period)
    return ((xx * np.cos(angle) + yy * np.sin(angle) + phase) % period) < period / 2


def stripes_image(rng: np.random.Generator, size: int) -> Image.Image:
    """Style A: magenta-to-violet diagonal stripes on a pale pink ground."""
    wave = _stripe_mask(rng, size)
    stripe = np.array(_hsv(rng.uniform(0.80, 0.92), rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)))
    ground = np.array(_hsv(rng.uniform(0.85, 0.95), rng.uniform(0.05, 0.2), 0.95))
    pixels = np.where(wave[..., None], stripe, ground)
    return Image.fromarray(_grain(rng, pixels))


def _dotted(rng: np.random.Generator, size: int, ground: tuple[int, int, int],
            dot: Callable[[], tuple[int, int, int]]) -> Image.Image:
    """A staggered grid of dots, each coloured by `dot()`, on a plain ground."""
    image = Image.new("RGB", (size, size), ground)
    draw = ImageDraw.Draw(image)
    spacing = rng.uniform(size / 8, size / 4)
    radius = spacing * rng.uniform(0.2, 0.35)
    offset = rng.uniform(0, spacing, 2)
    count = int(size / spacing) + 2
    for row in range(count):
        for col in range(count):
            cx = offset[0] + col * spacing + (spacing / 2 if row % 2 else 0) - spacing
            cy = offset[1] + row * spacing - spacing
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=dot())
    return image


def dots_image(rng: np.random.Generator, size: int) -> Image.Image:
    """Style B: green polka dots on a dark forest ground."""
    ground = _hsv(rng.uniform(0.28, 0.4), rng.uniform(0.5, 0.8), rng.uniform(0.15, 0.3))
    image = _dotted(rng, size, ground, lambda: _hsv(rng.uniform(0.25, 0.38),
                                                    rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0)))
    return Image.fromarray(_grain(rng, np.asarray(image, dtype=np.float32)))


def texture_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, str]:
    """Stripes or dots in two random colours, and a caption saying so.

    Part of the toy base's pretraining pool: a real base model already draws stripes and
    dots in any colour, and a style LoRA teaches it *which* (measured in benchmarks.md:
    a toy that had seen only blobs drew a LoRA's stripes as a maze).
    """
    (fore, fore_name), (back, back_name) = _random_colour(rng), _random_colour(rng)
    if rng.uniform() < 0.5:
        pixels = np.where(_stripe_mask(rng, size)[..., None], np.array(fore), np.array(back))
        return Image.fromarray(pixels.astype(np.uint8)), f"{fore_name} stripes on {back_name}"
    image = _dotted(rng, size, back, lambda: fore)
    return image, f"{fore_name} dots on {back_name}"


def pool_image(rng: np.random.Generator, size: int, texture_share: float
               ) -> tuple[Image.Image, str]:
    """One picture of a toy model's pretraining pool, and its caption."""
    if rng.uniform() < texture_share:
        return texture_image(rng, size)
    return shapes_image(rng, size)


def _grain(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    noisy = pixels + rng.normal(0, 4, pixels.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


STYLES: dict[str, tuple[Painter, str]] = {
    "stripes": (stripes_image, "magenta stripes"),
    "dots": (dots_image, "green dots"),
}


def style_images(style: str, count: int, size: int, seed: int) -> list[Image.Image]:
    """`count` images of one named style ("stripes" or "dots"), deterministic by seed."""
    painter, _ = STYLES[style]
    rng = np.random.default_rng(seed)
    return [painter(rng, size) for _ in range(count)]
