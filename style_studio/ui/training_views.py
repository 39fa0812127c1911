"""What the Training tab shows, as plain values: summaries, progress, history, settings.

Kept apart from the layout so each piece is a small function of the studio's state
(the store and the run folders), which is what lets a reloaded page show the same thing.
"""

from __future__ import annotations

import html
from dataclasses import fields
from typing import Any

import pandas as pd

from style_studio.studio import (
    EnergyReport,
    Job,
    Run,
    Studio,
    TrainConfig,
    TrainingPlan,
    format_duration,
    licence_label,
)

from .common import escape_md

# Settings shown in the "Advanced" panel, in order; the rest keep their preset values.
ADVANCED_FIELDS = ("max_steps", "epochs", "batch_size", "resolution",
                   "rank", "alpha", "learning_rate", "optimizer",
                   "lr_scheduler", "lr_warmup_steps", "min_snr_gamma", "noise_offset",
                   "caption_dropout", "repeats", "seed", "targets",
                   "flip", "gradient_checkpointing", "train_text_encoder", "mixed_precision",
                   "sample_every", "checkpoint_every", "keep_checkpoints", "sample_steps")
STATUS_ICONS = {"running": "●", "waiting": "○", "done": "✓", "failed": "✗",
                "cancelled": "■", "interrupted": "⚠"}
HISTORY_HEADERS = ["Run", "Status", "Steps", "Started", "Images", "Base model", "Flags",
                   "Energy"]


# --------------------------------------------------------------------------- settings


def field_values(config: TrainConfig) -> list[Any]:
    """The advanced fields, the sample prompts (one per line) and the seeds."""
    values = [getattr(config, name) for name in ADVANCED_FIELDS]
    return [*values, "\n".join(config.sample_prompts),
            ", ".join(str(s) for s in config.sample_seeds)]


def config_from_form(preset: str, values: list[Any], sample_guidance: float | None = None,
                     text_encoder: bool = True) -> TrainConfig:
    """Form values to a config; wrong types become the validation's clear messages.
    `sample_guidance` is the base model's own; `text_encoder` False turns that field off
    (a flow family, whose form shows it off and disabled)."""
    *advanced, prompts_text, seeds_text = values
    types = {f.name: f.type for f in fields(TrainConfig)}
    base = TrainConfig.preset(preset)
    data = base.to_dict()
    for name, value in zip(ADVANCED_FIELDS, advanced, strict=True):
        data[name] = _cast(types[name], value)
    data["sample_prompts"] = [p.strip() for p in (prompts_text or "").splitlines() if p.strip()]
    data["sample_seeds"] = _seeds(seeds_text)
    if sample_guidance is not None:
        data["sample_guidance"] = sample_guidance
    if not text_encoder:
        data["train_text_encoder"] = False
    data["preset_name"] = "custom" if _differs_beyond_samples(base, data) else base.preset_name
    return TrainConfig.from_dict(data).validate()


def _differs_beyond_samples(base: TrainConfig, data: dict[str, Any]) -> bool:
    # How samples are drawn does not change the LoRA: still the preset the artist chose.
    ignored = {"preset_name", "sample_prompts", "sample_seeds", "sample_steps",
               "sample_guidance"}
    return any(data[k] != v for k, v in base.to_dict().items() if k not in ignored)


def _cast(kind: Any, value: Any) -> Any:
    kind = str(kind)
    optional = kind.endswith(" | None")  # an empty field: the base model's own value
    kind = kind.removesuffix(" | None")
    if value is None or value == "":
        return None if optional else value
    try:
        if kind == "int":
            return round(float(value))
        if kind == "float":
            return float(value)
    except (TypeError, ValueError):
        return value  # validation names the field and the bad value
    if kind == "bool":
        return bool(value)
    return value


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
    except ValueError:
        return [-1]  # validation says what seeds must be


# --------------------------------------------------------------------------- dataset


def dataset_markdown(plan: TrainingPlan) -> str:
    included, excluded = len(plan.included), len(plan.excluded)
    lines = [f"**Dataset:** {included} image(s) will be trained on"
             + (f"; {excluded} left out by the consent gate." if excluded else ".")]
    if not included:
        lines.append("Nothing can be trained yet: clear consent in **Consent & licence** and "
                     "approve captions in **Captions**.")
    lines += [f"⚠ {escape_md(warning)}" for warning in plan.warnings]
    creators = sorted({item.creator for item in plan.included})
    if creators:
        lines.append("Creators: " + ", ".join(escape_md(c) for c in creators) + ".")
    if plan.licences:
        lines.append("Licences: " + ", ".join(f"{escape_md(licence_label(k))} ({n})"
                                              for k, n in plan.licences.items()) + ".")
    for obligation in plan.obligations:
        lines.append(f"Licence terms: {escape_md(obligation)}")
    if excluded:
        rows = "\n".join(f"| {escape_md(ex.filename or ex.image_id)} | "
                         f"{escape_md(ex.reason)} |" for ex in plan.excluded[:50])
        more = f"\n\n…and {excluded - 50} more." if excluded > 50 else ""
        lines.append(f"<details><summary>Left out ({excluded})</summary>\n\n| Image | Why |\n"
                     f"|---|---|\n{rows}{more}\n\n</details>")
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- progress


def progress_html(run: Run | None, job: Job | None) -> str:
    """A bar with step, loss, speed and ETA; or the run's final state."""
    if run is None:
        return "<div id='train-progress-text'>No training run yet.</div>"
    live = job is not None and not job.finished and job.params.get("run_id") == run.id
    extra = job.extra if live and job else {}
    total = int(extra.get("total_steps") or run.total_steps or 0)
    step = int(extra.get("step") or run.step or 0)
    fraction = (step / total) if total else 0.0
    if live and job:
        if job.status == "queued":
            text = "○ Waiting for the device (another job is running)."
        elif extra.get("phase") == "training":
            speed = extra.get("steps_per_s") or 0
            eta = extra.get("eta_s")
            text = (f"● Step {step}/{total} · loss {extra.get('loss_smooth', 0):.4f} · "
                    f"{speed:.2f} steps/s")
            text += f" · about {format_duration(eta)} left" if eta else ""
        else:
            text = f"● {html.escape(job.message or 'Starting')}"
        if job.status == "running" and job.extra.get("cancelling"):
            text += " · stopping after this step…"
    else:
        icon = STATUS_ICONS.get(run.status, "")
        text = f"{icon} Run {run.id}: {run.status} at step {step}/{total}."
        if run.error:
            text += f" {html.escape(run.error)}"
        if run.resumable:
            text += " Press <b>Resume</b> to continue from its last checkpoint."
    width = max(0.0, min(1.0, fraction)) * 100
    return (f"<div class='train-progress'><div style='background:#e5e7eb;border-radius:6px;"
            f"height:14px;overflow:hidden'><div id='train-progress-bar' style='width:{width:.1f}%;"
            f"background:#6366f1;height:14px'></div></div>"
            f"<div id='train-progress-text' style='margin-top:6px'>{text}</div></div>")


def loss_frame(metrics: list[dict[str, Any]]) -> pd.DataFrame:
    """Long format for gr.LinePlot: raw and smoothed loss per step."""
    rows = [(m["step"], m["loss"], "loss") for m in metrics if "loss" in m]
    rows += [(m["step"], m["loss_smooth"], "smoothed") for m in metrics if "loss_smooth" in m]
    frame = pd.DataFrame(rows, columns=["step", "loss", "series"])
    return frame.astype({"step": "int64", "loss": "float64", "series": "str"})


def style_frame(scores: list[dict[str, Any]]) -> pd.DataFrame:
    """The samples' style distance per sampled step (typed, so the first point draws)."""
    frame = pd.DataFrame([(int(r["step"]), float(r["style_distance"])) for r in scores
                          if "style_distance" in r], columns=["step", "style distance"])
    return frame.astype({"step": "int64", "style distance": "float64"})


def style_plot_update(scores: list[dict[str, Any]], total_steps: int) -> dict[str, Any]:
    """The style-distance chart over the whole run (0 to its last step, so one point does
    not make an axis of "4.000000"), and a label saying so while it holds one point only:
    a line needs two, and an empty-looking chart says nothing. (A LinePlot caption is cut
    off by the plot's fixed height.)"""
    frame = style_frame(scores) if scores else None
    steps = sorted(set(frame["step"])) if frame is not None else []
    note = None
    if len(steps) == 1:
        distance = float(frame["style distance"].iloc[-1])
        note = (f"Sampled once so far (step {steps[0]}: distance {distance:.2f}); the line "
                "starts at the second sampled step.")
    last = max([total_steps, *steps, 1])
    return {"value": frame, "x_lim": [0, last], "label": note or "Style distance",
            "show_label": note is not None}


def served_samples(studio: Studio, run: Run) -> list[tuple[str, str]]:
    """Sample images copied into the app's cache (the workspace itself is never served)."""
    return [(str(studio.workspace.browser_copy(sample.path, "training-samples", run.id)),
             f"Step {sample.step} · {sample.prompt} · seed {sample.seed}")
            for sample in studio.training.samples(run.id)]


def energy_markdown(run: Run | None) -> str:
    if run is None:
        return ""
    report = EnergyReport.from_dict(run.energy)
    if report is None:
        return "**Energy:** measured when the run stops."
    return f"**Energy:** {escape_md(report.summary())}"


# --------------------------------------------------------------------------- history


def history_rows(runs: list[Run]) -> list[list[Any]]:
    rows = []
    for run in runs:
        energy = EnergyReport.from_dict(run.energy)
        energy_text = "" if energy is None else (
            f"{energy.energy_wh:.2f} Wh" + (" (est.)" if energy.estimated else ""))
        status = run.shown_status  # a queued run is "waiting", not "running"
        rows.append([run.id, f"{STATUS_ICONS.get(status, '')} {status}",
                     f"{run.step}/{run.total_steps}", run.created_at.replace("T", " ")[:16],
                     run.image_count, run.base_model, "; ".join(run.flags) or "—",
                     energy_text])
    return rows


def run_choices(runs: list[Run]) -> list[tuple[str, str]]:
    return [(f"{r.created_at.replace('T', ' ')[:16]} · {r.shown_status} · step {r.step}/"
             f"{r.total_steps}" + (" · ⚠ " + ", ".join(r.flags) if r.flags else ""), r.id)
            for r in runs]


def base_model_choices(studio: Studio, family: str) -> list[tuple[str, str]]:
    """Each base model with its licence terms in a few words (a non-commercial base binds
    the LoRA too) and, when it is missing, how to get it."""
    choices = []
    for s in studio.base_models(family):
        terms = studio.base_model_terms(s.ref, family, short=True)
        label = s.label + (f" · {terms}" if terms else "")
        choices.append((label + ("" if s.available else " — not available: " + s.detail),
                        s.ref))
    return choices
