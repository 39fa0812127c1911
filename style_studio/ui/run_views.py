"""What the run page shows, as plain values: a run's summary, settings, files and images.

The run page is the lower half of the Training tab: everything about the run chosen in
"Show run", so a client can be shown what a LoRA was trained on and handed its files.
The core assembles the data (`Training.run_images`, `run_files`, `run_bundle`); these
functions only format it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from style_studio.studio import (
    PRESET_LABELS,
    PushPlan,
    PushResult,
    Run,
    RunFile,
    RunImage,
    Studio,
    TrainConfig,
    human_size,
)

from .common import escape_md

IMAGE_HEADERS = ["#", "File", "Since training", "Creator", "Licence", "Consent at training",
                 "Caption"]
IMAGE_WIDTHS = ["4%", "12%", "13%", "14%", "9%", "9%", "39%"]
# (key, button text, elem_id) of every download the run page offers, in order.
DOWNLOADS = (
    ("diffusers", "LoRA (diffusers)", "run-dl-diffusers"),
    ("kohya", "LoRA (kohya: A1111, ComfyUI, Forge)", "run-dl-kohya"),
    ("diffusers-c2pa", "Content Credentials of the diffusers LoRA (.c2pa)",
     "run-dl-diffusers-c2pa"),
    ("kohya-c2pa", "Content Credentials of the kohya LoRA (.c2pa)", "run-dl-kohya-c2pa"),
    ("card", "Model card (README.md)", "run-dl-card"),
    ("report", "Provenance report", "run-dl-report"),
    ("manifest", "Manifest (JSON)", "run-dl-manifest"),
    ("zip", "All of these (zip)", "run-dl-zip"),
    ("pack", "Provenance pack for a client (zip)", "run-dl-pack"),
)
# Settings shown on the run page, in order: (field, label).
SETTINGS = (("preset_name", "Preset"), ("max_steps", "Steps"), ("epochs", "Epochs"),
            ("batch_size", "Batch size"), ("resolution", "Resolution (px)"),
            ("rank", "Rank"), ("alpha", "Alpha"), ("learning_rate", "Learning rate"),
            ("optimizer", "Optimizer"), ("lr_scheduler", "Learning-rate schedule"),
            ("lr_warmup_steps", "Warm-up steps"), ("min_snr_gamma", "Min-SNR γ"),
            ("noise_offset", "Noise offset"), ("caption_dropout", "Caption dropout"),
            ("repeats", "Repeats"), ("seed", "Seed"), ("targets", "LoRA on"),
            ("train_text_encoder", "Text encoder trained"), ("flip", "Horizontal flip"),
            ("mixed_precision", "Mixed precision"), ("sample_every", "Samples every"),
            ("checkpoint_every", "Checkpoint every"), ("sample_prompts", "Sample prompts"),
            ("sample_seeds", "Sample seeds"))


def run_name(run: Run, capital: bool = False) -> str:
    """How buttons and messages name a run: its id, as the run history lists it."""
    return f"{'Run' if capital else 'run'} {run.id}"


def _when(stamp: str | None) -> str:
    return (stamp or "").replace("T", " ")[:16]


def summary_markdown(run: Run | None, images: list[RunImage]) -> str:
    """Status, dates, base model, dataset and flags of the run shown."""
    if run is None:
        return "No run to show yet: start one above."
    ended = f" · finished {_when(run.finished_at)}" if run.finished_at else ""
    # The page is redrawn when the run's status changes, not every step: while it
    # trains, the live step is in the progress bar above, not a stale copy here.
    where = ("see the progress bar above" if run.active
             else f"step {run.step} of {run.total_steps}")
    if run.processes > 1:  # an `accelerate launch` trained it
        where += f", {run.processes} processes"
    lines = [f"#### Run `{run.id}` — {run.shown_status}, {where}",
             f"Started {_when(run.created_at)}{ended} · base model `{escape_md(run.base_model)}`"
             + (f" (identity `{escape_md(run.base_model_identity)}`)"
                if run.base_model_identity else "")]
    if images:
        creators = sorted({i.creator for i in images if not i.erased_at})
        licences = Counter(i.licence_label for i in images)
        gone = sum(1 for i in images if i.erased_at)
        revoked = sum(1 for i in images if i.revoked)
        lines.append(f"Trained on **{len(images)} image(s)** by "
                     + (", ".join(escape_md(c) for c in creators) or "—") + " · licences: "
                     + ", ".join(f"{escape_md(k)} ({n})" for k, n in licences.items()))
        if gone or revoked:
            lines.append("⚠ Since training: " + ", ".join(
                part for part in (f"{gone} erased" if gone else "",
                                  f"{revoked} with consent revoked" if revoked else "")
                if part) + ". Retrain without them and stop sharing this LoRA.")
    else:
        lines.append("The list of training images is written when the run starts.")
    if run.manifest_sha256:
        lines.append(f"Manifest sha256 `{run.manifest_sha256}`")
    if run.flags:
        lines.append("⚠ " + escape_md("; ".join(run.flags)))
    if run.error:
        lines.append(f"✗ {escape_md(run.error)}")
    return "\n\n".join(lines)


def settings_markdown(run: Run | None) -> str:
    """The settings the run was trained with, as a two-column table."""
    if run is None or not run.config:
        return ""
    config = TrainConfig.from_dict(run.config)
    rows = []
    for name, label in SETTINGS:
        value = getattr(config, name)
        if name == "preset_name":
            value = PRESET_LABELS.get(value, value)
        elif name == "resolution" and not value:
            value = "native"
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value) or "—"
        rows.append(f"| {label} | {escape_md(value)} |")
    return "| Setting | Value |\n|---|---|\n" + "\n".join(rows)


def image_rows(images: list[RunImage]) -> list[list[Any]]:
    """One row per training image, in the order the manifest lists them."""
    return [[n, image.filename or "—", image.state or "as trained", image.creator,
             image.licence_label or image.licence, image.consent_at_training, image.caption]
            for n, image in enumerate(images, start=1)]


def gallery_items(studio: Studio, run: Run, images: list[RunImage]) -> list[tuple[str, str]]:
    """Thumbnails of the images that still exist, as copies in the upload cache."""
    items = []
    for image in images:
        if image.thumb is None:
            continue
        copy = studio.workspace.browser_copy(image.thumb, "run-thumbs", run.id)
        label = f"{image.filename} · {image.creator} · {image.licence_label}"
        items.append((str(copy), label + (f" · ⚠ {image.state}" if image.state else "")))
    return items


def images_heading(images: list[RunImage]) -> str:
    if not images:
        return "#### Images this LoRA was trained on"
    shown = sum(1 for i in images if i.exists)
    missing = len(images) - shown
    return (f"#### Images this LoRA was trained on ({len(images)})"
            + (f" — {missing} no longer shown (erased or removed since)" if missing else ""))


def download_values(files: list[RunFile], bundle: Any,
                    pack: Any = None) -> list[dict[str, Any]]:
    """One update per DOWNLOADS entry: the file's cache copy, or hidden when absent."""
    paths = {f.key: f.path for f in files}
    if bundle is not None:
        paths["zip"] = bundle
    if pack is not None:
        paths["pack"] = pack
    # The files' own words: the tool file says whose names its keys follow (kohya's or
    # ComfyUI's own, by family).
    labels = {f.key: f.label for f in files}
    return [{"value": str(paths[key]), "visible": True, "label": labels.get(key) or label}
            if key in paths else {"value": None, "visible": False}
            for key, label, _ in DOWNLOADS]


def files_note(run: Run | None, files: list[RunFile]) -> str:
    if run is None:
        return ""
    if not any(f.key == "diffusers" for f in files):
        return ("The LoRA files appear here when the run has finished; a stopped run's "
                "checkpoints can be tried in the Playground.")
    return ("Every file below comes from this run's folder; the zip holds them all, with "
            "the sample pictures the model card shows. The provenance pack is what a client "
            "can check: the report (also as a printable page), the manifest, the ledger of "
            "these images, your public certificate, the Content Credentials and a "
            "training-content summary.")


def push_preview(plan: PushPlan, private: bool) -> str:
    """What publishing the run would make public, and why it is refused, in plain words."""
    seen = "only you and those you invite (private repo)" if private else "anyone"
    lines = [f"**What will be public** in `{plan.repo_id}`, seen by {seen}: "
             f"{len(plan.files)} file(s), {human_size(plan.total_size)}", ""]
    lines += [f"- `{f.path_in_repo}` ({human_size(f.size)})" for f in plan.files]
    lines += ["", "Stays on this machine: " + "; ".join(plan.kept_private) + "."]
    if plan.refusals:
        lines += ["", "**Cannot be published:**", ""]
        lines += [f"- ✗ {escape_md(r)}" for r in plan.refusals]
    else:
        lines += ["", "Check the list, then press *Publish*."]
    return "\n".join(lines)


def push_done(result: PushResult) -> str:
    where = "a private repo" if result.private else "a public repo"
    return (f"✓ Published {len(result.files)} file(s) to {where}: "
            f"[{escape_md(result.repo_id)}]({result.url})")
