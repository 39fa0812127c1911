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
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from style_studio.base.errors import (
    GateRefused,
    InvalidInput,
    JobCancelled,
    ModelUnavailable,
    StudioError,
)
from style_studio.base.family import FLOW_FAMILIES, TOY_ID, is_toy, native_side
from style_studio.base.files import atomic_write_json, atomic_write_text, sha256_bytes, slug
from style_studio.base.jobs import FINISHED, Job, JobContext, JobRunner
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.base.store import Store, known_fields, new_id, utc_now
from style_studio.base.styles import Style, Styles
from style_studio.base.workspace import Workspace
from style_studio.consent.gate import TrainingPlan
from style_studio.consent.service import Consent
from style_studio.credentials.service import Credentials, remember_lora_hash
from style_studio.credentials.sign import LoraFacts, sign_lora
from style_studio.images.style_signature import StyleSignature
from style_studio.models.devices import pick_device
from style_studio.models.families import family_spec
from style_studio.models.loading import describe_source, model_identity, reference_repo

from . import publish
from .checkpoints import CheckpointFolder
from .config import TrainConfig
from .data import training_caption
from .distributed import Processes
from .energy import EnergyMeter, EnergyReport
from .export import DIFFUSERS_NAME
from .provenance import (
    build_manifest,
    lora_metadata,
    model_card,
    provenance_report,
    write_manifest,
)
from .records import Checkpoint, PushPlan, PushResult, Run, Sample
from .run_details import (
    LORA_KEYS,
    RunFile,
    RunImage,
    browser_files,
    bundle,
    card_samples,
    lora_sidecar_of,
    run_files,
    run_images,
)
from .sampling import SCORES_NAME, SIGNATURE_NAME, sample_name
from .trainer import Trainer, TrainSpec

JOB_KIND = "training"
_SAMPLE_RE = re.compile(r"^step-(\d{6,})-(\d+)\.png$")


class Training:
    """Runs of every style; one training job at a time on the studio's worker."""

    def __init__(self, store: Store, workspace: Workspace, jobs: JobRunner, styles: Styles,
                 consent: Consent, base_model_for: Callable[[Style], str],
                 free_captioner: Callable[[], object] | None = None,
                 torch_threads: int | None = None, limits: DemoLimits | None = None,
                 credentials: Credentials | None = None, processes: Processes | None = None):
        """`base_model_for` resolves a style's base model (its own, the app's default, or
        the family's tiny model); `free_captioner` gives the captioning model's memory back
        before a run; `torch_threads` is the launch setting (else the environment's);
        `credentials` signs a finished run's LoRA files (None: they stay unsigned);
        `processes`: this is the main process of a multi-process launch (`accelerate
        launch`), whose other processes train each run with it (None: one process)."""
        self.store = store
        self.workspace = workspace
        self.jobs = jobs
        self.styles = styles
        self.consent = consent
        self.base_model_for = base_model_for
        self.free_captioner = free_captioner
        self.torch_threads = torch_threads
        self.limits = limits
        self.credentials = credentials
        self.processes = processes or Processes()
        self._mark_interrupted()

    # -- reading --------------------------------------------------------------------------
    def _run(self, doc: dict[str, Any]) -> Run:
        data = known_fields(Run, doc)
        data.pop("run_dir", None)
        data.pop("queued", None)
        if data.get("status") == "running" and data.get("job_id"):
            data["step"], data["queued"] = self._live_state(data["job_id"], data.get("step", 0))
        return Run(run_dir=self.workspace.run_dir(doc["style_id"], doc["id"]), **data)

    def _live_state(self, job_id: str, stored: int) -> tuple[int, bool]:
        """The run record is written at checkpoints; the job knows the current step, and
        whether it still waits for the device."""
        try:
            job = self.jobs.get(job_id)
        except StudioError:
            return stored, False
        return int(job.extra.get("step") or stored), job.status == "queued"

    def get_run(self, run_id: str) -> Run:
        return self._run(self.store.require("runs", run_id, "Training run"))

    def runs(self, style_id: str) -> list[Run]:
        """Newest first."""
        runs = [self._run(d) for d in self.store.find("runs", style_id=style_id)]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def active_run(self, style_id: str | None = None) -> Run | None:
        """The run being trained (or else one waiting for the device), for a page to
        reattach to."""
        runs = [self._run(doc) for doc in self.store.find("runs", status="running")
                if style_id is None or doc["style_id"] == style_id]
        runs.sort(key=lambda r: (r.queued, r.created_at))
        return runs[0] if runs else None

    def run_images(self, run_id: str) -> list[RunImage]:
        """Every image the run was trained on (from its manifest), with what became of it
        since: erased, consent revoked, or as it was. Empty before the run has started."""
        run = self.get_run(run_id)
        manifest = self._read_manifest(run)
        if manifest is None:
            return []
        return run_images(manifest, self.workspace.style_dir(run.style_id),
                          self.store.find("images", style_id=run.style_id),
                          {c["id"]: c for c in self.store.find("consents",
                                                               style_id=run.style_id)})

    def training_image_files(self, run_id: str) -> list[tuple[RunImage, Path]]:
        """The run's training images still in the style, each with its stored file (what
        the Playground's near-copy guard compares outputs with)."""
        run = self.get_run(run_id)
        docs = self.store.find("images", style_id=run.style_id)
        by_id = {d["id"]: d for d in docs}
        by_sha = {d.get("sha256"): d for d in docs}
        style_dir = self.workspace.style_dir(run.style_id)
        found = []
        for image in self.run_images(run_id):
            doc = by_id.get(image.image_id) or by_sha.get(image.sha256)
            path = style_dir / doc["stored_path"] if doc and doc.get("stored_path") else None
            if image.exists and path is not None and path.is_file():
                found.append((image, path))
        return found

    def run_files(self, run_id: str) -> list[RunFile]:
        """The run's files for download (LoRAs, card, report, manifest), as copies in the
        upload cache: the workspace is never served, and erasure finds these copies."""
        run = self.get_run(run_id)
        return browser_files(self.workspace, run.id, run_files(run.run_dir))

    def export_files(self, run_id: str, dest: str | Path) -> list[Path]:
        """Copy the run's files (both LoRAs, card, report, manifest) and the card's samples
        into `dest`, each at its place in the run folder so the card's links work; for the
        command line, where the artist names the folder (the page uses `run_files`)."""
        run = self.get_run(run_id)
        files = [f.path for f in run_files(run.run_dir)]
        if not any(f.key in ("diffusers", "kohya") for f in run_files(run.run_dir)):
            raise InvalidInput(f"Run {run_id} has no LoRA yet ({run.shown_status}): export "
                               "it once it has finished.")
        dest = Path(dest)
        written = []
        for path in [*files, *card_samples(run.run_dir)]:
            target = dest / path.relative_to(run.run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            written.append(target)
        return written

    def plan_push(self, run_id: str, repo_id: str) -> PushPlan:
        """What publishing the run to the Hub repo `repo_id` would make public (LoRA files,
        their `.c2pa`, the model card and its samples) and why it is refused, if it is."""
        run = self.get_run(run_id)
        return publish.plan_push(run, self.run_images(run_id), repo_id)

    def push(self, run_id: str, repo_id: str, token: str | None = None,
             private: bool = False, api: Any = None) -> PushResult:
        """Publish exactly what `plan_push` lists (refused runs raise GateRefused); the
        token from the usual Hugging Face login when none is given; `api` for tests."""
        if self.limits is not None:  # a public demo must never publish with its owner's token
            raise LimitReached("This demo does not publish to the Hugging Face Hub: download "
                               "the files and run Style Studio on your own machine.")
        plan = self.plan_push(run_id, repo_id)
        result = publish.push(plan, self.workspace, token=token, private=private, api=api)
        run = self.get_run(run_id)
        self.store.audit("training.push", run.style_id, run_id=run_id, repo_id=plan.repo_id,
                         private=private, files=result.files)
        return result

    def run_bundle(self, run_id: str) -> Path | None:
        """A zip of every file of `run_files` (and the card's samples), in the upload
        cache; None while the run has no files yet."""
        run = self.get_run(run_id)
        try:
            name = f"{slug(self.styles.get(run.style_id).name)}-{run.id}"
        except StudioError:
            name = f"run-{run.id}"
        return bundle(self.workspace, run.id, run.run_dir, name)

    def _read_manifest(self, run: Run) -> dict[str, Any] | None:
        try:
            return json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def plan(self, style_id: str) -> TrainingPlan:
        return self.consent.trainable(style_id)

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        """One row per optimizer step: loss, smoothed loss, learning rate, speed, ETA."""
        return _read_jsonl(self.get_run(run_id).run_dir / "metrics.jsonl")

    def style_scores(self, run_id: str) -> list[dict[str, Any]]:
        """One row per sampled step: how far its samples are from the training images'
        style (`style_distance`, 0-1, lower is closer) and their fine detail over the
        training images' (`hf_ratio`; well above 1 is speckle)."""
        return _read_jsonl(self.get_run(run_id).run_dir / SCORES_NAME)

    def style_signature(self, run_id: str) -> StyleSignature | None:
        """The training images' signature saved when the run started (None before)."""
        path = self.get_run(run_id).run_dir / SIGNATURE_NAME
        return StyleSignature.load(path) if path.is_file() else None

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
        return base_model or self.base_model_for(style)

    def start(self, style_id: str, config: TrainConfig | None = None,
              base_model: str | None = None) -> Job:
        """Check everything that can be checked now, record the run, queue the job."""
        style = self.styles.get(style_id)
        self._refuse_second_run(style_id)
        config = (config or TrainConfig.preset("balanced")).validate()
        self.processes.check(config.batch_size, config.device)
        if config.train_text_encoder and style.family in FLOW_FAMILIES:
            raise InvalidInput(f"Training the text encoder is not offered for "
                               f"{style.family_label}: its text encoders stay frozen (their "
                               "outputs are cached once). Turn that setting off.")
        ref = self._base_ref(style, base_model)
        self._demo_check(ref, config)
        source = describe_source(ref, style.family, self.workspace.models_dir)
        if not source.available:
            raise ModelUnavailable(f"The base model {ref} cannot be used: {source.detail}")
        self.plan(style_id).require()
        if not config.sample_prompts:
            config = TrainConfig.from_dict({**config.to_dict(),
                                            "sample_prompts": config.prompts_for(style.trigger)})
        # The run records the base model's own sampling where the config leaves it open.
        config = TrainConfig.from_dict({**config.to_dict(),
                                        "sample_steps": config.steps_for(style.family, ref),
                                        "sample_guidance": config.guidance_for(style.family,
                                                                               ref)})
        if not config.resolution and is_toy(ref):  # "native" is 256 px for the toy models
            config = TrainConfig.from_dict({**config.to_dict(),
                                            "resolution": native_side(style.family, ref)})
        run_id = new_id()
        self.store.insert("runs", {
            "id": run_id, "style_id": style_id, "job_id": "", "status": "running",
            "base_model": ref, "base_model_identity": "", "family": style.family,
            "config": config.to_dict(), "image_hashes": [], "image_count": 0, "flags": [],
            "manifest_sha256": "", "step": 0, "total_steps": config.max_steps,
            "created_at": utc_now(), "finished_at": None, "energy": None, "error": None,
            "processes": self.processes.count})
        try:
            job = self._submit(run_id, style.name, resume=False)
        except StudioError:  # the demo's line is full: no run was started
            self.store.remove("runs", run_id)
            raise
        self.store.audit("training.start", style_id, run_id=run_id, base_model=ref)
        return job

    def _demo_check(self, ref: str, config: TrainConfig) -> None:
        """On a public demo: the toy model's Quick draft, within the demo's bounds."""
        limits = self.limits
        if limits is None:
            return
        if ref != TOY_ID:
            raise LimitReached("This demo trains the built-in toy model only.")
        if config.epochs:
            raise LimitReached("This demo trains by steps, not epochs: set epochs to 0.")
        bounds = (("steps", config.max_steps, limits.max_steps),
                  ("resolution", config.resolution, limits.max_resolution),
                  ("batch size", config.batch_size, limits.max_batch),
                  ("rank", config.rank, limits.max_rank))
        for name, value, most in bounds:
            if value > most:
                raise LimitReached(f"This demo trains with at most {most} for {name} "
                                   f"({value} asked); the Quick draft fits.")

    def _refuse_second_run(self, style_id: str) -> None:
        """A second click on Start must not queue a duplicate run of the same style."""
        active = self.active_run(style_id)
        if active is None:
            return
        doing = ("is waiting for the device" if active.queued
                 else f"is training (step {active.step} of {active.total_steps})")
        raise InvalidInput(f"Run {active.id} of this style {doing}. Wait for it to finish, "
                           "or cancel it, before starting another.")

    def resume(self, run_id: str) -> Job:
        run = self.get_run(run_id)
        if not run.resumable:
            raise InvalidInput(f"This run is {run.status}; only a cancelled, interrupted or "
                               "failed run can be resumed.")
        config = TrainConfig.from_dict(run.config) if run.config else TrainConfig()
        self.processes.check(config.batch_size, config.device)
        manifest = run.run_dir / "manifest.json"
        if manifest.is_file():  # checked again by the job; here for an immediate answer
            style = self.styles.get(run.style_id)
            _same_images(json.loads(manifest.read_text(encoding="utf-8")),
                         self.plan(run.style_id), style.trigger)
        # `processes`: those of the latest session (a checkpoint does not depend on them)
        self.store.update("runs", run_id, status="running", error=None, finished_at=None,
                          processes=self.processes.count)
        self.store.audit("training.resume", run.style_id, run_id=run_id,
                         processes=self.processes.count)
        return self._submit(run_id, self.styles.get(run.style_id).name, resume=True)

    def _submit(self, run_id: str, style_name: str, resume: bool) -> Job:
        run = self.get_run(run_id)
        verb = "Resume training" if resume else "Train"
        job = self.jobs.submit(
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
        job = self.jobs.cancel(run.job_id)
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
        style = self.styles.get(run.style_id)
        config = TrainConfig.from_dict(run.config)
        self._free_captioner()
        self._set_threads()
        device = pick_device(config.device)
        meter = EnergyMeter(device.device, device.label)
        prior = EnergyReport.from_dict(run.energy)
        trainer = None
        status, error = "failed", None
        try:
            plan = self.consent.require_trainable(run.style_id)
            manifest, sha = self._manifest(run, style, plan, config, meter, resume)
            spec = TrainSpec(
                run_id=run_id, run_dir=run.run_dir, family=run.family, base_ref=run.base_model,
                models_dir=self.workspace.models_dir, config=config, items=plan.included,
                trigger=style.trigger, cache_root=self.workspace.cache_dir(run.style_id),
                identity=manifest["base_model"]["identity"],
                kohya_name=tool_file_name(style),
                metadata=lambda fmt, step: lora_metadata(
                    manifest, sha, fmt, step=step, rank=config.rank, alpha=config.alpha,
                    energy=None if step else meter.read().plus(prior).to_dict()),
                resume=resume,
                on_checkpoint=lambda step: self.store.update("runs", run_id, step=step))
            # The other processes of a launch train it too, writing nothing themselves.
            self.processes.share(replace(spec, metadata=None, on_checkpoint=None))
            trainer = Trainer(spec, ctx, self.processes)
            trainer.prepare()
            self.store.update("runs", run_id, total_steps=trainer.total_steps, step=trainer.step)
            outcome = trainer.run()
            status = "done"
            unsigned = self.sign_loras(run_id)
            result = {"run_id": run_id, "step": outcome.step, "cache_hits": outcome.cache_hits,
                      "cache_misses": outcome.cache_misses}
            if unsigned:
                result["warning"] = " ".join(unsigned)
            return result
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
                  "label": label,
                  "reference": reference_repo(run.base_model, self.workspace.models_dir)},
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
            manifest, sha, kohya_name=tool_file_name(style),
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
            style = self.styles.get(run.style_id)
        except (OSError, ValueError, StudioError):
            return  # no manifest yet (nothing written to redact) or the style is gone
        self._write_cards(run.run_dir, manifest, run.manifest_sha256, style, outcome)

    def refresh_after_erasure(self, run_id: str) -> None:
        """The erasure's hook once it has redacted a run: rebuild the cards, and sign the
        redacted LoRA files again so their credentials match their bytes (and list the
        erased image as erased)."""
        self.rewrite_cards(run_id)
        try:
            signed_before = any(lora_sidecar_of(f.path).is_file()
                                for f in run_files(self.get_run(run_id).run_dir))
        except StudioError:
            return
        if signed_before:
            self.sign_loras(run_id)

    def sign_loras(self, run_id: str) -> list[str]:
        """Sign both LoRA files of a run (a `.c2pa` beside each, bound to its bytes, with
        the training set and the style's training-mining choice). Never fails the run:
        returns what could not be signed, in words ([] when all went well)."""
        if self.credentials is None:
            return []
        run = self.get_run(run_id)
        manifest = self._read_manifest(run)
        loras = [f.path for f in run_files(run.run_dir) if f.key in LORA_KEYS]
        if manifest is None or not loras:
            return []
        try:
            identity = self.credentials.identity()
            facts = LoraFacts.from_manifest(manifest, run.manifest_sha256,
                                            self.credentials.training_mining(run.style_id))
        except (StudioError, OSError, ValueError) as exc:
            return [f"The LoRA files are saved but not signed: {exc}"]
        problems = []
        for path in loras:
            try:
                signed = sign_lora(path, facts, identity)
            except Exception as exc:  # c2pa errors have no common base we can name here
                problems.append(f"{path.name} is saved but not signed "
                                f"({' '.join(str(exc).split())[:200]}).")
            else:
                remember_lora_hash(run.run_dir, signed.sha256, path.name)
        if problems:
            self.store.audit("credentials.unsigned", run.style_id, run_id=run_id,
                             problems=problems)
        return problems

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
        # The card, report and outcome are written before the run reads as finished: the
        # run page zips them as soon as it sees the status (a zip once held the report
        # from before its energy line).
        run = self.get_run(run_id)
        finished_at = utc_now()
        outcome = {"status": status, "step": step, "total_steps": run.total_steps,
                   "processes": run.processes, "error": error, "energy": energy.to_dict(),
                   "energy_summary": energy.summary(),
                   "flags": run.flags, "finished_at": finished_at}
        try:
            atomic_write_json(run.run_dir / "outcome.json", outcome)
            manifest_path = run.run_dir / "manifest.json"
            if manifest_path.is_file():
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                style = self.styles.get(run.style_id)
                self._write_cards(run.run_dir, manifest, run.manifest_sha256, style, outcome)
        except OSError:
            pass  # the run record below holds the outcome all the same
        self.store.update("runs", run_id, status=status, error=error, step=step,
                          finished_at=finished_at, energy=energy.to_dict())
        self.store.audit(f"training.{status}", run.style_id, run_id=run_id, step=step,
                         error=error)

    def _free_captioner(self) -> None:
        """The captioning model is not needed while training; give its memory back."""
        if self.free_captioner is not None:
            self.free_captioner()

    def _set_threads(self) -> None:
        threads = self.torch_threads or int(
            os.environ.get("STYLE_STUDIO_TORCH_THREADS", "0") or 0)
        if threads:
            import torch

            torch.set_num_threads(threads)


def tool_file_name(style: Any) -> str:
    """The run's tool file, `<style slug>.<names>.safetensors`: the family says whose key
    names it holds (kohya's, or ComfyUI's own for Z-Image)."""
    return f"{slug(style.name)}.{family_spec(style.family).tool_names}.safetensors"


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


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
    return rows
