"""Where the artist stands with a style's images: badges, filters, warnings, summary.

Joins each image record with its caption and consent records. Quality warnings are
recomputed from the stored measures, so they follow the style if its base-model
family changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from style_studio.base.family import FAMILY_LABELS, is_toy, native_side
from style_studio.base.store import Store
from style_studio.captions.records import CaptionRecords

from .meta import SourceMeta
from .perceptual import hamming
from .records import ImageRecord

Filter = Literal["all", "needs caption", "needs consent", "flagged"]
FILTERS: tuple[Filter, ...] = ("all", "needs caption", "needs consent", "flagged")
MAX_ASPECT = 2.5
BLUR_THRESHOLD = 25.0  # sharpest-tile Laplacian variance at 480 px (see docs/benchmarks.md)
NEEDS_CONSENT = ("missing", "pending")
BLOCKED_CONSENT = ("refused", "revoked")


def minimum_side(family: str, base_model: str | None = None) -> tuple[int, str]:
    """The short side images should have, and for what: the family's native size, or
    256 px when the style trains on the built-in toy model, which never sees more."""
    model = "the built-in toy model" if is_toy(base_model) else FAMILY_LABELS.get(family, family)
    return native_side(family, base_model), model


def quality_warnings(record: ImageRecord, family: str,
                     base_model: str | None = None) -> list[str]:
    """Warnings, not rejections: the artist decides whether the image stays."""
    warnings = []
    need, model = minimum_side(family, base_model)
    short, long_ = sorted((record.width, record.height))
    if short < need:
        warnings.append(f"small for {model}: {record.width}×{record.height}; the short "
                        f"side should be at least {need} px")
    if short and long_ / short > MAX_ASPECT:
        warnings.append(f"extreme aspect ratio ({long_ / short:.1f}:1): training crops will "
                        "cut most of it away")
    if record.sharpness < BLUR_THRESHOLD:
        warnings.append(f"looks soft or blurry (sharpness {record.sharpness:.0f}; sharp "
                        f"images score above {BLUR_THRESHOLD:.0f}) — fine if intended")
    meta = SourceMeta(**{k: record.source_meta.get(k) for k in
                         ("creator", "copyright", "credit", "data_mining",
                          "training_mining", "training_mining_refusal")})
    if meta.training_mining_refusal:
        warnings.append("the file's Content Credentials say it may not be used for AI "
                        f"training ({meta.training_mining})")
    elif "constrained" in (meta.training_mining or ""):
        warnings.append("the file's Content Credentials put constraints on AI training "
                        f"({meta.training_mining}); read them before training")
    if meta.prohibits_mining:
        warnings.append("the file's own metadata says it may not be used for AI training "
                        f"(plus:DataMining = {meta.data_mining})")
    elif meta.constrains_mining:
        warnings.append("the file's own metadata puts constraints on AI training "
                        f"(plus:DataMining = {meta.data_mining}); read them before training")
    return warnings


@dataclass
class GalleryItem:
    """An image with everything its gallery tile shows."""

    record: ImageRecord
    caption: str = "missing"  # "approved" | "draft" | "missing"
    consent: str = "missing"  # consent status, or "missing" when none is recorded
    warnings: list[str] = field(default_factory=list)

    @property
    def needs_caption(self) -> bool:
        return self.caption != "approved"

    @property
    def needs_consent(self) -> bool:
        return self.consent in NEEDS_CONSENT

    @property
    def flagged(self) -> bool:
        return bool(self.warnings or self.record.near_duplicates
                    or self.consent in BLOCKED_CONSENT)

    def matches(self, which: Filter) -> bool:
        return {"all": True, "needs caption": self.needs_caption,
                "needs consent": self.needs_consent, "flagged": self.flagged}[which]

    def badges(self) -> str:
        """Short tile label in words (plain symbols only: every font has them)."""
        caption = {"approved": "caption ✓", "draft": "draft caption"}.get(self.caption,
                                                                          "no caption")
        consent = {"cleared": "consent ✓", "missing": "no consent"}.get(
            self.consent, f"consent {self.consent}")
        parts = [caption, consent]
        if self.warnings:
            parts.append(f"⚠ {len(self.warnings)}")
        if self.record.near_duplicates:
            parts.append("≈ near-duplicate")
        return " · ".join(parts)


@dataclass
class ImageSummary:
    total: int = 0
    need_caption: int = 0
    need_consent: int = 0
    near_duplicates: int = 0  # pairs still to review
    flagged: int = 0

    @property
    def text(self) -> str:
        """E.g. "32 images; 3 need captions; 2 need consent; 1 near-duplicate"."""
        if not self.total:
            return "No images yet."
        parts = [f"{self.total} image{'s' * (self.total != 1)}",
                 "1 needs a caption" if self.need_caption == 1
                 else f"{self.need_caption} need captions",
                 f"{self.need_consent} need{'s' * (self.need_consent == 1)} consent"]
        if self.near_duplicates:
            parts.append(f"{self.near_duplicates} near-duplicate"
                         f"{'s' * (self.near_duplicates != 1)}")
        return "; ".join(parts)


@dataclass
class NearDuplicatePair:
    first: ImageRecord
    second: ImageRecord
    distance: int  # differing bits of the 64-bit perceptual hash


class ImageReview:
    """Read-only views over a style's images for the gallery and other tabs."""

    def __init__(self, store: Store, captions: CaptionRecords):
        self.store = store
        self.captions = captions

    def records(self, style_id: str) -> list[ImageRecord]:
        docs = self.store.find("images", style_id=style_id)
        return sorted((ImageRecord.from_doc(d) for d in docs),
                      key=lambda r: r.added_at)  # stable: import order within a second

    def items(self, style_id: str, family: str, which: Filter = "all",
              base_model: str | None = None) -> list[GalleryItem]:
        if which not in FILTERS:
            which = "all"
        captions = self.captions.for_style(style_id)
        consents = {d["id"]: d for d in self.store.find("consents", style_id=style_id)}
        items = []
        for record in self.records(style_id):
            caption = captions.get(record.id)
            item = GalleryItem(
                record=record,
                caption=("approved" if caption and caption.approved
                         else "draft" if caption and caption.text else "missing"),
                consent=(consents.get(record.id) or {}).get("status") or "missing",
                warnings=quality_warnings(record, family, base_model))
            if item.matches(which):
                items.append(item)
        return items

    def near_duplicate_pairs(self, style_id: str) -> list[NearDuplicatePair]:
        records = {r.id: r for r in self.records(style_id)}
        seen, pairs = set(), []
        for record in records.values():
            for other_id in record.near_duplicates:
                key = tuple(sorted((record.id, other_id)))
                if other_id in records and key not in seen:
                    seen.add(key)
                    other = records[other_id]
                    pairs.append(NearDuplicatePair(record, other,
                                                   hamming(record.phash, other.phash)))
        return pairs

    def summary(self, style_id: str, family: str,
                base_model: str | None = None) -> ImageSummary:
        items = self.items(style_id, family, base_model=base_model)
        return ImageSummary(total=len(items),
                            need_caption=sum(i.needs_caption for i in items),
                            need_consent=sum(i.needs_consent for i in items),
                            near_duplicates=len(self.near_duplicate_pairs(style_id)),
                            flagged=sum(i.flagged for i in items))
