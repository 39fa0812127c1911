"""Where everything lives on disk: one workspace folder, one folder per style."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "workspace"
HOME_ENV = "STYLE_STUDIO_HOME"


@dataclass(frozen=True)
class Workspace:
    """Paths of the workspace layout described in docs/architecture.md."""

    root: Path

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(Path(os.environ.get(HOME_ENV, DEFAULT_HOME)).resolve())

    def ensure(self) -> Workspace:
        for folder in (self.root, self.styles_root, self.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def db_path(self) -> Path:
        return self.root / "studio.json"

    @property
    def styles_root(self) -> Path:
        return self.root / "styles"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def upload_cache(self) -> Path:
        """Gradio's upload/serve cache, kept inside the workspace so erasure can reach it."""
        return self.root / "gradio-cache"

    def style_dir(self, style_id: str) -> Path:
        return self.styles_root / style_id

    def images_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "images"

    def thumbs_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "thumbs"

    def cache_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "cache"

    def runs_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "runs"

    def run_dir(self, style_id: str, run_id: str) -> Path:
        return self.runs_dir(style_id) / run_id

    def outputs_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "outputs"

    def evidence_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "evidence"
