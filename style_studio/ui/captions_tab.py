"""Captions tab: auto-caption as drafts, then read, edit and approve every caption.

All rules live in `studio.captions`; this module lays out the page and wires events.
Images are shown through `studio.images.servable` (byte-exact copies in the app's
cache that erasure can find); the export zip is made in that cache too, never in the
system temp folder, and nothing is served from the workspace.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from style_studio.studio import DEFAULT_TEMPLATE, Job, StudioError, describe_captioner

from . import caption_views as views
from .common import UIContext, escape_md, guard, need_style, upload_file


def build(ctx: UIContext) -> None:
    studio = ctx.studio
    gr.Markdown("### 2 · Captions\nCaptions decide what the style learns. Let a model draft "
                "them, then read, edit and **approve** each one in your own words: only "
                "approved captions are trained on.")
    summary = gr.Markdown(elem_id="captions-summary")

    with gr.Accordion("Auto-caption", open=True, elem_id="captions-auto"):
        with gr.Row():
            model = gr.Dropdown(views.captioner_choices(studio),
                                value=studio.captions.default_captioner(),
                                label="Captioning model", scale=3, elem_id="captions-model")
            custom = gr.Textbox(label="…or another image-to-text model id or local folder",
                                placeholder="e.g. florence-community/Florence-2-base",
                                scale=2, elem_id="captions-custom-model")
        model_info = gr.Markdown(elem_id="captions-model-info")
        with gr.Row():
            template = gr.Textbox(DEFAULT_TEMPLATE, label="Caption template",
                                  info="{caption} is the model's text; [trigger] becomes "
                                       "the style's trigger word.", scale=2)
            overwrite = gr.Checkbox(label="Replace existing drafts", value=False)
            replace_approved = gr.Checkbox(label="Also replace approved captions",
                                           value=False)
            detailed = gr.Checkbox(label="Detailed (Florence-2)", value=False)
        with gr.Row():
            auto_btn = gr.Button("Auto-caption all images", variant="primary",
                                 elem_id="captions-auto-run")
            cancel_btn = gr.Button("Cancel", elem_id="captions-auto-cancel")
        job_md = gr.Markdown(elem_id="captions-job")
    timer = gr.Timer(1.0, active=False)
    # The caption as last put in the editor: anything else in the box is unsaved. Kept in
    # the page (hidden, not a State) so the browser can warn before a reload loses it.
    loaded = gr.Textbox(visible="hidden", interactive=False, show_label=False,
                        elem_id="captions-loaded")

    with gr.Row(elem_id="captions-editor"):
        image = gr.Image(show_label=False, interactive=False, height=460, scale=3,
                         buttons=["fullscreen"], elem_id="captions-image")
        with gr.Column(scale=2):
            current = gr.Dropdown(label="Image", elem_id="captions-pick")
            status = gr.Markdown(elem_id="captions-status")
            text = gr.Textbox(label="Caption", lines=5, elem_id="captions-text",
                              info="Type [trigger] to insert the style's trigger word.")
            live_tokens = gr.Markdown(elem_id="captions-live-tokens")
            with gr.Row():
                # Outside a gr.Group buttons keep their fill: inside one they read as text.
                prev_btn = gr.Button("◀ Previous", variant="secondary", elem_id="captions-prev")
                next_btn = gr.Button("Next ▶", variant="secondary", elem_id="captions-next")
            with gr.Row():
                save_btn = gr.Button("Save draft", variant="secondary", elem_id="captions-save")
                approve_btn = gr.Button("Approve", variant="primary",
                                        elem_id="captions-approve")
                approve_next_btn = gr.Button("Approve & next", elem_id="captions-approve-next")
            with gr.Row():
                draft_btn = gr.Button("Back to draft", elem_id="captions-unapprove")
                suggest_btn = gr.Button("Auto-caption this image",
                                        elem_id="captions-suggest")
            wording = gr.HighlightedText(label="Words about people in this caption",
                                         color_map=views.PEOPLE_COLORS, show_legend=True,
                                         elem_id="captions-wording")

    table = gr.Dataframe(headers=views.TABLE_HEADERS, interactive=False, wrap=True,
                         label="All captions (click a row to edit it)", max_height=420,
                         column_widths=["4%", "16%", "11%", "47%", "7%", "15%"],
                         elem_id="captions-table")
    ids = gr.State([])

    with gr.Accordion("Bulk edit", open=False, elem_id="captions-bulk"):
        with gr.Row():
            find = gr.Textbox(label="Find", scale=2)
            replace = gr.Textbox(label="Replace with", scale=2)
            case = gr.Checkbox(label="Match case")
            whole = gr.Checkbox(label="Whole words", value=True)
            replace_btn = gr.Button("Replace in all captions", elem_id="captions-replace")
        with gr.Row():
            prefix = gr.Textbox(label="Add in front", placeholder="inkwash,")
            prefix_btn = gr.Button("Add prefix")
            suffix = gr.Textbox(label="Add at the end", placeholder=", ink on paper")
            suffix_btn = gr.Button("Add suffix")
        with gr.Row():
            word = gr.Textbox(label="Remove a word or phrase everywhere")
            remove_btn = gr.Button("Remove everywhere")
        with gr.Row():
            undo_md = gr.Markdown(elem_id="captions-undo-info")
            undo_btn = gr.Button("Undo last bulk edit", elem_id="captions-undo", scale=0)
        bulk_md = gr.Markdown(elem_id="captions-bulk-result")

    with gr.Accordion("Words, tokens and wording review", open=False,
                      elem_id="captions-words"):
        stats_md = gr.Markdown(elem_id="captions-stats")
        words_df = gr.Dataframe(headers=["word", "captions", "uses"], interactive=False,
                                max_height=260, label="Most used words")
        tokens_md = gr.Markdown(elem_id="captions-tokens")
        review_md = gr.Markdown(elem_id="captions-review")
        review_hl = gr.HighlightedText(label="Captions with words about people",
                                       color_map=views.PEOPLE_COLORS, show_legend=True,
                                       elem_id="captions-review-text")

    with gr.Accordion("Sidecar .txt files", open=False, elem_id="captions-sidecars"):
        with gr.Row():
            approved_only = gr.Checkbox(label="Approved captions only", value=False)
            with_images = gr.Checkbox(label="Include the images (a ready dataset)",
                                      value=False)
            export_btn = gr.Button("Export captions (.zip)", elem_id="captions-export")
        export_file = gr.File(label="Download", interactive=False, elem_id="captions-download")
        with gr.Row():
            upload = upload_file(label=".txt files named like the images, or a .zip of them",
                             file_count="multiple", file_types=[".txt", ".zip"],
                             type="filepath", height=120, scale=3)
            with gr.Column(scale=1):
                import_replace = gr.Checkbox(label="Replace approved captions", value=False)
                import_btn = gr.Button("Import captions", elem_id="captions-import")
        import_md = gr.Markdown(elem_id="captions-import-result")

    # -- views ---------------------------------------------------------------------
    def latest_job(style_id: str | None) -> Job | None:
        jobs = studio.jobs.list(style_id=style_id, kind="caption", limit=1) if style_id else []
        return jobs[0] if jobs else None

    def editor(overview: views.Overview, style_id: str, image_id: str | None):
        row = overview.row(image_id)
        if row is None:
            return None, "Choose an image.", gr.update(value=""), [], ""
        try:
            shown = str(studio.images.servable(row.image_id, "stored"))
        except (OSError, StudioError):
            shown = None
        trigger = studio.styles.get(style_id).trigger
        return (shown, views.editor_status(overview, row, trigger), row.text,
                studio.captions.highlight(row.text), row.text)

    def listing(style_id: str | None, image_id: str | None):
        """Summary, picker, table and editor for `image_id` (or the first image)."""
        if not style_id:
            return ("Choose or create a style first (top of the page).",
                    gr.update(choices=[], value=None), [], [], None, "", "", [], "")
        overview = views.load_overview(studio, style_id)
        chosen = views.pick(overview, image_id)
        return (overview.summary(), gr.update(choices=overview.choices(), value=chosen),
                overview.table(), overview.ids, *editor(overview, style_id, chosen))

    editor_outputs = [image, status, text, wording, loaded]
    list_outputs = [summary, current, table, ids, *editor_outputs]

    def words_view(style_id: str | None):
        if not style_id:
            return "", [], "", "", [], ""
        overview = views.load_overview(studio, style_id)
        stats_text, common = views.stats_markdown(studio, style_id)
        review_text, segments = views.review_view(studio, style_id, overview)
        last = studio.captions.edits.last(style_id)
        undo_text = (f"Last bulk edit: **{escape_md(last.label)}** ({last.count} caption(s))"
                     if last else "No bulk edit to undo.")
        return (stats_text, common, overview.tokens_markdown(), review_text, segments,
                undo_text)

    words_outputs = [stats_md, words_df, tokens_md, review_md, review_hl, undo_md]

    def everything(style_id: str | None, image_id: str | None):
        job = latest_job(style_id)
        running = job is not None and not job.finished
        return (*listing(style_id, image_id), *words_view(style_id),
                views.job_markdown(job), gr.Timer(active=running))

    all_outputs = [*list_outputs, *words_outputs, job_md, timer]

    # -- editing one caption ----------------------------------------------------------
    def move(style_id: str | None, image_id: str | None, step: int):
        if not style_id:
            return listing(style_id, image_id)
        overview = views.load_overview(studio, style_id)
        return listing(style_id, views.pick(overview, image_id, step))

    def choose(style_id: str | None, image_id: str | None):
        if not style_id:
            return None, "", "", [], ""
        return editor(views.load_overview(studio, style_id), style_id, image_id)

    def save_with(action: str, step: int = 0):
        @guard
        def handler(style_id: str | None, image_id: str | None, words: str):
            style_id = need_style(style_id)
            if not image_id:
                raise gr.Error("Choose an image first.")
            if action == "approve":
                studio.captions.approve(image_id, words)
                gr.Info("Approved: this caption will be trained on.")
            elif action == "draft":
                studio.captions.set(image_id, words, approved=False)
            else:
                studio.captions.unapprove(image_id)
            overview = views.load_overview(studio, style_id)
            return (*listing(style_id, views.pick(overview, image_id, step)),
                    *words_view(style_id))
        return handler

    def select_row(image_ids: list[str], style_id: str | None, evt: gr.SelectData):
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not style_id or index is None or index >= len(image_ids):
            return (gr.skip(),) * (1 + len(editor_outputs))
        image_id = image_ids[index]
        return (image_id, *choose(style_id, image_id))

    def live(style_id: str | None, words: str):
        """Highlights and token count of the text as it is typed, before it is saved."""
        words = words or ""
        if not style_id or not words.strip():
            return studio.captions.highlight(words), ""
        report = studio.captions.tokens(style_id, {"typed": words})
        return studio.captions.highlight(words), views.live_tokens(report)

    # -- auto-captioning ---------------------------------------------------------------
    def chosen_model(picked: str | None, typed: str) -> str:
        return (typed or "").strip() or (picked or "")

    def describe(picked: str | None, typed: str) -> str:
        ref = chosen_model(picked, typed)
        if not ref:
            return ""
        source = describe_captioner(ref, studio.captions.captioners_dir)
        icon = "✓" if source.available else "⚠"
        return f"{icon} {escape_md(source.detail)}"

    def start(style_id, picked, typed, tmpl, over, approved, detail, image_ids=None):
        style_id = need_style(style_id)
        job = studio.captions.auto(style_id, model=chosen_model(picked, typed),
                                   image_ids=image_ids, overwrite=over,
                                   replace_approved=approved, detailed=detail,
                                   template=tmpl)
        return views.job_markdown(job), gr.Timer(active=True)

    @guard
    def start_all(style_id, picked, typed, tmpl, over, approved, detail):
        return start(style_id, picked, typed, tmpl, over, approved, detail)

    @guard
    def start_one(style_id, image_id, picked, typed, tmpl, approved, detail):
        if not image_id:
            raise gr.Error("Choose an image first.")
        return start(style_id, picked, typed, tmpl, True, approved, detail, [image_id])

    @guard
    def cancel(style_id: str | None):
        job = latest_job(style_id)
        if job is None or job.finished:
            raise gr.Error("No auto-captioning is running.")
        studio.jobs.cancel(job.id)
        gr.Info("Stopping after the current image; finished captions are kept.")
        return views.job_markdown(studio.jobs.get(job.id))

    def keeping_unsaved(result: tuple, image_id: str | None, typed: str, loaded_text: str,
                        notice: str = "") -> tuple:
        """`everything`'s outputs, minus the editor's text when it holds words not saved
        yet and still shows the same image: a refresh must never eat an artist's words."""
        out = list(result)
        still_same = image_id and out[all_outputs.index(current)].get("value") == image_id
        if still_same and (typed or "") != (loaded_text or ""):
            for component in (text, loaded, wording):
                out[all_outputs.index(component)] = gr.skip()
            if notice:
                gr.Info(notice)
        return tuple(out)

    def reopen(style_id: str | None, image_id: str | None, typed: str, loaded_text: str):
        return keeping_unsaved(everything(style_id, image_id), image_id, typed, loaded_text)

    def poll(style_id: str | None, image_id: str | None, typed: str, loaded_text: str):
        """While a batch runs: progress and the growing table; when it ends: everything,
        except words typed in the editor and not saved yet."""
        job = latest_job(style_id)
        if job is None or job.finished or not style_id:
            return keeping_unsaved(
                everything(style_id, image_id), image_id, typed, loaded_text,
                "Your unsaved caption is still in the editor: Save or Approve it to keep "
                "it, or pick the image again to see the new draft.")
        overview = views.load_overview(studio, style_id)
        changes = {job_md: views.job_markdown(job), summary: overview.summary(),
                   table: overview.table()}
        return tuple(changes.get(o, gr.skip()) for o in all_outputs)

    # -- bulk edits, sidecars ---------------------------------------------------------------
    def bulk(action: str):
        @guard
        def handler(style_id: str | None, image_id: str | None, *args):
            style_id = need_style(style_id)
            edits = studio.captions.edits
            if action == "replace":
                report = edits.replace(style_id, args[0], args[1], case_sensitive=args[2],
                                       whole_word=args[3])
            elif action == "undo":
                report = edits.undo(style_id)
            else:
                report = getattr(edits, action)(style_id, args[0])
            return (escape_md(report.message), *listing(style_id, image_id),
                    *words_view(style_id))
        return handler

    bulk_outputs = [bulk_md, *list_outputs, *words_outputs]

    @guard
    def export(style_id: str | None, only_approved: bool, images_too: bool):
        report = studio.captions.sidecars.export_for_download(
            need_style(style_id), approved_only=only_approved, include_images=images_too)
        gr.Info(report.message)
        return str(report.path)

    @guard
    def import_sidecars(style_id: str | None, image_id: str | None, paths: list[str] | None,
                        replace_ok: bool):
        style_id = need_style(style_id)
        if not paths:
            raise gr.Error("Choose .txt files or a .zip to import first.")
        try:
            report = studio.captions.sidecars.import_files(
                style_id, [Path(p) for p in paths], replace_approved=replace_ok)
        finally:
            studio.discard_uploads(paths)  # the uploaded copies are no longer needed
        lines = [escape_md(report.message)] + [
            f"- {escape_md(name)}: {escape_md(reason)}" for name, reason in report.skipped]
        return ("\n".join(lines), None, *listing(style_id, image_id), *words_view(style_id))

    # -- wiring ------------------------------------------------------------------------
    refresh = [ctx.style, current]
    ctx.tab.select(reopen, [*refresh, text, loaded], all_outputs)
    ctx.style.change(lambda s: everything(s, None), ctx.style, all_outputs)
    current.input(lambda s, i: choose(s, i), refresh, editor_outputs)
    prev_btn.click(lambda s, i: move(s, i, -1), refresh, list_outputs)
    next_btn.click(lambda s, i: move(s, i, 1), refresh, list_outputs)
    inputs = [ctx.style, current, text]
    save_btn.click(save_with("draft"), inputs, [*list_outputs, *words_outputs])
    approve_btn.click(save_with("approve"), inputs, [*list_outputs, *words_outputs])
    approve_next_btn.click(save_with("approve", 1), inputs, [*list_outputs, *words_outputs])
    draft_btn.click(save_with("unapprove"), inputs, [*list_outputs, *words_outputs])
    text.change(live, [ctx.style, text], [wording, live_tokens], show_progress="hidden")
    text.input(None, None, None, js=views.WARN_BEFORE_LEAVING_UNSAVED)
    table.select(select_row, [ids, ctx.style], [current, *editor_outputs])

    model.change(describe, [model, custom], model_info)
    custom.change(describe, [model, custom], model_info)
    ctx.tab.select(describe, [model, custom], model_info)
    auto_inputs = [ctx.style, model, custom, template, overwrite, replace_approved, detailed]
    auto_btn.click(start_all, auto_inputs, [job_md, timer])
    suggest_btn.click(start_one, [ctx.style, current, model, custom, template,
                                  replace_approved, detailed], [job_md, timer])
    cancel_btn.click(cancel, ctx.style, job_md)
    timer.tick(poll, [*refresh, text, loaded], all_outputs, show_progress="hidden")

    replace_btn.click(bulk("replace"), [*refresh, find, replace, case, whole], bulk_outputs)
    prefix_btn.click(bulk("add_prefix"), [*refresh, prefix], bulk_outputs)
    suffix_btn.click(bulk("add_suffix"), [*refresh, suffix], bulk_outputs)
    remove_btn.click(bulk("remove_word"), [*refresh, word], bulk_outputs)
    undo_btn.click(bulk("undo"), refresh, bulk_outputs)
    export_btn.click(export, [ctx.style, approved_only, with_images], export_file)
    import_btn.click(import_sidecars, [*refresh, upload, import_replace],
                     [import_md, upload, *list_outputs, *words_outputs])
