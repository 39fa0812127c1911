"""What the Consent tab shows, computed from `studio.consent` (no components here).

Kept apart from the layout so the tab module is only layout and handlers; every value
here is plain text or table rows.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from style_studio.consent.records import ImageConsent
from style_studio.studio import RELATIONSHIPS, STATUSES, Studio, TrainingPlan, licence_label

HISTORY_HEADERS = ["version", "status", "licence", "creator", "relationship", "source",
                   "reason", "notes"]


def badge(consent: ImageConsent, plan: TrainingPlan) -> str:
    """The image's consent badge, its licence, and whether the gate lets it train."""
    text = consent.badge
    if consent.saved and consent.record.licence:
        text += f" · {licence_label(consent.record.licence)}"
    if consent.record.status == "cleared" and consent.image_id not in plan.image_ids:
        text += " · ⚠ not trainable"
    return text


def gate_text(plan: TrainingPlan) -> str:
    return f"**Training gate:** {plan.summary()}" + "".join(
        f"  \n⚠ {warning}" for warning in plan.warnings)


def overview_text(studio: Studio, style_id: str) -> str:
    view = studio.consent.overview(style_id)
    if not view.total:
        return "No images yet: add some in the Images tab."
    return (f"**{view.total} images**, {view.trainable} can be trained on.  \n"
            f"By status: {_counts(view.by_status)}  \n"
            f"By licence: {_counts(view.by_licence)}  \n"
            f"Creators: {_counts(view.creators)}")


def history_rows(consent: ImageConsent) -> list[list[str]]:
    """Current version first, then each earlier one, in words rather than keys."""
    first = (f"current (since {_stamp(consent.updated_at)})" if consent.saved
             else "not saved yet (from the file's metadata)")
    older = [_history_row(h, ("from file metadata, until " if h.get("origin") else "until ")
                          + _stamp(h.get("changed_at", ""))) for h in reversed(consent.history)]
    return [_history_row(asdict(consent.record), first), *older]


def _counts(mapping: dict[str, int]) -> str:
    return " · ".join(f"{key} **{n}**" for key, n in mapping.items()) or "none"


def _history_row(version: dict[str, Any], when: str) -> list[str]:
    words = {**version, "version": when,
             "status": STATUSES.get(version.get("status", ""), version.get("status", "")),
             "licence": licence_label(version.get("licence", "")),
             "relationship": RELATIONSHIPS.get(version.get("relationship", ""), "")}
    return [str(words.get(k) or "") for k in HISTORY_HEADERS]


def _stamp(at: str) -> str:
    return at[:16].replace("T", " ")
