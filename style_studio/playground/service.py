"""The Playground: generate with any trained LoRA, compare it with the base, stamp provenance.

Every generation is a job on the one device worker, so a request made while training
runs waits for it instead of fighting it for memory. The base pipeline is cached per base
model (`PipelineCache`); a LoRA checkpoint is an adapter switched in by name. Each image
is a PNG under the style's `outputs/` whose text chunks say how to make it again.

Each family's pipeline has its own conventions (FLUX.1's distilled guidance, no negative
prompt for FLUX.1 and FLUX.2 [klein], Z-Image's guidance above 0 meaning CFG); the
family says which (`SamplingDefaults`), so this module never branches on family names.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from style_studio.base.erasure import ERASED_FLAG
from style_studio.base.errors import InvalidInput, NotFound
from style_studio.base.jobs import Job, JobContext, JobRunner
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.base.styles import Style, Styles
from style_studio.base.workspace import Workspace
from style_studio.credentials.service import Credentials
from style_studio.credentials.sign import OutputFacts, sign_output
from style_studio.images.near_copy import NearCopy, Reference, near_copies, references
from style_studio.images.style_signature import StyleComparison, compare_ab
from style_studio.training.checkpoints import DIFFUSERS_NAME
from style_studio.training.records import Run
from style_studio.training.service import Training

from .conventions import SamplingDefaults, conventions_for, native_size, prompt_arguments
from .grids import GridLayout, compose_grid
from .output_metadata import (
    NEAR_COPY_KEY,
    OutputSettings,
    near_copy_chunks,
    near_copy_lines,
    read_chunks,
    read_settings,
    save_output,
)
from .pipeline_cache import LoraSource, PipelineCache
from .records import GenerateRequest, NearCopyMark, Output, RunCheckpoint, RunChoice

JOB_KIND = "generate"
DEFAULT_SUBJECT = "a lighthouse on a rocky coast at dusk"
MAX_COUNT = 8
# Below this many steps a LoRA has learned little of a style (Quick draft trains 400):
# its label says "short run", so nobody mistakes it for the finished one.
SHORT_RUN_STEPS = 100


@dataclass
class _Cell:
    """One image to render: a prompt and seed, with or without a LoRA."""

    prompt: str
    seed: int
    kind: str
    label: str = ""
    checkpoint: RunCheckpoint | None = None
    scale: float | None = None


@dataclass
class _Plan:
    """A request checked and resolved before it waits for the device."""

    request: GenerateRequest
    base_model: str
    family: str
    identity: str | None
    run: Run | None
    checkpoint: RunCheckpoint | None
    width: int
    height: int
    conventions: SamplingDefaults

    @property
    def seed(self) -> int:
        assert self.request.seed is not None  # _checked always chooses one
        return self.request.seed

    @property
    def steps(self) -> int:
        assert self.request.steps is not None  # _plan fills in the model's own
        return self.request.steps

    @property
    def guidance(self) -> float:
        assert self.request.guidance is not None
        return self.request.guidance


def _checked(request: GenerateRequest) -> GenerateRequest:
    """Refuse values that would fail deep in the pipeline, with words to fix them."""
    if not request.prompt.strip():
        raise InvalidInput("Write a prompt first (for example your trigger word and a subject).")
    limits = (("steps", request.steps, 1, 150), ("guidance", request.guidance, 0, 30),
              ("count", request.count, 1, MAX_COUNT), ("LoRA scale", request.lora_scale, -2, 2))
    for name, value, low, high in limits:
        if value is not None and not low <= value <= high:
            raise InvalidInput(f"The {name} must be between {low} and {high} (got {value}).")
    for name in ("width", "height"):
        value = getattr(request, name)
        if value is not None and (value % 8 or not 64 <= value <= 2048):
            raise InvalidInput(f"The {name} must be a multiple of 8 between 64 and 2048 "
                               f"(got {value}).")
    if request.seed is not None and not 0 <= request.seed < 2**32:
        raise InvalidInput("The seed must be a whole number between 0 and 4294967295.")
    seed = request.seed if request.seed is not None else secrets.randbelow(2**32 - MAX_COUNT)
    return replace(request, seed=seed, prompt=request.prompt.strip(),
                   negative_prompt=request.negative_prompt.strip())


class Playground:
    """Generation, A/B and grids through the job runner; history read from the PNGs.

    It reads runs and checkpoints from the training service and never writes them.
    """

    def __init__(self, workspace: Workspace, jobs: JobRunner, styles: Styles,
                 training: Training, base_model_for: Callable[[Style], str],
                 cache: PipelineCache | None = None, limits: DemoLimits | None = None,
                 credentials: Credentials | None = None):
        """`credentials` signs every PNG written (None: outputs carry XMP only)."""
        self.workspace = workspace
        self.jobs = jobs
        self.styles = styles
        self.training = training
        self.base_model_for = base_model_for
        self.cache = cache or PipelineCache(workspace.models_dir)
        self.limits = limits
        self.credentials = credentials
        # The near-copy guard's references, built once per run (and again only when the
        # run's training images still present change, e.g. after an erasure).
        self._references: dict[str, tuple[frozenset[str], list[Reference],
                                          dict[str, str]]] = {}

    # ------------------------------------------------------------------ choices
    def default_request(self, style_id: str) -> GenerateRequest:
        """A ready-to-run request: the style's trigger word first, native size, and the
        steps and guidance the base model is meant to draw with."""
        style = self.styles.get(style_id)
        subject = f"{style.trigger}, {DEFAULT_SUBJECT}" if style.trigger else DEFAULT_SUBJECT
        run = self.preferred_run(style_id)
        base, family = (run.base_model, run.family) if run else self.style_base(style_id)
        side = native_size(base, family)
        conventions = conventions_for(base, family)
        return GenerateRequest(style_id=style_id, run_id=run.run_id if run else None,
                               prompt=subject, width=side, height=side,
                               steps=conventions.steps, guidance=conventions.guidance)

    def conventions(self, style_id: str, run_id: str | None = None) -> SamplingDefaults:
        """How the base model of `run_id` (or of the style, without a run) draws: its
        steps and guidance, what guidance means there, and whether it reads a negative
        prompt; the form shows these before anything is loaded."""
        if run_id:
            run = self._run(run_id)
            return conventions_for(run.base_model, run.family)
        base, family = self.style_base(style_id)
        return conventions_for(base, family)

    def style_base(self, style_id: str) -> tuple[str, str]:
        """The base model used without a run: the style's, else the app's, else tiny."""
        style = self.styles.get(style_id)
        return self.base_model_for(style), style.family

    def runs(self, style_id: str) -> list[RunChoice]:
        """Runs of the style that have at least one complete LoRA, newest first."""
        choices = []
        for run in self.training.runs(style_id):
            checkpoints = self.checkpoints(run.id)
            if checkpoints:
                choices.append(RunChoice(run.id, _run_label(run), run.base_model, run.family,
                                         checkpoints, list(run.flags), run.status))
        return choices

    def preferred_run(self, style_id: str) -> RunChoice | None:
        """The run to offer first: the newest finished one, not a cancelled 8-step try
        that happens to be newer; else the newest run with a LoRA at all."""
        runs = self.runs(style_id)
        return next((r for r in runs if r.finished), runs[0] if runs else None)

    def checkpoints(self, run_id: str) -> list[RunCheckpoint]:
        """Final LoRA first, then step checkpoints, newest first (the Training contract)."""
        return [RunCheckpoint(c.step, c.label, Path(c.lora_dir))
                for c in self.training.checkpoints(run_id)]

    def _run(self, run_id: str) -> Run:
        try:
            return self.training.get_run(run_id)
        except NotFound as exc:
            raise NotFound(f"Run {run_id} no longer exists; choose another run.") from exc

    # ------------------------------------------------------------------ planning
    def _plan(self, request: GenerateRequest) -> _Plan:
        request = _checked(request)
        self.styles.get(request.style_id)
        if request.run_id is None:
            base, family = self.style_base(request.style_id)
            run, checkpoint, identity = None, None, None
        else:
            run = self._run(request.run_id)
            if run.style_id != request.style_id:
                raise InvalidInput("That run belongs to another style; choose one of this "
                                   "style's runs.")
            base, family, identity = run.base_model, run.family, run.base_model_identity or None
            checkpoint = self._checkpoint(request.run_id, request.checkpoint)
        side = native_size(base, family)
        conventions = conventions_for(base, family)
        request = replace(  # unset steps and guidance: the base model's own
            request, steps=conventions.steps if request.steps is None else request.steps,
            guidance=conventions.guidance if request.guidance is None else request.guidance)
        plan = _Plan(request, base, family, identity, run, checkpoint,
                     request.width or side, request.height or side, conventions)
        self._demo_check(plan)
        return plan

    def _demo_check(self, plan: _Plan) -> None:
        """On a public demo: small pictures, few steps, a handful at a time."""
        limits = self.limits
        if limits is None:
            return
        side = max(plan.width, plan.height)
        if side > limits.max_generate_side:
            raise LimitReached(f"This demo draws at most {limits.max_generate_side} px a side "
                               f"({side} asked).")
        if plan.steps > limits.max_generate_steps:
            raise LimitReached(f"This demo draws with at most {limits.max_generate_steps} "
                               f"steps ({plan.steps} asked).")

    def _checkpoint(self, run_id: str, step: int | None) -> RunCheckpoint:
        available = self.checkpoints(run_id)
        for checkpoint in available:
            if checkpoint.step == step:
                return checkpoint
        have = ", ".join(c.label for c in available) or "none yet"
        wanted = "final LoRA" if step is None else f"checkpoint at step {step}"
        raise NotFound(f"Run {run_id} has no {wanted} (available: {have}).")

    # ------------------------------------------------------------------ jobs
    def submit(self, request: GenerateRequest) -> Job:
        """Generate `count` images (seeds seed, seed+1, ...) with the chosen LoRA or none."""
        plan = self._plan(request)
        req = plan.request
        cells = [_Cell(req.prompt, plan.seed + i, "single", checkpoint=plan.checkpoint,
                       scale=req.lora_scale if plan.checkpoint else None)
                 for i in range(req.count)]
        what = f"with {plan.checkpoint.label} of run {req.run_id}" if plan.checkpoint else \
            "with the base model"
        return self._submit(plan, cells, f"Generate {req.count} image(s) {what}", "generate")

    def submit_ab(self, request: GenerateRequest) -> Job:
        """A/B: for each seed, the base model without the LoRA and with it, side by side."""
        plan = self._plan(request)
        if plan.checkpoint is None:
            raise InvalidInput("A/B compares a LoRA with the base model: choose a run first.")
        req = plan.request
        cells = []
        for i in range(req.count):
            seed = plan.seed + i
            # Just "A" and "B": each image's settings line already says seed, LoRA and scale.
            cells.append(_Cell(req.prompt, seed, "ab-base", label="A"))
            cells.append(_Cell(req.prompt, seed, "ab-lora", checkpoint=plan.checkpoint,
                               scale=req.lora_scale, label="B"))
        return self._submit(plan, cells, f"A/B of run {req.run_id} against the base", "ab")

    def submit_grid(self, request: GenerateRequest, checkpoints: list[int | None],
                    scales: list[float] | None = None,
                    prompts: list[str] | None = None) -> Job:
        """Grid: rows = checkpoints, columns = LoRA scales or prompts, all one seed."""
        plan = self._plan(replace(request, count=1))
        if plan.checkpoint is None:
            raise InvalidInput("A grid compares checkpoints of a run: choose a run first.")
        if bool(scales) == bool(prompts):
            raise InvalidInput("Give the grid's columns: either LoRA scales or prompts.")
        run_id = str(plan.request.run_id)
        rows = [self._checkpoint(run_id, step) for step in (checkpoints or [plan.checkpoint.step])]
        for scale in scales or []:
            _checked(replace(plan.request, lora_scale=scale))
        columns: list[tuple[str, str, float]] = (
            [(f"scale {s:g}", plan.request.prompt, float(s)) for s in scales] if scales else
            [(p.strip(), p.strip(), plan.request.lora_scale) for p in prompts or [] if p.strip()])
        layout = GridLayout([r.label for r in rows], [c[0] for c in columns],
                            col_axis="scale" if scales else "prompt")
        layout.check()
        seed = plan.seed
        cells = [_Cell(prompt, seed, "grid-cell", f"{row.label} · {col}", row, scale)
                 for row in rows for col, prompt, scale in columns]
        layout.title = f"{plan.request.prompt} · seed {seed} · run {plan.request.run_id}"
        return self._submit(plan, cells, f"Grid {layout.shape[0]}×{layout.shape[1]} of run "
                            f"{plan.request.run_id}", "grid", layout)

    def _submit(self, plan: _Plan, cells: list[_Cell], title: str, mode: str,
                layout: GridLayout | None = None) -> Job:
        req = plan.request
        params = {"mode": mode, "run_id": req.run_id, "checkpoint": req.checkpoint,
                  "prompt": req.prompt, "seed": req.seed, "images": len(cells)}
        return self.jobs.submit(
            JOB_KIND, lambda ctx: self._render(ctx, plan, cells, mode, layout),
            title=title, style_id=req.style_id, params=params)

    def generate(self, request: GenerateRequest, timeout: float | None = None) -> list[Output]:
        """Submit and wait: for scripts, tests and a future CLI."""
        job = self.jobs.wait(self.submit(request).id, timeout)
        return self.outputs(job.id)

    # ------------------------------------------------------------------ rendering
    def _render(self, ctx: JobContext, plan: _Plan, cells: list[_Cell], mode: str,
                layout: GridLayout | None) -> dict[str, Any]:
        """The job body: load what is needed (once), render each cell, save each PNG."""
        if not self.cache.is_loaded(plan.base_model, plan.family):
            ctx.progress(0.0, f"Loading the base model {plan.base_model} (only the first "
                              "time; later switches are quick)")
        style_dir = self.workspace.style_dir(plan.request.style_id)
        outputs_dir = self.workspace.outputs_dir(plan.request.style_id)
        saved: list[dict[str, Any]] = []
        images = []
        first: OutputSettings | None = None
        refs, thumbs = self._run_references(plan.run.id) if plan.run else ([], {})
        signer = _Signer(self.credentials, plan, self.styles)
        for index, cell in enumerate(cells):
            ctx.check_cancelled()
            image, settings = self._render_cell(ctx, plan, cell, index, len(cells))
            hits = near_copies(image.convert("RGB"), refs) if refs else []
            # Recorded in the PNG before it is signed, so the credentials cover it too.
            path = save_output(image, settings, outputs_dir, near_copy_chunks(hits))
            signer.sign(path, settings, cell.checkpoint)
            entry: dict[str, Any] = {"file": path.relative_to(style_dir).as_posix(),
                                     "label": cell.label}
            if hits:
                entry["near_copies"] = [_hit_entry(h, thumbs, style_dir) for h in hits]
            saved.append(entry)
            images.append(image)
            first = first or settings
        result: dict[str, Any] = {"mode": mode, "outputs": saved}
        if layout is not None and first is not None:
            result["grid"] = self._save_grid(plan, layout, images, saved, first)
            signer.sign(style_dir / result["grid"]["file"], first, plan.checkpoint)
        warnings = []
        if plan.run and ERASED_FLAG in plan.run.flags:
            warnings.append("This run was trained on images that have since been erased "
                            "on request; retrain before sharing anything it makes.")
        flagged = sum(1 for item in saved if item.get("near_copies"))
        if flagged:
            warnings.append(f"{flagged} image(s) came out very close to a training image "
                            "(marked below): a style LoRA should not copy its pictures.")
        warnings += signer.problems()
        if warnings:
            result["warning"] = " ".join(warnings)
        if self._training_waiting():
            self.release()  # the queued training needs the memory more than our cache
        ctx.progress(1.0, f"Saved {len(saved)} image(s) in outputs/")
        return result

    def _run_references(self, run_id: str) -> tuple[list[Reference], dict[str, str]]:
        """The run's training images as the near-copy guard compares them (cached per run),
        and each one's thumbnail (relative to the style folder) by image id."""
        files = self.training.training_image_files(run_id)
        key = frozenset(image.image_id for image, _ in files)
        cached = self._references.get(run_id)
        if cached is None or cached[0] != key:
            refs = references((image.image_id, image.filename or image.image_id, path)
                              for image, path in files)
            thumbs = {image.image_id: str(image.thumb) for image, _ in files if image.thumb}
            cached = self._references[run_id] = (key, refs, thumbs)
        return cached[1], cached[2]

    def _training_waiting(self) -> bool:
        return any(job.status == "queued" and "train" in job.kind
                   for job in self.jobs.list(limit=20))

    def release(self) -> None:
        """Free the cached pipelines and adapters (device memory); the next generation
        loads the base again. Training should call this before it loads its own model."""
        self.cache.clear()

    def _render_cell(self, ctx: JobContext, plan: _Plan, cell: _Cell, index: int,
                     total: int) -> tuple[Any, OutputSettings]:
        lora = LoraSource(cell.checkpoint.lora_dir, f"{cell.checkpoint.label} of run "
                          f"{plan.request.run_id}") if cell.checkpoint else None
        active = self.cache.activate(plan.base_model, plan.family, lora,
                                     cell.scale if cell.scale is not None else 1.0,
                                     identity=plan.identity)
        req = plan.request

        def on_step(pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
            steps = max(1, len(pipe.scheduler.timesteps))
            ctx.progress((index + (step + 1) / steps) / total,
                         f"Image {index + 1} of {total}: step {step + 1}/{steps}")
            ctx.check_cancelled()
            return kwargs

        # Always by keyword: FLUX.2 [klein]'s first positional argument is an image.
        prompt_args, negative = prompt_arguments(plan.conventions, cell.prompt,
                                                 req.negative_prompt, plan.guidance)
        image = active.pipe(
            **prompt_args, num_inference_steps=plan.steps, guidance_scale=plan.guidance,
            width=plan.width, height=plan.height,
            generator=torch.Generator(device="cpu").manual_seed(cell.seed),
            callback_on_step_end=on_step, output_type="pil",
        ).images[0]
        uses_lora = cell.checkpoint is not None
        settings = OutputSettings(
            prompt=cell.prompt, negative_prompt=negative, seed=cell.seed,
            steps=plan.steps, guidance=plan.guidance, width=plan.width, height=plan.height,
            base_model=plan.base_model, base_model_identity=active.base_identity,
            style_id=req.style_id, run_id=req.run_id if uses_lora else None,
            checkpoint=cell.checkpoint.step if cell.checkpoint else None,
            lora_scale=cell.scale if uses_lora else None, lora_sha256=active.lora_sha256,
            manifest_sha256=plan.run.manifest_sha256 or None if plan.run and uses_lora else None,
            kind=cell.kind)
        return image, settings

    def _save_grid(self, plan: _Plan, layout: GridLayout, images: list, saved: list[dict],
                   first: OutputSettings) -> dict[str, Any]:
        rows, cols = layout.shape
        grid = compose_grid([images[r * cols:(r + 1) * cols] for r in range(rows)], layout)
        layout.cells = [[saved[r * cols + c]["file"] for c in range(cols)] for r in range(rows)]
        extra = {"grid_rows": "\n".join(layout.row_labels),
                 "grid_cols": "\n".join(layout.col_labels),
                 "grid_axes": f"{layout.row_axis} x {layout.col_axis}"}
        folder = self.workspace.outputs_dir(plan.request.style_id) / "grids"
        path = save_output(grid.image, replace(first, kind="grid", created_at=""), folder, extra)
        style_dir = self.workspace.style_dir(plan.request.style_id)
        return {"file": path.relative_to(style_dir).as_posix(), "rows": layout.row_labels,
                "cols": layout.col_labels, "row_axis": layout.row_axis,
                "col_axis": layout.col_axis, "cells": layout.cells, "boxes": grid.boxes}

    # ------------------------------------------------------------------ reading back
    def outputs(self, job_id: str) -> list[Output]:
        """The images a finished job saved, with settings read from each file."""
        job = self.jobs.get(job_id)
        if not job.style_id or not job.result:
            return []
        style_dir = self.workspace.style_dir(job.style_id)
        return [Output(style_dir / item["file"], read_settings(style_dir / item["file"]),
                       item.get("label", ""), _marks(item.get("near_copies"), style_dir))
                for item in job.result.get("outputs", []) if (style_dir / item["file"]).is_file()]

    def style_comparison(self, job_id: str) -> StyleComparison | None:
        """Distances of a finished A/B to its run's style; None for other jobs, or runs
        trained before style signatures were saved."""
        job = self.jobs.get(job_id)
        outputs = self.outputs(job_id)
        pairs = [o for o in outputs if o.label in ("A", "B")]
        run_id = next((o.settings.run_id for o in pairs if o.settings.run_id), None)
        signature = self.training.style_signature(run_id) if run_id else None
        if job.status != "done" or signature is None:
            return None
        images = {label: [(o.settings.seed, o.path) for o in pairs if o.label == label]
                  for label in ("A", "B")}
        if not images["A"] or len(images["A"]) != len(images["B"]):
            return None
        opened = {label: [_open_rgb(path) for _, path in items]
                  for label, items in images.items()}
        return compare_ab(opened["A"], opened["B"], signature,
                          [seed for seed, _ in images["A"]])

    def grid_path(self, job_id: str) -> Path | None:
        job = self.jobs.get(job_id)
        grid = (job.result or {}).get("grid")
        if not grid or not job.style_id:
            return None
        return self.workspace.style_dir(job.style_id) / grid["file"]

    def history(self, style_id: str, limit: int = 60) -> list[Output]:
        """Saved outputs of the style, newest first; files without settings are skipped."""
        folder = self.workspace.outputs_dir(style_id)
        found: list[Output] = []
        for path in sorted(folder.glob("*.png"), reverse=True) if folder.is_dir() else []:
            try:
                found.append(self.output_at(path))
            except InvalidInput:
                continue
            if len(found) >= limit:
                break
        return found

    def output_at(self, path: Path) -> Output:
        """One saved output read from its own PNG: settings and any near-copy finding."""
        settings = read_settings(Path(path))
        chunks = read_chunks(Path(path))
        names: dict[str, str] = {}
        # (a run deleted since leaves the ids unnamed)
        with contextlib.suppress(NotFound):
            if chunks.get(NEAR_COPY_KEY) and settings.run_id:
                names = {i.image_id: i.filename for i in self.training.run_images(
                    settings.run_id) if i.filename}
        marks = [NearCopyMark("", line) for line in near_copy_lines(chunks, names)]
        return Output(Path(path), settings, near_copies=marks)

    def settings_of(self, path: Path) -> GenerateRequest:
        """"Use these settings again": the request that made `path`, from its own PNG."""
        s = read_settings(Path(path))
        return GenerateRequest(
            style_id=s.style_id, run_id=s.run_id, checkpoint=s.checkpoint, prompt=s.prompt,
            negative_prompt=s.negative_prompt, seed=s.seed, steps=s.steps,
            guidance=s.guidance, width=s.width, height=s.height, count=1,
            lora_scale=s.lora_scale if s.lora_scale is not None else 1.0)

    def waiting_reason(self, job_id: str) -> str | None:
        """Why a queued generation has not started: which job holds the device."""
        job = self.jobs.get(job_id)
        if job.status != "queued":
            return None
        place = self.jobs.place_in_line(job_id)
        if place is not None:
            return (f"Waiting for the device: you are number {place} in line."
                    if place > 1 else "Waiting for the device: you are next.")
        current = self.jobs.current()
        if current is None or current.id == job_id:
            return "Waiting for the device to start."
        busy = "Training" if "train" in current.kind else "Another job"
        return (f"Waiting for the device: {busy} “{current.title}” is running "
                f"({current.progress:.0%}). Your images start as soon as it finishes — or "
                "pause it (cancel now, resume later) in the Training tab.")

    def cancel(self, job_id: str) -> Job:
        return self.jobs.cancel(job_id)

    def latest_job(self, style_id: str) -> Job | None:
        """The newest playground job of the style, so a reloaded page reattaches to it."""
        jobs = self.jobs.list(style_id=style_id, kind=JOB_KIND, limit=1)
        return jobs[0] if jobs else None


class _Signer:
    """Signs one job's PNGs with the workspace identity; a failure keeps the image and
    says why, once, in words."""

    def __init__(self, credentials: Credentials | None, plan: _Plan, styles: Styles):
        self.credentials = credentials
        self.plan = plan
        self.styles = styles
        self.failed: list[str] = []
        self.reason = ""
        self._ready: tuple[Any, Any, str] | None = None

    def _prepare(self) -> tuple[Any, Any, str]:
        if self._ready is None:
            assert self.credentials is not None
            style_id = self.plan.request.style_id
            self._ready = (self.credentials.identity(),
                           self.credentials.training_mining(style_id),
                           self.styles.get(style_id).name)
        return self._ready

    def sign(self, path: Path, settings: OutputSettings,
             checkpoint: RunCheckpoint | None) -> None:
        if self.credentials is None:
            return
        try:
            identity, mining, style_name = self._prepare()
            uses_lora = checkpoint is not None and settings.run_id is not None
            sign_output(path, OutputFacts(
                prompt=settings.prompt, base_model=settings.base_model,
                base_model_identity=settings.base_model_identity,
                lora_path=checkpoint.lora_dir / DIFFUSERS_NAME if uses_lora and checkpoint
                else None,
                lora_sha256=settings.lora_sha256 or "" if uses_lora else "",
                run_id=settings.run_id or "", checkpoint=settings.checkpoint_label,
                lora_scale=settings.lora_scale, manifest_sha256=settings.manifest_sha256 or "",
                style_name=style_name, training_mining=mining,
                created_at=settings.created_at), identity,
                # the training set (creators, image hashes) stays out of the picture: an
                # erasure could not reach it there; verification finds it via the LoRA
                embed_lora_manifest=False)
        except Exception as exc:  # never lose the output over its signature
            self.failed.append(path.name)
            self.reason = self.reason or " ".join(str(exc).split())[:200]

    def problems(self) -> list[str]:
        if not self.failed:
            return []
        return [f"{len(self.failed)} image(s) were saved but not signed with your Content "
                f"Credentials ({self.reason}); they still carry their settings and XMP."]


def _hit_entry(hit: NearCopy, thumbs: dict[str, str], style_dir: Path) -> dict[str, str]:
    thumb = thumbs.get(hit.image_id, "")
    return {"image_id": hit.image_id, "filename": hit.filename, "text": hit.describe(),
            "thumb": Path(thumb).relative_to(style_dir).as_posix() if thumb else ""}


def _marks(items: list[dict[str, str]] | None, style_dir: Path) -> list[NearCopyMark]:
    """A job's near-copy entries as the UI shows them (a thumbnail erased since is left out)."""
    marks = []
    for item in items or []:
        thumb = style_dir / item["thumb"] if item.get("thumb") else None
        marks.append(NearCopyMark(item.get("filename", ""), item.get("text", ""),
                                  thumb if thumb and thumb.is_file() else None))
    return marks


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _run_label(run: Run) -> str:
    """Date, state and steps; a run stopped early or trained only briefly says so, since
    its LoRA has learned little of the style."""
    when = run.created_at[:16].replace("T", " ")
    if run.status == "done":
        state = f"done · {run.step} steps"
    elif run.status == "running":
        state = f"{run.shown_status}, step {run.step}/{run.total_steps} (checkpoints only)"
    else:
        state = f"■ {run.status} at step {run.step}/{run.total_steps}"
    short = " · short run" if run.step < SHORT_RUN_STEPS and run.status != "running" else ""
    flags = " · ⚠ " + ", ".join(run.flags) if run.flags else ""
    return f"{when} · {state}{short} · {run.id}{flags}"

