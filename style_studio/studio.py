"""The facade the UI, the tests and a future CLI share: one workspace, one store, one worker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .captions import CaptionRecords, Captions
from .consent import Consent
from .erasure import Eraser
from .family import TOY_ID
from .generate import Playground
from .images import Images
from .jobs import JobRunner
from .models import BaseModelSource, list_base_models
from .store import Store
from .styles import Style, Styles
from .tiny_models import TINY_IDS
from .training import Training
from .workspace import Workspace
from .workspace_lock import WorkspaceLock


@dataclass
class StudioConfig:
    """Settings chosen at launch (flags or environment), not stored per style."""

    default_base_model: str | None = None
    torch_threads: int | None = None


class Studio:
    """Owns the store and the job runner; each noun of the flow is a service on it."""

    def __init__(self, workspace: Workspace, config: StudioConfig | None = None):
        self.workspace = workspace.ensure()
        self.config = config or StudioConfig()
        self.lock = WorkspaceLock(self.workspace.root)
        self.lock.acquire()  # before the store: two writers would lose each other's changes
        try:
            self.store = Store(self.workspace.db_path)
        except BaseException:
            self.lock.release()
            raise
        self.styles = Styles(self.store, self.workspace)
        self.jobs = JobRunner(self.store)
        self.erasure = Eraser(self.store, self.workspace)
        self.caption_records = CaptionRecords(self.store)
        self.captions = Captions(self.store, self.workspace, self.styles, self.jobs,
                                 self.caption_records, self.base_model_for)
        self.images = Images(self.store, self.workspace, self.styles, self.caption_records,
                             self.erasure, self.jobs)
        self.consent = Consent(self.store, self.workspace, self.erasure, self.caption_records)
        self.playground = Playground(self)
        self.training = Training(self)
        self.erasure.card_writer = self.training.rewrite_cards
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
