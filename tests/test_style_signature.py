"""The style measure must not be fooled: noise, a blank picture, the unchanged base and
the speckle the broken demo LoRA drew all score worse than a real picture of the style.

`tests/data/old-demo-*.png` are the real outputs of that broken run (issue 11's evidence:
seeds 1-8, row 1 base, row 2 LoRA), cut from shared/evidence/demo-ab-quick-draft.png.
The palette distance this measure replaces called that speckle an improvement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from style_studio.base.errors import InvalidInput
from style_studio.demo import DemoAssets
from style_studio.images.style_signature import StyleSignature, compare_ab, style_distance
from style_studio.models.synthetic import style_images

DATA = Path(__file__).parent / "data"
TILE = 160


def _tiles(name: str) -> list[Image.Image]:
    strip = Image.open(DATA / name).convert("RGB")
    return [strip.crop((TILE * i, 0, TILE * (i + 1), TILE)) for i in range(strip.width // TILE)]


@pytest.fixture(scope="module")
def demo_style() -> StyleSignature:
    return StyleSignature.of_files(DemoAssets.load().files)


def _worst_real(style: StyleSignature) -> float:
    """The farthest of 8 unseen pictures drawn by the demo style's own painter."""
    return max(style_distance([im], style).total
               for im in style_images("stripes", 8, 256, seed=99))


def test_noise_blank_base_and_speckle_score_worse_than_any_real_style_picture(demo_style):
    worst_real = _worst_real(demo_style)
    rng = np.random.default_rng(0)
    fakes = {
        "noise": [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))],
        "blank in the style's ground colour": [Image.new("RGB", (256, 256), (240, 215, 235))],
        "black": [Image.new("RGB", (256, 256), (0, 0, 0))],
        "the base model's outputs": _tiles("old-demo-base-outputs.png"),
        "the broken LoRA's speckle": _tiles("old-demo-speckle-outputs.png"),
        "the other style (green dots)": style_images("dots", 4, 256, seed=99),
    }
    for name, images in fakes.items():
        best_fake = min(style_distance([im], demo_style).total for im in images)
        assert best_fake > worst_real + 0.1, (name, best_fake, worst_real)


def test_the_broken_demo_lora_fails_the_demo_criteria(demo_style):
    """The demo's two criteria (bench/demo.py, the journey test): closer than the base on
    every seed *and* fine detail no higher than the training images'. The speckle passes
    the first (it is less far than the base's unrelated colours) and fails the second."""
    base = _tiles("old-demo-base-outputs.png")
    speckle = _tiles("old-demo-speckle-outputs.png")
    verdict = compare_ab(base, speckle, demo_style, list(range(1, 9)))
    assert verdict.closer_on == 8
    assert verdict.lora.hf_ratio > 1.5
    assert not verdict.shows_style()
    assert "speckle" in verdict.summary()
    # Unseen pictures of the style itself pass in place of the LoRA's.
    clean = style_images("stripes", 8, 256, seed=99)
    assert compare_ab(base, clean, demo_style, list(range(1, 9))).shows_style(1.5)


def test_signature_round_trips_and_needs_a_picture(tmp_path, demo_style):
    demo_style.save(tmp_path / "sig.json")
    again = StyleSignature.load(tmp_path / "sig.json")
    assert again == demo_style and again.images == 20
    assert style_distance(again, demo_style).total == 0.0
    with pytest.raises(InvalidInput, match="at least one picture"):
        StyleSignature.of([])
