"""Consent records: the shapes that cross the service boundary (UI, gate, ledger, demo).

A record is what the artist saves about one image; `ImageConsent` is an image's consent as
it stands (the saved record, or the prefill from the file's own metadata). Kept apart from
the service so the gate and the ledger read records without importing the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from style_studio.base.erasure import ErasureReport
from style_studio.base.errors import InvalidInput
from style_studio.base.licences import (
    licence_from_text,
    licence_key,
    metadata_refusal,
    relationship_key,
    status_key,
)

EVIDENCE_TYPES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".txt", ".md",
                            ".eml", ".msg", ".doc", ".docx", ".odt", ".rtf", ".html", ".htm"})
MAX_EVIDENCE_BYTES = 25 * 1024 * 1024
# Plain symbols, not emoji: they render in every font (and in headless test browsers).
BADGES = {"cleared": "✓ cleared", "pending": "○ pending", "refused": "✗ refused",
          "revoked": "⊘ revoked"}


@dataclass
class ConsentRecord:
    """What the artist records about one image; the same shape is applied in bulk."""

    creator: str = ""
    relationship: str = ""
    source: str = ""
    licence: str = ""
    licence_text: str = ""
    evidence_text: str = ""
    evidence_file: str = ""
    status: str = "pending"
    date: str = ""
    notes: str = ""
    reason: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ConsentRecord:
        return cls(**{k: str(doc.get(k) or "") for k in CONSENT_FIELDS if k in doc})

    def cleaned(self) -> ConsentRecord:
        """Vocabulary keys for labels, trimmed text; raises InvalidInput on a bad value."""
        when = (self.date or "").strip()
        if when:
            try:
                when = date.fromisoformat(when[:10]).isoformat()
            except ValueError:
                raise InvalidInput(f"The date '{self.date}' is not a date; write it as "
                                   "YYYY-MM-DD, for example 2025-03-14.") from None
        return replace(
            self, creator=" ".join((self.creator or "").split()),
            relationship=relationship_key(self.relationship), licence=licence_key(self.licence),
            status=status_key(self.status), date=when,
            **{k: (getattr(self, k) or "").strip() for k in
               ("source", "licence_text", "evidence_text", "evidence_file", "notes", "reason")})


CONSENT_FIELDS = tuple(f.name for f in fields(ConsentRecord))


@dataclass
class ImageConsent:
    """An image's consent as it stands: the saved record, or the prefill when none is."""

    image_id: str
    style_id: str
    filename: str
    sha256: str
    record: ConsentRecord
    saved: bool
    metadata_refusal: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    updated_at: str = ""

    @property
    def badge(self) -> str:
        if not self.saved:
            return "✗ refused (file metadata)" if self.metadata_refusal else "? no record"
        return BADGES.get(self.record.status, self.record.status)


@dataclass
class ApplyReport:
    """What a (bulk) change did: every image is changed, unchanged or skipped with a reason."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    flagged_runs: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"Updated {len(self.changed)} image(s)"
        if self.unchanged:
            text += f", {len(self.unchanged)} already had these values"
        if self.flagged_runs:
            text += f"; {len(self.flagged_runs)} training run(s) flagged"
        text += "."
        if self.skipped:
            text += " Skipped: " + "; ".join(f"{name}: {why}" for name, why in self.skipped)
        return text


@dataclass
class DatasetExport:
    """A style exported as a Hub image folder (`folder`) and the same as one zip."""

    folder: Path
    archive: Path
    image_count: int
    left_out: int  # images of the style the gate kept out

    def summary(self) -> str:
        return (f"Exported {self.image_count} cleared image(s) with metadata.jsonl and a "
                f"dataset card; {self.left_out} image(s) left out by the consent gate.")


@dataclass
class EraseReport:
    erased: list[ErasureReport] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def flagged_runs(self) -> list[str]:
        return sorted({run for report in self.erased for run in report.flagged_runs})

    def summary(self) -> str:
        files = sum(len(r.deleted_files) for r in self.erased)
        text = f"Erased {len(self.erased)} image(s) ({files} files deleted)"
        if self.flagged_runs:
            text += f"; {len(self.flagged_runs)} training run(s) flagged 'contains erased data'"
        text += "."
        if self.failed:
            text += " Not erased: " + "; ".join(f"{i}: {why}" for i, why in self.failed)
        return text


def prefill(image: dict[str, Any]) -> ConsentRecord:
    """A first record from the metadata captured at ingest; refused if it forbids AI training."""
    meta = image.get("source_meta") or {}
    creator = meta.get("creator") or meta.get("credit") or ""
    if isinstance(creator, list):
        creator = ", ".join(str(c) for c in creator)
    rights = str(meta.get("copyright") or "").strip()
    refusal = metadata_refusal(meta)
    return ConsentRecord(
        creator=" ".join(str(creator).split()), licence=licence_from_text(rights),
        notes=f"Rights notice in the file: {rights}" if rights else "",
        status="refused" if refusal else "pending", reason=refusal or "")
