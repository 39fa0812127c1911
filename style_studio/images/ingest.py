"""One import run: plan the sources, check each file, store what passes, report the rest.

Each file is handled on its own: a bad file becomes a rejection with its reason and
the run goes on. Records are committed in small batches (TinyDB rewrites its whole
file on every write) and always before the run ends, even when it is stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_bytes, sha256_bytes, sha256_file
from style_studio.base.limits import DemoLimits
from style_studio.base.store import Store, new_id, utc_now
from style_studio.base.styles import Style
from style_studio.base.workspace import Workspace
from style_studio.captions.records import CaptionOrigin, CaptionRecords

from .checks import GPS_REMOVED, MB, IngestLimits, PreparedImage, prepare
from .perceptual import FLAT_HASH, hamming
from .records import Duplicate, ImageRecord, IngestReport
from .review import quality_warnings
from .sources import Rejection, SourceItem, SourcePlanner, materialised

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
NEAR_DUPLICATE_BITS = 6      # of 64: a resized or re-saved copy differs by 0-4
COMMIT_EVERY_S = 2.0
SCRATCH_DIR = ".incoming"
STALE_SCRATCH_S = 3600


@dataclass
class _Index:
    """What the style already holds, to find exact and near duplicates fast."""

    by_hash: dict[str, str] = field(default_factory=dict)  # sha256 or source sha256 -> id
    phashes: dict[str, str] = field(default_factory=dict)  # id -> phash

    def add(self, record: ImageRecord) -> None:
        self.by_hash.setdefault(record.sha256, record.id)
        self.by_hash.setdefault(record.source_sha256, record.id)
        self.phashes[record.id] = record.phash

    def near(self, phash: str) -> list[str]:
        if phash == FLAT_HASH:
            return []
        return [i for i, other in self.phashes.items()
                if other != FLAT_HASH and hamming(phash, other) <= NEAR_DUPLICATE_BITS]


class IngestRun:
    """Imports `paths` into one style; use once."""

    def __init__(self, store: Store, workspace: Workspace, captions: CaptionRecords,
                 style: Style, limits: IngestLimits, quota: DemoLimits | None = None):
        self.store = store
        self.quota = quota
        self._held = (0, 0)  # images and bytes already stored, for the demo's quota
        self.workspace = workspace
        self.captions = captions
        self.style = style
        self.limits = limits
        self.report = IngestReport()
        self.index = _Index()
        self._pending: list[tuple[ImageRecord, str | None]] = []
        self._links: list[tuple[str, str]] = []  # (committed image, new near-duplicate)
        self._pending_captions: list[tuple[str, str]] = []
        self._last_commit = time.monotonic()
        self.scratch = (workspace.style_dir(style.id) / SCRATCH_DIR / uuid.uuid4().hex)

    # -- the run ------------------------------------------------------------------
    def run(self, paths: list[Path], progress: Progress | None = None,
            should_stop: Callable[[], bool] | None = None) -> IngestReport:
        progress = progress or (lambda _fraction, _message: None)
        self._remove_stale_scratch()
        try:
            plan = SourcePlanner(self.limits).expand(paths)
            self.report.rejected.extend(plan.rejected)
            self.report.notices.extend(plan.notices)
            for doc in self.store.find("images", style_id=self.style.id):
                self.index.add(ImageRecord.from_doc(doc))
            every = self.store.all("images")
            self._held = (len(every), sum(int(d.get("bytes") or 0) for d in every))
            total = len(plan.items)
            for number, item in enumerate(plan.items):
                if should_stop and should_stop():
                    self._stopped(total - number)
                    break
                progress(number / max(total, 1), f"Checking {item.name} ({number + 1} of {total})")
                self._one(item)
                if time.monotonic() - self._last_commit > COMMIT_EVERY_S:
                    self._commit()
            self._gps_notice()
            progress(1.0, f"Imported {self.report.headline}")
        finally:
            self._commit()
            self._remove_scratch()
            self.workspace.discard_uploads(paths)
        return self.report

    def _gps_notice(self) -> None:
        """Name the images whose location was removed: the artist learns it was there."""
        names = [r.filename for r in self.report.added if GPS_REMOVED in r.normalised]
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more"
                                            if len(names) > 10 else "")
            self.report.notices.append(f"{GPS_REMOVED} from {len(names)} image"
                                       f"{'s' * (len(names) != 1)}: {shown}. The stored "
                                       "copies keep no metadata.")

    def _remove_scratch(self) -> None:
        """Remove this run's unpacked zip entries, and `.incoming/` itself once empty,
        so a finished import leaves no trace beside the images it stored."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        with contextlib.suppress(OSError):  # absent, or another import's scratch is in it
            self.scratch.parent.rmdir()

    def _stopped(self, remaining: int) -> None:
        self.report.stopped = True
        self.report.notices.append(f"Stopped by the artist: {remaining} file(s) were not "
                                   "checked or imported.")

    def _one(self, item: SourceItem) -> None:
        try:
            with materialised(item, self.scratch, self.limits) as path:
                source_sha = sha256_file(path)
                if source_sha in self.index.by_hash:
                    self._duplicate(item, self.index.by_hash[source_sha])
                    return
                prepared = prepare(path, self.limits)
        except InvalidInput as exc:
            self.report.rejected.append(Rejection(item.name, str(exc)))
            return
        except OSError as exc:
            self.report.rejected.append(Rejection(item.name, f"could not be read ({exc})"))
            return
        except Exception as exc:  # one odd file must never stop the batch
            log.exception("unexpected error importing %s", item.name)
            self.report.rejected.append(Rejection(
                item.name, f"could not be read ({type(exc).__name__}: {exc})"))
            return
        sha = sha256_bytes(prepared.data)
        if sha in self.index.by_hash:
            self._duplicate(item, self.index.by_hash[sha])
            return
        over = self._over_quota(len(prepared.data))
        if over:
            self.report.rejected.append(Rejection(item.name, over))
            return
        self._add(item, prepared, sha, source_sha)
        self._held = (self._held[0] + 1, self._held[1] + len(prepared.data))

    def _over_quota(self, size: int) -> str | None:
        """Why the demo's per-visitor quota refuses one more image, or None."""
        if self.quota is None:
            return None
        count, held = self._held
        if count + 1 > self.quota.max_images:
            return (f"not imported: this demo keeps at most {self.quota.max_images} images "
                    "per visitor")
        if held + size > self.quota.max_bytes:
            return (f"not imported: this demo keeps at most {self.quota.max_bytes // MB} MB "
                    "of images per visitor")
        return None

    def _duplicate(self, item: SourceItem, existing_id: str) -> None:
        """Skip an exact copy; its sidecar caption is still used if the image has none."""
        self.report.duplicates.append(Duplicate(item.name, existing_id))
        has_caption = (any(r.id == existing_id and c for r, c in self._pending)
                       or any(i == existing_id for i, _ in self._pending_captions)
                       or self.captions.get(existing_id) is not None)
        if item.caption and not has_caption:
            self._pending_captions.append((existing_id, item.caption))

    def _add(self, item: SourceItem, prepared: PreparedImage, sha: str, source_sha: str) -> None:
        style_dir = self.workspace.style_dir(self.style.id)
        stored_path = f"images/{sha}.{prepared.ext}"
        thumb_path = f"thumbs/{sha}.webp"
        atomic_write_bytes(style_dir / stored_path, prepared.data, durable=False)
        atomic_write_bytes(style_dir / thumb_path, prepared.thumb, durable=False)
        record = ImageRecord(
            id=new_id(), style_id=self.style.id, filename=item.filename,
            stored_path=stored_path, thumb_path=thumb_path, sha256=sha,
            source_sha256=source_sha, thumb_sha256=sha256_bytes(prepared.thumb),
            width=prepared.width, height=prepared.height, format=prepared.format,
            phash=prepared.phash, source_meta=prepared.meta.to_doc(), added_at=utc_now(),
            source=item.name, source_width=prepared.source_width,
            source_height=prepared.source_height,
            stored_format="JPEG" if prepared.ext == "jpg" else "PNG",
            bytes=len(prepared.data), sharpness=prepared.sharpness, normalised=prepared.notes)
        record.warnings = quality_warnings(record, self.style.family, self.style.base_model)
        self._link_near_duplicates(record)
        self.index.add(record)
        self._pending.append((record, item.caption))
        self.report.added.append(record)

    def _link_near_duplicates(self, record: ImageRecord) -> None:
        pending = {r.id: r for r, _ in self._pending}
        for other_id in self.index.near(record.phash):
            record.near_duplicates.append(other_id)
            if other_id in pending:
                pending[other_id].near_duplicates.append(record.id)
            else:
                self._links.append((other_id, record.id))

    # -- writing --------------------------------------------------------------------
    def _commit(self) -> None:
        """Write the pending records in one store write."""
        self._last_commit = time.monotonic()
        if not (self._pending or self._links or self._pending_captions):
            return
        imported = CaptionOrigin(kind="imported")
        if self._pending:
            os.sync()  # the files reach the disk before the records that point at them
        with self.store.batch():
            for record, _caption in self._pending:
                self.store.insert("images", record.to_doc())
            for existing_id, new_id_ in self._links:
                doc = self.store.get("images", existing_id)
                if doc is not None:
                    self.store.update("images", existing_id, near_duplicates=[
                        *doc.get("near_duplicates", []), new_id_])
            captions = [(r.id, c) for r, c in self._pending if c] + self._pending_captions
            for image_id, text in captions:
                if self.store.get("images", image_id) is not None:
                    self.captions.set(image_id, text, approved=False, origin=imported)
                    self.report.captions_imported += 1
            if self._pending:
                self.store.audit("image.import", self.style.id,
                                 images=[[r.id, r.sha256, r.filename] for r, _ in self._pending])
        self._pending, self._links, self._pending_captions = [], [], []

    def _remove_stale_scratch(self) -> None:
        """Scratch folders left by a crashed import hold unpacked copies: remove them."""
        root = self.scratch.parent
        if not root.exists():
            return
        for folder in root.iterdir():
            if time.time() - folder.stat().st_mtime > STALE_SCRATCH_S:
                shutil.rmtree(folder, ignore_errors=True)
