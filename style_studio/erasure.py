"""Erasure: remove every copy of an image and everything derived from it.

Removing an image in the Images tab and honouring a deletion request in the Consent
tab are this one mechanism. What stays is an audit entry with hashes, date and reason,
never pixels; every training run whose manifest lists the image is flagged.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .files import sha256_file
from .store import Store, utc_now
from .workspace import Workspace

ERASED_FLAG = "contains erased data"
REVOKED_FLAG = "contains data whose consent was revoked"
# Records keyed by the image id that go with the image.
IMAGE_TABLES = ("captions", "consents", "caption_undo")
# Exports the app wrote into Gradio's cache that may name an image by its hash.
TEXT_EXPORT_SUFFIXES = (".csv", ".json", ".txt")


@dataclass
class CacheIndex:
    """What Gradio's cache holds: files by content hash (a zip counts for each member's
    hash, since it is a copy of every image inside it) and text exports to search."""

    by_hash: dict[str, list[Path]] = field(default_factory=dict)
    text_exports: list[Path] = field(default_factory=list)

    def add(self, digest: str, path: Path) -> None:
        self.by_hash.setdefault(digest, []).append(path)

    def files_holding(self, hashes: set[str]) -> list[Path]:
        found = {p for h in hashes for p in self.by_hash.get(h, [])}
        for path in self.text_exports:
            try:
                text = path.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            if any(h in text for h in hashes):
                found.add(path)
        return sorted(found)


def _zip_member_hashes(path: Path) -> set[str]:
    """Hashes of every file inside a zip; an unreadable zip has none."""
    hashes = set()
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                digest = hashlib.sha256()
                with archive.open(info) as member:
                    while block := member.read(1 << 20):
                        digest.update(block)
                hashes.add(digest.hexdigest())
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError):
        return set()
    return hashes


@dataclass
class ErasureReport:
    image_id: str
    sha256: str
    deleted_files: list[str] = field(default_factory=list)
    flagged_runs: list[str] = field(default_factory=list)


def _hashes_of(doc: dict) -> set[str]:
    return {h for h in (doc.get("sha256"), doc.get("source_sha256"), doc.get("thumb_sha256"))
            if h}


def _delete(path: Path, report: ErasureReport) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        report.deleted_files.append(str(path))
    elif path.exists():
        path.unlink()
        report.deleted_files.append(str(path))


class Eraser:
    """Deletes an image's files and records, and flags runs trained on it."""

    def __init__(self, store: Store, workspace: Workspace):
        self.store = store
        self.workspace = workspace

    def erase_image(self, image_id: str, reason: str, action: str = "image.erase",
                    cache_index: CacheIndex | None = None) -> ErasureReport:
        """Erase one image; pass `cache_index()` when erasing many, to hash the cache once."""
        doc = self.store.require("images", image_id, "Image")
        style_id = doc["style_id"]
        report = ErasureReport(image_id=image_id, sha256=doc["sha256"])
        for rel in (doc.get("stored_path"), doc.get("thumb_path")):
            if rel:
                _delete(self.workspace.style_dir(style_id) / rel, report)
        _delete(self.workspace.cache_dir(style_id) / doc["sha256"], report)
        self._delete_cached_copies(_hashes_of(doc), report, cache_index)
        self._delete_evidence(doc, style_id, report)
        with self.store.batch():
            self.store.remove("images", image_id)
            for table in IMAGE_TABLES:
                self.store.remove(table, image_id)
            report.flagged_runs = self.flag_runs(style_id, doc["sha256"], ERASED_FLAG)
            self.store.audit(action, style_id, image_id=image_id, sha256=doc["sha256"],
                             source_sha256=doc.get("source_sha256"),
                             filename=doc.get("filename"), reason=reason,
                             files_deleted=len(report.deleted_files),
                             flagged_runs=report.flagged_runs)
        return report

    def flag_runs(self, style_id: str, sha256: str, flag: str) -> list[str]:
        """Mark every run whose manifest lists `sha256`; returns the run ids."""
        flagged = []
        for run in self.store.find("runs", style_id=style_id):
            if sha256 in run.get("image_hashes", []):
                flags = list(run.get("flags", []))
                if flag not in flags:
                    flags.append(flag)
                self.store.update("runs", run["id"], flags=flags, flagged_at=utc_now())
                flagged.append(run["id"])
        return flagged

    def cache_index(self) -> CacheIndex:
        """Index Gradio's cache once; a file that vanishes meanwhile is skipped."""
        index = CacheIndex()
        cache = self.workspace.upload_cache
        for path in cache.rglob("*") if cache.exists() else ():
            try:
                if not path.is_file():
                    continue
                index.add(sha256_file(path), path)
                if path.suffix.lower() == ".zip":
                    for digest in _zip_member_hashes(path):
                        index.add(digest, path)
                elif path.suffix.lower() in TEXT_EXPORT_SUFFIXES:
                    index.text_exports.append(path)
            except OSError:
                continue
        return index

    def _delete_cached_copies(self, hashes: set[str], report: ErasureReport,
                              cache_index: CacheIndex | None = None) -> None:
        """Gradio's cache holds uploads, served thumbnails and exports (zips of images,
        ledgers naming the image): delete every one that holds the image or its hash."""
        index = self.cache_index() if cache_index is None else cache_index
        for path in index.files_holding(hashes):
            _delete(path, report)

    def _delete_evidence(self, doc: dict, style_id: str, report: ErasureReport) -> None:
        """A permission document kept for this image only goes with it."""
        consent = self.store.get("consents", doc["id"]) or {}
        evidence = consent.get("evidence_file")
        if not evidence:
            return
        still_used = [c for c in self.store.find("consents", style_id=style_id)
                      if c.get("evidence_file") == evidence and c["id"] != doc["id"]]
        if not still_used:
            _delete(self.workspace.style_dir(style_id) / evidence, report)
