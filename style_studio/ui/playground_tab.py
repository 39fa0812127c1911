"""Playground tab: generate with a trained LoRA and compare it with the base model.

All work is a job on the device worker; this tab only submits, then polls the newest
playground job of the style each second, so a reload (or a second browser tab) picks up
a running generation and its results. Images are shown from byte-identical copies in the
app's cache, so a download keeps its provenance chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from style_studio.studio import (
    GenerateRequest,
    Job,
    Output,
    SamplingDefaults,
    Studio,
)

from . import training_views
from .common import Tab, find_block, guard, need_style, on_style_change

NO_RUN = "__base__"
RUN_PICK_ID = "train-run-pick"  # the Training tab's "Show run"
FINAL = "final"
NO_RUNS_HINT = ("No trained LoRA yet — **Train a LoRA in the Training tab first.** "
                "Meanwhile you can try prompts on the base model ({base}).")


@dataclass
class Form:
    """The request fields, in the order handlers receive them."""

    run: gr.Dropdown
    checkpoint: gr.Dropdown
    scale: gr.Slider
    prompt: gr.Textbox
    negative: gr.Textbox
    seed: gr.Number
    random_seed: gr.Checkbox
    steps: gr.Slider
    guidance: gr.Slider
    width: gr.Number
    height: gr.Number
    count: gr.Slider

    @property
    def inputs(self) -> list[Any]:
        return list(vars(self).values())


def to_request(style_id: str | None, run: str | None, checkpoint: str | None, scale: float,
               prompt: str, negative: str, seed: float | None, random_seed: bool, steps: float,
               guidance: float, width: float | None, height: float | None,
               count: float) -> GenerateRequest:
    """Form values to a request; the core checks ranges and says what to fix."""
    run_id = None if not run or run == NO_RUN else run
    step = None if not checkpoint or checkpoint == FINAL else int(checkpoint)
    if not random_seed and seed is None:
        raise gr.Error("Type a seed, or tick 'Random seed'.")
    return GenerateRequest(
        style_id=need_style(style_id), run_id=run_id, checkpoint=step, prompt=prompt or "",
        negative_prompt=negative or "", seed=None if random_seed else int(seed or 0),
        steps=int(steps), guidance=float(guidance), width=int(width) if width else None,
        height=int(height) if height else None, count=int(count), lora_scale=float(scale))


def settings_markdown(output: Output, credentials: str = "") -> str:
    """The selected image's settings, its Content Credentials and any near-copy finding."""
    s = output.settings
    rows = [("Prompt", s.prompt), ("Negative prompt", s.negative_prompt or "—"),
            ("Seed", s.seed), ("Steps", s.steps), ("Guidance", f"{s.guidance:g}"),
            ("Size", f"{s.width}×{s.height}"), ("Base model", s.base_model),
            ("Run", s.run_id or "none (base model only)"),
            ("Checkpoint", s.checkpoint_label or "—"),
            ("LoRA scale", "—" if s.lora_scale is None else f"{s.lora_scale:g}"),
            ("Dataset manifest sha256", s.manifest_sha256 or "—"), ("File", output.path.name)]
    rows += [("Content Credentials", credentials)] if credentials else []
    rows += [("⚠ Near copy", mark.description) for mark in output.near_copies]
    body = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)
    return f"**Settings of the selected image**\n\n| | |\n|---|---|\n{body}"


def conventions_markdown(base: str, conventions: SamplingDefaults) -> str:
    """What the form's defaults are and what guidance means for this base model, and
    whether its negative prompt is read at all."""
    negative = {"always": "",
                "with_guidance": " The negative prompt is read only while guidance is above 0.",
                "never": " It has no negative prompt, so that field is hidden."}
    return (f"**{base}** draws with {conventions.steps} steps at guidance "
            f"{conventions.guidance:g}; guidance here is {conventions.guidance_note}."
            f"{negative[conventions.negative_prompt]}")


def job_status(studio: Studio, job: Job | None) -> str:
    """One line about the newest generation, or about who holds the device."""
    if job is None or job.finished:
        busy = studio.jobs.current()
        lead = _finished_line(job) if job else "Ready."
        if busy is not None and busy.kind != "generate":
            return (f"{lead} The device is busy: “{busy.title}” is running "
                    f"({busy.progress:.0%}); a new generation will wait for it.")
        return lead
    waiting = studio.playground.waiting_reason(job.id)
    if waiting:
        return f"○ {waiting}"
    return f"● {job.title}: {job.message} ({job.progress:.0%})"


def _finished_line(job: Job) -> str:
    if job.status == "done":
        warning = (job.result or {}).get("warning")
        saved = len((job.result or {}).get("outputs", []))
        return f"✓ {job.title}: saved {saved} image(s)." + (f" ⚠ {warning}" if warning else "")
    if job.status == "failed":
        return f"✗ {job.title} failed: {job.error}"
    return f"■ {job.title}: {job.status}. {job.message}"


class PlaygroundTab(Tab):
    """Builds the tab and holds its event handlers (state lives in the studio)."""

    @property
    def playground(self):
        return self.studio.playground

    # -- layout --------------------------------------------------------------------
    def _layout(self) -> None:
        gr.Markdown("### 5 · Playground\nTry a trained LoRA against the base model; every "
                    "image is saved in the style's `outputs/` with its settings and provenance "
                    "inside.")
        with gr.Row():
            run = gr.Dropdown(label="LoRA run", choices=[], scale=3, elem_id="pg-run")
            checkpoint = gr.Dropdown(label="Checkpoint", choices=[], elem_id="pg-checkpoint",
                                     info="final, or an earlier step")
            scale = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA scale",
                              elem_id="pg-scale")
        with gr.Row(equal_height=True):
            self.hint = gr.Markdown(elem_id="pg-hint")
            self.open_btn, self.training_tab_id = self._open_run_button()
        self.conventions = gr.Markdown(elem_id="pg-conventions")
        prompt = gr.Textbox(label="Prompt", lines=2, elem_id="pg-prompt",
                            info="Start with the style's trigger word to call up the style.")
        negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="pg-negative")
        with gr.Row():
            seed = gr.Number(label="Seed", value=42, precision=0, minimum=0, elem_id="pg-seed")
            random_seed = gr.Checkbox(label="Random seed (recorded in each image)", value=True,
                                      elem_id="pg-random-seed")
            steps = gr.Slider(1, 100, value=20, step=1, label="Steps", elem_id="pg-steps")
            guidance = gr.Slider(0, 20, value=7.0, step=0.5, label="Guidance",
                                 elem_id="pg-guidance")
        with gr.Row():
            width = gr.Number(label="Width", value=512, precision=0, step=8, elem_id="pg-width")
            height = gr.Number(label="Height", value=512, precision=0, step=8,
                               elem_id="pg-height")
            count = gr.Slider(1, 8, value=1, step=1, label="Images", elem_id="pg-count")
        self.form = Form(run, checkpoint, scale, prompt, negative, seed, random_seed, steps,
                         guidance, width, height, count)
        with gr.Row():
            self.generate_btn = gr.Button("Generate", variant="primary", elem_id="pg-generate")
            self.ab_btn = gr.Button("A/B: base vs LoRA", elem_id="pg-ab")
            self.grid_btn = gr.Button("Grid", elem_id="pg-grid")
            self.cancel_btn = gr.Button("Cancel", variant="stop", elem_id="pg-cancel")
        with gr.Accordion("Grid: compare checkpoints", open=False):
            self.grid_rows = gr.CheckboxGroup(label="Rows: checkpoints", choices=[],
                                              elem_id="pg-grid-rows")
            self.grid_axis = gr.Radio(["LoRA scales", "Prompts"], value="LoRA scales",
                                      label="Columns", elem_id="pg-grid-axis")
            self.grid_scales = gr.Textbox(label="LoRA scales (comma-separated)",
                                          value="0, 0.5, 1", elem_id="pg-grid-scales")
            self.grid_prompts = gr.Textbox(label="Prompts (one per line)", lines=3,
                                           elem_id="pg-grid-prompts")
        self.status = gr.Markdown("Ready.", elem_id="pg-status")
        self.output = gr.Gallery(label="Output", columns=4, height=420, object_fit="contain",
                                 fit_columns=False, elem_id="pg-output")
        self.style_line = gr.Markdown(elem_id="pg-style")
        with gr.Column(visible=False, elem_id="pg-near-copies") as self.near_box:
            self.near_text = gr.Markdown(elem_id="pg-near-copy-text")
            self.near_pairs = gr.Gallery(label="Output beside the training image it is very "
                                               "close to", columns=2, height=260,
                                         object_fit="contain", allow_preview=False,
                                         elem_id="pg-near-copy-pairs")
        with gr.Row():
            self.settings = gr.Markdown(elem_id="pg-settings")
            self.reuse_btn = gr.Button("Use these settings again", elem_id="pg-reuse", scale=0)
        with gr.Accordion("History (newest first)", open=True):
            self.history = gr.Gallery(label="History", columns=8, height=260,
                                      object_fit="contain", fit_columns=False,
                                      allow_preview=False, elem_id="pg-history")
        self.output_paths, self.history_paths = gr.State([]), gr.State([])
        self.seen_runs = gr.State([])
        self.drawn_for = gr.State(None)  # the conventions the steps and guidance were set for
        self.selected, self.shown = gr.State(None), gr.State(None)
        self.timer = gr.Timer(1.0)

    def _open_run_button(self) -> tuple[gr.Button | None, Any]:
        """The way to a run's page (its images, files, charts) in the Training tab, and that
        tab's id; only when that tab was built before this one, so its run picker exists."""
        tabs = self.ctx.tab.parent
        holder = next((tab for tab in getattr(tabs, "children", [])
                       if tab is not self.ctx.tab and find_block(tab, RUN_PICK_ID)), None)
        if holder is None or getattr(holder, "id", None) is None:
            return None, None
        return gr.Button("Open this run in the Training tab", scale=0, size="sm",
                         elem_id="pg-open-run"), holder.id

    # -- views ----------------------------------------------------------------------
    def served(self, path: Path) -> str:
        """A byte-identical copy in the app's cache (the workspace itself is never served)."""
        return str(self.studio.workspace.browser_copy(path, "playground", path.parent.name))

    def gallery(self, outputs: list[Output]) -> list[tuple[str, str]]:
        return [(self.served(o.path),
                 ("⚠ very close to a training image · " if o.near_copies else "")
                 + (o.label + " · " if o.label else "") + o.settings.summary())
                for o in outputs]

    def near_copy_views(self, outputs: list[Output]) -> tuple[Any, str, list[tuple[str, str]]]:
        """Flagged outputs: a line each, and each beside its training image's thumbnail."""
        lines, pairs = [], []
        for number, output in enumerate(outputs, start=1):
            name = f"Image {number}" + (f" ({output.label})" if output.label else "")
            for mark in output.near_copies:
                lines.append(f"- **{name}**: {mark.description}")
                if mark.thumb is not None:
                    pairs += [(self.served(output.path), name),
                              (self.served(mark.thumb), f"Training image {mark.filename}")]
        if not lines:
            return gr.update(visible=False), "", []
        text = ("**⚠ Very close to a training image.** A style LoRA should learn a look, not "
                "copy pictures; do not share these as new work:\n" + "\n".join(lines))
        return gr.update(visible=True), text, pairs

    def run_updates(self, style_id: str | None, keep_run: str | None = None) -> tuple[Any, ...]:
        """Run choices (plus "base model only"), the checkpoint list and the hint."""
        if not style_id:
            return (gr.update(choices=[], value=None), gr.update(choices=[], value=None),
                    "Choose or create a style first.", gr.update(choices=[], value=[]))
        runs = self.playground.runs(style_id)
        base, _ = self.playground.style_base(style_id)
        choices = [(f"Base model only, no LoRA ({base})", NO_RUN)]
        choices += [(r.label, r.run_id) for r in runs]
        ids = [value for _, value in choices]
        preferred = self.playground.preferred_run(style_id)  # the newest finished run
        run = keep_run if keep_run in ids else (preferred.run_id if preferred else NO_RUN)
        hint = NO_RUNS_HINT.format(base=base) if not runs else (
            f"{len(runs)} run(s) with a trained LoRA. Pick one, a checkpoint and a scale.")
        checkpoint, grid_rows = self.checkpoint_updates(run)
        return gr.update(choices=choices, value=run), checkpoint, hint, grid_rows

    def checkpoint_updates(self, run: str | None, value: str | None = None) -> tuple[Any, Any]:
        if not run or run == NO_RUN:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=[])
        choices = [(c.label, FINAL if c.step is None else str(c.step))
                   for c in self.playground.checkpoints(run)]
        values = [value for _, value in choices]
        chosen = value if value in values else (values[0] if values else None)
        return (gr.update(choices=choices, value=chosen),
                gr.update(choices=choices, value=values[:3]))

    def history_update(self, style_id: str | None) -> tuple[Any, list[str]]:
        found = self.playground.history(style_id) if style_id else []
        return self.gallery(found), [str(o.path) for o in found]

    def convention_updates(self, style_id: str | None, run: str | None,
                           drawn_for: Any = None) -> tuple[Any, ...]:
        """Steps, guidance, negative prompt and the note for the run's base model (or the
        style's). Steps and guidance are reset only when the base model's conventions
        differ from those they were set for, so the artist's own values survive a
        checkpoint or run switch on the same model."""
        if not style_id:
            return gr.update(), gr.update(), gr.update(), "", drawn_for
        run_id = None if not run or run == NO_RUN else run
        conventions = self.playground.conventions(style_id, run_id)
        chosen = next((r for r in self.playground.runs(style_id) if r.run_id == run_id), None)
        base = chosen.base_model if chosen else self.playground.style_base(style_id)[0]
        key = [conventions.steps, conventions.guidance, conventions.negative_prompt]
        fresh = key != drawn_for
        negative = gr.update(
            visible=conventions.negative_prompt != "never",
            info="read only while guidance is above 0"
            if conventions.negative_prompt == "with_guidance" else None)
        return (gr.update(value=conventions.steps) if fresh else gr.update(),
                gr.update(value=conventions.guidance, info=conventions.guidance_note)
                if fresh else gr.update(info=conventions.guidance_note),
                negative, conventions_markdown(base, conventions), key)

    def pick_run(self, style_id: str | None, run: str | None,
                 drawn_for: Any) -> tuple[Any, ...]:
        return (*self.checkpoint_updates(run),
                *self.convention_updates(style_id, run, drawn_for))

    def run_ids(self, style_id: str | None) -> list[str]:
        """Finished runs only: one seen while it trained is still news once it is done."""
        if not style_id:
            return []
        return [r.run_id for r in self.playground.runs(style_id) if r.finished]

    # -- handlers ---------------------------------------------------------------------
    def load_style(self, style_id: str | None) -> tuple[Any, ...]:
        runs_out = self.run_updates(style_id)
        if not style_id:
            return (*runs_out, gr.update(), gr.update(), gr.update(), [], [], [],
                    *self.convention_updates(None, None))
        request = self.playground.default_request(style_id)
        run = runs_out[0]["value"]
        return (*runs_out, request.prompt, request.width, request.height,
                *self.history_update(style_id), self.run_ids(style_id),
                *self.convention_updates(style_id, run))

    def refresh(self, style_id: str | None, current_run: str | None,
                seen: list[str] | None, drawn_for: Any = None) -> tuple[Any, ...]:
        """Keep the artist's choice, except that a run trained since they last looked is
        preselected: that is the one they came here to try."""
        ids = self.run_ids(style_id)
        fresh = [run_id for run_id in ids if run_id not in (seen or [])]  # newest first
        keep = fresh[0] if fresh else current_run
        runs_out = self.run_updates(style_id, keep)
        return (*runs_out, *self.history_update(style_id), ids,
                *self.convention_updates(style_id, runs_out[0].get("value"), drawn_for))

    def submit(self, mode: str, style_id: str | None, *values: Any) -> str:
        """One generation, an A/B pair or a grid, as a job on the device worker."""
        *form_values, rows, axis, scales_text, prompts_text = values
        request = to_request(style_id, *form_values)
        if mode == "ab":
            job = self.playground.submit_ab(request)
        elif mode == "grid":
            steps = [None if r == FINAL else int(r) for r in rows or []]
            by_scale = axis == "LoRA scales"
            scales = _parse_scales(scales_text) if by_scale else None
            prompts = None if by_scale else (prompts_text or "").splitlines()
            job = self.playground.submit_grid(request, steps, scales=scales, prompts=prompts)
        else:
            job = self.playground.submit(request)
        return job_status(self.studio, self.studio.jobs.get(job.id))

    def tick(self, style_id: str | None, shown_id: str | None) -> tuple[Any, ...]:
        job = self.playground.latest_job(style_id) if style_id else None
        text = job_status(self.studio, job)
        if job is None or not job.finished or job.id == shown_id:
            return text, *(gr.update(),) * 10, shown_id
        outputs = self.playground.outputs(job.id)
        grid = self.playground.grid_path(job.id)
        items = ([(self.served(grid), "Grid")] if grid else []) + self.gallery(outputs)
        paths = ([str(grid)] if grid else []) + [str(o.path) for o in outputs]
        hint_text = "Select an image to see its settings." if items else ""
        comparison = self.playground.style_comparison(job.id)
        return (text, items, paths, *self.history_update(style_id), hint_text,
                comparison.summary() if comparison else "", *self.near_copy_views(outputs),
                None, job.id)

    def select(self, paths: list[str], evt: gr.SelectData) -> tuple[Any, str | None]:
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(paths):
            return gr.update(), None
        path = Path(paths[index])
        if path.parent.name == "grids":
            return "A grid compares images: select one of them for its settings.", None
        verification = self.studio.credentials.verify(path)
        return (settings_markdown(self.playground.output_at(path), verification.headline()),
                str(path))

    def reuse(self, path: str | None, style_id: str | None) -> tuple[Any, ...]:
        if not path:
            raise gr.Error("Select an image in the output or the history first.")
        request = self.playground.settings_of(Path(path))
        run_id = request.run_id or NO_RUN
        if request.run_id and request.run_id not in {r.run_id for r in self.playground.runs(
                need_style(style_id))}:
            raise gr.Error(f"The run {request.run_id} that made this image is gone (deleted, "
                           "or of another style); its settings cannot be reused with it.")
        run_update, _, hint_text, rows_update = self.run_updates(style_id, run_id)
        step = FINAL if request.checkpoint is None else str(request.checkpoint)
        checkpoint_update, _ = self.checkpoint_updates(run_id, step)
        gr.Info("Settings restored: press Generate to make it again.")
        return (run_update, checkpoint_update, request.lora_scale, request.prompt,
                request.negative_prompt, request.seed, False, request.steps,
                request.guidance, request.width, request.height, 1,
                hint_text, rows_update)

    def cancel(self, style_id: str | None) -> str:
        job = self.playground.latest_job(need_style(style_id))
        if job is None or job.finished:
            return "Nothing to cancel."
        self.playground.cancel(job.id)
        return "Cancelling after the current step…"

    def open_run(self, style_id: str | None, run: str | None) -> tuple[Any, Any]:
        """Switch to the Training tab with this run chosen in "Show run"; its page follows
        (the tab redraws for the run picked there)."""
        if not run or run == NO_RUN:
            raise gr.Error("Pick a LoRA run first: the base model alone has no run page.")
        runs = self.studio.training.runs(need_style(style_id))
        return (gr.Tabs(selected=self.training_tab_id),
                gr.update(choices=training_views.run_choices(runs), value=run))

    # -- wiring ------------------------------------------------------------------------
    def _wire(self) -> None:
        ctx, form = self.ctx, self.form
        run_outputs = [form.run, form.checkpoint, self.hint, self.grid_rows]
        history_outputs = [self.history, self.history_paths]
        convention_outputs = [form.steps, form.guidance, form.negative, self.conventions,
                              self.drawn_for]
        on_style_change(ctx.style, self.load_style, ctx.style,
                        [*run_outputs, form.prompt, form.width, form.height,
                          *history_outputs, self.seen_runs, *convention_outputs])
        ctx.tab.select(self.refresh, [ctx.style, form.run, self.seen_runs, self.drawn_for],
                       [*run_outputs, *history_outputs, self.seen_runs, *convention_outputs])
        form.run.input(guard(self.pick_run), [ctx.style, form.run, self.drawn_for],
                       [form.checkpoint, self.grid_rows, *convention_outputs])
        grid_inputs = [self.grid_rows, self.grid_axis, self.grid_scales, self.grid_prompts]
        for button, mode in ((self.generate_btn, "one"), (self.ab_btn, "ab"),
                             (self.grid_btn, "grid")):
            button.click(guard(lambda *v, m=mode: self.submit(m, *v)),
                         [ctx.style, *form.inputs, *grid_inputs], self.status)
        self.cancel_btn.click(guard(self.cancel), ctx.style, self.status)
        self.timer.tick(self.tick, [ctx.style, self.shown],
                        [self.status, self.output, self.output_paths, *history_outputs,
                         self.settings, self.style_line, self.near_box, self.near_text,
                         self.near_pairs, self.selected, self.shown],
                        show_progress="hidden")
        self.output.select(guard(self.select), self.output_paths, [self.settings, self.selected])
        self.history.select(guard(self.select), self.history_paths,
                            [self.settings, self.selected])
        self.reuse_btn.click(guard(self.reuse), [self.selected, ctx.style],
                             [*form.inputs, self.hint, self.grid_rows])
        if self.open_btn is not None:
            self.open_btn.click(guard(self.open_run), [ctx.style, form.run],
                                [ctx.tab.parent, find_block(ctx.tab.parent, RUN_PICK_ID)])


def _parse_scales(text: str) -> list[float]:
    try:
        return [float(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
    except ValueError as exc:
        raise gr.Error("LoRA scales must be numbers separated by commas, e.g. 0, 0.5, 1") from exc
