"""The records of image import: one image of a style, and the report of one import.

Field names follow the images-table contract shared with the Captions, Consent and
Training modules (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from style_studio.base.store import known_fields

from .sources import Rejection


class Duplicate(NamedTuple):
    """A file that was skipped because the style already holds the same picture."""

    filename: str
    existing: str  # id of the image it duplicates


@dataclass
class ImageRecord:
    """One image of a style: its stored copy, thumbnail, hashes and measures."""

    id: str
    style_id: str
    filename: str
    stored_path: str
    thumb_path: str
    sha256: str
    source_sha256: str
    thumb_sha256: str
    width: int
    height: int
    format: str
    phash: str
    warnings: list[str] = field(default_factory=list)
    near_duplicates: list[str] = field(default_factory=list)
    source_meta: dict[str, str | None] = field(default_factory=dict)
    added_at: str = ""
    source: str = ""               # where it came from, e.g. "pack.zip/herons/01.jpg"
    source_width: int = 0
    source_height: int = 0
    stored_format: str = ""
    bytes: int = 0
    sharpness: float = 0.0
    normalised: list[str] = field(default_factory=list)  # what was changed, in words
    near_duplicates_kept: list[str] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ImageRecord:
        return cls(**known_fields(cls, doc))

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    """What one import did with every file: added, skipped as duplicate, or rejected."""

    added: list[ImageRecord] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    captions_imported: int = 0
    notices: list[str] = field(default_factory=list)
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a job result (the UI re-reads it after a page reload)."""
        return {"added": [r.to_doc() for r in self.added],
                "duplicates": [list(d) for d in self.duplicates],
                "rejected": [list(r) for r in self.rejected],
                "captions_imported": self.captions_imported,
                "notices": list(self.notices), "stopped": self.stopped}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        return cls(added=[ImageRecord.from_doc(d) for d in data.get("added", [])],
                   duplicates=[Duplicate(*d) for d in data.get("duplicates", [])],
                   rejected=[Rejection(*r) for r in data.get("rejected", [])],
                   captions_imported=data.get("captions_imported", 0),
                   notices=list(data.get("notices", [])), stopped=data.get("stopped", False))

    @property
    def headline(self) -> str:
        parts = [f"{len(self.added)} added"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate{'s' * (len(self.duplicates) != 1)}"
                         " skipped")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected")
        if self.captions_imported:
            parts.append(f"{self.captions_imported} caption"
                         f"{'s' * (self.captions_imported != 1)} imported")
        return ", ".join(parts) + (" (stopped early)" if self.stopped else "")
