"""The Images service: import, look at, review and remove the images of a style.

`studio.images` is what the Images tab, the other tabs and the tests use. Import is
`ingest` (synchronous, with a progress callback) or `start_ingest` (the same as a
job); removal goes through the one erasure mechanism (`Eraser.erase_image`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from style_studio.base.erasure import Eraser, ErasureReport
from style_studio.base.errors import InvalidInput
from style_studio.base.files import sha256_file
from style_studio.base.jobs import Job, JobRunner
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.base.store import Store
from style_studio.base.styles import Styles
from style_studio.base.workspace import Workspace
from style_studio.captions.records import CaptionRecords

from .checks import IngestLimits, configure_pillow
from .ingest import IngestRun, Progress
from .records import Duplicate, ImageRecord, IngestReport
from .review import (
    FILTERS,
    Filter,
    GalleryItem,
    ImageReview,
    ImageSummary,
    NearDuplicatePair,
)
from .sources import Rejection

INGEST_JOB = "images.ingest"
SERVED_DIR = "served"

__all__ = ["FILTERS", "INGEST_JOB", "Duplicate", "Filter", "GalleryItem", "ImageRecord",
           "ImageSummary", "Images", "IngestLimits", "IngestReport", "NearDuplicatePair",
           "Rejection"]


class Images:
    """Images of a style: ingest, list, summary, near-duplicate review, removal."""

    def __init__(self, store: Store, workspace: Workspace, styles: Styles,
                 captions: CaptionRecords, erasure: Eraser, jobs: JobRunner,
                 limits: IngestLimits | None = None, quota: DemoLimits | None = None):
        self.store = store
        self.workspace = workspace
        self.styles = styles
        self.captions = captions
        self.erasure = erasure
        self.jobs = jobs
        self.limits = limits or IngestLimits()
        self.quota = quota
        self.review = ImageReview(store, captions)
        configure_pillow()

    # -- import -------------------------------------------------------------------
    def ingest(self, style_id: str, paths: list[Path], progress: Progress | None = None,
               should_stop: Callable[[], bool] | None = None,
               shipped: bool = False) -> IngestReport:
        """Import image files, `.zip` archives and folders (recursively) into a style.

        Bad files are rejected with a reason, exact copies skipped, near-duplicates
        flagged; `.txt` sidecars become draft captions. Copies that Gradio placed in
        the workspace's upload cache are deleted afterwards.
        """
        style = self.styles.get(style_id)
        if not paths:
            raise InvalidInput("Choose some images, a zip or a folder to import.")
        if not shipped:  # the demo's own artworks ship with the app; a visitor's paths never
            self._uploads_only(paths)
        run = IngestRun(self.store, self.workspace, self.captions, style, self.limits,
                        self.quota)
        return run.run([Path(p) for p in paths], progress, should_stop)

    def start_ingest(self, style_id: str, paths: list[Path]) -> Job:
        """Run `ingest` as a job (progress, stop) so a large import never blocks the page."""
        style = self.styles.get(style_id)
        paths = [Path(p) for p in paths]
        if not paths:
            raise InvalidInput("Choose some images, a zip or a folder to import.")
        self._uploads_only(paths)

        def work(ctx) -> dict:
            report = self.ingest(style_id, paths, progress=ctx.progress,
                                 should_stop=lambda: ctx.cancel_requested)
            return report.to_dict()

        label = paths[0].name if len(paths) == 1 else f"{len(paths)} items"
        return self.jobs.submit(INGEST_JOB, work, title=f"Import {label} into {style.name}",
                                style_id=style_id,
                                params={"files": [p.name for p in paths[:100]],
                                        "count": len(paths)},
                                uses_device=False)

    def _uploads_only(self, paths: list[Path]) -> None:
        """On a public demo only uploaded files are read: a folder or path on the server
        (its own disk) is never imported, from the page or the API."""
        if self.quota is None:
            return
        outside = [p for p in paths if not self.workspace.received_upload(p)]
        if outside:
            self.workspace.discard_uploads(paths)
            raise LimitReached("This demo imports uploaded files only; importing a folder or "
                               f"a path on the server is turned off ({outside[0].name}).")

    def last_import(self, style_id: str) -> Job | None:
        """The newest import job of the style (running or finished), to reattach to."""
        jobs = self.jobs.list(style_id=style_id, kind=INGEST_JOB, limit=1)
        return jobs[0] if jobs else None

    # -- reading ------------------------------------------------------------------------
    def get(self, image_id: str) -> ImageRecord:
        return ImageRecord.from_doc(self.store.require("images", image_id, "Image"))

    def list(self, style_id: str) -> list[ImageRecord]:
        return self.review.records(style_id)

    def items(self, style_id: str, which: Filter = "all") -> list[GalleryItem]:
        """Images with caption/consent status and warnings, filtered for the gallery."""
        style = self.styles.get(style_id)
        return self.review.items(style_id, style.family, which, style.base_model)

    def summary(self, style_id: str) -> ImageSummary:
        """Where the artist stands, e.g. "32 images; 3 need captions; 2 need consent"."""
        style = self.styles.get(style_id)
        return self.review.summary(style_id, style.family, style.base_model)

    def near_duplicate_pairs(self, style_id: str) -> list[NearDuplicatePair]:
        return self.review.near_duplicate_pairs(style_id)

    def path(self, image_id: str) -> Path:
        """The stored (normalised) copy: what training reads."""
        record = self.get(image_id)
        return self.workspace.style_dir(record.style_id) / record.stored_path

    def thumb(self, image_id: str) -> Path:
        record = self.get(image_id)
        return self.workspace.style_dir(record.style_id) / record.thumb_path

    def servable(self, image_id: str, kind: str = "thumb") -> Path:
        """A byte-exact copy the web page may show, inside Gradio's cache folder.

        The style folders are never served; this copy has the same sha256 as the
        original, so erasure finds and deletes it with every other copy.
        """
        record = self.get(image_id)
        source = self.thumb(image_id) if kind == "thumb" else self.path(image_id)
        expected = record.thumb_sha256 if kind == "thumb" else record.sha256
        target = self.workspace.upload_cache / SERVED_DIR / image_id / source.name
        if not target.exists() or sha256_file(target) != expected:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return target

    # -- curation -------------------------------------------------------------------
    def keep_both(self, image_id: str, other_id: str) -> None:
        """The artist looked at a near-duplicate pair and keeps both: stop flagging it."""
        first, second = self.get(image_id), self.get(other_id)
        with self.store.batch():
            for record, other in ((first, second), (second, first)):
                self.store.update(
                    "images", record.id,
                    near_duplicates=[i for i in record.near_duplicates if i != other.id],
                    near_duplicates_kept=sorted({*record.near_duplicates_kept, other.id}))
            self.store.audit("image.keep_near_duplicates", first.style_id,
                             images=[first.id, second.id])

    def remove(self, image_id: str, reason: str = "removed by the artist") -> ErasureReport:
        """Remove an image from its style: every file and record of it (the UI asks first)."""
        record = self.get(image_id)
        report = self.erasure.erase_image(image_id, reason, action="image.remove")
        with self.store.batch():
            for doc in self.store.find("images", style_id=record.style_id):
                if image_id in doc.get("near_duplicates", []) + doc.get(
                        "near_duplicates_kept", []):
                    self.store.update(
                        "images", doc["id"],
                        near_duplicates=[i for i in doc.get("near_duplicates", [])
                                         if i != image_id],
                        near_duplicates_kept=[i for i in doc.get("near_duplicates_kept", [])
                                              if i != image_id])
        shutil.rmtree(self.workspace.upload_cache / SERVED_DIR / image_id, ignore_errors=True)
        return report
