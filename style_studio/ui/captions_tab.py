"""Captions tab: auto-caption as drafts, then read, edit and approve every caption.

All rules live in `studio.captions`; this module lays out the page and wires events.
Images are shown through `studio.images.servable` (byte-exact copies in the app's
cache that erasure can find); the export zip is made in that cache too, never in the
system temp folder, and nothing is served from the workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from style_studio.studio import DEFAULT_TEMPLATE, Job, StudioError, describe_captioner

from . import caption_views as views
from .common import Tab, escape_md, guard, need_style, on_style_change, upload_file

NO_STYLE = "Choose or create a style first (top of the page)."
KEPT_UNSAVED = ("Your unsaved caption is still in the editor: Save or Approve it to keep "
                "it, or pick the image again to see the new draft.")


class CaptionsTab(Tab):
    """Builds the tab and holds its event handlers (state lives in the studio)."""

    # -- layout --------------------------------------------------------------------
    def _layout(self) -> None:
        gr.Markdown("### 2 · Captions\nCaptions decide what the style learns. Let a model "
                    "draft them, then read, edit and **approve** each one in your own words: "
                    "only approved captions are trained on.")
        self.summary = gr.Markdown(elem_id="captions-summary")
        self._auto_panel()
        self.timer = gr.Timer(1.0, active=False)
        # The caption as last put in the editor: anything else in the box is unsaved. Kept
        # in the page (hidden, not a State) so the browser can warn before a reload loses it.
        self.loaded = gr.Textbox(visible="hidden", interactive=False, show_label=False,
                                 elem_id="captions-loaded")
        self._editor()
        self.table = gr.Dataframe(headers=views.TABLE_HEADERS, interactive=False, wrap=True,
                                  label="All captions (click a row to edit it)",
                                  max_height=420,
                                  column_widths=["4%", "16%", "11%", "47%", "7%", "15%"],
                                  elem_id="captions-table")
        self.ids = gr.State([])
        self._bulk_panel()
        self._words_panel()
        self._sidecars_panel()

    def _auto_panel(self) -> None:
        with gr.Accordion("Auto-caption", open=True, elem_id="captions-auto"):
            with gr.Row():
                self.model = gr.Dropdown(views.captioner_choices(self.studio),
                                         value=self.studio.captions.default_captioner(),
                                         label="Captioning model", scale=3,
                                         elem_id="captions-model")
                self.custom = gr.Textbox(
                    label="…or another image-to-text model id or local folder",
                    placeholder="e.g. florence-community/Florence-2-base", scale=2,
                    elem_id="captions-custom-model", visible=self.limits is None)
            self.model_info = gr.Markdown(elem_id="captions-model-info")
            with gr.Row():
                self.template = gr.Textbox(DEFAULT_TEMPLATE, label="Caption template",
                                           info="{caption} is the model's text; [trigger] "
                                                "becomes the style's trigger word.", scale=2)
                self.overwrite = gr.Checkbox(label="Replace existing drafts", value=False)
                self.replace_approved = gr.Checkbox(label="Also replace approved captions",
                                                    value=False)
                self.detailed = gr.Checkbox(label="Detailed (Florence-2)", value=False)
            with gr.Row():
                self.auto_btn = gr.Button("Auto-caption all images", variant="primary",
                                          elem_id="captions-auto-run")
                self.cancel_btn = gr.Button("Cancel", elem_id="captions-auto-cancel")
            self.job_md = gr.Markdown(elem_id="captions-job")

    def _editor(self) -> None:
        with gr.Row(elem_id="captions-editor"):
            self.image = gr.Image(show_label=False, interactive=False, height=460, scale=3,
                                  buttons=["fullscreen"], elem_id="captions-image")
            with gr.Column(scale=2):
                self.current = gr.Dropdown(label="Image", elem_id="captions-pick")
                self.status = gr.Markdown(elem_id="captions-status")
                self.text = gr.Textbox(label="Caption", lines=5, elem_id="captions-text",
                                       info="Type [trigger] to insert the style's trigger "
                                            "word.")
                self.live_tokens = gr.Markdown(elem_id="captions-live-tokens")
                with gr.Row():
                    # Outside a gr.Group buttons keep their fill: inside one they read as text.
                    self.prev_btn = gr.Button("◀ Previous", variant="secondary",
                                              elem_id="captions-prev")
                    self.next_btn = gr.Button("Next ▶", variant="secondary",
                                              elem_id="captions-next")
                with gr.Row():
                    self.save_btn = gr.Button("Save draft", variant="secondary",
                                              elem_id="captions-save")
                    self.approve_btn = gr.Button("Approve", variant="primary",
                                                 elem_id="captions-approve")
                    self.approve_next_btn = gr.Button("Approve & next",
                                                      elem_id="captions-approve-next")
                with gr.Row():
                    self.draft_btn = gr.Button("Back to draft", elem_id="captions-unapprove")
                    self.suggest_btn = gr.Button("Auto-caption this image",
                                                 elem_id="captions-suggest")
                self.wording = gr.HighlightedText(label="Words about people in this caption",
                                                  color_map=views.PEOPLE_COLORS,
                                                  show_legend=True, elem_id="captions-wording")

    def _bulk_panel(self) -> None:
        with gr.Accordion("Bulk edit", open=False, elem_id="captions-bulk"):
            with gr.Row():
                self.find = gr.Textbox(label="Find", scale=2)
                self.replace = gr.Textbox(label="Replace with", scale=2)
                self.case = gr.Checkbox(label="Match case")
                self.whole = gr.Checkbox(label="Whole words", value=True)
                self.replace_btn = gr.Button("Replace in all captions",
                                             elem_id="captions-replace")
            with gr.Row():
                self.prefix = gr.Textbox(label="Add in front", placeholder="inkwash,")
                self.prefix_btn = gr.Button("Add prefix")
                self.suffix = gr.Textbox(label="Add at the end", placeholder=", ink on paper")
                self.suffix_btn = gr.Button("Add suffix")
            with gr.Row():
                self.word = gr.Textbox(label="Remove a word or phrase everywhere")
                self.remove_btn = gr.Button("Remove everywhere")
            with gr.Row():
                self.undo_md = gr.Markdown(elem_id="captions-undo-info")
                self.undo_btn = gr.Button("Undo last bulk edit", elem_id="captions-undo",
                                          scale=0)
            self.bulk_md = gr.Markdown(elem_id="captions-bulk-result")

    def _words_panel(self) -> None:
        with gr.Accordion("Words, tokens and wording review", open=False,
                          elem_id="captions-words"):
            self.stats_md = gr.Markdown(elem_id="captions-stats")
            self.words_df = gr.Dataframe(headers=["word", "captions", "uses"],
                                         interactive=False, max_height=260,
                                         label="Most used words")
            self.tokens_md = gr.Markdown(elem_id="captions-tokens")
            self.review_md = gr.Markdown(elem_id="captions-review")
            self.review_hl = gr.HighlightedText(label="Captions with words about people",
                                                color_map=views.PEOPLE_COLORS,
                                                show_legend=True,
                                                elem_id="captions-review-text")

    def _sidecars_panel(self) -> None:
        with gr.Accordion("Sidecar .txt files", open=False, elem_id="captions-sidecars"):
            with gr.Row():
                self.approved_only = gr.Checkbox(label="Approved captions only", value=False)
                self.with_images = gr.Checkbox(label="Include the images (a ready dataset)",
                                               value=False)
                self.export_btn = gr.Button("Export captions (.zip)",
                                            elem_id="captions-export")
            self.export_file = gr.File(label="Download", interactive=False,
                                       elem_id="captions-download")
            with gr.Row():
                self.upload = upload_file(
                    label=".txt files named like the images, or a .zip of them",
                    file_count="multiple", file_types=[".txt", ".zip"], type="filepath",
                    height=120, scale=3)
                with gr.Column(scale=1):
                    self.import_replace = gr.Checkbox(label="Replace approved captions",
                                                      value=False)
                    self.import_btn = gr.Button("Import captions", elem_id="captions-import")
            self.import_md = gr.Markdown(elem_id="captions-import-result")

    # -- views ----------------------------------------------------------------------
    @property
    def editor_outputs(self) -> list[Any]:
        return [self.image, self.status, self.text, self.wording, self.loaded]

    @property
    def list_outputs(self) -> list[Any]:
        return [self.summary, self.current, self.table, self.ids, *self.editor_outputs]

    @property
    def words_outputs(self) -> list[Any]:
        return [self.stats_md, self.words_df, self.tokens_md, self.review_md, self.review_hl,
                self.undo_md]

    @property
    def all_outputs(self) -> list[Any]:
        return [*self.list_outputs, *self.words_outputs, self.job_md, self.timer]

    def latest_job(self, style_id: str | None) -> Job | None:
        jobs = (self.studio.jobs.list(style_id=style_id, kind="caption", limit=1)
                if style_id else [])
        return jobs[0] if jobs else None

    def editor(self, overview: views.Overview, style_id: str,
               image_id: str | None) -> tuple[Any, ...]:
        row = overview.row(image_id)
        if row is None:
            return None, "Choose an image.", gr.update(value=""), [], ""
        try:
            shown = str(self.studio.images.servable(row.image_id, "stored"))
        except (OSError, StudioError):
            shown = None
        trigger = self.studio.styles.get(style_id).trigger
        return (shown, views.editor_status(overview, row, trigger), row.text,
                self.studio.captions.highlight(row.text), row.text)

    def listing(self, style_id: str | None, image_id: str | None) -> tuple[Any, ...]:
        """Summary, picker, table and editor for `image_id` (or the first image)."""
        if not style_id:
            return (NO_STYLE, gr.update(choices=[], value=None), [], [], None, "", "", [], "")
        overview = views.load_overview(self.studio, style_id)
        chosen = views.pick(overview, image_id)
        return (overview.summary(), gr.update(choices=overview.choices(), value=chosen),
                overview.table(), overview.ids, *self.editor(overview, style_id, chosen))

    def words_view(self, style_id: str | None) -> tuple[Any, ...]:
        if not style_id:
            return "", [], "", "", [], ""
        overview = views.load_overview(self.studio, style_id)
        stats_text, common = views.stats_markdown(self.studio, style_id)
        review_text, segments = views.review_view(self.studio, style_id, overview)
        last = self.studio.captions.edits.last(style_id)
        undo_text = (f"Last bulk edit: **{escape_md(last.label)}** ({last.count} caption(s))"
                     if last else "No bulk edit to undo.")
        return (stats_text, common, overview.tokens_markdown(), review_text, segments,
                undo_text)

    def everything(self, style_id: str | None, image_id: str | None) -> tuple[Any, ...]:
        job = self.latest_job(style_id)
        running = job is not None and not job.finished
        return (*self.listing(style_id, image_id), *self.words_view(style_id),
                views.job_markdown(job), gr.Timer(active=running))

    def keeping_unsaved(self, result: tuple, image_id: str | None, typed: str,
                        loaded_text: str, notice: str = "") -> tuple:
        """`everything`'s outputs, minus the editor's text when it holds words not saved
        yet and still shows the same image: a refresh must never eat an artist's words."""
        out = list(result)
        outputs = self.all_outputs
        still_same = image_id and out[outputs.index(self.current)].get("value") == image_id
        if still_same and (typed or "") != (loaded_text or ""):
            for component in (self.text, self.loaded, self.wording):
                out[outputs.index(component)] = gr.skip()
            if notice:
                gr.Info(notice)
        elif (typed or "") == (loaded_text or "") == (out[outputs.index(self.text)] or ""):
            # Nothing new for the editor: leave the box alone. A refresh triggered before
            # the artist started typing (a reload runs two: the tab's and the page's own
            # style announcement) would otherwise land after the first words and eat them.
            for component in (self.text, self.loaded):
                out[outputs.index(component)] = gr.skip()
        return tuple(out)

    # -- editing one caption ----------------------------------------------------------
    def reopen(self, style_id: str | None, image_id: str | None, typed: str,
               loaded_text: str) -> tuple:
        """On showing the tab or a (re)announced style: the current image if it belongs to
        the style, else the first; words typed and not saved stay (a page's own load can
        announce its style after the artist started typing)."""
        return self.keeping_unsaved(self.everything(style_id, image_id), image_id, typed,
                                    loaded_text)

    def move(self, style_id: str | None, image_id: str | None, step: int) -> tuple[Any, ...]:
        if not style_id:
            return self.listing(style_id, image_id)
        overview = views.load_overview(self.studio, style_id)
        return self.listing(style_id, views.pick(overview, image_id, step))

    def choose(self, style_id: str | None, image_id: str | None) -> tuple[Any, ...]:
        if not style_id:
            return None, "", "", [], ""
        return self.editor(views.load_overview(self.studio, style_id), style_id, image_id)

    def save(self, action: str, step: int, style_id: str | None, image_id: str | None,
             words: str) -> tuple[Any, ...]:
        """Save as a draft, approve, or send back to draft; then show the image `step` on."""
        style_id = need_style(style_id)
        if not image_id:
            raise gr.Error("Choose an image first.")
        if action == "approve":
            self.studio.captions.approve(image_id, words)
            gr.Info("Approved: this caption will be trained on.")
        elif action == "draft":
            self.studio.captions.set(image_id, words, approved=False)
        else:
            self.studio.captions.unapprove(image_id)
        overview = views.load_overview(self.studio, style_id)
        return (*self.listing(style_id, views.pick(overview, image_id, step)),
                *self.words_view(style_id))

    def select_row(self, image_ids: list[str], style_id: str | None,
                   evt: gr.SelectData) -> tuple[Any, ...]:
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not style_id or index is None or index >= len(image_ids):
            return (gr.skip(),) * (1 + len(self.editor_outputs))
        image_id = image_ids[index]
        return (image_id, *self.choose(style_id, image_id))

    def live(self, style_id: str | None, words: str) -> tuple[Any, str]:
        """Highlights and token count of the text as it is typed, before it is saved."""
        words = words or ""
        if not style_id or not words.strip():
            return self.studio.captions.highlight(words), ""
        report = self.studio.captions.tokens(style_id, {"typed": words})
        return self.studio.captions.highlight(words), views.live_tokens(report)

    # -- auto-captioning ---------------------------------------------------------------
    def describe(self, picked: str | None, typed: str) -> str:
        ref = views.chosen_model(picked, typed)
        if not ref:
            return ""
        source = describe_captioner(ref, self.studio.captions.captioners_dir)
        icon = "✓" if source.available else "⚠"
        return f"{icon} {escape_md(source.detail)}"

    def start(self, style_id, picked, typed, tmpl, over, approved, detail,
              image_ids=None) -> tuple[Any, ...]:
        """Auto-caption every image (or only `image_ids`) as drafts, as a job."""
        style_id = need_style(style_id)
        job = self.studio.captions.auto(style_id, model=views.chosen_model(picked, typed),
                                        image_ids=image_ids, overwrite=over,
                                        replace_approved=approved, detailed=detail,
                                        template=tmpl)
        return views.job_markdown(job), gr.Timer(active=True)

    def start_one(self, style_id, image_id, picked, typed, tmpl, approved,
                  detail) -> tuple[Any, ...]:
        if not image_id:
            raise gr.Error("Choose an image first.")
        return self.start(style_id, picked, typed, tmpl, True, approved, detail, [image_id])

    def cancel(self, style_id: str | None) -> str:
        job = self.latest_job(style_id)
        if job is None or job.finished:
            raise gr.Error("No auto-captioning is running.")
        self.studio.jobs.cancel(job.id)
        gr.Info("Stopping after the current image; finished captions are kept.")
        return views.job_markdown(self.studio.jobs.get(job.id))

    def poll(self, style_id: str | None, image_id: str | None, typed: str,
             loaded_text: str) -> tuple:
        """While a batch runs: progress and the growing table; when it ends: everything,
        except words typed in the editor and not saved yet."""
        job = self.latest_job(style_id)
        if job is None or job.finished or not style_id:
            return self.keeping_unsaved(self.everything(style_id, image_id), image_id, typed,
                                        loaded_text, KEPT_UNSAVED)
        overview = views.load_overview(self.studio, style_id)
        changes = {self.job_md: views.job_markdown(job), self.summary: overview.summary(),
                   self.table: overview.table()}
        return tuple(changes.get(o, gr.skip()) for o in self.all_outputs)

    # -- bulk edits, sidecars ---------------------------------------------------------------
    def bulk(self, action: str, style_id: str | None, image_id: str | None,
             *args: Any) -> tuple[Any, ...]:
        """One bulk edit (or its undo) on every caption of the style."""
        style_id = need_style(style_id)
        edits = self.studio.captions.edits
        if action == "replace":
            report = edits.replace(style_id, args[0], args[1], case_sensitive=args[2],
                                   whole_word=args[3])
        elif action == "undo":
            report = edits.undo(style_id)
        else:
            report = getattr(edits, action)(style_id, args[0])
        return (escape_md(report.message), *self.listing(style_id, image_id),
                *self.words_view(style_id))

    def export(self, style_id: str | None, only_approved: bool, images_too: bool) -> str:
        report = self.studio.captions.sidecars.export_for_download(
            need_style(style_id), approved_only=only_approved, include_images=images_too)
        gr.Info(report.message)
        return str(report.path)

    def import_sidecars(self, style_id: str | None, image_id: str | None,
                        paths: list[str] | None, replace_ok: bool) -> tuple[Any, ...]:
        style_id = need_style(style_id)
        if not paths:
            raise gr.Error("Choose .txt files or a .zip to import first.")
        try:
            report = self.studio.captions.sidecars.import_files(
                style_id, [Path(p) for p in paths], replace_approved=replace_ok)
        finally:
            self.studio.discard_uploads(paths)  # the uploaded copies are no longer needed
        lines = [escape_md(report.message)] + [
            f"- {escape_md(name)}: {escape_md(reason)}" for name, reason in report.skipped]
        return ("\n".join(lines), None, *self.listing(style_id, image_id),
                *self.words_view(style_id))

    # -- wiring ------------------------------------------------------------------------
    def _wire(self) -> None:
        ctx = self.ctx
        refresh = [ctx.style, self.current]
        ctx.tab.select(self.reopen, [*refresh, self.text, self.loaded], self.all_outputs)
        on_style_change(ctx.style, self.reopen, [*refresh, self.text, self.loaded],
                        self.all_outputs)
        self.current.input(self.choose, refresh, self.editor_outputs)
        self.prev_btn.click(lambda s, i: self.move(s, i, -1), refresh, self.list_outputs)
        self.next_btn.click(lambda s, i: self.move(s, i, 1), refresh, self.list_outputs)
        self._wire_saves()
        self.text.change(self.live, [ctx.style, self.text], [self.wording, self.live_tokens],
                         show_progress="hidden")
        self.text.input(None, None, None, js=views.WARN_BEFORE_LEAVING_UNSAVED)
        self.table.select(self.select_row, [self.ids, ctx.style],
                          [self.current, *self.editor_outputs])
        self._wire_auto()
        self._wire_bulk()

    def _wire_saves(self) -> None:
        inputs = [self.ctx.style, self.current, self.text]
        outputs = [*self.list_outputs, *self.words_outputs]
        for button, action, step in ((self.save_btn, "draft", 0),
                                     (self.approve_btn, "approve", 0),
                                     (self.approve_next_btn, "approve", 1),
                                     (self.draft_btn, "unapprove", 0)):
            button.click(guard(lambda *v, a=action, n=step: self.save(a, n, *v)), inputs,
                         outputs)

    def _wire_auto(self) -> None:
        ctx = self.ctx
        chosen = [self.model, self.custom]
        self.model.change(self.describe, chosen, self.model_info)
        self.custom.change(self.describe, chosen, self.model_info)
        ctx.tab.select(self.describe, chosen, self.model_info)
        auto_inputs = [ctx.style, *chosen, self.template, self.overwrite,
                       self.replace_approved, self.detailed]
        self.auto_btn.click(guard(self.start), auto_inputs, [self.job_md, self.timer])
        self.suggest_btn.click(guard(self.start_one),
                               [ctx.style, self.current, *chosen, self.template,
                                self.replace_approved, self.detailed],
                               [self.job_md, self.timer])
        self.cancel_btn.click(guard(self.cancel), ctx.style, self.job_md)
        self.timer.tick(self.poll, [ctx.style, self.current, self.text, self.loaded],
                        self.all_outputs, show_progress="hidden")

    def _wire_bulk(self) -> None:
        ctx = self.ctx
        refresh = [ctx.style, self.current]
        outputs = [self.bulk_md, *self.list_outputs, *self.words_outputs]
        for button, action, fields in (
                (self.replace_btn, "replace", [self.find, self.replace, self.case, self.whole]),
                (self.prefix_btn, "add_prefix", [self.prefix]),
                (self.suffix_btn, "add_suffix", [self.suffix]),
                (self.remove_btn, "remove_word", [self.word]),
                (self.undo_btn, "undo", [])):
            button.click(guard(lambda *v, a=action: self.bulk(a, *v)), [*refresh, *fields],
                         outputs)
        self.export_btn.click(guard(self.export),
                              [ctx.style, self.approved_only, self.with_images],
                              self.export_file)
        self.import_btn.click(guard(self.import_sidecars),
                              [*refresh, self.upload, self.import_replace],
                              [self.import_md, self.upload, *self.list_outputs,
                               *self.words_outputs])
