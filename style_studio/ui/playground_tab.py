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

from style_studio.studio import GenerateRequest, Job, Output, Studio, read_settings

from . import training_views
from .common import UIContext, find_block, guard, need_style

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


def _served(studio: Studio, path: Path) -> str:
    """A byte-identical copy in the app's cache (the workspace itself is never served)."""
    return str(studio.workspace.browser_copy(path, "playground", path.parent.name))


def _gallery(studio: Studio, outputs: list[Output]) -> list[tuple[str, str]]:
    return [(_served(studio, o.path), (o.label + " · " if o.label else "") + o.settings.summary())
            for o in outputs]


def settings_markdown(output: Output) -> str:
    s = output.settings
    rows = [("Prompt", s.prompt), ("Negative prompt", s.negative_prompt or "—"),
            ("Seed", s.seed), ("Steps", s.steps), ("Guidance", f"{s.guidance:g}"),
            ("Size", f"{s.width}×{s.height}"), ("Base model", s.base_model),
            ("Run", s.run_id or "none (base model only)"),
            ("Checkpoint", s.checkpoint_label or "—"),
            ("LoRA scale", "—" if s.lora_scale is None else f"{s.lora_scale:g}"),
            ("Dataset manifest sha256", s.manifest_sha256 or "—"), ("File", output.path.name)]
    body = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)
    return f"**Settings of the selected image**\n\n| | |\n|---|---|\n{body}"


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


def _run_updates(studio: Studio, style_id: str | None, keep_run: str | None = None):
    """Run choices (plus "base model only"), the checkpoint list and the hint."""
    if not style_id:
        return (gr.update(choices=[], value=None), gr.update(choices=[], value=None),
                "Choose or create a style first.", gr.update(choices=[], value=[]))
    runs = studio.playground.runs(style_id)
    base, _ = studio.playground.style_base(style_id)
    choices = [(f"Base model only, no LoRA ({base})", NO_RUN)]
    choices += [(r.label, r.run_id) for r in runs]
    ids = [value for _, value in choices]
    preferred = studio.playground.preferred_run(style_id)  # the newest finished run
    run = keep_run if keep_run in ids else (preferred.run_id if preferred else NO_RUN)
    hint = NO_RUNS_HINT.format(base=base) if not runs else (
        f"{len(runs)} run(s) with a trained LoRA. Pick one, a checkpoint and a scale.")
    checkpoint, grid_rows = _checkpoint_updates(studio, run)
    return gr.update(choices=choices, value=run), checkpoint, hint, grid_rows


def _checkpoint_updates(studio: Studio, run: str | None, value: str | None = None):
    if not run or run == NO_RUN:
        return gr.update(choices=[], value=None), gr.update(choices=[], value=[])
    choices = [(c.label, FINAL if c.step is None else str(c.step))
               for c in studio.playground.checkpoints(run)]
    values = [value for _, value in choices]
    chosen = value if value in values else (values[0] if values else None)
    return (gr.update(choices=choices, value=chosen),
            gr.update(choices=choices, value=values[:3]))


def build(ctx: UIContext) -> None:
    studio = ctx.studio
    playground = studio.playground
    gr.Markdown("### 5 · Playground\nTry a trained LoRA against the base model; every image "
                "is saved in the style's `outputs/` with its settings and provenance inside.")
    with gr.Row():
        run = gr.Dropdown(label="LoRA run", choices=[], scale=3, elem_id="pg-run")
        checkpoint = gr.Dropdown(label="Checkpoint", choices=[], elem_id="pg-checkpoint",
                                 info="final, or an earlier step")
        scale = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA scale", elem_id="pg-scale")
    with gr.Row(equal_height=True):
        hint = gr.Markdown(elem_id="pg-hint")
        open_btn, training_tab = _open_run_button(ctx)
    prompt = gr.Textbox(label="Prompt", lines=2, elem_id="pg-prompt",
                        info="Start with the style's trigger word to call up the style.")
    negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="pg-negative")
    with gr.Row():
        seed = gr.Number(label="Seed", value=42, precision=0, minimum=0, elem_id="pg-seed")
        random_seed = gr.Checkbox(label="Random seed (recorded in each image)", value=True,
                                  elem_id="pg-random-seed")
        steps = gr.Slider(1, 100, value=20, step=1, label="Steps", elem_id="pg-steps")
        guidance = gr.Slider(0, 20, value=7.0, step=0.5, label="Guidance", elem_id="pg-guidance")
    with gr.Row():
        width = gr.Number(label="Width", value=512, precision=0, step=8, elem_id="pg-width")
        height = gr.Number(label="Height", value=512, precision=0, step=8, elem_id="pg-height")
        count = gr.Slider(1, 8, value=1, step=1, label="Images", elem_id="pg-count")
    form = Form(run, checkpoint, scale, prompt, negative, seed, random_seed, steps, guidance,
                width, height, count)
    with gr.Row():
        generate_btn = gr.Button("Generate", variant="primary", elem_id="pg-generate")
        ab_btn = gr.Button("A/B: base vs LoRA", elem_id="pg-ab")
        grid_btn = gr.Button("Grid", elem_id="pg-grid")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="pg-cancel")
    with gr.Accordion("Grid: compare checkpoints", open=False):
        grid_rows = gr.CheckboxGroup(label="Rows: checkpoints", choices=[],
                                     elem_id="pg-grid-rows")
        grid_axis = gr.Radio(["LoRA scales", "Prompts"], value="LoRA scales",
                             label="Columns", elem_id="pg-grid-axis")
        grid_scales = gr.Textbox(label="LoRA scales (comma-separated)", value="0, 0.5, 1",
                                 elem_id="pg-grid-scales")
        grid_prompts = gr.Textbox(label="Prompts (one per line)", lines=3,
                                  elem_id="pg-grid-prompts")
    status = gr.Markdown("Ready.", elem_id="pg-status")
    output = gr.Gallery(label="Output", columns=4, height=420, object_fit="contain",
                        fit_columns=False, elem_id="pg-output")
    style_line = gr.Markdown(elem_id="pg-style")
    with gr.Row():
        settings = gr.Markdown(elem_id="pg-settings")
        reuse_btn = gr.Button("Use these settings again", elem_id="pg-reuse", scale=0)
    with gr.Accordion("History (newest first)", open=True):
        history = gr.Gallery(label="History", columns=8, height=260, object_fit="contain",
                             fit_columns=False, allow_preview=False, elem_id="pg-history")
    output_paths, history_paths, seen_runs = gr.State([]), gr.State([]), gr.State([])
    selected, shown = gr.State(None), gr.State(None)
    timer = gr.Timer(1.0)

    def history_update(style_id: str | None):
        found = playground.history(style_id) if style_id else []
        return _gallery(studio, found), [str(o.path) for o in found]

    def run_ids(style_id: str | None) -> list[str]:
        """Finished runs only: one seen while it trained is still news once it is done."""
        return [r.run_id for r in playground.runs(style_id) if r.finished] if style_id else []

    def load_style(style_id: str | None):
        runs_out = _run_updates(studio, style_id)
        if not style_id:
            return (*runs_out, gr.update(), gr.update(), gr.update(), [], [], [])
        request = playground.default_request(style_id)
        return (*runs_out, request.prompt, request.width, request.height,
                *history_update(style_id), run_ids(style_id))

    def refresh(style_id: str | None, current_run: str | None, seen: list[str] | None):
        """Keep the artist's choice, except that a run trained since they last looked is
        preselected: that is the one they came here to try."""
        ids = run_ids(style_id)
        fresh = [run_id for run_id in ids if run_id not in (seen or [])]  # newest first
        keep = fresh[0] if fresh else current_run
        return (*_run_updates(studio, style_id, keep), *history_update(style_id), ids)

    @guard
    def submit(mode: str, style_id, *values):
        *form_values, rows, axis, scales_text, prompts_text = values
        request = to_request(style_id, *form_values)
        if mode == "ab":
            job = playground.submit_ab(request)
        elif mode == "grid":
            steps_ = [None if r == FINAL else int(r) for r in rows or []]
            by_scale = axis == "LoRA scales"
            scales = _parse_scales(scales_text) if by_scale else None
            prompts = None if by_scale else (prompts_text or "").splitlines()
            job = playground.submit_grid(request, steps_, scales=scales, prompts=prompts)
        else:
            job = playground.submit(request)
        return job_status(studio, studio.jobs.get(job.id))

    def tick(style_id: str | None, shown_id: str | None):
        job = playground.latest_job(style_id) if style_id else None
        text = job_status(studio, job)
        if job is None or not job.finished or job.id == shown_id:
            return text, *(gr.update(),) * 7, shown_id
        outputs = playground.outputs(job.id)
        grid = playground.grid_path(job.id)
        items = ([(_served(studio, grid), "Grid")] if grid else []) + _gallery(studio, outputs)
        paths = ([str(grid)] if grid else []) + [str(o.path) for o in outputs]
        hint_text = "Select an image to see its settings." if items else ""
        comparison = playground.style_comparison(job.id)
        return (text, items, paths, *history_update(style_id), hint_text,
                comparison.summary() if comparison else "", None, job.id)

    @guard
    def select(paths: list[str], evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(paths):
            return gr.update(), None
        path = Path(paths[index])
        if path.parent.name == "grids":
            return "A grid compares images: select one of them for its settings.", None
        return settings_markdown(Output(path, read_settings(path))), str(path)

    @guard
    def reuse(path: str | None, style_id: str | None):
        if not path:
            raise gr.Error("Select an image in the output or the history first.")
        request = playground.settings_of(Path(path))
        run_id = request.run_id or NO_RUN
        if request.run_id and request.run_id not in {r.run_id for r in playground.runs(
                need_style(style_id))}:
            raise gr.Error(f"The run {request.run_id} that made this image is gone (deleted, "
                           "or of another style); its settings cannot be reused with it.")
        run_update, _, hint_text, rows_update = _run_updates(studio, style_id, run_id)
        step = FINAL if request.checkpoint is None else str(request.checkpoint)
        checkpoint_update, _ = _checkpoint_updates(studio, run_id, step)
        gr.Info("Settings restored: press Generate to make it again.")
        return (run_update, checkpoint_update, request.lora_scale, request.prompt,
                request.negative_prompt, request.seed, False, request.steps,
                request.guidance, request.width, request.height, 1,
                hint_text, rows_update)

    run_outputs = [run, checkpoint, hint, grid_rows]
    history_outputs = [history, history_paths]
    ctx.style.change(load_style, ctx.style,
                     [*run_outputs, prompt, width, height, *history_outputs, seen_runs])
    ctx.tab.select(refresh, [ctx.style, run, seen_runs],
                   [*run_outputs, *history_outputs, seen_runs])
    run.input(lambda r: _checkpoint_updates(studio, r), run, [checkpoint, grid_rows])
    grid_inputs = [grid_rows, grid_axis, grid_scales, grid_prompts]
    for button, mode in ((generate_btn, "one"), (ab_btn, "ab"), (grid_btn, "grid")):
        button.click(lambda *v, m=mode: submit(m, *v),
                     [ctx.style, *form.inputs, *grid_inputs], status)
    cancel_btn.click(guard(lambda s: _cancel(studio, s)), ctx.style, status)
    timer.tick(tick, [ctx.style, shown],
               [status, output, output_paths, *history_outputs, settings, style_line,
                selected, shown],
               show_progress="hidden")
    output.select(select, output_paths, [settings, selected])
    history.select(select, history_paths, [settings, selected])
    reuse_btn.click(reuse, [selected, ctx.style], [*form.inputs, hint, grid_rows])
    if open_btn is not None:
        open_btn.click(guard(lambda s, r: _open_run(studio, s, r, training_tab)),
                       [ctx.style, run], [ctx.tab.parent, find_block(ctx.tab.parent,
                                                                     RUN_PICK_ID)])


def _open_run_button(ctx: UIContext) -> tuple[gr.Button | None, Any]:
    """The way to a run's page (its images, files, charts) in the Training tab, and that
    tab's id; only when that tab was built before this one, so its run picker exists."""
    tabs = ctx.tab.parent
    holder = next((tab for tab in getattr(tabs, "children", [])
                   if tab is not ctx.tab and find_block(tab, RUN_PICK_ID)), None)
    if holder is None or getattr(holder, "id", None) is None:
        return None, None
    return gr.Button("Open this run in the Training tab", scale=0, size="sm",
                     elem_id="pg-open-run"), holder.id


def _open_run(studio: Studio, style_id: str | None, run: str | None, tab_id: Any):
    """Switch to the Training tab with this run chosen in "Show run"; its page follows
    (the tab redraws for the run picked there)."""
    if not run or run == NO_RUN:
        raise gr.Error("Pick a LoRA run first: the base model alone has no run page.")
    runs = studio.training.runs(need_style(style_id))
    return (gr.Tabs(selected=tab_id),
            gr.update(choices=training_views.run_choices(runs), value=run))


def _parse_scales(text: str) -> list[float]:
    try:
        return [float(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
    except ValueError as exc:
        raise gr.Error("LoRA scales must be numbers separated by commas, e.g. 0, 0.5, 1") from exc


def _cancel(studio: Studio, style_id: str | None) -> str:
    job = studio.playground.latest_job(need_style(style_id))
    if job is None or job.finished:
        return "Nothing to cancel."
    studio.playground.cancel(job.id)
    return "Cancelling after the current step…"
