"""Consent records: who made each image, under what licence, with what permission.

One record per image (doc id == image id). Until the artist saves one, an image shows a
record prefilled from the file's own metadata (creator, rights notice, IPTC DataMining),
which is never written behind their back. Every saved change keeps the previous version
in the record's history. The training gate, revocation and erasure start from here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from style_studio.base.erasure import REVOKED_FLAG, Eraser
from style_studio.base.errors import InvalidInput, NotFound, StudioError
from style_studio.base.files import sha256_file, slug
from style_studio.base.licences import (
    OVERRIDES_METADATA_REFUSAL,
    OWN_WORK,
    metadata_refusal,
)
from style_studio.base.store import Store, utc_now
from style_studio.base.workspace import Workspace

from . import ledger
from .dataset import write_dataset
from .gate import TrainingPlan, build_plan
from .records import (
    CONSENT_FIELDS,
    EVIDENCE_TYPES,
    MAX_EVIDENCE_BYTES,
    ApplyReport,
    ConsentRecord,
    DatasetExport,
    EraseReport,
    ImageConsent,
    prefill,
)

if TYPE_CHECKING:
    from style_studio.captions.records import CaptionRecords


def _ids(image_ids: str | Iterable[str]) -> list[str]:
    ids = [image_ids] if isinstance(image_ids, str) else list(dict.fromkeys(image_ids))
    if not ids:
        raise InvalidInput("Select at least one image first.")
    return ids


def _reason(reason: str, action: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput(f"Write why you {action} (for example 'deletion request from the "
                           "creator, email of 3 May'); it is kept in the audit log.")
    return reason


def _same_person(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


T = TypeVar("T")

class Consent:
    """Consent records, the training gate, revocation, erasure and the ledger of a studio."""

    def __init__(self, store: Store, workspace: Workspace, eraser: Eraser,
                 captions: CaptionRecords):
        self.store = store
        self.workspace = workspace
        self.eraser = eraser
        self.captions = captions

    # -- reading ------------------------------------------------------------------------
    def _consent(self, image: dict[str, Any], doc: dict[str, Any] | None) -> ImageConsent:
        refusal = metadata_refusal(image.get("source_meta"))
        base = ImageConsent(image["id"], image["style_id"], image.get("filename", ""),
                            image.get("sha256", ""), prefill(image), False, refusal)
        if doc is None:
            return base
        return replace(base, record=ConsentRecord.from_doc(doc), saved=True,
                       history=list(doc.get("history") or []),
                       updated_at=doc.get("updated_at", ""))

    def _images(self, style_id: str) -> list[dict[str, Any]]:
        return sorted(self.store.find("images", style_id=style_id),
                      key=lambda d: (d.get("added_at", ""), d.get("filename", ""), d["id"]))

    def get(self, image_id: str) -> ImageConsent:
        image = self.store.require("images", image_id, "Image")
        return self._consent(image, self.store.get("consents", image_id))

    def for_style(self, style_id: str) -> list[ImageConsent]:
        """Every image of the style with its consent, in the order they were added."""
        docs = {d["id"]: d for d in self.store.find("consents", style_id=style_id)}
        return [self._consent(image, docs.get(image["id"])) for image in self._images(style_id)]

    def creators(self, style_id: str | None = None) -> dict[str, int]:
        """Creator name -> number of images, across one style or the whole studio."""
        counts: dict[str, int] = {}
        for consent in self._all(style_id):
            name = consent.record.creator or "unknown"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: kv[0].casefold()))

    def _all(self, style_id: str | None) -> list[ImageConsent]:
        if style_id:
            return self.for_style(style_id)
        return [c for s in self.store.all("styles") for c in self.for_style(s["id"])]

    # -- writing ------------------------------------------------------------------------
    def set(self, image_ids: str | Iterable[str], record: ConsentRecord,
            fields: Iterable[str] | None = None) -> ApplyReport:
        """Apply one record to one or many images, in one write.

        `fields` limits the change to those fields (each image keeps its other values),
        which is how a bulk edit sets only the licence, say. Without it the whole record
        replaces the old one. An image that cannot take the record is skipped with a reason.
        """
        chosen = self._fields(fields)
        clean = record.cleaned()
        return self._apply([(i, clean, chosen) for i in _ids(image_ids)])

    def set_all(self, style_id: str, record: ConsentRecord,
                fields: Iterable[str] | None = None) -> ApplyReport:
        ids = [image["id"] for image in self._images(style_id)]
        if not ids:
            raise InvalidInput("This style has no images yet; add some in the Images tab.")
        return self.set(ids, record, fields)

    def own_work(self, style_id: str, creator: str,
                 image_ids: Iterable[str] | None = None) -> ApplyReport:
        """The shortcut "all of these are my own work": cleared, own work, all rights reserved."""
        creator = " ".join((creator or "").split())
        if not creator:
            raise InvalidInput("Write your name first, so the ledger says who made these images.")
        record = ConsentRecord(creator=creator, relationship="own", licence=OWN_WORK,
                               status="cleared", source="made by the artist")
        chosen = ("creator", "relationship", "licence", "status", "reason")
        if image_ids is None:
            return self.set_all(style_id, record, chosen)
        return self.set(list(image_ids), record, chosen)

    def revoke(self, image_ids: str | Iterable[str], reason: str) -> ApplyReport:
        """Consent withdrawn: the files stay, training is refused, runs that used them are
        flagged "contains data whose consent was revoked"."""
        record = ConsentRecord(status="revoked", reason=_reason(reason, "revoke consent"))
        return self.set(image_ids, record, ("status", "reason"))

    def _fields(self, chosen: Iterable[str] | None) -> tuple[str, ...]:
        names = tuple(CONSENT_FIELDS if chosen is None else chosen)
        unknown = [n for n in names if n not in CONSENT_FIELDS]
        if unknown:
            raise InvalidInput(f"Unknown consent field(s): {', '.join(unknown)}.")
        return names

    def _apply(self, changes: list[tuple[str, ConsentRecord, tuple[str, ...]]]) -> ApplyReport:
        report = ApplyReport()
        now = utc_now()
        with self.store.batch():
            for image_id, record, chosen in changes:
                image = self.store.get("images", image_id)
                if image is None:
                    report.skipped.append((image_id, "no such image (it may have been erased)"))
                    continue
                current = self._consent(image, self.store.get("consents", image_id))
                new = replace(current.record, **{k: getattr(record, k) for k in chosen})
                if new.status != current.record.status and not (
                        "date" in chosen and record.date):
                    new.date = now[:10]  # unless given, a status change is dated today
                problem = self._problem(current, new)
                if problem:
                    report.skipped.append((current.filename or image_id, problem))
                elif new == current.record:
                    report.unchanged.append(image_id)
                else:
                    self._write(current, new, now)
                    report.changed.append(image_id)
                    if new.status == "revoked" and current.record.status != "revoked":
                        report.flagged_runs += self._revoked(current, new.reason)
        return report

    def _problem(self, current: ImageConsent, new: ConsentRecord) -> str | None:
        if new.evidence_file and not self._evidence_exists(current.style_id, new.evidence_file):
            return (f"the evidence file '{new.evidence_file}' is not in this style's "
                    "evidence folder; attach it again")
        if (new.status == "cleared" and current.metadata_refusal
                and new.licence not in OVERRIDES_METADATA_REFUSAL):
            return (f"{current.metadata_refusal}; only your own work or written permission "
                    "(with evidence) can clear it")
        return None

    def _write(self, current: ImageConsent, new: ConsentRecord, now: str) -> None:
        history = list(current.history)
        if current.saved:
            history.append({**asdict(current.record), "recorded_at": current.updated_at,
                            "changed_at": now})
        elif current.record != ConsentRecord():
            history.append({**asdict(current.record), "origin": "file metadata",
                            "changed_at": now})
        doc = {"id": current.image_id, "style_id": current.style_id, **asdict(new),
               "history": history, "updated_at": now}
        self.store.remove("consents", current.image_id)
        self.store.insert("consents", doc)

    def _revoked(self, current: ImageConsent, reason: str) -> list[str]:
        runs = self.eraser.flag_runs(current.style_id, current.sha256, REVOKED_FLAG)
        self.store.audit("consent.revoke", current.style_id, image_id=current.image_id,
                         sha256=current.sha256, reason=reason, flagged_runs=runs)
        return runs

    # -- evidence -----------------------------------------------------------------------
    def attach_evidence(self, style_id: str, path: str | Path) -> str:
        """Keep a permission document with the style under a content-hash name.

        Returns its path relative to the style folder, for `ConsentRecord.evidence_file`.
        """
        source = Path(path)
        suffix = source.suffix.lower()
        if suffix not in EVIDENCE_TYPES:
            allowed = ", ".join(sorted(EVIDENCE_TYPES))
            raise InvalidInput(f"'{source.name}' cannot be kept as evidence; use one of: "
                               f"{allowed}.")
        if not source.is_file():
            raise InvalidInput(f"The evidence file '{source.name}' could not be read.")
        if source.stat().st_size > MAX_EVIDENCE_BYTES:
            raise InvalidInput(f"'{source.name}' is larger than 25 MB; keep a smaller copy "
                               "(a PDF or a screenshot of the permission).")
        self.store.require("styles", style_id, "Style")
        folder = self.workspace.evidence_dir(style_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{sha256_file(source)}{suffix}"
        if not target.exists():
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
        return target.relative_to(self.workspace.style_dir(style_id)).as_posix()

    def _evidence_exists(self, style_id: str, rel: str) -> bool:
        style_dir = self.workspace.style_dir(style_id)
        path = (style_dir / rel).resolve()
        return path.is_file() and path.parent == self.workspace.evidence_dir(style_id).resolve()

    # -- erasure ------------------------------------------------------------------------
    def erase(self, image_ids: str | Iterable[str], reason: str) -> EraseReport:
        """Honour a deletion request: every copy and derived file goes, an audit entry
        (hashes, date, reason) stays, runs that used the images are flagged."""
        reason = _reason(reason, "erase these images")
        ids = _ids(image_ids)
        index = self.eraser.cache_index()
        report = EraseReport()
        for image_id in ids:
            try:
                report.erased.append(self.eraser.erase_image(
                    image_id, reason, action="consent.erase", cache_index=index))
            except StudioError as exc:
                report.failed.append((image_id, str(exc)))
        return report

    def erase_creator(self, creator: str, reason: str,
                      style_id: str | None = None) -> EraseReport:
        """Erase every image by one creator, in one style or (style_id None) in all."""
        reason = _reason(reason, "erase this creator's images")
        return self.erase(self.by_creator(creator, style_id), reason)

    def by_creator(self, creator: str, style_id: str | None = None) -> list[str]:
        """Ids of the images recorded as made by `creator` (case and spacing ignored)."""
        ids = [c.image_id for c in self._all(style_id)
               if creator.strip() and _same_person(c.record.creator, creator)]
        if not ids:
            where = "this style" if style_id else "any style"
            raise NotFound(f"No image in {where} is recorded as made by '{creator}'.")
        return ids

    # -- gate and ledger ----------------------------------------------------------------
    def trainable(self, style_id: str) -> TrainingPlan:
        """The training gate: included images and every excluded one with its reasons."""
        self.store.require("styles", style_id, "Style")
        images = self._images(style_id)
        consents = {c.image_id: c for c in self.for_style(style_id)}
        return build_plan(style_id, self.workspace.style_dir(style_id), images, consents,
                          self.captions.for_style(style_id))

    def require_trainable(self, style_id: str,
                          image_ids: list[str] | None = None) -> TrainingPlan:
        """The gate for the trainer: raises GateRefused instead of returning a refusal."""
        plan = self.trainable(style_id)
        plan.require(image_ids)
        return plan

    def overview(self, style_id: str) -> ledger.Overview:
        return ledger.overview(self.for_style(style_id), self.trainable(style_id))

    def export_ledger(self, style_id: str, path: str | Path) -> Path:
        """Write the ledger as CSV or JSON (by the file's extension)."""
        style = self.store.require("styles", style_id, "Style")
        consents = self.for_style(style_id)
        return ledger.export(Path(path), style, consents, self.trainable(style_id))

    def export_ledger_for_download(self, style_id: str, suffix: str) -> Path:
        """The ledger file the Consent tab offers (`.csv` or `.json`), made in the app's
        upload cache, where an erasure finds it."""
        return self._for_download(style_id, "ledgers", "consent-ledger", suffix,
                                  lambda path: self.export_ledger(style_id, path))

    def export_dataset(self, style_id: str, dest: str | Path) -> DatasetExport:
        """The style's cleared images as a Hugging Face image folder at `dest` (new or
        empty: `metadata.jsonl`, a dataset card) plus `<dest>.zip`; only what the training
        gate clears goes in, so a refused or revoked image cannot be published this way."""
        style = self.store.require("styles", style_id, "Style")
        return write_dataset(Path(dest), style, self.trainable(style_id))

    def export_dataset_for_download(self, style_id: str) -> DatasetExport:
        """The dataset export made in the app's upload cache (where an erasure finds its
        copies), for the browser to download as its zip."""
        return self._for_download(style_id, "datasets", "dataset", "",
                                  lambda dest: self.export_dataset(style_id, dest))

    def _for_download(self, style_id: str, kind: str, prefix: str, suffix: str,
                      export: Callable[[Path], T]) -> T:
        """Run `export` into a fresh folder of the upload cache, named after the style and
        today; a failed export leaves no half-written folder behind."""
        name = self.store.require("styles", style_id, "Style").get("name") or ""
        folder = self.workspace.browser_dir(kind)
        try:
            return export(folder / f"{prefix}-{slug(name)}-{date.today().isoformat()}{suffix}")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def import_ledger(self, style_id: str, path: str | Path) -> ApplyReport:
        """Apply a ledger (CSV or JSON) exported earlier, matching images by hash or id.

        A row that cannot be used is skipped with its reason; the others are applied.
        """
        self.store.require("styles", style_id, "Style")
        rows = ledger.read(Path(path))
        consents = self.for_style(style_id)
        by_hash = {c.sha256: c.image_id for c in consents}
        by_id = {c.image_id for c in consents}
        changes, skipped = [], []
        for number, row in enumerate(rows, start=1):
            label = f"row {number} ({row.get('filename') or row.get('image_id') or '?'})"
            image_id = by_hash.get(row.get("sha256", "")) or (
                row.get("image_id") if row.get("image_id") in by_id else None)
            if image_id is None:
                skipped.append((label, "no image with this hash in the style (it may have "
                                       "been erased)"))
                continue
            chosen = tuple(k for k in CONSENT_FIELDS if k in row)
            try:
                record = ConsentRecord(**{k: row[k] for k in chosen}).cleaned()
            except InvalidInput as exc:
                skipped.append((label, str(exc)))
                continue
            changes.append((image_id, record, chosen))
        report = self._apply(changes) if changes else ApplyReport()
        report.skipped = skipped + report.skipped
        return report
