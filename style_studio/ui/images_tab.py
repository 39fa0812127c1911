"""Images tab: add files, a zip or a folder; see every image with its badges; curate.

Imports run as jobs (`studio.images.start_ingest`) and the tab polls the newest import
job of the style, so a reload shows the running import or the last report again.
Thumbnails shown here are byte-exact copies in the app's cache (`images.servable`),
which erasure finds and deletes with everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from style_studio.studio import (
    FILTERS,
    GalleryItem,
    IngestReport,
    Job,
    NotFound,
    Studio,
    StudioError,
    human_size,
)

from .common import (
    Tab,
    escape_md,
    guard,
    job_state_markdown,
    need_style,
    on_style_change,
    upload_file,
)

FILTER_LABELS = {"all": "All", "needs caption": "Needs caption",
                 "needs consent": "Needs consent", "flagged": "Flagged"}
LEGEND = ("Each tile says whether its caption is approved (caption ✓) and its consent "
          "cleared (consent ✓); ⚠ counts warnings, ≈ marks a near-duplicate. "
          "Click a tile for its details.")
REPORT_LINES = 40
CONSENT_WORDS = {"cleared": "✓ cleared", "pending": "pending", "refused": "✗ refused",
                 "revoked": "✗ revoked", "missing": "not recorded yet (Consent tab)"}


@dataclass
class Confirm:
    """A hidden row that asks before something is deleted."""

    row: gr.Row
    text: gr.Markdown
    yes: gr.Button
    no: gr.Button


def _confirm_row(prefix: str) -> Confirm:
    with gr.Row(visible=False, elem_id=f"{prefix}-confirm") as row:
        text = gr.Markdown()
        yes = gr.Button("Yes, remove it and all its files", variant="stop", scale=0,
                        elem_id=f"{prefix}-confirm-yes")
        no = gr.Button("Keep it", scale=0)
    return Confirm(row, text, yes, no)


# -- text -----------------------------------------------------------------------------
def report_markdown(studio: Studio, job: Job | None) -> str:
    """The newest import of the style: progress while it runs, then its report."""
    if job is None:
        return ""
    state = job_state_markdown(job, "Importing", "the previous import",
                               "The import failed")
    if state:
        return state
    if not job.result:
        return f"The last import was {job.status}: {escape_md(job.message)}"
    report = IngestReport.from_dict(job.result)
    lines = [f"**Last import** ({(job.finished_at or '')[:16].replace('T', ' ')} UTC): "
             f"{report.headline}."]
    lines += [f"- ✗ **{escape_md(name)}** — {escape_md(reason)}"
              for name, reason in report.rejected]
    for name, existing in report.duplicates:
        try:
            known = f" as *{escape_md(studio.images.get(existing).filename)}*"
        except NotFound:  # removed since
            known = ""
        lines.append(f"- = **{escape_md(name)}** — already in this style{known}; skipped")
    lines += [f"- {escape_md(n)}" for n in report.notices]
    if len(lines) > REPORT_LINES + 1:
        lines = [*lines[:REPORT_LINES + 1], f"- …and {len(lines) - REPORT_LINES - 1} more"]
    return "\n".join(lines)


def detail_markdown(item: GalleryItem) -> str:
    r = item.record
    meta = r.source_meta or {}
    caption = {"approved": "✓ approved", "draft": "draft, not approved yet",
               "missing": "none yet (Captions tab)"}[item.caption]
    rows = [
        ("Size", f"{r.width}×{r.height} px stored"
                 + (f" (uploaded {r.source_width}×{r.source_height})"
                    if (r.source_width, r.source_height) != (r.width, r.height) else "")),
        ("Format", f"{r.format} uploaded, stored as {r.stored_format} "
                   f"({human_size(r.bytes)})"),
        ("From", r.source or r.filename), ("Added", r.added_at.replace("T", " ")),
        ("Caption", caption), ("Consent", CONSENT_WORDS.get(item.consent, item.consent)),
        ("Creator (in the file)", meta.get("creator") or "—"),
        ("Copyright (in the file)", meta.get("copyright") or "—"),
        ("Credit (in the file)", meta.get("credit") or "—"),
        ("Data mining (plus:DataMining)", meta.get("data_mining") or "—"),
        ("sha256 of the stored copy", f"`{r.sha256}`"),
        ("sha256 as uploaded", f"`{r.source_sha256}`"),
        ("Perceptual hash", f"`{r.phash}` · sharpness {r.sharpness:.0f}"),
    ]
    text = [f"#### {escape_md(r.filename)}"]
    text += [f"- **{k}:** {v if k.startswith(('sha', 'Perc')) else escape_md(v)}" for k, v in rows]
    if item.warnings:
        text += ["", "**Warnings**", *(f"- ⚠ {escape_md(w)}" for w in item.warnings)]
    if r.normalised:
        text += ["", "**What the stored copy changed**",
                 *(f"- {escape_md(n)}" for n in r.normalised)]
    if r.near_duplicates:
        text += ["", "≈ Looks almost the same as another image: compare them under "
                     "*Near-duplicates* below."]
    return "\n".join(text)


def _tile(studio: Studio, item: GalleryItem) -> tuple[str, str] | None:
    try:
        return str(studio.images.servable(item.record.id)), \
            f"{item.record.filename} · {item.badges()}"
    except (StudioError, OSError):
        return None


# -- the tab ------------------------------------------------------------------------------
@dataclass
class Detail:
    """The right-hand panel: the selected image, its facts, and its removal."""

    preview: gr.Image
    text: gr.Markdown
    actions: gr.Row
    remove: gr.Button
    close: gr.Button
    confirm: Confirm


@dataclass
class Pairs:
    """Near-duplicates side by side, one pair at a time."""

    box: gr.Accordion
    pick: gr.Dropdown
    left: gr.Image
    right: gr.Image
    keep: gr.Button
    drop_left: gr.Button
    drop_right: gr.Button
    confirm: Confirm


DETAIL_HINT = "Click a tile to see its size, format, hashes, source metadata and warnings."


class ImagesTab(Tab):
    """Builds the tab and holds its event handlers (state lives in the studio)."""

    # -- layout --------------------------------------------------------------------
    def _layout(self) -> None:
        gr.Markdown("### 1 · Images\nAdd the images this style is made of — 20 to 150 "
                    "intentional ones beat a thousand random ones. Every file is checked, "
                    "stored as a clean copy (upright, RGB, no EXIF or GPS) and hashed.")
        self.summary = gr.Markdown(elem_id="images-summary")
        with gr.Row(equal_height=True):
            self.upload = upload_file(label="Add images (JPEG, PNG, WebP, GIF, BMP, TIFF), a .zip, "
                                  "and .txt captions", file_count="multiple", type="filepath",
                                  height=140, scale=3, elem_id="images-upload")
            # A public demo never reads the server's own disk: uploads only.
            with gr.Column(scale=2, visible=self.limits is None):
                self.folder = gr.Textbox(label="…or a folder on this computer",
                                         placeholder="/home/me/Pictures/ink-washes",
                                         elem_id="images-folder")
                self.folder_btn = gr.Button("Import folder", elem_id="images-import-folder")
        self.report = gr.Markdown(elem_id="images-report")
        self.timer = gr.Timer(1.0, active=False)
        with gr.Row():
            with gr.Column(scale=3):
                self.which = gr.Radio([(v, k) for k, v in FILTER_LABELS.items()], value="all",
                                      label="Show", elem_id="images-filter")
                gr.Markdown(LEGEND, elem_classes=["images-legend"])
                self.gallery = gr.Gallery(show_label=False, columns=4, height="auto",
                                          allow_preview=False, object_fit="cover",
                                          fit_columns=False, elem_id="images-gallery")
            with gr.Column(scale=2, variant="panel", elem_id="images-detail"):
                self.detail = self._detail_panel()
        self.pairs = self._pairs_panel()
        self.ids = gr.State([])
        self.selected = gr.State(None)
        self.pending = gr.State(None)

    @staticmethod
    def _detail_panel() -> Detail:
        preview = gr.Image(show_label=False, interactive=False, height=300, visible=False,
                           buttons=["fullscreen"], elem_id="images-preview")
        text = gr.Markdown(DETAIL_HINT, elem_id="images-detail-text")
        with gr.Row(visible=False) as actions:
            remove = gr.Button("Remove from this style…", variant="stop", scale=0,
                               elem_id="images-remove")
            close = gr.Button("Close", scale=0)
        return Detail(preview, text, actions, remove, close, _confirm_row("images-remove"))

    @staticmethod
    def _pairs_panel() -> Pairs:
        with gr.Accordion("Near-duplicates", open=True, visible=False,
                          elem_id="images-near-duplicates") as box:
            gr.Markdown("These look almost the same. Keep both, or drop one of them.")
            pick = gr.Dropdown(label="Pair", elem_id="images-pair")
            with gr.Row():
                left = gr.Image(interactive=False, height=300, label="Left",
                                buttons=["fullscreen"])
                right = gr.Image(interactive=False, height=300, label="Right",
                                 buttons=["fullscreen"])
            with gr.Row():
                keep = gr.Button("Keep both", elem_id="images-keep-both")
                drop_left = gr.Button("Drop left…", variant="stop")
                drop_right = gr.Button("Drop right…", variant="stop")
            confirm = _confirm_row("images-drop")
        return Pairs(box, pick, left, right, keep, drop_left, drop_right, confirm)

    # -- views ----------------------------------------------------------------------
    @property
    def view_outputs(self) -> list[Any]:
        return [self.summary, self.which, self.gallery, self.ids]

    @property
    def pair_outputs(self) -> list[Any]:
        return [self.pairs.box, self.pairs.pick, self.pairs.left, self.pairs.right]

    @property
    def detail_outputs(self) -> list[Any]:
        d = self.detail
        return [self.selected, d.preview, d.text, d.actions, d.confirm.row]

    def gallery_view(self, style_id: str | None, chosen: str) -> tuple[Any, ...]:
        if not style_id:
            return "Choose or create a style first (top of the page).", gr.update(), [], []
        items = self.studio.images.items(style_id)
        counts = {k: sum(i.matches(k) for i in items) for k in FILTERS}
        shown = [i for i in items if i.matches(chosen or "all")]
        tiles = [t for t in (_tile(self.studio, i) for i in shown) if t]
        choices = [(f"{FILTER_LABELS[k]} ({counts[k]})", k) for k in FILTERS]
        text = f"**{self.studio.images.summary(style_id).text}**"
        return text, gr.update(choices=choices), tiles, [i.record.id for i in shown]

    def pairs_view(self, style_id: str | None, current: str | None = None) -> tuple[Any, ...]:
        pairs = self.studio.images.near_duplicate_pairs(style_id) if style_id else []
        choices = [(f"{p.first.filename} ↔ {p.second.filename} ({p.distance} bits apart)",
                    f"{p.first.id}|{p.second.id}") for p in pairs]
        values = [c[1] for c in choices]
        value = current if current in values else (values[0] if values else None)
        return (gr.update(visible=bool(pairs), label=f"Near-duplicates ({len(pairs)})"),
                gr.update(choices=choices, value=value), *self.pair_images(value))

    def pair_images(self, value: str | None) -> tuple[Any, Any]:
        if not value:
            return gr.update(value=None), gr.update(value=None)
        out = []
        for image_id in value.split("|"):
            try:
                record = self.studio.images.get(image_id)
                out.append(gr.update(
                    value=str(self.studio.images.servable(image_id, "stored")),
                    label=f"{record.filename} · {record.width}×{record.height}"))
            except (NotFound, OSError):
                out.append(gr.update(value=None, label="(removed)"))
        return out[0], out[1]

    def detail_view(self, image_id: str | None, style_id: str | None) -> tuple[Any, ...]:
        item = None
        if image_id and style_id:
            item = next((i for i in self.studio.images.items(style_id)
                         if i.record.id == image_id), None)
        if item is None:
            return (None, gr.update(visible=False, value=None), DETAIL_HINT,
                    gr.update(visible=False), gr.update(visible=False))
        preview = str(self.studio.images.servable(image_id, "stored"))
        return (image_id, gr.update(visible=True, value=preview), detail_markdown(item),
                gr.update(visible=True), gr.update(visible=False))

    def everything(self, style_id: str | None, chosen: str) -> tuple[Any, ...]:
        job = self.studio.images.last_import(style_id) if style_id else None
        running = job is not None and not job.finished
        return (*self.gallery_view(style_id, chosen), *self.pairs_view(style_id),
                *self.detail_view(None, None), report_markdown(self.studio, job),
                gr.Timer(active=running))

    # -- handlers ---------------------------------------------------------------------
    def start(self, style_id: str | None, paths: list[str] | None) -> tuple[Any, ...]:
        if not paths:
            return gr.update(), gr.update(), gr.update()
        if not style_id:
            self.studio.discard_uploads(paths)
        style_id = need_style(style_id)
        job = self.studio.images.start_ingest(style_id, [Path(p) for p in paths])
        return report_markdown(self.studio, job), gr.Timer(active=True), None

    def start_folder(self, style_id: str | None, folder_path: str) -> tuple[Any, ...]:
        style_id = need_style(style_id)
        path = Path((folder_path or "").strip()).expanduser()
        if not (folder_path or "").strip() or not path.is_dir():
            raise gr.Error(f"There is no folder at '{folder_path}'. Type the full path of a "
                           "folder on this computer.")
        job = self.studio.images.start_ingest(style_id, [path])
        return report_markdown(self.studio, job), gr.Timer(active=True)

    def poll(self, style_id: str | None, chosen: str) -> tuple[Any, ...]:
        job = self.studio.images.last_import(style_id) if style_id else None
        if job is not None and not job.finished:
            rest = len(self.view_outputs) + len(self.pair_outputs)
            return report_markdown(self.studio, job), gr.skip(), *[gr.skip()] * rest
        return (report_markdown(self.studio, job), gr.Timer(active=False),
                *self.gallery_view(style_id, chosen), *self.pairs_view(style_id))

    def select(self, image_ids: list[str], style_id: str | None,
               evt: gr.SelectData) -> tuple[Any, ...]:
        index = evt.index if isinstance(evt.index, int) else None
        image_id = image_ids[index] if index is not None and index < len(image_ids) else None
        return self.detail_view(image_id, style_id)

    def ask_remove(self, image_id: str | None) -> tuple[Any, ...]:
        if not image_id:
            raise gr.Error("Click an image in the gallery first.")
        record = self.studio.images.get(image_id)
        return (gr.update(visible=True), image_id,
                f"Remove **{escape_md(record.filename)}** from this style? Its stored copy, "
                "thumbnail, caption, consent record and cached data are deleted; an audit "
                "entry keeps only its hashes and the reason. This cannot be undone.")

    def ask_drop(self, value: str | None, side: int) -> tuple[Any, ...]:
        if not value:
            raise gr.Error("Choose a pair first.")
        return self.ask_remove(value.split("|")[side])

    def remove(self, image_id: str | None, style_id: str | None, chosen: str,
               pair: str | None) -> tuple[Any, ...]:
        if not image_id:
            raise gr.Error("Nothing to remove.")
        record = self.studio.images.get(image_id)
        self.studio.images.remove(image_id, reason="removed in the Images tab")
        gr.Info(f"Removed {record.filename}.")
        return (gr.update(visible=False), *self.detail_view(None, None),
                *self.gallery_view(style_id, chosen), *self.pairs_view(style_id, pair))

    def keep_pair(self, value: str | None, style_id: str | None,
                  chosen: str) -> tuple[Any, ...]:
        if not value:
            raise gr.Error("Choose a pair first.")
        self.studio.images.keep_both(*value.split("|"))
        gr.Info("Both kept; this pair is no longer flagged.")
        return (*self.gallery_view(style_id, chosen), *self.pairs_view(style_id))

    # -- wiring ------------------------------------------------------------------------
    def _wire(self) -> None:
        ctx, d, p = self.ctx, self.detail, self.pairs
        refresh = [ctx.style, self.which]
        views = [*self.view_outputs, *self.pair_outputs]
        everything = [*views, *self.detail_outputs, self.report, self.timer]
        ctx.tab.select(guard(self.everything), refresh, everything)
        on_style_change(ctx.style, guard(self.everything), refresh, everything)
        self.which.change(guard(self.gallery_view), refresh, self.view_outputs)
        self.upload.upload(guard(self.start), [ctx.style, self.upload],
                           [self.report, self.timer, self.upload])
        self.folder_btn.click(guard(self.start_folder), [ctx.style, self.folder],
                              [self.report, self.timer])
        self.timer.tick(guard(self.poll), refresh, [self.report, self.timer, *views],
                        show_progress="hidden")
        self.gallery.select(guard(self.select), [self.ids, ctx.style], self.detail_outputs)
        d.close.click(lambda: self.detail_view(None, None), None, self.detail_outputs)
        asks = [d.confirm.row, self.pending, d.confirm.text]
        d.remove.click(guard(self.ask_remove), self.selected, asks)
        for confirm in (d.confirm, p.confirm):
            confirm.no.click(lambda: gr.update(visible=False), None, confirm.row)
            confirm.yes.click(guard(self.remove), [self.pending, *refresh, p.pick],
                              [confirm.row, *self.detail_outputs, *views])
        p.pick.change(guard(self.pair_images), p.pick, [p.left, p.right])
        p.keep.click(guard(self.keep_pair), [p.pick, *refresh], views)
        pair_asks = [p.confirm.row, self.pending, p.confirm.text]
        p.drop_left.click(guard(lambda v: self.ask_drop(v, 0)), p.pick, pair_asks)
        p.drop_right.click(guard(lambda v: self.ask_drop(v, 1)), p.pick, pair_asks)
