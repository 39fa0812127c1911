"""The facade the UI, the tests and the CLI share: one workspace, one store, one worker.

`Studio` builds every service in dependency order and hands each what it uses; no service
holds the `Studio`. Besides the services, this module exports (`__all__`) the types,
vocabularies and formatting helpers the UI shows: the UI imports from the core only this
module and the `records` modules (`tests/test_layering.py` checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from style_studio.base.erasure import Eraser
from style_studio.base.errors import (
    GateRefused,
    InvalidInput,
    JobCancelled,
    ModelUnavailable,
    NotFound,
    StudioError,
    WorkspaceBusy,
)
from style_studio.base.family import FAMILY_LABELS, TOY_ID
from style_studio.base.jobs import Job, JobRunner
from style_studio.base.licences import LICENCES, RELATIONSHIPS, STATUSES, licence_label
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.base.lock import WorkspaceLock
from style_studio.base.store import Store
from style_studio.base.styles import Style, Styles
from style_studio.base.turns import DeviceBusy, DeviceTurns
from style_studio.base.units import format_duration, human_size
from style_studio.base.workspace import DEFAULT_HOME, HOME_ENV, Workspace
from style_studio.captions.captioners import describe_captioner
from style_studio.captions.records import CaptionRecords
from style_studio.captions.service import DEFAULT_TEMPLATE, CaptionRow, Captions
from style_studio.captions.wording import TokenReport
from style_studio.consent.gate import TrainingPlan
from style_studio.consent.service import Consent
from style_studio.credentials.service import Credentials
from style_studio.credentials.sign import TrainingMining
from style_studio.credentials.verify import Verification
from style_studio.demo import DemoStyle
from style_studio.images.records import IngestReport
from style_studio.images.review import FILTERS, GalleryItem
from style_studio.images.service import Images
from style_studio.models.families import FAMILIES, family_spec
from style_studio.models.families.spec import SamplingDefaults
from style_studio.models.loading import BaseModelSource, list_base_models
from style_studio.models.tiny import TINY_IDS
from style_studio.playground.output_metadata import read_settings
from style_studio.playground.pipeline_cache import PipelineCache
from style_studio.playground.records import GenerateRequest, Output
from style_studio.playground.service import Playground
from style_studio.training.config import (
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    PRESET_LABELS,
    TARGETS,
    TrainConfig,
    family_training,
)
from style_studio.training.distributed import Processes
from style_studio.training.energy import EnergyReport
from style_studio.training.follower import follow_training
from style_studio.training.records import FamilyTraining, PushPlan, PushResult, Run
from style_studio.training.run_details import RunFile, RunImage, files_stamp
from style_studio.training.service import Training
from style_studio.training.verification import Verifier

# What the UI (and the CLI) may use besides the services.
__all__ = [
    "DEFAULT_HOME",
    "DEFAULT_TEMPLATE",
    "FAMILY_LABELS",
    "FILTERS",
    "HOME_ENV",
    "LICENCES",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "PRECISIONS",
    "PRESET_LABELS",
    "RELATIONSHIPS",
    "STATUSES",
    "TARGETS",
    "TOY_ID",
    "TRAINABLE_FAMILIES",
    "CaptionRow",
    "DemoLimits",
    "DeviceBusy",
    "EnergyReport",
    "FamilyTraining",
    "GalleryItem",
    "GateRefused",
    "GenerateRequest",
    "IngestReport",
    "InvalidInput",
    "Job",
    "JobCancelled",
    "LimitReached",
    "ModelUnavailable",
    "NotFound",
    "Output",
    "Processes",
    "PushPlan",
    "PushResult",
    "Run",
    "RunFile",
    "RunImage",
    "SamplingDefaults",
    "SharedParts",
    "Studio",
    "StudioConfig",
    "StudioError",
    "TokenReport",
    "TrainConfig",
    "TrainingMining",
    "TrainingPlan",
    "Verification",
    "Workspace",
    "WorkspaceBusy",
    "WorkspaceLock",
    "describe_captioner",
    "family_training",
    "files_stamp",
    "follow_training",
    "format_duration",
    "human_size",
    "licence_label",
    "read_settings",
]

# The families a style may use: only those the trainer trains (key -> label).
TRAINABLE_FAMILIES: dict[str, str] = {key: spec.label for key, spec in FAMILIES.items()
                                      if spec.trainable}


@dataclass
class StudioConfig:
    """Settings chosen at launch (flags or environment), not stored per style."""

    default_base_model: str | None = None
    torch_threads: int | None = None
    limits: DemoLimits | None = None  # a public demo's limits (Space mode); None at home
    processes: Processes | None = None  # the main process of `accelerate launch`; None: one


@dataclass
class SharedParts:
    """What the studios of a public demo's visitors share: one device line, one cache of
    loaded pipelines (a second visitor must not load the base model again)."""

    turns: DeviceTurns
    pipelines: PipelineCache


class Studio:
    """Owns the store and the job runner; each noun of the flow is a service on it."""

    def __init__(self, workspace: Workspace, config: StudioConfig | None = None,
                 shared: SharedParts | None = None):
        self.workspace = workspace.ensure()
        self.config = config or StudioConfig()
        limits = self.config.limits
        self.lock = WorkspaceLock(self.workspace.root)
        self.lock.acquire()  # before the store: two writers would lose each other's changes
        try:
            self.store = Store(self.workspace.db_path)
        except BaseException:
            self.lock.release()
            raise
        self.styles = Styles(self.store, self.workspace, limits)
        self.jobs = JobRunner(
            self.store, turns=shared.turns if shared else None,
            max_active=limits.max_active_jobs if limits else None,
            time_limit_s=limits.job_time_limit_s if limits else None)
        self.erasure = Eraser(self.store, self.workspace)
        self.caption_records = CaptionRecords(self.store)
        self.captions = Captions(self.store, self.workspace, self.styles, self.jobs,
                                 self.caption_records, self.base_model_for, limits=limits)
        self.images = Images(self.store, self.workspace, self.styles, self.caption_records,
                             self.erasure, self.jobs, quota=limits)
        self.consent = Consent(self.store, self.workspace, self.erasure, self.caption_records)
        self.credentials = Credentials(self.store, self.workspace, self.styles)
        self.training = Training(self.store, self.workspace, self.jobs, self.styles,
                                 self.consent, self.base_model_for,
                                 free_captioner=self.captions.unload,
                                 torch_threads=self.config.torch_threads, limits=limits,
                                 credentials=self.credentials,
                                 processes=self.config.processes)
        self.verification = Verifier(self.store, self.workspace, self.styles, self.training,
                                     self.consent, self.credentials)
        self.playground = Playground(self.workspace, self.jobs, self.styles, self.training,
                                     self.base_model_for,
                                     cache=shared.pipelines if shared else None, limits=limits,
                                     credentials=self.credentials)
        self.demo = DemoStyle(self.store, self.styles, self.images, self.caption_records,
                              self.consent, self.suggested_base_model)
        # After a run is redacted: new cards, and its LoRAs signed again over the new bytes.
        self.erasure.card_writer = self.training.refresh_after_erasure
        # A database restored from a backup must not bring an erased image back.
        self.store.notices.extend(self.erasure.reapply_journal())

    @classmethod
    def open(cls, root: str | os.PathLike[str], config: StudioConfig | None = None) -> Studio:
        return cls(Workspace(Path(root).resolve()), config)

    @classmethod
    def from_env(cls, config: StudioConfig | None = None) -> Studio:
        return cls(Workspace.from_env(), config)

    def base_models(self, family: str | None = None) -> list[BaseModelSource]:
        """Base models to offer, with availability; nothing is loaded or downloaded."""
        extra = [self.config.default_base_model] if self.config.default_base_model else []
        sources = list_base_models(self.workspace.models_dir, extra)
        return [s for s in sources if family is None or s.family == family]

    def base_model_for(self, style: Style) -> str:
        """The style's own choice, else the --base-model flag, else the family's tiny model."""
        default = self.config.default_base_model
        if style.base_model:
            return style.base_model
        if default and any(s.ref == default for s in self.base_models(style.family)):
            return default
        return TINY_IDS[style.family]  # type: ignore[index]

    def base_model_terms(self, ref: str | None, family: str, short: bool = False) -> str:
        """A real model's licence, commercial use, training memory and download in plain
        words ("" for the tiny, toy and unknown models, whose labels say what they are)."""
        reference = family_spec(family).reference(ref)
        if reference is None:
            return ""
        return reference.short_terms() if short else reference.terms()

    def suggested_base_model(self, family: str) -> str | None:
        """The base a new style should start on: a real model of `family` on this machine
        (the app's default first), else the built-in toy model for SD 1.x, which shows a
        style's colours where the tiny random model shows noise. None = the app's default."""
        real = [s for s in self.base_models(family)
                if s.available and s.kind != "tiny" and s.ref != TOY_ID]
        if any(s.ref == self.config.default_base_model for s in real):
            return None
        if real:
            return real[0].ref
        return TOY_ID if family == "sd15" else None

    def verify(self, paths: list[str] | list[Path] | str | Path) -> list[str]:
        """What a dropped image or LoRA file's Content Credentials prove, in plain lines,
        checked against this workspace (its root, erasures, revocations and runs)."""
        return self.verification.describe(self.verification.verify(paths))

    def private_paths(self) -> list[str]:
        """Never served by the app: the database, the styles' folders and the signing
        identity (its private keys)."""
        workspace = self.workspace
        return [str(workspace.db_path), str(workspace.styles_root),
                str(workspace.credentials_dir)]

    def discard_uploads(self, paths: list[str] | list[Path]) -> None:
        """Delete upload copies the app has read (or will not import); see Workspace."""
        self.workspace.discard_uploads(paths)

    @property
    def notices(self) -> list[str]:
        """Things the artist should be told once at start-up (e.g. a restored backup)."""
        return list(self.store.notices)

    def close(self) -> None:
        self.jobs.shutdown()
        self.store.close()
        self.lock.release()

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
