"""The facade the UI, the tests and a future CLI share: one workspace, one store, one worker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .captions import CaptionRecords
from .erasure import Eraser
from .jobs import JobRunner
from .store import Store
from .styles import Styles
from .workspace import Workspace


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
        self.store = Store(self.workspace.db_path)
        self.styles = Styles(self.store, self.workspace)
        self.jobs = JobRunner(self.store)
        self.erasure = Eraser(self.store, self.workspace)
        self.caption_records = CaptionRecords(self.store)

    @classmethod
    def open(cls, root: str | os.PathLike[str], config: StudioConfig | None = None) -> Studio:
        return cls(Workspace(Path(root).resolve()), config)

    @classmethod
    def from_env(cls, config: StudioConfig | None = None) -> Studio:
        return cls(Workspace.from_env(), config)

    @property
    def notices(self) -> list[str]:
        """Things the artist should be told once at start-up (e.g. a restored backup)."""
        return list(self.store.notices)

    def close(self) -> None:
        self.jobs.shutdown()
        self.store.close()

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
