"""The Training service: start, watch, cancel and resume LoRA runs of a style.

`studio.training` is what the Training tab, the Playground and the tests use. A run is a
record in the `runs` table plus a folder (config.json, manifest.json, metrics.jsonl,
samples/, checkpoints/, lora/, README.md). Training itself runs as a job on the one
worker; the trainer asks the consent gate for its images, so no caller can hand it
an image that is not cleared.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoints import CheckpointFolder
from .devices import pick_device
from .energy import EnergyMeter, EnergyReport
from .errors import GateRefused, InvalidInput, JobCancelled, ModelUnavailable, StudioError
from .family import TOY_ID, native_side
from .files import atomic_write_json, atomic_write_text, sha256_bytes
from .gate import TrainingPlan
from .jobs import FINISHED, Job, JobContext
from .lora_export import DIFFUSERS_NAME
from .models import describe_source, model_identity
from .provenance import (
    build_manifest,
    lora_metadata,
    model_card,
    provenance_report,
    write_manifest,
)
from .sampling import sample_name
from .store import known_fields, new_id, utc_now
from .trainer import Trainer, TrainSpec
from .training_config import TrainConfig
from .training_data import training_caption

if TYPE_CHECKING:
    from .studio import Studio

JOB_KIND = "training"
RESUMABLE = ("cancelled", "interrupted", "failed")
_SAMPLE_RE = re.compile(r"^step-(\d{6,})-(\d+)\.png$")


@dataclass
class Run:
    """A training run as the runs table holds it, plus its folder."""

    id: str
    style_id: str
    run_dir: Path
    job_id: str = ""
    status: str = "running"
    base_model: str = ""
    base_model_identity: str = ""
    family: str = "sd15"
    config: dict[str, Any] = field(default_factory=dict)
    image_hashes: list[str] = field(default_factory=list)
    image_count: int = 0
    flags: list[str] = field(default_factory=list)
    manifest_sha256: str = ""
    step: int = 0
    total_steps: int = 0
    created_at: str = ""
    finished_at: str | None = None
    energy: dict[str, Any] | None = None
    error: str | None = None

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE


@dataclass
class Sample:
    step: int
    index: int
    prompt: str
    seed: int
    path: Path


@dataclass
class Checkpoint:
    step: int | None  # None = the finished LoRA
    label: str
    lora_dir: Path
    diffusers_file: Path


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "style"


class Training:
    """Runs of every style; one training job at a time on the studio's worker."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.store = studio.store
        self.workspace = studio.workspace
        self._mark_interrupted()

    # -- reading --------------------------------------------------------------------------
    def _run(self, doc: dict[str, Any]) -> Run:
        data = known_fields(Run, doc)
        data.pop("run_dir", None)
        if data.get("status") == "running" and data.get("job_id"):
            data["step"] = self._live_step(data["job_id"], data.get("step", 0))
        return Run(run_dir=self.workspace.run_dir(doc["style_id"], doc["id"]), **data)

    def _live_step(self, job_id: str, stored: int) -> int:
        """The run record is written at checkpoints; the job knows the current step."""
        try:
            return int(self.studio.jobs.get(job_id).extra.get("step") or stored)
        except StudioError:
            return stored

    def get_run(self, run_id: str) -> Run:
        return self._run(self.store.require("runs", run_id, "Training run"))

    def runs(self, style_id: str) -> list[Run]:
        """Newest first."""
        runs = [self._run(d) for d in self.store.find("runs", style_id=style_id)]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def active_run(self, style_id: str | None = None) -> Run | None:
        """The run being trained (or waiting for the device), for a page to reattach to."""
        for doc in self.store.find("runs", status="running"):
            if style_id is None or doc["style_id"] == style_id:
                return self._run(doc)
        return None

    def plan(self, style_id: str) -> TrainingPlan:
        return self.studio.consent.trainable(style_id)

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        path = self.get_run(run_id).run_dir / "metrics.jsonl"
        rows = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a crash
        return rows

    def samples(self, run_id: str) -> list[Sample]:
        """Oldest step first, then by prompt."""
        run = self.get_run(run_id)
        config = TrainConfig.from_dict(run.config) if run.config else TrainConfig()
        folder = run.run_dir / "samples"
        found = []
        for path in sorted(folder.glob("step-*.png")) if folder.is_dir() else []:
            match = _SAMPLE_RE.match(path.name)
            if match:
                index = int(match.group(2))
                prompts = config.sample_prompts
                prompt = prompts[index] if index < len(prompts) else ""
                found.append(Sample(int(match.group(1)), index, prompt,
                                    config.seed_for(index), path))
        return sorted(found, key=lambda s: (s.step, s.index))

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        """The finished LoRA first (if any), then checkpoints, newest first."""
        run = self.get_run(run_id)
        found = []
        final = run.run_dir / "lora"
        if (final / DIFFUSERS_NAME).is_file():
            found.append(Checkpoint(None, f"Final (step {run.step})", final,
                                    final / DIFFUSERS_NAME))
        folder = CheckpointFolder(run.run_dir)
        for step in reversed(folder.steps()):
            path = folder.path(step)
            found.append(Checkpoint(step, f"Step {step}", path, path / DIFFUSERS_NAME))
        return found

    # -- starting -------------------------------------------------------------------------
    def _base_ref(self, style: Any, base_model: str | None) -> str:
        return base_model or self.studio.base_model_for(style)

    def start(self, style_id: str, config: TrainConfig | None = None,
              base_model: str | None = None) -> Job:
        """Check everything that can be checked now, record the run, queue the job."""
        style = self.studio.styles.get(style_id)
        config = (config or TrainConfig.preset("balanced")).validate()
        ref = self._base_ref(style, base_model)
        source = describe_source(ref, style.family, self.workspace.models_dir)
        if not source.available:
            raise ModelUnavailable(f"The base model {ref} cannot be used: {source.detail}")
        self.plan(style_id).require()
        if not config.sample_prompts:
            config = TrainConfig.from_dict({**config.to_dict(),
                                            "sample_prompts": config.prompts_for(style.trigger)})
        if not config.resolution and ref == TOY_ID:  # "native" is 256 px for the toy model
            config = TrainConfig.from_dict({**config.to_dict(),
                                            "resolution": native_side(style.family, ref)})
        run_id = new_id()
        self.store.insert("runs", {
            "id": run_id, "style_id": style_id, "job_id": "", "status": "running",
            "base_model": ref, "base_model_identity": "", "family": style.family,
            "config": config.to_dict(), "image_hashes": [], "image_count": 0, "flags": [],
            "manifest_sha256": "", "step": 0, "total_steps": config.max_steps,
            "created_at": utc_now(), "finished_at": None, "energy": None, "error": None})
        self.store.audit("training.start", style_id, run_id=run_id, base_model=ref)
        return self._submit(run_id, style.name, resume=False)

    def resume(self, run_id: str) -> Job:
        run = self.get_run(run_id)
        if not run.resumable:
            raise InvalidInput(f"This run is {run.status}; only a cancelled, interrupted or "
                               "failed run can be resumed.")
        manifest = run.run_dir / "manifest.json"
        if manifest.is_file():  # checked again by the job; here for an immediate answer
            style = self.studio.styles.get(run.style_id)
            _same_images(json.loads(manifest.read_text(encoding="utf-8")),
                         self.plan(run.style_id), style.trigger)
        self.store.update("runs", run_id, status="running", error=None, finished_at=None)
        self.store.audit("training.resume", run.style_id, run_id=run_id)
        return self._submit(run_id, self.studio.styles.get(run.style_id).name, resume=True)

    def _submit(self, run_id: str, style_name: str, resume: bool) -> Job:
        run = self.get_run(run_id)
        verb = "Resume training" if resume else "Train"
        job = self.studio.jobs.submit(
            JOB_KIND, lambda ctx: self._job(ctx, run_id, resume),
            title=f"{verb} '{style_name}'", style_id=run.style_id,
            params={"run_id": run_id, "resume": resume})
        self.store.update("runs", run_id, job_id=job.id)
        return job

    def cancel(self, run_id: str) -> Run:
        """Ask the run's job to stop; it saves a checkpoint within one step."""
        run = self.get_run(run_id)
        if run.status != "running" or not run.job_id:
            return run
        job = self.studio.jobs.cancel(run.job_id)
        if job.status == "cancelled" and job.started_at is None:  # it never started
            self.store.update("runs", run_id, status="cancelled", finished_at=utc_now())
        return self.get_run(run_id)

    def _mark_interrupted(self) -> None:
        """A run still "running" whose job is over was cut off by a stopped app."""
        with self.store.batch():
            for doc in self.store.find("runs", status="running"):
                job = self.store.get("jobs", doc.get("job_id") or "")
                if job is None or job.get("status") in FINISHED:
                    status = "interrupted" if job is None or job["status"] in (
                        "interrupted", "running", "queued") else job["status"]
                    self.store.update("runs", doc["id"], status=status,
                                      finished_at=utc_now(),
                                      error=job.get("error") if job else None)

    # -- the job ------------------------------------------------------------------------
    def _job(self, ctx: JobContext, run_id: str, resume: bool) -> dict[str, Any]:
        run = self.get_run(run_id)
        style = self.studio.styles.get(run.style_id)
        config = TrainConfig.from_dict(run.config)
        self._free_captioner()
        self._set_threads()
        device = pick_device(config.device)
        meter = EnergyMeter(device.device, device.label)
        prior = EnergyReport.from_dict(run.energy)
        trainer = None
        status, error = "failed", None
        try:
            plan = self.studio.consent.require_trainable(run.style_id)
            manifest, sha = self._manifest(run, style, plan, config, meter, resume)
            spec = TrainSpec(
                run_id=run_id, run_dir=run.run_dir, family=run.family, base_ref=run.base_model,
                models_dir=self.workspace.models_dir, config=config, items=plan.included,
                trigger=style.trigger, cache_root=self.workspace.cache_dir(run.style_id),
                identity=manifest["base_model"]["identity"],
                kohya_name=f"{slug(style.name)}.kohya.safetensors",
                metadata=lambda fmt, step: lora_metadata(
                    manifest, sha, fmt, step=step, rank=config.rank, alpha=config.alpha,
                    energy=None if step else meter.read().plus(prior).to_dict()),
                resume=resume,
                on_checkpoint=lambda step: self.store.update("runs", run_id, step=step))
            trainer = Trainer(spec, ctx)
            trainer.prepare()
            self.store.update("runs", run_id, total_steps=trainer.total_steps, step=trainer.step)
            outcome = trainer.run()
            status = "done"
            return {"run_id": run_id, "step": outcome.step, "cache_hits": outcome.cache_hits,
                    "cache_misses": outcome.cache_misses}
        except JobCancelled:
            status = "cancelled"
            raise
        except StudioError as exc:
            error = str(exc)
            raise
        except Exception as exc:
            error = f"Unexpected error ({type(exc).__name__}): {exc}"
            raise
        finally:
            step = trainer.step if trainer else run.step
            if trainer:
                trainer.release()
            self._finish(run_id, status, error, step, meter.stop().plus(prior))

    def _manifest(self, run: Run, style: Any, plan: TrainingPlan, config: TrainConfig,
                  meter: EnergyMeter, resume: bool) -> tuple[dict[str, Any], str]:
        path = run.run_dir / "manifest.json"
        if resume and path.is_file():
            data = path.read_bytes()
            manifest = json.loads(data)
            _same_images(manifest, plan, style.trigger)
            return manifest, sha256_bytes(data)
        identity = model_identity(run.base_model, self.workspace.models_dir)
        label = describe_source(run.base_model, run.family, self.workspace.models_dir).label
        manifest = build_manifest(
            run_id=run.id, style=style, plan=plan, config=config,
            base={"ref": run.base_model, "identity": identity, "family": run.family,
                  "label": label},
            device=meter.label, energy_method=meter.read().method,
            created_at=run.created_at)
        atomic_write_json(run.run_dir / "config.json", config.to_dict())
        sha = write_manifest(path, manifest)
        self._write_cards(run.run_dir, manifest, sha, style, None)
        self.store.update("runs", run.id, manifest_sha256=sha, base_model_identity=identity,
                          image_hashes=plan.image_hashes, image_count=len(plan.included))
        return manifest, sha

    def _write_cards(self, run_dir: Path, manifest: dict[str, Any], sha: str, style: Any,
                     outcome: dict[str, Any] | None) -> None:
        samples = self._final_samples(run_dir, manifest)
        atomic_write_text(run_dir / "README.md", model_card(
            manifest, sha, kohya_name=f"{slug(style.name)}.kohya.safetensors",
            samples=samples, outcome=outcome))
        atomic_write_text(run_dir / "provenance.md", provenance_report(manifest, sha, outcome))

    def rewrite_cards(self, run_id: str) -> None:
        """Rebuild README.md and provenance.md from manifest.json and outcome.json as they
        are now: after an erasure redacted them, the cards must say so too."""
        run = self.get_run(run_id)
        try:
            manifest = json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
            outcome_path = run.run_dir / "outcome.json"
            outcome = (json.loads(outcome_path.read_text(encoding="utf-8"))
                       if outcome_path.is_file() else None)
            style = self.studio.styles.get(run.style_id)
        except (OSError, ValueError, StudioError):
            return  # no manifest yet (nothing written to redact) or the style is gone
        self._write_cards(run.run_dir, manifest, run.manifest_sha256, style, outcome)

    def _final_samples(self, run_dir: Path, manifest: dict[str, Any]) -> list[tuple[str, str]]:
        folder = run_dir / "samples"
        files = sorted(folder.glob("step-*.png")) if folder.is_dir() else []
        if not files:
            return []
        last = files[-1].name.split("-")[1]
        prompts = manifest["config"]["sample_prompts"]
        return [(prompts[i], f"samples/{sample_name(int(last), i)}") for i in range(len(prompts))
                if (folder / sample_name(int(last), i)).is_file()]

    def _finish(self, run_id: str, status: str, error: str | None, step: int,
                energy: EnergyReport) -> None:
        doc = self.store.update("runs", run_id, status=status, error=error, step=step,
                                finished_at=utc_now(), energy=energy.to_dict())
        run = self._run(doc)
        outcome = {"status": status, "step": step, "total_steps": run.total_steps,
                   "error": error, "energy": energy.to_dict(), "energy_summary": energy.summary(),
                   "flags": run.flags, "finished_at": doc["finished_at"]}
        try:
            atomic_write_json(run.run_dir / "outcome.json", outcome)
            manifest_path = run.run_dir / "manifest.json"
            if manifest_path.is_file():
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                style = self.studio.styles.get(run.style_id)
                self._write_cards(run.run_dir, manifest, run.manifest_sha256, style, outcome)
        except OSError:
            pass  # the run record above already holds the outcome
        self.store.audit(f"training.{status}", run.style_id, run_id=run_id, step=step,
                         error=error)

    def _free_captioner(self) -> None:
        """The captioning model is not needed while training; give its memory back."""
        unload = getattr(getattr(self.studio, "captions", None), "unload", None)
        if callable(unload):
            unload()

    def _set_threads(self) -> None:
        threads = self.studio.config.torch_threads or int(
            os.environ.get("STYLE_STUDIO_TORCH_THREADS", "0") or 0)
        if threads:
            import torch

            torch.set_num_threads(threads)


def _same_images(manifest: dict[str, Any], plan: TrainingPlan, trigger: str) -> None:
    """A resumed run must see exactly the images (and captions) it started with."""
    before = {i["sha256"]: i["training_caption"] for i in manifest["images"]}
    now = {item.sha256: training_caption(item.caption, trigger) for item in plan.included}
    if before == now:
        return
    reasons = {ex.image_id: f"{ex.filename or ex.image_id}: {ex.reason}" for ex in plan.excluded}
    ids = {i["sha256"]: i["image_id"] for i in manifest["images"]}
    changes = [reasons.get(ids[sha], f"image {sha[:12]}: erased") for sha in before
               if sha not in now]
    changes += [f"image {sha[:12]}: caption changed" for sha in before
                if sha in now and now[sha] != before[sha]]
    changes += [f"{len(set(now) - set(before))} image(s) newly cleared"] if set(now) - set(
        before) else []
    raise GateRefused("This run cannot be resumed: its images changed since it started ("
                      + "; ".join(changes) + "). Start a new run with the images as they are "
                      "now.")
