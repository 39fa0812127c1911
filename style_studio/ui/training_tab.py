"""Training tab: pick a preset (or open the advanced settings), start, watch, cancel, resume.

Training runs as a job on the device worker; this tab only submits and then polls the
store and the run folder each second, so a reload or a second browser tab reattaches to
the running job and shows the same progress, loss curve and samples.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from style_studio.studio import (
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    PRESET_LABELS,
    TARGETS,
    FamilyTraining,
    Run,
    TrainConfig,
    family_training,
    files_stamp,
)

from . import run_views
from . import training_views as views
from .common import Tab, UIContext, guard, need_style, on_style_change
from .run_page import RunPage

LABELS: dict[str, tuple[str, str]] = {
    # field: (label, info)
    "max_steps": ("Steps", "optimizer steps (used when epochs is 0)"),
    "epochs": ("Epochs", "0 = use steps; else passes over all images"),
    "batch_size": ("Batch size", "lower it if the GPU runs out of memory"),
    "resolution": ("Resolution (px)",
                   "0 = native: 512 for SD 1.x, 1024 for SDXL, 256 for the toy model"),
    "rank": ("Rank", "LoRA capacity; 8-32 suits a style"),
    "alpha": ("Alpha", "scale = alpha / rank"),
    "learning_rate": ("Learning rate", "1e-4 suits long runs; 1e-3 for a 400-step draft"),
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
# Fields whose meaning depends on the family (the flow transformers ignore or refuse them).
FAMILY_FIELDS = ("targets", "train_text_encoder", "min_snr_gamma", "sample_steps")


def family_fields(options: FamilyTraining | None) -> list[Any]:
    """The note and the family-dependent fields: a flow family's LoRA targets are its own,
    its text encoders stay frozen and min-SNR does not apply, so those fields are turned
    off and say why instead of offering a choice the trainer ignores or refuses."""
    if options is None:
        return [gr.update(value="")] + [gr.update()] * len(FAMILY_FIELDS)
    steps = gr.update(value=options.sample_steps)
    if options.target_presets:
        return ["", gr.update(interactive=True, info=LABELS["targets"][1]),
                gr.update(interactive=True, info=None),
                gr.update(interactive=True, info=LABELS["min_snr_gamma"][1]), steps]
    label, targets = options.family_label, ", ".join(options.default_targets)
    note = (f"**{label}** trains its LoRA on the layers its own format uses ({targets}); "
            "its text encoders stay frozen (each caption is encoded once and cached), so "
            "*LoRA on*, *Train the text encoder too* and *Min-SNR γ* do not apply. Samples "
            f"draw with {options.sample_steps} steps at guidance {options.sample_guidance:g}.")
    return [note,
            gr.update(interactive=False, info=f"not used by {label}: its own targets"),
            gr.update(value=False, interactive=False,
                      info=f"not offered for {label}: its encoders are frozen and cached"),
            gr.update(interactive=False, info=f"not used by {label} (a DDPM weighting)"),
            steps]


def _buttons(run: Run | None, active: Run | None) -> list[Any]:
    """Start is off while the style has a run training or waiting; Cancel and Resume
    name the run shown and look inactive when they cannot act on it."""
    name = run_views.run_name(run) if run else ""
    note = ""
    if active is not None:
        doing = "is waiting for the device" if active.queued else "is training"
        note = (f"⏳ {run_views.run_name(active, capital=True)} of this style {doing}: "
                "start another when it has finished, or cancel it.")
    return [gr.update(interactive=active is None),
            gr.update(value=f"Cancel {name}".strip(), interactive=bool(run and run.active)),
            gr.update(value=f"Resume {name}".strip(), interactive=bool(run and run.resumable)),
            note]


class TrainingTab(Tab):
    """Builds the tab and holds its event handlers (state lives in the studio)."""

    def __init__(self, ctx: UIContext):
        self.defaults = TrainConfig.preset("quick")
        super().__init__(ctx)

    # -- layout --------------------------------------------------------------------
    def _layout(self) -> None:
        gr.Markdown("### 4 · Training\nTrain a LoRA on the images the consent gate allows. "
                    "Start with a preset; every setting is under *Advanced settings*.")
        self.dataset = gr.Markdown(elem_id="train-dataset")
        with gr.Row():
            self.base = gr.Dropdown(label="Base model", choices=[], scale=3,
                                    elem_id="train-base")
            presets = ["quick"] if self.limits else list(PRESET_LABELS)  # a demo: Quick only
            self.preset = gr.Radio([(PRESET_LABELS[key], key) for key in presets],
                                   value="quick", label="Preset", elem_id="train-preset",
                                   scale=2)
        with gr.Accordion("Advanced settings", open=False, elem_id="train-advanced"):
            self.family_note = gr.Markdown(elem_id="train-family-note")
            self.settings = self._advanced()
        with gr.Row():
            self.start_btn = gr.Button("Start training", variant="primary",
                                       elem_id="train-start", scale=1)
            self.start_note = gr.Markdown(elem_id="train-start-note")
        gr.Markdown("### Run page\nEverything about one run: its progress, settings, files "
                    "and every image it was trained on.", elem_id="run-page-title")
        with gr.Row():
            self.run_pick = gr.Dropdown(label="Show run", choices=[], elem_id="train-run-pick",
                                        scale=3)
            with gr.Column(scale=1, min_width=220):
                self.cancel_btn = gr.Button("Cancel", variant="stop", elem_id="train-cancel",
                                            interactive=False)
                self.resume_btn = gr.Button("Resume", elem_id="train-resume",
                                            interactive=False)
        self.progress = gr.HTML(views.progress_html(None, None), elem_id="train-progress")
        self.page = RunPage(self.source)
        self.plot = gr.LinePlot(x="step", y="loss", color="series", title="Loss",
                                height=260, elem_id="train-loss")
        self.style_plot = gr.LinePlot(
            x="step", y="style distance", title="Style distance of the samples to your "
            "images (lower is closer; a rise means the style is breaking: keep an earlier "
            "checkpoint)", height=220, elem_id="train-style", y_lim=[0, 1], show_label=False)
        self.energy = gr.Markdown(elem_id="train-energy")
        self.samples = gr.Gallery(label="Samples (fixed prompts and seeds)", columns=6,
                                  height=300, object_fit="contain", elem_id="train-samples",
                                  allow_preview=True)
        self.page.layout_details(show_publish=not self.limits)
        self.history = gr.Dataframe(headers=views.HISTORY_HEADERS, label="Run history",
                                    interactive=False, elem_id="train-history", wrap=True)
        self.viewed = gr.State(None)  # (what the live view last drew, what the run page did)
        self.timer = gr.Timer(1.0)

    def _advanced(self) -> list[gr.components.Component]:
        components = []
        values = views.field_values(self.defaults)
        for row in range(0, len(views.ADVANCED_FIELDS), 4):
            with gr.Row():
                for name, value in zip(views.ADVANCED_FIELDS[row:row + 4],
                                       values[row:row + 4], strict=True):
                    components.append(_component(name, value))
        with gr.Row():
            components.append(gr.Textbox(label="Sample prompts (one per line)", lines=3,
                                         elem_id="train-sample-prompts", scale=3,
                                         info="fixed prompts rendered every N steps; they "
                                              "start with the trigger word"))
            components.append(gr.Textbox(label="Sample seeds", value=values[-1],
                                         elem_id="train-sample-seeds",
                                         info="one per prompt, comma-separated"))
        return components

    # -- views ----------------------------------------------------------------------
    @property
    def view_outputs(self) -> list[Any]:
        return [self.progress, self.plot, self.style_plot, self.samples, self.energy,
                self.run_pick, self.history, self.start_btn, self.cancel_btn,
                self.resume_btn, self.start_note, *self.page.outputs, self.viewed]

    @property
    def family_outputs(self) -> list[Any]:
        return [self.family_note, *(self.settings[views.ADVANCED_FIELDS.index(name)]
                                    for name in FAMILY_FIELDS)]

    @property
    def load_outputs(self) -> list[Any]:
        return [self.dataset, self.base, self.settings[-2], *self.family_outputs,
                *self.view_outputs]

    def viewed_run(self, style_id: str | None, wanted: str | None) -> Run | None:
        """The run picked in "Show run" (when it is this style's), else the one training
        (or waiting), else the newest: Cancel and Resume act on exactly this run."""
        if not style_id:
            return None
        runs = self.studio.training.runs(style_id)
        chosen = [r for r in runs if r.id == wanted]
        if chosen:
            return chosen[0]
        return self.studio.training.active_run(style_id) or (runs[0] if runs else None)

    def live_values(self, run: Run, active: Run | None, metrics: list[dict[str, Any]],
                    wanted: str | None, force: bool) -> tuple[Any, ...]:
        """Charts, samples, energy, picker, history and buttons for the run shown."""
        runs = self.studio.training.runs(run.style_id)
        scores = self.studio.training.style_scores(run.id)
        choices = views.run_choices(runs)
        return (
            # No frame until there is a point: a plot first drawn from an empty frame keeps
            # an empty colour legend and never draws its lines (a live first run).
            views.loss_frame(metrics) if metrics else None,
            gr.update(**views.style_plot_update(scores, run.total_steps)),
            views.served_samples(self.studio, run),
            views.energy_markdown(run),
            # A tick leaves the picker's value alone unless it showed another run: a tick
            # sent just before a Start or a pick would otherwise undo that choice.
            gr.update(choices=choices, value=run.id) if force or run.id != wanted
            else gr.update(choices=choices),
            views.history_rows(runs), *_buttons(run, active))

    def view(self, style_id: str | None, wanted: str | None, drawn: tuple | None,
             force: bool) -> tuple[Any, ...]:
        """Everything about the run shown; what has not changed since `drawn` is skipped."""
        studio = self.studio
        run = self.viewed_run(style_id, wanted)
        active = studio.training.active_run(style_id) if style_id else None
        job = studio.jobs.get(run.job_id) if run and run.job_id else None
        bar = views.progress_html(run, job)
        if run is None:
            return (bar, None, None, [], "", gr.update(choices=[], value=None), [],
                    *_buttons(None, active), *self.page.values(None), None)
        metrics = studio.training.metrics(run.id)
        sample_count = len(studio.training.samples(run.id))
        live = (run.id, len(metrics), sample_count, run.status, run.queued, len(run.flags),
                active.id if active else None, active.queued if active else None)
        page_key = (run.id, run.status, run.queued, tuple(run.flags), run.manifest_sha256,
                    files_stamp(run.run_dir))
        drawn_live, drawn_page = drawn or (None, None)
        live_same = live == drawn_live and not force
        page_same = page_key == drawn_page and not force
        if live_same and page_same:
            return (bar, *(gr.update(),) * 10, *self.page.unchanged(), drawn)
        live_values = ((gr.update(),) * 10 if live_same
                       else self.live_values(run, active, metrics, wanted, force))
        page_values = self.page.unchanged() if page_same else self.page.values(run)
        return (bar, *live_values, *page_values, (live, page_key))

    # -- handlers ---------------------------------------------------------------------
    def load(self, style_id: str | None, wanted: str | None) -> tuple[Any, ...]:
        if not style_id:
            return ("Choose or create a style first.", gr.update(choices=[], value=None),
                    gr.update(), *family_fields(None), *self.view(None, None, None, True))
        style = self.studio.styles.get(style_id)
        choices = views.base_model_choices(self.studio, style.family)
        prompts = "\n".join(self.defaults.prompts_for(style.trigger))
        base = self.studio.base_model_for(style)
        return (views.dataset_markdown(self.studio.training.plan(style_id)),
                gr.update(choices=choices, value=base), prompts,
                *family_fields(family_training(style.family, base)),
                *self.view(style_id, wanted, None, True))

    def apply_preset(self, key: str, style_id: str | None = None,
                     base_ref: str | None = None) -> list[Any]:
        """Fill the advanced fields from the preset; the artist's prompts stay, and samples
        keep the base model's own number of steps."""
        config = TrainConfig.preset(key)
        if style_id:
            style = self.studio.styles.get(style_id)
            options = family_training(style.family,
                                      base_ref or self.studio.base_model_for(style))
            config.sample_steps = options.sample_steps
        values = views.field_values(config)
        return [*values[:-2], gr.update(), values[-1]]

    def pick_base(self, style_id: str | None, base_ref: str | None) -> list[Any]:
        """Another base model may sample differently (FLUX.1 [schnell]: 4 steps)."""
        if not style_id:
            return family_fields(None)
        style = self.studio.styles.get(style_id)
        return family_fields(family_training(style.family,
                                             base_ref or self.studio.base_model_for(style)))

    def start(self, style_id: str | None, base_ref: str | None, key: str,
              *values: Any) -> tuple[Any, ...]:
        style_id = need_style(style_id)
        style = self.studio.styles.get(style_id)
        # Samples draw with the chosen base model's own guidance (FLUX.1 [dev] 3.5,
        # Z-Image Turbo 0), not SD's 7; a flow family's LoRA never trains its encoders.
        options = family_training(style.family, base_ref or self.studio.base_model_for(style))
        config = views.config_from_form(key, list(values),
                                        sample_guidance=options.sample_guidance,
                                        text_encoder=options.text_encoder)
        job = self.studio.training.start(style_id, config, base_model=base_ref or None)
        run_id = job.params["run_id"]
        gr.Info(f"Training started (run {run_id}). You can leave this page; it keeps "
                "running.")
        return self.view(style_id, run_id, None, True)

    def cancel(self, style_id: str | None, wanted: str | None) -> tuple[Any, ...]:
        run = self.viewed_run(need_style(style_id), wanted)
        if run is None or not run.active:
            what = f"{run_views.run_name(run, capital=True)} is {run.status}" if run else (
                "There is no run")
            raise gr.Error(f"{what}: there is nothing to cancel.")
        after = self.studio.training.cancel(run.id)
        active = self.studio.training.active_run(style_id)
        name = run_views.run_name(run, capital=True)
        if after.status == "cancelled":
            message = f"{name} was cancelled before it started."
        else:
            message = (f"Stopping {run_views.run_name(run)} after the current step; a "
                       "checkpoint will be saved.")
        if active is not None and active.id != run.id:
            message += f" {run_views.run_name(active, capital=True)} keeps training."
        gr.Info(message)
        return self.view(style_id, run.id, None, True)

    def resume(self, style_id: str | None, wanted: str | None) -> tuple[Any, ...]:
        run = self.viewed_run(need_style(style_id), wanted)
        if run is None:
            raise gr.Error("There is no run to resume yet.")
        before = self.studio.training.active_run(style_id)
        self.studio.training.resume(run.id)
        message = f"Resuming {run_views.run_name(run)} from its last checkpoint."
        if before is not None:
            message += (f" It waits for the device until {run_views.run_name(before)} "
                        "has finished.")
        gr.Info(message)
        return self.view(style_id, run.id, None, True)

    # -- publishing -----------------------------------------------------------------
    def preview_push(self, style_id: str | None, wanted: str | None, repo: str,
                     private: bool) -> tuple[Any, ...]:
        """What publishing the run shown would make public; Publish opens only when it
        may go ahead, for exactly this run, repo and visibility."""
        run = self.viewed_run(need_style(style_id), wanted)
        if run is None:
            raise gr.Error("There is no run to publish yet.", print_exception=False)
        plan = self.studio.training.plan_push(run.id, repo)
        planned = (run.id, plan.repo_id, bool(private)) if plan.allowed else None
        return (run_views.push_preview(plan, bool(private)),
                gr.update(value=f"Publish {run_views.run_name(run)} to {plan.repo_id}",
                          interactive=plan.allowed), planned)

    def publish_run(self, style_id: str | None, wanted: str | None, repo: str,
                    private: bool, planned: tuple | None) -> tuple[Any, ...]:
        """Publish what the preview listed; anything changed since asks for a new look."""
        run = self.viewed_run(need_style(style_id), wanted)
        if run is None or planned is None or tuple(planned) != (
                run.id, (repo or "").strip(), bool(private)):
            return ("The run, repository or visibility changed since the preview: press "
                    "*Show what will be public* again.", gr.update(interactive=False), None)
        result = self.studio.training.push(run.id, planned[1], private=bool(private))
        return run_views.push_done(result), gr.update(interactive=False), None

    # -- wiring ------------------------------------------------------------------------
    def _wire(self) -> None:
        ctx, shown, picked = self.ctx, self.view_outputs, [self.ctx.style, self.run_pick]
        on_style_change(ctx.style, guard(lambda s: self.load(s, None)), ctx.style,
                        self.load_outputs)
        ctx.tab.select(guard(self.load), picked, self.load_outputs)
        self.preset.input(guard(self.apply_preset), [self.preset, ctx.style, self.base],
                          self.settings)
        self.base.input(guard(self.pick_base), [ctx.style, self.base], self.family_outputs)
        self.start_btn.click(guard(self.start), [ctx.style, self.base, self.preset,
                                                 *self.settings], shown)
        self.cancel_btn.click(guard(self.cancel), picked, shown)
        self.resume_btn.click(guard(self.resume), picked, shown)
        self.run_pick.input(guard(lambda s, r: self.view(s, r, None, True)), picked, shown)
        box = self.page.publish
        if box is not None:
            box_out = [box.preview, box.publish_btn, box.planned]
            box.preview_btn.click(guard(self.preview_push),
                                  [*picked, box.repo, box.private], box_out)
            box.publish_btn.click(guard(self.publish_run),
                                  [*picked, box.repo, box.private, box.planned], box_out)
            for field in (box.repo, box.private):  # a change needs a new look first
                field.input(lambda: gr.update(interactive=False), None, box.publish_btn)
        self.timer.tick(guard(lambda s, r, d: self.view(s, r, d, False)),
                        [*picked, self.viewed], shown, show_progress="hidden")


def _component(name: str, value: Any) -> gr.components.Component:
    """One advanced field: a dropdown, checkbox or number, as its default's type asks."""
    label, info = LABELS[name]
    elem_id = f"train-{name.replace('_', '-')}"
    if name in CHOICES:
        return gr.Dropdown(CHOICES[name], value=value, label=label, info=info or None,
                           elem_id=elem_id)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=label, info=info or None, elem_id=elem_id)
    return gr.Number(value=value, label=label, info=info or None, elem_id=elem_id,
                     precision=0 if isinstance(value, int) else None)
