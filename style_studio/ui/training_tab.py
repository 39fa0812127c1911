"""Training tab: pick a preset (or open the advanced settings), start, watch, cancel, resume.

Training runs as a job on the device worker; this tab only submits and then polls the
store and the run folder each second, so a reload or a second browser tab reattaches to
the running job and shows the same progress, loss curve and samples.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from style_studio.studio import Studio
from style_studio.training import Run
from style_studio.training_config import (
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    PRESET_LABELS,
    TARGETS,
    TrainConfig,
)

from . import training_views as views
from .common import UIContext, guard, need_style

LABELS: dict[str, tuple[str, str]] = {
    # field: (label, info)
    "max_steps": ("Steps", "optimizer steps (used when epochs is 0)"),
    "epochs": ("Epochs", "0 = use steps; else passes over all images"),
    "batch_size": ("Batch size", "lower it if the GPU runs out of memory"),
    "resolution": ("Resolution (px)",
                   "0 = native: 512 for SD 1.x, 1024 for SDXL, 256 for the toy model"),
    "rank": ("Rank", "LoRA capacity; 8-32 suits a style"),
    "alpha": ("Alpha", "scale = alpha / rank"),
    "learning_rate": ("Learning rate", "1e-4 is a safe start"),
    "optimizer": ("Optimizer", ""),
    "lr_scheduler": ("Learning-rate schedule", ""),
    "lr_warmup_steps": ("Warm-up steps", ""),
    "min_snr_gamma": ("Min-SNR γ", "5 is usual; 0 = off"),
    "noise_offset": ("Noise offset", "0-0.1; helps very dark or bright images"),
    "caption_dropout": ("Caption dropout", "share of steps trained without a caption"),
    "repeats": ("Repeats", "each image counts this many times per epoch"),
    "seed": ("Seed", "same seed + same data = same LoRA"),
    "targets": ("LoRA on", "attention only, or also feed-forward / conv layers"),
    "flip": ("Random horizontal flip", ""),
    "gradient_checkpointing": ("Gradient checkpointing", "less memory, slower"),
    "train_text_encoder": ("Train the text encoder too", ""),
    "mixed_precision": ("Mixed precision", "auto = bf16/fp16 on a GPU, fp32 on CPU"),
    "sample_every": ("Samples every N steps", "0 = only at the end"),
    "checkpoint_every": ("Checkpoint every N steps", "0 = only when cancelled"),
    "keep_checkpoints": ("Checkpoints kept", "older ones are deleted"),
    "sample_steps": ("Sample denoising steps", ""),
}
CHOICES = {"optimizer": list(OPTIMIZERS), "lr_scheduler": list(LR_SCHEDULES),
           "targets": list(TARGETS), "mixed_precision": list(PRECISIONS)}


def _component(name: str, value: Any) -> gr.components.Component:
    label, info = LABELS[name]
    elem_id = f"train-{name.replace('_', '-')}"
    if name in CHOICES:
        return gr.Dropdown(CHOICES[name], value=value, label=label, info=info or None,
                           elem_id=elem_id)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=label, info=info or None, elem_id=elem_id)
    return gr.Number(value=value, label=label, info=info or None, elem_id=elem_id,
                     precision=0 if isinstance(value, int) else None)


def _advanced(defaults: TrainConfig) -> list[gr.components.Component]:
    components = []
    values = views.field_values(defaults)
    for row in range(0, len(views.ADVANCED_FIELDS), 4):
        with gr.Row():
            for name, value in zip(views.ADVANCED_FIELDS[row:row + 4], values[row:row + 4],
                                   strict=True):
                components.append(_component(name, value))
    with gr.Row():
        components.append(gr.Textbox(label="Sample prompts (one per line)", lines=3,
                                     elem_id="train-sample-prompts", scale=3,
                                     info="fixed prompts rendered every N steps; they start "
                                          "with the trigger word"))
        components.append(gr.Textbox(label="Sample seeds", value=values[-1],
                                     elem_id="train-sample-seeds",
                                     info="one per prompt, comma-separated"))
    return components


def _viewed_run(studio: Studio, style_id: str | None, wanted: str | None) -> Run | None:
    """The running run of the style, else the one picked, else the newest."""
    if not style_id:
        return None
    active = studio.training.active_run(style_id)
    if active:
        return active
    runs = studio.training.runs(style_id)
    chosen = [r for r in runs if r.id == wanted]
    return chosen[0] if chosen else (runs[0] if runs else None)


def build(ctx: UIContext) -> None:
    studio = ctx.studio
    defaults = TrainConfig.preset("quick")
    gr.Markdown("### 4 · Training\nTrain a LoRA on the images the consent gate allows. "
                "Start with a preset; every setting is under *Advanced settings*.")
    dataset = gr.Markdown(elem_id="train-dataset")
    with gr.Row():
        base = gr.Dropdown(label="Base model", choices=[], scale=3, elem_id="train-base")
        preset = gr.Radio([(label, key) for key, label in PRESET_LABELS.items()],
                          value="quick", label="Preset", elem_id="train-preset", scale=2)
    with gr.Accordion("Advanced settings", open=False, elem_id="train-advanced"):
        settings = _advanced(defaults)
    with gr.Row():
        start_btn = gr.Button("Start training", variant="primary", elem_id="train-start")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
        resume_btn = gr.Button("Resume", elem_id="train-resume")
    progress = gr.HTML(views.progress_html(None, None), elem_id="train-progress")
    with gr.Row():
        plot = gr.LinePlot(x="step", y="loss", color="series", title="Loss",
                           height=260, elem_id="train-loss", scale=3)
        with gr.Column(scale=2):
            energy = gr.Markdown(elem_id="train-energy")
            run_pick = gr.Dropdown(label="Show run", choices=[], elem_id="train-run-pick")
    samples = gr.Gallery(label="Samples (fixed prompts and seeds)", columns=6, height=300,
                         object_fit="contain", elem_id="train-samples", allow_preview=True)
    history = gr.Dataframe(headers=views.HISTORY_HEADERS, label="Run history",
                           interactive=False, elem_id="train-history", wrap=True)
    viewed = gr.State(None)  # (run id, metrics count, sample count, status) last drawn
    timer = gr.Timer(1.0)

    def view(style_id: str | None, wanted: str | None, drawn: tuple | None, force: bool):
        run = _viewed_run(studio, style_id, wanted)
        job = studio.jobs.get(run.job_id) if run and run.job_id else None
        bar = views.progress_html(run, job)
        if run is None:
            return (bar, None, [], "", gr.update(choices=[], value=None), [], None)
        metrics = studio.training.metrics(run.id)
        sample_count = len(studio.training.samples(run.id))
        state = (run.id, len(metrics), sample_count, run.status, len(run.flags))
        if state == drawn and not force:
            return (bar, *(gr.update(),) * 5, drawn)
        runs = studio.training.runs(run.style_id)
        return (bar, views.loss_frame(metrics), views.served_samples(studio, run),
                views.energy_markdown(run),
                gr.update(choices=views.run_choices(runs), value=run.id),
                views.history_rows(runs), state)

    view_outputs = [progress, plot, samples, energy, run_pick, history, viewed]

    def load(style_id: str | None):
        if not style_id:
            return ("Choose or create a style first.", gr.update(choices=[], value=None),
                    gr.update(), *view(None, None, None, True))
        style = studio.styles.get(style_id)
        choices = views.base_model_choices(studio, style.family)
        prompts = "\n".join(defaults.prompts_for(style.trigger))
        return (views.dataset_markdown(studio.training.plan(style_id)),
                gr.update(choices=choices, value=studio.base_model_for(style)), prompts,
                *view(style_id, None, None, True))

    load_outputs = [dataset, base, settings[-2], *view_outputs]
    ctx.style.change(guard(load), ctx.style, load_outputs)
    ctx.tab.select(guard(load), ctx.style, load_outputs)

    def apply_preset(key: str):
        """Fill the advanced fields from the preset; the artist's prompts stay."""
        values = views.field_values(TrainConfig.preset(key))
        return [*values[:-2], gr.update(), values[-1]]

    preset.input(guard(apply_preset), preset, settings)

    @guard
    def start(style_id: str | None, base_ref: str | None, key: str, *values: Any):
        style_id = need_style(style_id)
        config = views.config_from_form(key, list(values))
        job = studio.training.start(style_id, config, base_model=base_ref or None)
        gr.Info("Training started. You can leave this page; it keeps running.")
        return view(style_id, job.params["run_id"], None, True)

    @guard
    def cancel(style_id: str | None):
        run = studio.training.active_run(need_style(style_id))
        if run is None:
            raise gr.Error("No training is running for this style.")
        studio.training.cancel(run.id)
        gr.Info("Stopping after the current step; a checkpoint will be saved.")
        return view(style_id, run.id, None, True)

    @guard
    def resume(style_id: str | None, wanted: str | None):
        run = _viewed_run(studio, need_style(style_id), wanted)
        if run is None:
            raise gr.Error("There is no run to resume yet.")
        studio.training.resume(run.id)
        gr.Info("Resuming from the last checkpoint.")
        return view(style_id, run.id, None, True)

    start_btn.click(start, [ctx.style, base, preset, *settings], view_outputs)
    cancel_btn.click(cancel, ctx.style, view_outputs)
    resume_btn.click(resume, [ctx.style, run_pick], view_outputs)
    run_pick.input(guard(lambda s, r: view(s, r, None, True)), [ctx.style, run_pick],
                   view_outputs)
    timer.tick(guard(lambda s, r, d: view(s, r, d, False)), [ctx.style, run_pick, viewed],
               view_outputs, show_progress="hidden")
