"""The training gate: which images of a style may be trained on, and why the rest may not.

It lives in the core so that the trainer itself asks it: no UI path and no API call can
train on an image whose consent is not cleared, whose licence does not allow it, or
whose caption the artist has not approved.

Decisions where the licence alone does not settle it: "own work – all rights reserved"
covers only images whose relationship is "own work"; written permission needs evidence
(a note or a document); a custom licence needs its text, and clearing it is the artist's
recorded decision; a "no AI training" flag in the file (IPTC plus:DataMining) can only be
lifted by own work or written permission. Every reason is reported, not just the first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from style_studio.base.errors import GateRefused
from style_studio.base.licences import (
    ATTRIBUTION,
    OVERRIDES_METADATA_REFUSAL,
    Licence,
    licence_for,
)

if TYPE_CHECKING:
    from style_studio.captions.records import Caption

    from .records import ImageConsent


@dataclass
class TrainItem:
    image_id: str
    sha256: str
    path: Path
    caption: str
    creator: str
    licence: str
    status: str


@dataclass
class Exclusion:
    image_id: str
    filename: str
    reason: str


# Fewer images than this rarely teach a style: the LoRA learns these pictures instead.
RECOMMENDED_IMAGES = 20


@dataclass
class TrainingPlan:
    """The gate's answer for one style; obligations travel into the run's manifest."""

    style_id: str
    included: list[TrainItem] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    obligations: list[str] = field(default_factory=list)
    attributions: list[str] = field(default_factory=list)

    @property
    def image_ids(self) -> list[str]:
        return [item.image_id for item in self.included]

    @property
    def image_hashes(self) -> list[str]:
        return [item.sha256 for item in self.included]

    @property
    def licences(self) -> dict[str, int]:
        return dict(Counter(item.licence for item in self.included))

    @property
    def warnings(self) -> list[str]:
        """What the artist should know before training on this set (not refusals)."""
        count = len(self.included)
        if 0 < count < RECOMMENDED_IMAGES:
            return [f"Only {count} image{'s' * (count != 1)} can be trained on; "
                    f"{RECOMMENDED_IMAGES} to 150 are recommended. With so few, the LoRA "
                    "tends to copy these pictures rather than learn the style: add more, "
                    "or expect it to work only close to them."]
        return []

    def summary(self) -> str:
        total = len(self.included) + len(self.excluded)
        text = f"{len(self.included)} of {total} images can be trained on."
        if self.excluded:
            heads = Counter(part.split(":")[0] for ex in self.excluded
                            for part in ex.reason.split("; "))
            text += " Excluded: " + ", ".join(f"{n} {head}" for head, n in heads.items()) + "."
        if self.obligations:
            text += " Obligations: " + "; ".join(self.obligations) + "."
        return text

    def require(self, image_ids: list[str] | None = None) -> None:
        """Raise GateRefused unless there is something to train on and every asked-for
        image is cleared; the message lists each refused image and why."""
        if image_ids is not None:
            allowed = {item.image_id for item in self.included}
            reasons = {ex.image_id: f"{ex.filename}: {ex.reason}" for ex in self.excluded}
            refused = [reasons.get(i, f"{i}: not an image of this style")
                       for i in image_ids if i not in allowed]
            if refused:
                raise GateRefused("These images may not be trained on: " + " | ".join(refused))
        if not self.included:
            raise GateRefused("No image of this style can be trained on yet. " + self.summary()
                              + " Clear consent and approve captions in the Consent and "
                              "Captions tabs.")


def consent_reasons(consent: ImageConsent) -> list[str]:
    """Why the consent record keeps this image out of training (empty when it does not)."""
    record = consent.record
    if not consent.saved:
        refusal = consent.metadata_refusal
        return [f"consent refused: {refusal}" if refusal else "no consent record"]
    if record.status == "pending":
        return ["consent pending"]
    if record.status == "refused":
        return [f"consent refused: {record.reason or 'no reason recorded'}"]
    if record.status == "revoked":
        return ["consent revoked" + (f": {record.reason}" if record.reason else "")]
    licence = licence_for(record.licence)
    if licence is None:
        return ["licence does not allow training: no licence is recorded"]
    problem = licence.training_problem(
        relationship=record.relationship, creator=record.creator,
        licence_text=record.licence_text,
        has_evidence=bool(record.evidence_text.strip() or record.evidence_file))
    if problem:
        return [f"licence does not allow training: {problem}"]
    if consent.metadata_refusal and record.licence not in OVERRIDES_METADATA_REFUSAL:
        return [f"consent refused: {consent.metadata_refusal}; only your own work or "
                "written permission can lift it"]
    return []


def _licence(item: TrainItem) -> Licence:
    """An included image's licence: the gate only includes images whose licence it knows."""
    found = licence_for(item.licence)
    assert found is not None, item.licence
    return found


# The obligation line that names people; erasure rewrites it (provenance.redact_manifest).
def _obligations(items: list[TrainItem]) -> list[str]:
    licences = [_licence(item) for item in items]
    creators = sorted({item.creator for item, lic in zip(items, licences, strict=True)
                       if lic.attribution})
    found = []
    if creators:
        found.append(ATTRIBUTION + ", ".join(creators))
    if any(lic.non_commercial for lic in licences):
        found.append("non-commercial use only (CC BY-NC)")
    if any(lic.share_alike for lic in licences):
        found.append("share-alike (CC BY-SA): share adaptations under the same licence")
    custom = [lic for lic in licences if lic.needs_text]
    if custom:
        found.append(f"custom licence terms apply to {len(custom)} image(s): see the ledger")
    return found


def build_plan(style_id: str, style_dir: Path, images: list[dict],
               consents: dict[str, ImageConsent], captions: dict[str, Caption]) -> TrainingPlan:
    """Sort every image of the style into included or excluded, with all its reasons."""
    plan = TrainingPlan(style_id=style_id)
    for image in images:
        consent = consents[image["id"]]
        caption = captions.get(image["id"])
        reasons = consent_reasons(consent)
        if caption is None or not caption.approved:
            reasons.append("no approved caption")
        path = style_dir / image.get("stored_path", "")
        if not image.get("stored_path") or not path.is_file():
            reasons.append("the stored file is missing; remove and re-add the image")
        if reasons:
            plan.excluded.append(Exclusion(image["id"], image.get("filename", ""),
                                           "; ".join(reasons)))
            continue
        assert caption is not None
        record = consent.record
        plan.included.append(TrainItem(image["id"], image["sha256"], path, caption.text,
                                       record.creator, record.licence, record.status))
    plan.obligations = _obligations(plan.included)
    plan.attributions = sorted({i.creator for i in plan.included
                                if _licence(i).attribution})
    return plan
