"""Consent & licence tab: who made each image and whether it may be trained on.

Everything here calls `studio.consent`; the tab holds no rules of its own, so the gate
the trainer asks is the gate the artist sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import gradio as gr

from style_studio.consent.records import CONSENT_FIELDS, EVIDENCE_TYPES, ConsentRecord
from style_studio.studio import LICENCES, RELATIONSHIPS, STATUSES, StudioError

from . import consent_views as views
from .common import Tab, guard, need_style, on_style_change, upload_file


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


class ConsentTab(Tab):
    """Builds the tab and holds its event handlers (state lives in the studio)."""

    # -- layout --------------------------------------------------------------------
    def _layout(self) -> None:
        gr.Markdown("### 3 · Consent & licence\nRecord who made every image, its licence and "
                    "the permission you have. Only **cleared** images with an approved caption "
                    "can be trained on — the trainer asks the same gate.")
        self.gate_md = gr.Markdown(elem_id="consent-gate")
        with gr.Row():
            self.gallery = gr.Gallery(label="Images (click one to edit it below)", columns=5,
                                      height=320, allow_preview=False, object_fit="contain",
                                      scale=3, elem_id="consent-gallery")
            self.select = gr.CheckboxGroup(label="Select images", show_select_all=True,
                                           scale=2, elem_id="consent-select")
        with gr.Accordion("Apply a record to the selected images", open=True):
            gr.Markdown("Blank fields keep each image's current value.")
            self.bulk = self._form("bulk", bulk=True)
            self.apply_btn = gr.Button("Apply to selected images", variant="primary",
                                       elem_id="consent-apply")
            self._own_work_rows()
        with gr.Accordion("One image: its record and history", open=False) as self.editor_box:
            self.picker = gr.Dropdown(label="Image", elem_id="consent-image")
            with gr.Row():
                self.preview = gr.Image(label="Thumbnail", interactive=False, height=160,
                                        scale=1)
                self.evidence_md = gr.Markdown()
            self.single = self._form("one", bulk=False)
            self.save_btn = gr.Button("Save this record", variant="primary",
                                      elem_id="consent-save")
            self.history = gr.Dataframe(headers=views.HISTORY_HEADERS,
                                        label="History (newest first)", interactive=False,
                                        wrap=True, elem_id="consent-history")
        self._erase_panel()
        self._ledger_panel()

    def _own_work_rows(self) -> None:
        with gr.Row(equal_height=True):
            self.own_name = gr.Textbox(label="Your name", scale=2, elem_id="consent-own-name")
            self.own_btn = gr.Button("The selected images are my own work", scale=1,
                                     elem_id="consent-own")
        with gr.Row(visible=False, equal_height=True,
                    elem_id="consent-own-confirm") as self.own_row:
            self.own_md = gr.Markdown()
            self.own_yes = gr.Button("Yes, apply to all", variant="primary", scale=0,
                                     min_width=160, elem_id="consent-own-confirm-yes")
            self.own_no = gr.Button("Cancel", scale=0, min_width=100,
                                    elem_id="consent-own-cancel")
        self.own_pending = gr.State([])

    def _erase_panel(self) -> None:
        with gr.Accordion("Revoke or erase (deletion request)", open=False):
            gr.Markdown("**Revoke** keeps the files but refuses training and flags runs that "
                        "used them. **Erase** deletes the stored file, thumbnail, caption, "
                        "cached data and any copy in the app's cache; only an audit entry "
                        "(hashes, date, reason) stays, and runs that used them are flagged.")
            with gr.Row():
                self.target = gr.Radio(["The selected images", "Everything by one creator"],
                                       value="The selected images", label="Which images")
                self.creator_pick = gr.Dropdown(label="Creator", allow_custom_value=True)
                self.every_style = gr.Checkbox(label="…in every style, not only this one")
            self.reason = gr.Textbox(label="Reason (required, kept in the audit log)",
                                     placeholder="deletion request from Ana Pérez, email of "
                                                 "3 May", elem_id="consent-erase-reason")
            with gr.Row():
                self.revoke_btn = gr.Button("Revoke consent (keep files)")
                self.erase_btn = gr.Button("Erase permanently…", variant="stop",
                                           elem_id="consent-erase")
            with gr.Row(visible=False) as self.confirm_row:
                self.confirm_md = gr.Markdown()
                self.confirm_btn = gr.Button("Yes, erase permanently", variant="stop",
                                             elem_id="consent-erase-confirm")
                self.cancel_btn = gr.Button("Cancel")
            self.pending_ids = gr.State([])

    def _ledger_panel(self) -> None:
        with gr.Accordion("Overview and ledger", open=False):
            self.overview_md = gr.Markdown(elem_id="consent-overview")
            self.excluded = gr.Dataframe(headers=["image", "why it is not trained on"],
                                         wrap=True, label="Excluded from training",
                                         interactive=False)
            with gr.Row():
                self.csv_btn = gr.Button("Export ledger (CSV)")
                self.json_btn = gr.Button("Export ledger (JSON)")
                self.download = gr.File(label="Download", visible=False, interactive=False,
                                        elem_id="consent-download")
            with gr.Row():
                self.ledger_in = upload_file(label="Import a ledger (.csv / .json)",
                                             type="filepath", file_types=[".csv", ".json"])
                self.import_btn = gr.Button("Import ledger")

    @staticmethod
    def _form(prefix: str, bulk: bool) -> RecordForm:
        """One form for the bulk edit and the single-image editor (bulk: blank keeps
        values)."""
        empty = "— keep each image's —" if bulk else "— not recorded —"
        licences = {k: lic.label for k, lic in LICENCES.items()}
        statuses = _choices(STATUSES, empty) if bulk else [(v, k) for k, v in STATUSES.items()]
        with gr.Row():
            creator = gr.Textbox(label="Creator", elem_id=f"{prefix}-creator")
            relationship = gr.Dropdown(_choices(RELATIONSHIPS, empty), value="",
                                       label="Relationship", elem_id=f"{prefix}-relationship")
            licence = gr.Dropdown(_choices(licences, empty), value="", label="Licence",
                                  elem_id=f"{prefix}-licence")
            status = gr.Dropdown(statuses, value="" if bulk else "pending",
                                 label="Consent status", elem_id=f"{prefix}-status")
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
                                          file_types=sorted(EVIDENCE_TYPES), type="filepath",
                                          height=120)
        notes = gr.Textbox(label="Notes", lines=1, elem_id=f"{prefix}-notes")
        return RecordForm(creator, relationship, source, licence, licence_text, evidence_text,
                          evidence_upload, status, when, notes, reason)

    # -- views ----------------------------------------------------------------------
    @property
    def view_outputs(self) -> list[Any]:
        return [self.gate_md, self.gallery, self.select, self.picker, self.creator_pick,
                self.overview_md, self.excluded]

    @property
    def editor_outputs(self) -> list[Any]:
        return [self.preview, self.evidence_md, *self.single.inputs, self.history]

    def thumb(self, image_id: str) -> str | None:
        """The thumbnail's byte-exact copy in the app's cache (erasure finds it by hash)."""
        try:
            return str(self.studio.images.servable(image_id))
        except (StudioError, OSError):
            return None

    def refresh(self, style_id: str | None, selected: list[str] | None) -> tuple[Any, ...]:
        if not style_id:
            return ("Choose or create a style first.", [], gr.update(choices=[], value=[]),
                    gr.update(choices=[], value=None), gr.update(choices=[]), "", [])
        consents = self.studio.consent.for_style(style_id)
        plan = self.studio.consent.trainable(style_id)
        ids = {c.image_id for c in consents}
        labels = [(f"{c.filename} — {views.badge(c, plan)}", c.image_id) for c in consents]
        pictures = [(path, f"{c.filename}\n{views.badge(c, plan)}") for c in consents
                    if (path := self.thumb(c.image_id))]
        names = {e.image_id: e.filename for e in plan.excluded}
        return (views.gate_text(plan), pictures,
                gr.update(choices=labels, value=[i for i in selected or [] if i in ids]),
                gr.update(choices=[(c.filename, c.image_id) for c in consents]),
                gr.update(choices=list(self.studio.consent.creators(style_id))),
                views.overview_text(self.studio, style_id),
                [[names[e.image_id], e.reason] for e in plan.excluded])

    def load_one(self, style_id: str | None, image_id: str | None) -> list[Any]:
        if not style_id or not image_id:
            return [None, "", *([gr.update()] * len(self.single.inputs)), []]
        consent = self.studio.consent.get(image_id)
        record = consent.record
        values = [getattr(record, k) for k in CONSENT_FIELDS]
        values[CONSENT_FIELDS.index("evidence_file")] = None
        evidence = (f"Evidence document: `{record.evidence_file}`" if record.evidence_file
                    else "No evidence document.")
        if consent.metadata_refusal:
            evidence += f"  \n✗ Note: {consent.metadata_refusal}."
        return [self.thumb(image_id), evidence, *values, views.history_rows(consent)]

    def pick(self, style_id: str | None, evt: gr.SelectData) -> tuple[Any, Any]:
        consents = self.studio.consent.for_style(style_id) if style_id else []
        shown = [c for c in consents if self.thumb(c.image_id)]
        chosen = shown[evt.index].image_id if 0 <= evt.index < len(shown) else None
        return gr.update(value=chosen), gr.update(open=True)

    # -- handlers ---------------------------------------------------------------------
    def form_record(self, style_id: str, values: tuple[Any, ...],
                    bulk: bool) -> tuple[ConsentRecord, list[str]]:
        """The form's record and the fields to apply; an uploaded document is kept first."""
        data = dict(zip(CONSENT_FIELDS, values, strict=True))
        upload = data.pop("evidence_file")
        data = {k: (v or "") for k, v in data.items()}
        chosen = [k for k, v in data.items() if str(v).strip()] if bulk else list(data)
        if upload:
            data["evidence_file"] = self.studio.consent.attach_evidence(style_id, upload)
            chosen.append("evidence_file")
            self.studio.discard_uploads([upload])  # the kept copy is the only copy
        if not chosen:
            raise gr.Error("Fill in at least one field to apply; blank fields keep each "
                           "image's current value.")
        return ConsentRecord(**data), chosen

    def apply(self, style_id: str | None, selected: list[str], *values: Any) -> list[Any]:
        style_id = need_style(style_id)
        if not selected:
            raise gr.Error("Select one or more images first (tick them in the list).")
        record, chosen = self.form_record(style_id, values, bulk=True)
        report = self.studio.consent.set(selected, record, chosen)
        (gr.Warning if report.skipped else gr.Info)(report.summary())
        return [*self.refresh(style_id, selected), None]

    def record_own_work(self, style_id: str, name: str, ids: list[str],
                        selected: list[str]) -> list[Any]:
        report = self.studio.consent.own_work(style_id, name, ids)
        gr.Info(f"Recorded as your own work, cleared. {report.summary()}")
        return [[], gr.update(visible=False), *self.refresh(style_id, selected)]

    def own_work(self, style_id: str | None, name: str, selected: list[str]) -> list[Any]:
        """The ticked images at once; with none ticked, ask before touching every image:
        one stray click must not rewrite the consent of a whole style."""
        style_id = need_style(style_id)
        if not " ".join((name or "").split()):
            raise gr.Error("Write your name first, so the ledger says who made these images.")
        if selected:
            return [*self.record_own_work(style_id, name, list(selected), selected), ""]
        ids = [c.image_id for c in self.studio.consent.for_style(style_id)]
        if not ids:
            raise gr.Error("This style has no images yet: add some in the Images tab.")
        text = (f"Nothing is ticked. **Apply to all {len(ids)} images?** Each is recorded as "
                "your own work, all rights reserved, cleared for training; their current "
                "creator, licence and status are replaced (the history keeps them).")
        return [ids, gr.update(visible=True), *([gr.skip()] * len(self.view_outputs)), text]

    def own_work_all(self, style_id: str | None, name: str, ids: list[str],
                     selected: list[str]) -> list[Any]:
        """Exactly the images the question counted, and only while their style is shown."""
        style_id = need_style(style_id)
        shown = {c.image_id for c in self.studio.consent.for_style(style_id)}
        if not ids or not set(ids) <= shown:
            raise gr.Error("The images changed since the question: press the button again.")
        return self.record_own_work(style_id, name, ids, selected)

    def save_one(self, style_id: str | None, image_id: str | None, selected: list[str],
                 *values: Any) -> list[Any]:
        style_id = need_style(style_id)
        if not image_id:
            raise gr.Error("Choose an image first.")
        record, chosen = self.form_record(style_id, values, bulk=False)
        if "evidence_file" not in chosen:
            record.evidence_file = self.studio.consent.get(image_id).record.evidence_file
        report = self.studio.consent.set(image_id, record)
        if report.skipped:
            raise gr.Error(f"Not saved: {report.skipped[0][1]}.")
        gr.Info("Saved." if report.changed else "Nothing changed.")
        return [*self.refresh(style_id, selected), *self.load_one(style_id, image_id)]

    def targets(self, style_id: str | None, mode: str, selected: list[str],
                creator: str | None, everywhere: bool) -> list[str]:
        style_id = need_style(style_id)
        if mode == "The selected images":
            if not selected:
                raise gr.Error("Select the images first (tick them in the list).")
            return list(selected)
        if not (creator or "").strip():
            raise gr.Error("Choose the creator whose images should go.")
        return self.studio.consent.by_creator(creator or "", None if everywhere else style_id)

    def revoke(self, style_id, mode, selected, creator, everywhere, why) -> tuple[Any, ...]:
        ids = self.targets(style_id, mode, selected, creator, everywhere)
        report = self.studio.consent.revoke(ids, why)
        gr.Info(f"Consent revoked. {report.summary()}")
        return self.refresh(style_id, selected)

    def ask_erase(self, style_id, mode, selected, creator, everywhere,
                  why) -> tuple[Any, ...]:
        ids = self.targets(style_id, mode, selected, creator, everywhere)
        if not " ".join((why or "").split()):
            raise gr.Error("Type the reason for the erasure first; it is kept in the audit "
                           "log.")
        names = ", ".join(self.studio.consent.get(i).filename for i in ids[:8])
        more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
        text = (f"Erase **{len(ids)} image(s)** ({names}{more}) for the reason “{why}”? "
                "Every copy and derived file is deleted; this cannot be undone.")
        return ids, gr.update(visible=True), text

    def erase(self, style_id: str | None, ids: list[str], why: str,
              selected: list[str]) -> list[Any]:
        report = self.studio.consent.erase(ids, why)
        (gr.Warning if report.failed else gr.Info)(report.summary())
        return [[], gr.update(visible=False), "", *self.refresh(style_id, selected)]

    def export(self, style_id: str | None, suffix: str) -> Any:
        path = self.studio.consent.export_ledger_for_download(need_style(style_id), suffix)
        return gr.update(value=str(path), visible=True)

    def import_ledger(self, style_id: str | None, path: str | None,
                      selected: list[str]) -> list[Any]:
        style_id = need_style(style_id)
        if not path:
            raise gr.Error("Choose a ledger file (.csv or .json) first.")
        report = self.studio.consent.import_ledger(style_id, path)
        (gr.Warning if report.skipped else gr.Info)(report.summary())
        return [None, *self.refresh(style_id, selected)]

    # -- wiring ------------------------------------------------------------------------
    def _wire(self) -> None:
        ctx, shown = self.ctx, self.view_outputs
        ctx.tab.select(self.refresh, [ctx.style, self.select], shown)
        on_style_change(ctx.style, self.refresh, [ctx.style, self.select], shown)
        self.apply_btn.click(guard(self.apply), [ctx.style, self.select, *self.bulk.inputs],
                             [*shown, self.bulk.evidence_upload])
        own_outputs = [self.own_pending, self.own_row, *shown]
        self.own_btn.click(guard(self.own_work), [ctx.style, self.own_name, self.select],
                           [*own_outputs, self.own_md])
        self.own_yes.click(guard(self.own_work_all),
                           [ctx.style, self.own_name, self.own_pending, self.select],
                           own_outputs)
        withdraw = [self.own_pending, self.own_row]
        self.own_no.click(lambda: ([], gr.update(visible=False)), None, withdraw)
        # The artist's own switch withdraws the question (the confirm checks the style anyway).
        ctx.style.input(lambda: ([], gr.update(visible=False)), None, withdraw)
        self.picker.change(self.load_one, [ctx.style, self.picker], self.editor_outputs)
        self.save_btn.click(guard(self.save_one),
                            [ctx.style, self.picker, self.select, *self.single.inputs],
                            [*shown, *self.editor_outputs])
        self.gallery.select(self.pick, [ctx.style], [self.picker, self.editor_box])
        self._wire_erase()

    def _wire_erase(self) -> None:
        ctx, shown = self.ctx, self.view_outputs
        who = [ctx.style, self.target, self.select, self.creator_pick, self.every_style,
               self.reason]
        self.revoke_btn.click(guard(self.revoke), who, shown)
        self.erase_btn.click(guard(self.ask_erase), who,
                             [self.pending_ids, self.confirm_row, self.confirm_md])
        self.cancel_btn.click(lambda: ([], gr.update(visible=False)), None,
                              [self.pending_ids, self.confirm_row])
        self.confirm_btn.click(guard(self.erase),
                               [ctx.style, self.pending_ids, self.reason, self.select],
                               [self.pending_ids, self.confirm_row, self.reason, *shown])
        self.csv_btn.click(guard(lambda s: self.export(s, ".csv")), ctx.style, self.download)
        self.json_btn.click(guard(lambda s: self.export(s, ".json")), ctx.style, self.download)
        self.import_btn.click(guard(self.import_ledger),
                              [ctx.style, self.ledger_in, self.select],
                              [self.ledger_in, *shown])
