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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from style_studio.base.errors import InvalidInput, NotFound, StudioError
from style_studio.base.store import Store
from style_studio.base.styles import Style, Styles
from style_studio.captions.records import CaptionRecords
from style_studio.consent.records import ConsentRecord
from style_studio.consent.service import Consent
from style_studio.images.service import Images

DEMO_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo-style"
DEMO_KEY = "demo_style_id"
REMAKE = "python scripts/make_demo_style.py"


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


class DemoStyle:
    """Opens the demo style through the same services an artist's own work goes through."""

    def __init__(self, store: Store, styles: Styles, images: Images,
                 caption_records: CaptionRecords, consent: Consent,
                 suggested_base_model: Callable[[str], str | None]):
        self.store = store
        self.styles = styles
        self.images = images
        self.caption_records = caption_records
        self.consent = consent
        self.suggested_base_model = suggested_base_model

    def existing(self) -> Style | None:
        """The workspace's demo style, if it was opened before and still exists."""
        style_id = self.store.meta_get(DEMO_KEY)
        if style_id and self.store.get("styles", style_id):
            return self.styles.get(style_id)
        return None

    def open(self, folder: Path = DEMO_DIR) -> Style:
        """The demo style, made on first call (then simply selected): images ingested,
        captions approved, consent cleared, base model chosen. Idempotent; a failure halfway
        removes the half-made style, so the next call starts clean."""
        with self.store.lock:  # two tabs clicking at once still make one demo style
            existing = self.existing()
            if existing:
                return self.styles.select(existing.id)
            assets = DemoAssets.load(folder)
            style = self.styles.create(
                self._free_name(assets.name), trigger=assets.trigger, family=assets.family,
                notes=(f"Demo style: {len(assets.files)} artworks generated by "
                       f"{assets.generator}, the Style Studio project's own CC0 work. "
                       "Try the whole flow with it; delete it whenever you like."),
                base_model=self.suggested_base_model(assets.family))
            try:
                self._fill(style, assets)
            except (StudioError, OSError) as exc:
                self.styles.delete(style.id)
                raise InvalidInput(f"The demo style could not be set up: {exc}") from exc
            self.store.meta_set(DEMO_KEY, style.id)
            self.store.audit("demo.open", style.id, images=len(assets.files))
            return self.styles.get(style.id)

    def _free_name(self, name: str) -> str:
        """The demo's name, or "name (2)" when the artist already has a style called that."""
        taken = {s.name.lower() for s in self.styles.list()}
        candidate, n = name, 2
        while candidate.lower() in taken:
            candidate, n = f"{name} ({n})", n + 1
        return candidate

    def _fill(self, style: Style, assets: DemoAssets) -> None:
        report = self.images.ingest(style.id, assets.sources, shipped=True)
        if report.rejected or len(report.added) != len(assets.files):
            problems = "; ".join(f"{name}: {why}" for name, why in report.rejected)
            raise InvalidInput(f"{len(report.added)} of {len(assets.files)} artworks were "
                               f"imported ({problems or 'duplicates'}); recreate them with: "
                               f"{REMAKE}")
        captions = self.caption_records.for_style(style.id)
        with self.store.batch():
            for record in report.added:
                caption = captions.get(record.id)
                if caption is None or not caption.text:
                    raise InvalidInput(f"{record.filename} has no caption sidecar; recreate "
                                       f"the demo files with: {REMAKE}")
                self.caption_records.set(record.id, caption.text, approved=True,
                                         origin=caption.origin)
        evidence = self.consent.attach_evidence(style.id, assets.licence_file)
        applied = self.consent.set([r.id for r in report.added], assets.consent(evidence))
        if applied.skipped:
            raise InvalidInput("Consent could not be recorded: " + applied.summary())
