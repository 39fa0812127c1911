"""The near-copy guard flags an output that is a training image in disguise (resized,
re-encoded, slightly brightened) and nothing that merely shares the style: the other
pictures of the same style, the other style, a flat picture."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from style_studio.images.near_copy import near_copies, references
from style_studio.models.synthetic import style_images

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo-style" / "artworks"


def _disguised(image: Image.Image) -> Image.Image:
    """What a replicated training image looks like after a trip through a pipeline."""
    small = ImageEnhance.Brightness(image.resize((77, 77), Image.Resampling.BICUBIC))
    buffer = io.BytesIO()
    small.enhance(1.08).save(buffer, format="JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def demo_set():
    paths = sorted(DEMO.glob("*.jpg"))
    assert len(paths) == 20
    return paths, references((p.stem, p.name, p) for p in paths)


def test_a_resized_reencoded_training_image_is_flagged_with_its_name(demo_set):
    paths, training = demo_set
    for path in paths:
        with Image.open(path) as image:
            hits = near_copies(_disguised(image), training)
        assert hits and hits[0].filename == path.name, path.name
        assert "very close to training image " + path.name in hits[0].describe()


def test_pictures_that_only_share_the_style_are_not_flagged(demo_set, tmp_path):
    paths, training = demo_set
    # Each demo image against the other nineteen: same style, same palette, not a copy.
    for n, path in enumerate(paths):
        with Image.open(path) as image:
            assert not near_copies(image, training[:n] + training[n + 1:]), path.name
    stripes = style_images("stripes", 6, 96, seed=1)
    others = style_images("stripes", 6, 96, seed=2) + style_images("dots", 6, 96, seed=3)
    for n, image in enumerate(stripes):
        image.save(tmp_path / f"s{n}.png")
    own = references((f"s{n}", f"s{n}.png", tmp_path / f"s{n}.png") for n in range(6))
    assert not any(near_copies(image, own) for image in others)
    assert near_copies(_disguised(stripes[2]), own)[0].filename == "s2.png"
    assert not near_copies(Image.new("RGB", (64, 64), (120, 90, 140)), own)  # flat
