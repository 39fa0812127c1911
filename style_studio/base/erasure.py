"""Erasure: remove every copy of an image and everything derived from it.

Removing an image in the Images tab and honouring a deletion request in the Consent
tab are this one mechanism. What stays is said in docs/erasure.md: hashes and dates
(an audit entry, the erasure journal, run manifests and LoRA metadata), never pixels,
captions or names. Every training run whose manifest lists the image is flagged and its
files are redacted. The erasure is journaled first, outside the database, so that no
restore of the database from a backup can bring the image back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .erasure_journal import ErasureJournal, JournalEntry
from .files import sha256_file
from .run_redaction import erased_label, redact_run
from .store import Store, utc_now
from .workspace import Workspace

ERASED_FLAG = "contains erased data"
REVOKED_FLAG = "contains data whose consent was revoked"
# Records keyed by the image id that go with the image.
IMAGE_TABLES = ("captions", "consents", "caption_undo")
# Exports the app wrote into Gradio's cache that may name an image or quote its caption.
# .jsonl: dataset metadata; .c2pa: a LoRA's credentials quote creators and image hashes
TEXT_EXPORT_SUFFIXES = (".csv", ".json", ".jsonl", ".txt", ".md", ".c2pa")
MAX_TEXT_BYTES = 32 * 1024 * 1024
# Shorter words are too common to search for (a caption "sea" is in many other texts).
MIN_NEEDLE = 4
REAPPLIED_REASON = "re-applied from the erasure journal after the database was restored"


@dataclass
class CacheIndex:
    """What Gradio's cache holds: files by content hash (a zip counts for each member's
    hash, since it is a copy of every image inside it) and text exports to search."""

    by_hash: dict[str, list[Path]] = field(default_factory=dict)
    text_exports: list[Path] = field(default_factory=list)

    def add(self, digest: str, path: Path) -> None:
        self.by_hash.setdefault(digest, []).append(path)

    def files_holding(self, hashes: Iterable[str], texts: Iterable[str] = ()) -> list[Path]:
        """Copies of any of `hashes`, and text exports (zips too) naming a hash or quoting
        one of `texts` (a caption, a creator's name)."""
        hashes, needles = set(hashes), [*hashes, *texts]
        found = {p for h in hashes for p in self.by_hash.get(h, [])}
        for path in self.text_exports:
            text = _readable_text(path)
            if any(needle in text for needle in needles):
                found.add(path)
        return sorted(found)


def _readable_text(path: Path) -> str:
    """A text export's text; for a zip, the text of its text members."""
    try:
        if path.suffix.lower() != ".zip":
            return path.read_text(encoding="utf-8", errors="ignore")
        parts = []
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if (Path(info.filename).suffix.lower() in TEXT_EXPORT_SUFFIXES
                        and info.file_size <= MAX_TEXT_BYTES):
                    parts.append(archive.read(info).decode("utf-8", errors="ignore"))
        return "\n".join(parts)
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError):
        return ""


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
    redacted_files: list[str] = field(default_factory=list)


@dataclass
class ErasedImage:
    """What an erasure must find again, read before the image's records go.

    `names` are the creator names recorded for this image only (a name that other images
    still carry is theirs too and stays); `filename` likewise, when no other image has it.
    """

    image_id: str
    style_id: str
    sha256: str
    hashes: set[str]
    date: str
    caption: str = ""
    names: list[str] = field(default_factory=list)
    filename: str = ""

    @property
    def label(self) -> str:
        return erased_label(self.date)

    def texts(self) -> list[str]:
        """Words that identify the image or its creator, to search copies for."""
        found = [self.caption, *self.names, self.filename]
        return [t for t in dict.fromkeys(found) if len(t.strip()) >= MIN_NEEDLE]

    def personal(self) -> list[str]:
        """The same without the caption: the strings replaced inside other records."""
        return [t for t in (*self.names, self.filename) if len(t.strip()) >= MIN_NEEDLE]


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


def _names(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [" ".join(str(v).split()) for v in values if v and str(v).strip()]


def _image_names(image: dict, consent: dict | None) -> list[str]:
    """Every creator name recorded for an image: its consent, the consent's history and
    the file's own metadata."""
    meta = image.get("source_meta") or {}
    names = _names(meta.get("creator")) + _names(meta.get("credit"))
    if consent:
        names += _names(consent.get("creator"))
        names += [n for h in consent.get("history") or [] for n in _names(h.get("creator"))]
    return list(dict.fromkeys(names))


class Eraser:
    """Deletes an image's files and records, and flags and redacts runs trained on it."""

    def __init__(self, store: Store, workspace: Workspace):
        self.store = store
        self.workspace = workspace
        self.journal = ErasureJournal(workspace.erasure_journal)
        # Rebuilds a run's model card and report from its redacted manifest and signs its
        # redacted LoRAs again; the Studio sets it to Training.refresh_after_erasure
        # (training and credentials sit above this module).
        self.card_writer: Callable[[str], None] | None = None

    def erase_image(self, image_id: str, reason: str, action: str = "image.erase",
                    cache_index: CacheIndex | None = None) -> ErasureReport:
        """Erase one image; pass `cache_index()` when erasing many, to hash the cache once."""
        doc = self.store.require("images", image_id, "Image")
        when = utc_now()
        # Journal first: whatever happens next, reopening the studio finishes the erasure.
        self.journal.append(JournalEntry(
            at=when, image_id=image_id, style_id=doc["style_id"], sha256=doc["sha256"],
            source_sha256=doc.get("source_sha256") or "",
            thumb_sha256=doc.get("thumb_sha256") or ""))
        return self._erase(doc, reason, action, when, cache_index)

    def _erase(self, doc: dict, reason: str, action: str, when: str,
               cache_index: CacheIndex | None) -> ErasureReport:
        style_id = doc["style_id"]
        erased = self._describe(doc, when)
        report = ErasureReport(image_id=doc["id"], sha256=doc["sha256"])
        for rel in (doc.get("stored_path"), doc.get("thumb_path")):
            if rel:
                _delete(self.workspace.style_dir(style_id) / rel, report)
        _delete(self.workspace.cache_dir(style_id) / doc["sha256"], report)
        index = self.cache_index() if cache_index is None else cache_index
        for path in index.files_holding(erased.hashes, erased.texts()):
            _delete(path, report)
        self._delete_evidence(doc, style_id, report)
        with self.store.batch():
            self.store.remove("images", doc["id"])
            for table in IMAGE_TABLES:
                self.store.remove(table, doc["id"])
            report.flagged_runs = self.flag_runs(style_id, doc["sha256"], ERASED_FLAG,
                                                 before=when)
            self._scrub_records(erased)
            self.store.audit(action, style_id, image_id=doc["id"], sha256=doc["sha256"],
                             source_sha256=doc.get("source_sha256"),
                             reason=_scrub(reason, erased),
                             files_deleted=len(report.deleted_files),
                             flagged_runs=report.flagged_runs)
        self._redact_runs(erased, report, index)
        self._delete_database_copies(erased, report)
        self.store.replace_backup()  # else studio.json.bak is the state from before
        return report

    def _describe(self, doc: dict, when: str) -> ErasedImage:
        image_id = doc["id"]
        caption = (self.store.get("captions", image_id) or {}).get("text") or ""
        names = _image_names(doc, self.store.get("consents", image_id))
        others = self.store.find("images")
        consents = {c["id"]: c for c in self.store.all("consents")}
        still_used = {n.casefold() for other in others if other["id"] != image_id
                      for n in _image_names(other, consents.get(other["id"]))}
        filename = doc.get("filename") or ""
        if any(o.get("filename") == filename for o in others if o["id"] != image_id):
            filename = ""
        return ErasedImage(
            image_id=image_id, style_id=doc["style_id"], sha256=doc["sha256"],
            hashes=_hashes_of(doc), date=when[:10], caption=caption.strip(),
            names=[n for n in names if n.casefold() not in still_used], filename=filename)

    def flag_runs(self, style_id: str, sha256: str, flag: str,
                  before: str | None = None) -> list[str]:
        """Mark every run whose manifest lists `sha256` (created up to `before`, if
        given); returns the run ids. A run already carrying the flag is not rewritten."""
        flagged = []
        for run in self._runs_with(style_id, sha256, before):
            flags = list(run.get("flags", []))
            if flag not in flags:
                self.store.update("runs", run["id"], flags=[*flags, flag],
                                  flagged_at=utc_now())
            flagged.append(run["id"])
        return flagged

    def _runs_with(self, style_id: str, sha256: str, before: str | None) -> list[dict]:
        """Runs of the style trained on `sha256` (and created up to `before`, if given:
        a later run used a copy imported again after the erasure)."""
        return [run for run in self.store.find("runs", style_id=style_id)
                if sha256 in run.get("image_hashes", [])
                and not (before and run.get("created_at") and run["created_at"] > before)]

    # -- records, runs and database copies that mention the image ----------------------
    def _scrub_records(self, erased: ErasedImage) -> None:
        """The audit log and job records keep what happened, not whose: the image's file
        name and creator become "[erased <date>]" there (hashes and ids stay)."""
        for table in ("audit", "jobs"):
            for doc in self.store.all(table):
                body = {k: v for k, v in doc.items() if k != "id"}
                clean = _scrub(body, erased)
                if clean != body:
                    self.store.update(table, doc["id"], **clean)

    def _redact_runs(self, erased: ErasedImage, report: ErasureReport,
                     index: CacheIndex) -> None:
        """Files written before the erasure lose the caption and the creator; copies of
        their old versions in the app's cache are deleted."""
        for run in self.store.find("runs", style_id=erased.style_id):
            run_dir = self.workspace.run_dir(erased.style_id, run["id"])
            result = redact_run(run_dir, sha256=erased.sha256, image_id=erased.image_id,
                                date=erased.date, flags=list(run.get("flags", [])))
            if not result.changed:
                continue
            if self.card_writer is not None:
                self.card_writer(run["id"])
            report.redacted_files += [str(p) for p in result.changed]
            for path in index.files_holding(result.old_hashes):
                _delete(path, report)

    def _delete_database_copies(self, erased: ErasedImage, report: ErasureReport) -> None:
        """A damaged database set aside at a restore, or a temp file a crash left, is an
        old copy of the records: one that still holds the image goes too."""
        markers = [f"images/{erased.sha256}", f"thumbs/{erased.sha256}", *erased.texts()]
        root = self.workspace.root
        with self.store.lock:
            for path in [*root.glob("studio.json.damaged-*"), *root.glob(".studio.*.tmp")]:
                try:
                    text = path.read_text(encoding="utf-8", errors="ignore")
                except OSError:
                    continue
                if any(marker in text for marker in markers):
                    _delete(path, report)

    # -- after a restore -------------------------------------------------------------------
    def reapply_journal(self) -> list[str]:
        """Erase again whatever the journal says was erased and the database holds again
        (it was restored from a backup older than the erasure); returns notices."""
        entries = self.journal.entries()
        if not entries:
            return []
        redone = flagged = 0
        for entry in entries:
            doc = self.store.get("images", entry.image_id)
            if doc is not None and doc.get("sha256") == entry.sha256:
                self._erase(doc, REAPPLIED_REASON, "erasure.reapply", entry.at, None)
                redone += 1
                continue
            leftovers = [t for t in IMAGE_TABLES if self.store.get(t, entry.image_id)]
            missing = [r for r in self._runs_with(entry.style_id, entry.sha256, entry.at)
                       if ERASED_FLAG not in r.get("flags", [])]
            if not (leftovers or missing):
                continue  # the usual case: nothing to do, and nothing is written
            with self.store.batch():
                for table in leftovers:
                    self.store.remove(table, entry.image_id)
                self.flag_runs(entry.style_id, entry.sha256, ERASED_FLAG, before=entry.at)
            if missing:
                flagged += len(missing)
                erased = ErasedImage(entry.image_id, entry.style_id, entry.sha256,
                                     entry.hashes, entry.date)
                self._redact_runs(erased, ErasureReport(entry.image_id, entry.sha256),
                                  self.cache_index())
        if self._backup_holds({e.image_id for e in entries}):
            self.store.replace_backup()
        if not (redone or flagged):
            return []
        return [f"The erasure journal was applied again: the database had been restored from "
                f"a backup older than {redone} erasure(s); those images are erased again"
                + (f" and {flagged} run flag(s) restored" if flagged else "") + "."]

    def _backup_holds(self, image_ids: set[str]) -> bool:
        """Whether studio.json.bak still has a record of an erased image."""
        try:
            data = json.loads(self.store.backup_path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return False
        return any(isinstance(doc, dict) and doc.get("id") in image_ids
                   for table in ("images", *IMAGE_TABLES)
                   for doc in (data.get(table) or {}).values())

    # -- Gradio's cache and evidence ----------------------------------------------------------
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
                    index.text_exports.append(path)
                elif path.suffix.lower() in TEXT_EXPORT_SUFFIXES:
                    index.text_exports.append(path)
            except OSError:
                continue
        return index

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


def _scrub(value: Any, erased: ErasedImage) -> Any:
    """A copy of a stored value with the image's file name and creator replaced."""
    if isinstance(value, dict):
        out = {k: _scrub(v, erased) for k, v in value.items()}
        if value.get("image_id") == erased.image_id:
            for key in ("filename", "creator", "caption", "text"):
                if isinstance(out.get(key), str) and out[key]:
                    out[key] = erased.label
        return out
    if isinstance(value, list):
        items = [_scrub(v, erased) for v in value]
        if erased.image_id in value:  # e.g. an import's [image id, sha256, file name]
            name = value[2] if len(value) == 3 and isinstance(value[2], str) else None
            items = [erased.label if v == name and name else v for v in items]
        return items
    if isinstance(value, str):
        for needle in erased.personal():
            value = value.replace(needle, erased.label)
        return value
    return value
