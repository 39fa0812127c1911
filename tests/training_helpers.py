"""Build a trainable style through the real services: ingest, captions, consent."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from style_studio.models.synthetic import shapes_image, style_images
from style_studio.studio import Studio
from style_studio.training.config import TrainConfig


def training_threads() -> int:
    """Torch threads for a test that trains for a minute: 2 when it has the machine, 1
    beside another test process (2 threads next to a busy process ran 7x slower: the
    SD learning test took 477 s instead of ~65 s)."""
    return 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2


def write_images(folder: Path, images: list[Image.Image], prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, image in enumerate(images):
        path = folder / f"{prefix}-{n:02d}.png"
        image.save(path)
        paths.append(path)
    return paths


def shape_images(count: int, size: int = 96, seed: int = 0,
                 sizes: list[tuple[int, int]] | None = None) -> list[Image.Image]:
    """Random shape pictures; `sizes` gives (width, height) per image for buckets."""
    rng = np.random.default_rng(seed)
    images = []
    for n in range(count):
        image, _ = shapes_image(rng, size)
        if sizes:
            image = image.resize(sizes[n % len(sizes)])
        images.append(image)
    return images


def add_cleared_images(studio, style_id: str, paths: list[Path],
                       caption: str = "a picture of shapes") -> list[str]:
    """Ingest files, approve a caption for each, clear them as the artist's own work."""
    report = studio.images.ingest(style_id, paths)
    assert not report.rejected, report.rejected
    ids = [record.id for record in report.added]
    for n, image_id in enumerate(ids):
        studio.caption_records.set(image_id, f"{caption} {n}", approved=True)
    studio.consent.own_work(style_id, "Ana Artist", ids)
    return ids


def make_trainable_style(studio, tmp_path: Path, family: str = "sd15", count: int = 4,
                         name: str = "Test shapes", style: str | None = None,
                         sizes: list[tuple[int, int]] | None = None):
    created = studio.styles.create(name, trigger="shapestyle", family=family)
    pictures = (style_images(style, count, 96, seed=1) if style
                else shape_images(count, sizes=sizes))
    paths = write_images(tmp_path / f"src-{created.id}", pictures)
    ids = add_cleared_images(studio, created.id, paths)
    return created, ids


def tiny_config(**overrides) -> TrainConfig:
    """A few steps at 64 px: seconds on one CPU thread."""
    base = dict(rank=4, alpha=4.0, learning_rate=1e-2, max_steps=6, batch_size=2, resolution=64,
                sample_every=0, sample_prompts=["shapestyle, a house"], sample_seeds=[7],
                sample_steps=2, checkpoint_every=2, keep_checkpoints=2, min_snr_gamma=5.0,
                lr_scheduler="constant", lr_warmup_steps=0)
    base.update(overrides)
    return TrainConfig.preset("quick", **base)


class Quiet:
    """A job context that reports nowhere: for driving a Trainer directly."""

    cancel_requested = False

    def progress(self, *args, **kwargs) -> None:
        pass

    def log(self, line: str) -> None:
        pass


def trainable_workspace(tmp_path: Path, name: str) -> Path:
    """A workspace with one style of four cleared, captioned images, made before an app
    starts on it (one writer at a time)."""
    workspace = tmp_path / "workspace"
    with Studio.open(workspace) as studio:
        make_trainable_style(studio, tmp_path, count=4, name=name)
    return workspace


def hold_device(studio) -> threading.Event:
    """Occupy the device worker with a job until the returned event is set."""
    started, release = threading.Event(), threading.Event()

    def job(ctx) -> dict:
        started.set()
        assert release.wait(60)
        return {}

    studio.jobs.submit("caption", job, title="Captioning")
    assert started.wait(10)
    return release
