"""Make the demo style's artworks: python scripts/make_demo_style.py

The demo style must work with no network and no real base model, so its pictures are
drawn in code: magenta-to-violet stripes on a pale pink ground with a fine grain
(`synthetic.stripes_image`), a palette and texture the built-in toy model has never
seen and a LoRA visibly learns (STACK-NOTES). Each artwork gets a caption sidecar that
describes it in words, starting with the trigger word. Everything here is the Style
Studio project's own work, dedicated to the public domain (CC0 1.0), and deterministic:
the same seed draws the same pixels, so the committed files can be checked against it.
"""

from __future__ import annotations

import argparse
import colorsys
import io
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from style_studio.base.files import sha256_bytes  # noqa: E402
from style_studio.models.synthetic import style_images  # noqa: E402

OUT_DIR = ROOT / "assets" / "demo-style"
ARTWORKS = "artworks"
NAME = "Demo: mauve stripes"
TRIGGER = "mauvestripe"
CREATOR = "Style Studio project"
LICENCE = "CC0-1.0"
COUNT = 20
SIZE = 256  # the toy model's native size; keeps the whole set near 0.5 MB
SEED = 6  # a seed whose 20 artworks are all far apart by perceptual hash (no near-duplicates)
JPEG_QUALITY = 85
PALETTE = ("magenta and violet stripes", "pale pink ground")
LICENSE_TEXT = f"""\
Demo style artworks — {NAME}

Creator: {CREATOR}
Made by: scripts/make_demo_style.py (seed {SEED}), procedurally, with no source images.

To the extent possible under law, the {CREATOR} has waived all copyright and related
or neighboring rights to these artworks and their caption files, dedicating them to the
public domain under CC0 1.0 Universal:
https://creativecommons.org/publicdomain/zero/1.0/

You can copy, modify, distribute and use them, including for training models, without
asking permission.
"""


@dataclass
class Artwork:
    """One generated picture, the stem of its files, and its caption."""

    stem: str
    image: Image.Image
    caption: str


def _orientation(gray: np.ndarray) -> tuple[str, str]:
    """Direction and width of the stripes, read from the strongest spatial frequency."""
    size = gray.shape[0]
    spectrum = np.abs(np.fft.fft2(gray - gray.mean()))
    spectrum[0, 0] = 0
    fy, fx = np.unravel_index(int(np.argmax(spectrum)), spectrum.shape)
    fy = fy - size if fy > size // 2 else fy
    fx = fx - size if fx > size // 2 else fx
    # The frequency vector points across the stripes; the stripes run at right angles
    # to it. Rows grow downwards, so flip y to speak of "rising" as a viewer would.
    angle = (np.degrees(np.arctan2(fy, fx)) + 90.0) % 180.0
    if angle < 22.5 or angle >= 157.5:
        direction = "horizontal"
    elif angle < 67.5:
        direction = "falling diagonal"
    elif angle < 112.5:
        direction = "vertical"
    else:
        direction = "rising diagonal"
    period = size / max(1e-6, float(np.hypot(fx, fy)))
    return direction, "narrow" if period < 0.15 * size else "broad"


def _hue_word(pixels: np.ndarray) -> str:
    """'violet' or 'magenta': the mean hue of the saturated (stripe) pixels."""
    flat = pixels.reshape(-1, 3) / 255.0
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in flat[::17]])
    stripes = hsv[hsv[:, 1] > 0.4]
    hue = float(stripes[:, 0].mean()) if len(stripes) else 0.86
    return "violet" if hue < 0.855 else "magenta"


def describe(image: Image.Image, trigger: str = TRIGGER) -> str:
    """A caption that says what this picture shows, trigger word first."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    direction, width = _orientation(pixels.mean(axis=2))
    return (f"{trigger}, {width} {direction} {_hue_word(pixels)} stripes on a pale pink "
            "ground, fine grain")


def render(count: int = COUNT, size: int = SIZE, seed: int = SEED) -> list[Artwork]:
    """The demo artworks, pixel for pixel the same for the same arguments."""
    images = style_images("stripes", count, size, seed)
    return [Artwork(f"mauve-{i + 1:02d}", image, describe(image))
            for i, image in enumerate(images)]


def encode(image: Image.Image) -> bytes:
    """High-quality baseline JPEG without metadata: small, and byte-stable per Pillow."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def manifest(files: list[dict], count: int, size: int, seed: int) -> dict:
    return {
        "name": NAME, "trigger": TRIGGER, "family": "sd15", "creator": CREATOR,
        "licence": LICENCE, "licence_url": "https://creativecommons.org/publicdomain/zero/1.0/",
        "generator": "scripts/make_demo_style.py", "seed": seed, "count": count, "size": size,
        "palette": list(PALETTE), "jpeg_quality": JPEG_QUALITY,
        "note": "The Style Studio project's own work, generated by this script; CC0 1.0.",
        "files": files,
    }


def write(out_dir: Path = OUT_DIR, count: int = COUNT, size: int = SIZE,
          seed: int = SEED) -> Path:
    """Write artworks, caption sidecars, LICENSE.txt and demo-style.json into `out_dir`."""
    folder = out_dir / ARTWORKS
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = []
    for art in render(count, size, seed):
        data = encode(art.image)
        (folder / f"{art.stem}.jpg").write_bytes(data)
        (folder / f"{art.stem}.txt").write_text(art.caption + "\n", encoding="utf-8")
        files.append({"file": f"{ARTWORKS}/{art.stem}.jpg", "sha256": sha256_bytes(data),
                      "caption": art.caption})
    (out_dir / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    text = json.dumps(manifest(files, count, size, seed), indent=2, ensure_ascii=False)
    (out_dir / "demo-style.json").write_text(text + "\n", encoding="utf-8")
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    out = write(args.out, args.count, args.size, args.seed)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{args.count} artworks written to {out} ({total / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
