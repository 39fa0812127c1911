"""The demo style: artworks shipped in `assets/demo-style/`, ready to train on at once.

A newcomer with no GPU and no network should see every tab with content and reach a
trained LoRA in minutes. The demo goes through the same paths as an artist's own work:
the real ingest (checks, hashes, thumbnails, sidecar captions), approved captions, and
consent records that say what is true of these files: the Style Studio project made
them in code and dedicated them to the public domain (CC0 1.0). Its base model is the
built-in toy model unless a real base model of its family is on this machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .consent import ConsentRecord
from .errors import InvalidInput, NotFound, StudioError
from .styles import Style

if TYPE_CHECKING:
    from .studio import Studio

DEMO_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo-style"
DEMO_KEY = "demo_style_id"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
REMAKE = "python scripts/make_demo_style.py"
PALETTE_COLOURS = 12


@dataclass(frozen=True)
class DemoAssets:
    """What `scripts/make_demo_style.py` wrote: artworks with sidecars, licence, manifest."""

    folder: Path
    name: str
    trigger: str
    family: str
    creator: str
    licence: str
    generator: str
    files: tuple[Path, ...]
    licence_file: Path

    @classmethod
    def load(cls, folder: Path = DEMO_DIR) -> DemoAssets:
        """Read `demo-style.json`; missing or damaged files are a NotFound naming the fix."""
        try:
            info = json.loads((folder / "demo-style.json").read_text(encoding="utf-8"))
            files = tuple(folder / entry["file"] for entry in info["files"])
            assets = cls(folder, info["name"], info["trigger"], info["family"],
                         info["creator"], info["licence"], info["generator"], files,
                         folder / "LICENSE.txt")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NotFound(f"The demo style's files in {folder} are missing or damaged "
                           f"({exc}); recreate them with: {REMAKE}") from exc
        missing = [p.name for p in (*files, assets.licence_file) if not p.is_file()]
        missing += [p.with_suffix(".txt").name for p in files
                    if not p.with_suffix(".txt").is_file()]
        if missing:
            raise NotFound(f"The demo style is missing {', '.join(missing)} in {folder}; "
                           f"recreate the files with: {REMAKE}")
        return assets

    @property
    def sources(self) -> list[Path]:
        """The files to import: each artwork and its caption sidecar."""
        return [p for f in self.files for p in (f, f.with_suffix(".txt"))]

    def consent(self, evidence_file: str) -> ConsentRecord:
        return ConsentRecord(
            creator=self.creator, relationship="public-domain", licence=self.licence,
            source=f"generated in code by {self.generator} (Style Studio repository)",
            evidence_text=(f"The {self.creator} made these artworks procedurally with "
                           f"{self.generator} (no source images) and dedicated them to the "
                           "public domain under CC0 1.0; the dedication is attached "
                           "(LICENSE.txt)."),
            evidence_file=evidence_file, status="cleared",
            notes="Demo style shipped with Style Studio.")


def style_palette(images: list[Image.Image], colours: int = PALETTE_COLOURS) -> np.ndarray:
    """The `colours` most representative RGB colours of a set of pictures (median cut)."""
    tiles = [im.convert("RGB").resize((64, 64)) for im in images]
    if not tiles:
        raise InvalidInput("A palette needs at least one picture.")
    sheet = Image.new("RGB", (64 * len(tiles), 64))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, (64 * k, 0))
    quantised = sheet.quantize(colours, method=Image.Quantize.MEDIANCUT)
    flat = np.array(quantised.getpalette()[: 3 * colours], dtype=np.float32)
    return flat.reshape(-1, 3)


def palette_distance(image: Image.Image, palette: np.ndarray) -> float:
    """Mean distance (RGB, 0-441) from each pixel to its nearest palette colour: how far
    a picture is from a style's colours, whatever it shows."""
    pixels = np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.float32).reshape(-1, 3)
    gaps = np.linalg.norm(pixels[:, None, :] - palette[None, :, :], axis=2)
    return float(gaps.min(axis=1).mean())


def demo_style(studio: Studio) -> Style | None:
    """The workspace's demo style, if it was opened before and still exists."""
    style_id = studio.store.meta_get(DEMO_KEY)
    if style_id and studio.store.get("styles", style_id):
        return studio.styles.get(style_id)
    return None


def open_demo_style(studio: Studio, folder: Path = DEMO_DIR) -> Style:
    """The demo style, made on first call (then simply selected): images ingested,
    captions approved, consent cleared, base model chosen. Idempotent; a failure halfway
    removes the half-made style, so the next call starts clean."""
    with studio.store.lock:  # two tabs clicking at once still make one demo style
        existing = demo_style(studio)
        if existing:
            return studio.styles.select(existing.id)
        assets = DemoAssets.load(folder)
        style = studio.styles.create(
            _free_name(studio, assets.name), trigger=assets.trigger, family=assets.family,
            notes=(f"Demo style: {len(assets.files)} artworks generated by "
                   f"{assets.generator}, the Style Studio project's own CC0 work. "
                   "Try the whole flow with it; delete it whenever you like."),
            base_model=studio.suggested_base_model(assets.family))
        try:
            _fill(studio, style, assets)
        except (StudioError, OSError) as exc:
            studio.styles.delete(style.id)
            raise InvalidInput(f"The demo style could not be set up: {exc}") from exc
        studio.store.meta_set(DEMO_KEY, style.id)
        studio.store.audit("demo.open", style.id, images=len(assets.files))
        return studio.styles.get(style.id)


def _free_name(studio: Studio, name: str) -> str:
    """The demo's name, or "name (2)" when the artist already has a style called that."""
    taken = {s.name.lower() for s in studio.styles.list()}
    candidate, n = name, 2
    while candidate.lower() in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def _fill(studio: Studio, style: Style, assets: DemoAssets) -> None:
    report = studio.images.ingest(style.id, assets.sources)
    if report.rejected or len(report.added) != len(assets.files):
        problems = "; ".join(f"{name}: {why}" for name, why in report.rejected)
        raise InvalidInput(f"{len(report.added)} of {len(assets.files)} artworks were "
                           f"imported ({problems or 'duplicates'}); recreate them with: "
                           f"{REMAKE}")
    captions = studio.caption_records.for_style(style.id)
    with studio.store.batch():
        for record in report.added:
            caption = captions.get(record.id)
            if caption is None or not caption.text:
                raise InvalidInput(f"{record.filename} has no caption sidecar; recreate "
                                   f"the demo files with: {REMAKE}")
            studio.caption_records.set(record.id, caption.text, approved=True,
                                       origin=caption.origin)
    evidence = studio.consent.attach_evidence(style.id, assets.licence_file)
    applied = studio.consent.set([r.id for r in report.added], assets.consent(evidence))
    if applied.skipped:
        raise InvalidInput("Consent could not be recorded: " + applied.summary())
