"""Consent & licence tab: who made each image and whether it may be trained on.

Everything here calls `studio.consent`; the tab holds no rules of its own, so the gate
the trainer asks is the gate the artist sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import gradio as gr

from style_studio.consent.records import (
    CONSENT_FIELDS,
    EVIDENCE_TYPES,
    ConsentRecord,
    ImageConsent,
)
from style_studio.studio import (
    LICENCES,
    RELATIONSHIPS,
    STATUSES,
    Studio,
    StudioError,
    TrainingPlan,
    licence_label,
)

from .common import UIContext, guard, need_style, upload_file

HISTORY_HEADERS = ["version", "status", "licence", "creator", "relationship", "source",
                   "reason", "notes"]


@dataclass
class RecordForm:
    """The fields of one consent record, in CONSENT_FIELDS order (evidence as an upload)."""

    creator: gr.Textbox
    relationship: gr.Dropdown
    source: gr.Textbox
    licence: gr.Dropdown
    licence_text: gr.Textbox
    evidence_text: gr.Textbox
    evidence_upload: gr.File
    status: gr.Dropdown
    date: gr.Textbox
    notes: gr.Textbox
    reason: gr.Textbox

    @property
    def inputs(self) -> list[Any]:
        return [getattr(self, name) for name in (*CONSENT_FIELDS[:6], "evidence_upload",
                                                 *CONSENT_FIELDS[7:])]


def _choices(vocabulary: dict[str, str], empty: str) -> list[tuple[str, str]]:
    return [(empty, ""), *((label, key) for key, label in vocabulary.items())]


def _form(prefix: str, bulk: bool) -> RecordForm:
    """One form for the bulk edit and the single-image editor (bulk: blank keeps values)."""
    empty = "— keep each image's —" if bulk else "— not recorded —"
    licences = {k: lic.label for k, lic in LICENCES.items()}
    statuses = _choices(STATUSES, empty) if bulk else [(v, k) for k, v in STATUSES.items()]
    with gr.Row():
        creator = gr.Textbox(label="Creator", elem_id=f"{prefix}-creator")
        relationship = gr.Dropdown(_choices(RELATIONSHIPS, empty), value="",
                                   label="Relationship", elem_id=f"{prefix}-relationship")
        licence = gr.Dropdown(_choices(licences, empty), value="", label="Licence",
                              elem_id=f"{prefix}-licence")
        status = gr.Dropdown(statuses, value="" if bulk else "pending", label="Consent status",
                             elem_id=f"{prefix}-status")
    with gr.Row():
        source = gr.Textbox(label="Source", placeholder="URL, or where the image came from")
        when = gr.Textbox(label="Date", placeholder=date.today().isoformat(),
                          info="Blank: the day the status changes.")
        reason = gr.Textbox(label="Reason (refused / revoked)")
    with gr.Row():
        licence_text = gr.Textbox(label="Licence text (custom licence)", lines=2)
        evidence_text = gr.Textbox(label="Permission evidence", lines=2,
                                   placeholder="e.g. email from Ana Pérez, 3 May 2025")
        evidence_upload = upload_file(label="Evidence document (kept with the style)",
                                  file_types=sorted(EVIDENCE_TYPES), type="filepath", height=120)
    notes = gr.Textbox(label="Notes", lines=1, elem_id=f"{prefix}-notes")
    return RecordForm(creator, relationship, source, licence, licence_text, evidence_text,
                      evidence_upload, status, when, notes, reason)


def _record(studio: Studio, style_id: str, values: tuple[Any, ...],
            bulk: bool) -> tuple[ConsentRecord, list[str]]:
    """The form's record and the fields to apply; an uploaded document is kept first."""
    data = dict(zip(CONSENT_FIELDS, values, strict=True))
    upload = data.pop("evidence_file")
    data = {k: (v or "") for k, v in data.items()}
    chosen = [k for k, v in data.items() if str(v).strip()] if bulk else list(data)
    if upload:
        data["evidence_file"] = studio.consent.attach_evidence(style_id, upload)
        chosen.append("evidence_file")
        studio.discard_uploads([upload])  # the kept copy is the only copy
    if not chosen:
        raise gr.Error("Fill in at least one field to apply; blank fields keep each image's "
                       "current value.")
    return ConsentRecord(**data), chosen


def _thumb(studio: Studio, image_id: str) -> str | None:
    """The thumbnail's byte-exact copy in the app's cache (erasure finds it by hash)."""
    try:
        return str(studio.images.servable(image_id))
    except (StudioError, OSError):
        return None


def _badge(consent: ImageConsent, plan: TrainingPlan) -> str:
    text = consent.badge
    if consent.saved and consent.record.licence:
        text += f" · {licence_label(consent.record.licence)}"
    if consent.record.status == "cleared" and consent.image_id not in plan.image_ids:
        text += " · ⚠ not trainable"
    return text


def _gate_text(plan: TrainingPlan) -> str:
    return f"**Training gate:** {plan.summary()}" + "".join(
        f"  \n⚠ {warning}" for warning in plan.warnings)


def _overview_text(studio: Studio, style_id: str) -> str:
    view = studio.consent.overview(style_id)
    if not view.total:
        return "No images yet: add some in the Images tab."

    def counts(mapping: dict[str, int]) -> str:
        return " · ".join(f"{key} **{n}**" for key, n in mapping.items()) or "none"

    return (f"**{view.total} images**, {view.trainable} can be trained on.  \n"
            f"By status: {counts(view.by_status)}  \nBy licence: {counts(view.by_licence)}  \n"
            f"Creators: {counts(view.creators)}")


def _history_rows(consent: ImageConsent) -> list[list[str]]:
    """Current version first, then each earlier one, in words rather than keys."""
    def row(version: dict[str, Any], when: str) -> list[str]:
        words = {**version, "version": when,
                 "status": STATUSES.get(version.get("status", ""), version.get("status", "")),
                 "licence": licence_label(version.get("licence", "")),
                 "relationship": RELATIONSHIPS.get(version.get("relationship", ""), "")}
        return [str(words.get(k) or "") for k in HISTORY_HEADERS]

    def stamp(at: str) -> str:
        return at[:16].replace("T", " ")

    first = (f"current (since {stamp(consent.updated_at)})" if consent.saved
             else "not saved yet (from the file's metadata)")
    older = [row(h, ("from file metadata, until " if h.get("origin") else "until ")
                 + stamp(h.get("changed_at", ""))) for h in reversed(consent.history)]
    return [row(asdict(consent.record), first), *older]


def build(ctx: UIContext) -> None:
    studio = ctx.studio
    gr.Markdown("### 3 · Consent & licence\nRecord who made every image, its licence and the "
                "permission you have. Only **cleared** images with an approved caption can be "
                "trained on — the trainer asks the same gate.")
    gate_md = gr.Markdown(elem_id="consent-gate")
    with gr.Row():
        gallery = gr.Gallery(label="Images (click one to edit it below)", columns=5, height=320,
                             allow_preview=False, object_fit="contain", scale=3,
                             elem_id="consent-gallery")
        select = gr.CheckboxGroup(label="Select images", show_select_all=True, scale=2,
                                  elem_id="consent-select")
    with gr.Accordion("Apply a record to the selected images", open=True):
        gr.Markdown("Blank fields keep each image's current value.")
        bulk = _form("bulk", bulk=True)
        apply_btn = gr.Button("Apply to selected images", variant="primary",
                              elem_id="consent-apply")
        with gr.Row(equal_height=True):
            own_name = gr.Textbox(label="Your name", scale=2, elem_id="consent-own-name")
            own_btn = gr.Button("The selected images are my own work", scale=1,
                                elem_id="consent-own")
        with gr.Row(visible=False, equal_height=True, elem_id="consent-own-confirm") as own_row:
            own_md = gr.Markdown()
            own_yes = gr.Button("Yes, apply to all", variant="primary", scale=0,
                                min_width=160, elem_id="consent-own-confirm-yes")
            own_no = gr.Button("Cancel", scale=0, min_width=100, elem_id="consent-own-cancel")
        own_pending = gr.State([])
    with gr.Accordion("One image: its record and history", open=False) as editor_box:
        picker = gr.Dropdown(label="Image", elem_id="consent-image")
        with gr.Row():
            preview = gr.Image(label="Thumbnail", interactive=False, height=160, scale=1)
            evidence_md = gr.Markdown()
        single = _form("one", bulk=False)
        save_btn = gr.Button("Save this record", variant="primary", elem_id="consent-save")
        history = gr.Dataframe(headers=HISTORY_HEADERS, label="History (newest first)",
                               interactive=False, wrap=True, elem_id="consent-history")
    with gr.Accordion("Revoke or erase (deletion request)", open=False):
        gr.Markdown("**Revoke** keeps the files but refuses training and flags runs that used "
                    "them. **Erase** deletes the stored file, thumbnail, caption, cached data "
                    "and any copy in the app's cache; only an audit entry (hashes, date, "
                    "reason) stays, and runs that used them are flagged.")
        with gr.Row():
            target = gr.Radio(["The selected images", "Everything by one creator"],
                              value="The selected images", label="Which images")
            creator_pick = gr.Dropdown(label="Creator", allow_custom_value=True)
            every_style = gr.Checkbox(label="…in every style, not only this one")
        reason = gr.Textbox(label="Reason (required, kept in the audit log)",
                            placeholder="deletion request from Ana Pérez, email of 3 May",
                            elem_id="consent-erase-reason")
        with gr.Row():
            revoke_btn = gr.Button("Revoke consent (keep files)")
            erase_btn = gr.Button("Erase permanently…", variant="stop", elem_id="consent-erase")
        with gr.Row(visible=False) as confirm_row:
            confirm_md = gr.Markdown()
            confirm_btn = gr.Button("Yes, erase permanently", variant="stop",
                                    elem_id="consent-erase-confirm")
            cancel_btn = gr.Button("Cancel")
        pending_ids = gr.State([])
    with gr.Accordion("Overview and ledger", open=False):
        overview_md = gr.Markdown(elem_id="consent-overview")
        excluded = gr.Dataframe(headers=["image", "why it is not trained on"], wrap=True,
                                label="Excluded from training", interactive=False)
        with gr.Row():
            csv_btn = gr.Button("Export ledger (CSV)")
            json_btn = gr.Button("Export ledger (JSON)")
            download = gr.File(label="Download", visible=False, interactive=False,
                               elem_id="consent-download")
        with gr.Row():
            ledger_in = upload_file(label="Import a ledger (.csv / .json)", type="filepath",
                                file_types=[".csv", ".json"])
            import_btn = gr.Button("Import ledger")

    views = [gate_md, gallery, select, picker, creator_pick, overview_md, excluded]

    def refresh(style_id: str | None, selected: list[str] | None):
        if not style_id:
            return ("Choose or create a style first.", [], gr.update(choices=[], value=[]),
                    gr.update(choices=[], value=None), gr.update(choices=[]), "", [])
        consents = studio.consent.for_style(style_id)
        plan = studio.consent.trainable(style_id)
        ids = {c.image_id for c in consents}
        labels = [(f"{c.filename} — {_badge(c, plan)}", c.image_id) for c in consents]
        pictures = [(path, f"{c.filename}\n{_badge(c, plan)}") for c in consents
                    if (path := _thumb(studio, c.image_id))]
        names = {e.image_id: e.filename for e in plan.excluded}
        return (_gate_text(plan), pictures,
                gr.update(choices=labels, value=[i for i in selected or [] if i in ids]),
                gr.update(choices=[(c.filename, c.image_id) for c in consents]),
                gr.update(choices=list(studio.consent.creators(style_id))),
                _overview_text(studio, style_id),
                [[names[e.image_id], e.reason] for e in plan.excluded])

    def load_one(style_id: str | None, image_id: str | None):
        if not style_id or not image_id:
            return [None, "", *([gr.update()] * len(single.inputs)), []]
        consent = studio.consent.get(image_id)
        record = consent.record
        values = [getattr(record, k) for k in CONSENT_FIELDS]
        values[CONSENT_FIELDS.index("evidence_file")] = None
        evidence = (f"Evidence document: `{record.evidence_file}`" if record.evidence_file
                    else "No evidence document.")
        if consent.metadata_refusal:
            evidence += f"  \n✗ Note: {consent.metadata_refusal}."
        return [_thumb(studio, image_id), evidence, *values,
                _history_rows(consent)]

    editor_outputs = [preview, evidence_md, *single.inputs, history]

    @guard
    def apply(style_id: str | None, selected: list[str], *values: Any):
        style_id = need_style(style_id)
        if not selected:
            raise gr.Error("Select one or more images first (tick them in the list).")
        record, chosen = _record(studio, style_id, values, bulk=True)
        report = studio.consent.set(selected, record, chosen)
        (gr.Warning if report.skipped else gr.Info)(report.summary())
        return [*refresh(style_id, selected), None]

    def record_own_work(style_id: str, name: str, ids: list[str], selected: list[str]):
        report = studio.consent.own_work(style_id, name, ids)
        gr.Info(f"Recorded as your own work, cleared. {report.summary()}")
        return [[], gr.update(visible=False), *refresh(style_id, selected)]

    @guard
    def own_work(style_id: str | None, name: str, selected: list[str]):
        """The ticked images at once; with none ticked, ask before touching every image:
        one stray click must not rewrite the consent of a whole style."""
        style_id = need_style(style_id)
        if not " ".join((name or "").split()):
            raise gr.Error("Write your name first, so the ledger says who made these images.")
        if selected:
            return [*record_own_work(style_id, name, list(selected), selected), ""]
        ids = [c.image_id for c in studio.consent.for_style(style_id)]
        if not ids:
            raise gr.Error("This style has no images yet: add some in the Images tab.")
        text = (f"Nothing is ticked. **Apply to all {len(ids)} images?** Each is recorded as "
                "your own work, all rights reserved, cleared for training; their current "
                "creator, licence and status are replaced (the history keeps them).")
        return [ids, gr.update(visible=True), *([gr.skip()] * len(views)), text]

    @guard
    def own_work_all(style_id: str | None, name: str, ids: list[str], selected: list[str]):
        """Exactly the images the question counted, and only while their style is shown."""
        style_id = need_style(style_id)
        shown = {c.image_id for c in studio.consent.for_style(style_id)}
        if not ids or not set(ids) <= shown:
            raise gr.Error("The images changed since the question: press the button again.")
        return record_own_work(style_id, name, ids, selected)

    @guard
    def save_one(style_id: str | None, image_id: str | None, selected: list[str], *values: Any):
        style_id = need_style(style_id)
        if not image_id:
            raise gr.Error("Choose an image first.")
        record, chosen = _record(studio, style_id, values, bulk=False)
        if "evidence_file" not in chosen:
            record.evidence_file = studio.consent.get(image_id).record.evidence_file
        report = studio.consent.set(image_id, record)
        if report.skipped:
            raise gr.Error(f"Not saved: {report.skipped[0][1]}.")
        gr.Info("Saved." if report.changed else "Nothing changed.")
        return [*refresh(style_id, selected), *load_one(style_id, image_id)]

    def targets(style_id: str | None, mode: str, selected: list[str], creator: str | None,
                everywhere: bool) -> list[str]:
        style_id = need_style(style_id)
        if mode == "The selected images":
            if not selected:
                raise gr.Error("Select the images first (tick them in the list).")
            return list(selected)
        if not (creator or "").strip():
            raise gr.Error("Choose the creator whose images should go.")
        return studio.consent.by_creator(creator or "", None if everywhere else style_id)

    @guard
    def revoke(style_id, mode, selected, creator, everywhere, why):
        ids = targets(style_id, mode, selected, creator, everywhere)
        report = studio.consent.revoke(ids, why)
        gr.Info(f"Consent revoked. {report.summary()}")
        return refresh(style_id, selected)

    @guard
    def ask_erase(style_id, mode, selected, creator, everywhere, why):
        ids = targets(style_id, mode, selected, creator, everywhere)
        if not " ".join((why or "").split()):
            raise gr.Error("Type the reason for the erasure first; it is kept in the audit log.")
        names = ", ".join(studio.consent.get(i).filename for i in ids[:8])
        more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
        text = (f"Erase **{len(ids)} image(s)** ({names}{more}) for the reason “{why}”? "
                "Every copy and derived file is deleted; this cannot be undone.")
        return ids, gr.update(visible=True), text

    @guard
    def erase(style_id: str | None, ids: list[str], why: str, selected: list[str]):
        report = studio.consent.erase(ids, why)
        (gr.Warning if report.failed else gr.Info)(report.summary())
        return [[], gr.update(visible=False), "", *refresh(style_id, selected)]

    @guard
    def export(style_id: str | None, suffix: str):
        path = studio.consent.export_ledger_for_download(need_style(style_id), suffix)
        return gr.update(value=str(path), visible=True)

    @guard
    def import_ledger(style_id: str | None, path: str | None, selected: list[str]):
        style_id = need_style(style_id)
        if not path:
            raise gr.Error("Choose a ledger file (.csv or .json) first.")
        report = studio.consent.import_ledger(style_id, path)
        (gr.Warning if report.skipped else gr.Info)(report.summary())
        return [None, *refresh(style_id, selected)]

    for trigger in (ctx.tab.select, ctx.style.change):
        trigger(refresh, [ctx.style, select], views)
    apply_btn.click(apply, [ctx.style, select, *bulk.inputs], [*views, bulk.evidence_upload])
    own_outputs = [own_pending, own_row, *views]
    own_btn.click(own_work, [ctx.style, own_name, select], [*own_outputs, own_md])
    own_yes.click(own_work_all, [ctx.style, own_name, own_pending, select], own_outputs)
    own_no.click(lambda: ([], gr.update(visible=False)), None, [own_pending, own_row])
    # The artist's own switch withdraws the question (the confirm checks the style anyway).
    ctx.style.input(lambda: ([], gr.update(visible=False)), None, [own_pending, own_row])
    picker.change(load_one, [ctx.style, picker], editor_outputs)
    save_btn.click(save_one, [ctx.style, picker, select, *single.inputs],
                   [*views, *editor_outputs])

    def pick(style_id: str | None, evt: gr.SelectData):
        consents = studio.consent.for_style(style_id) if style_id else []
        shown = [c for c in consents if _thumb(studio, c.image_id)]
        chosen = shown[evt.index].image_id if 0 <= evt.index < len(shown) else None
        return gr.update(value=chosen), gr.update(open=True)

    gallery.select(pick, [ctx.style], [picker, editor_box])
    who = [ctx.style, target, select, creator_pick, every_style, reason]
    revoke_btn.click(revoke, who, views)
    erase_btn.click(ask_erase, who, [pending_ids, confirm_row, confirm_md])
    cancel_btn.click(lambda: ([], gr.update(visible=False)), None, [pending_ids, confirm_row])
    confirm_btn.click(erase, [ctx.style, pending_ids, reason, select],
                      [pending_ids, confirm_row, reason, *views])
    csv_btn.click(lambda s: export(s, ".csv"), ctx.style, download)
    json_btn.click(lambda s: export(s, ".json"), ctx.style, download)
    import_btn.click(import_ledger, [ctx.style, ledger_in, select], [ledger_in, *views])
