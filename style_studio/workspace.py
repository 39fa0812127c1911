"""Where everything lives on disk: one workspace folder, one folder per style."""

from __future__ import annotations

import os
import shutil
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

    def empty_upload_cache(self) -> tuple[int, int]:
        """Remove everything in the upload cache; returns (files, bytes) removed.

        Only for start-up, with the workspace lock held and before Gradio starts: then
        every file there was left by an earlier process (an upload cancelled before its
        import, a copy served to a page long closed) and nothing needs it any more.
        """
        files = size = 0
        if not self.upload_cache.is_dir():
            return 0, 0
        for entry in self.upload_cache.iterdir():
            folder = entry.is_dir() and not entry.is_symlink()  # a link is removed, not followed
            found = ([p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
                     if folder else [entry])
            files += len(found)
            size += sum(p.lstat().st_size for p in found)
            if folder:
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        return files, size

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
