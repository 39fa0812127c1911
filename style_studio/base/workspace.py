"""Where everything lives on disk: one workspace folder, one folder per style."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "workspace"
HOME_ENV = "STYLE_STUDIO_HOME"
JOURNAL_NAME = "erasures.jsonl"
_UNSAFE_NAME = re.compile(r"[^\w.-]+")


def _folder_name(text: str) -> str:
    """One path segment, never `..` or a separator, from a kind or key."""
    return _UNSAFE_NAME.sub("-", text).strip(".-") or "files"


@dataclass(frozen=True)
class Workspace:
    """Paths of the workspace layout described in docs/architecture.md.

    On a public demo each visitor's workspace shares the demo's models folder
    (`models_root`), keeps its served copies in a folder of its own inside Gradio's cache
    (`cache_root`), and may discard what Gradio uploaded to its common folder
    (`uploads_root`); an artist's own workspace keeps all three inside `root`.
    """

    root: Path
    models_root: Path | None = None
    cache_root: Path | None = None
    uploads_root: Path | None = None

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
    def credentials_dir(self) -> Path:
        """The signing identity (root and signer keys): never served, zipped or erased."""
        return self.root / "credentials"

    @property
    def styles_root(self) -> Path:
        return self.root / "styles"

    @property
    def models_dir(self) -> Path:
        return self.models_root or self.root / "models"

    @property
    def upload_cache(self) -> Path:
        """Gradio's upload/serve cache, kept inside the workspace so erasure can reach it."""
        return self.cache_root or self.root / "gradio-cache"

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

    @property
    def erasure_journal(self) -> Path:
        """Append-only list of erasures, outside the database, re-applied after a restore."""
        return self.root / JOURNAL_NAME

    def discard_uploads(self, paths: list[Path] | list[str]) -> None:
        """Delete uploads once read: temporary copies Gradio put in the upload cache, so
        none lingers. Only paths inside the upload cache are touched, never the artist's
        own files."""
        caches = [c.resolve() for c in (self.upload_cache, self.uploads_root) if c]
        for path in paths:
            path = Path(path).resolve()
            cache = next((c for c in caches if path.is_relative_to(c) and path != c), None)
            if cache is None:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            parent = path.parent
            if parent != cache and parent.is_relative_to(cache) and not any(parent.iterdir()):
                parent.rmdir()

    def received_upload(self, path: str | Path) -> bool:
        """Whether `path` is a file the app received by upload (not a path on the server)."""
        resolved = Path(path).resolve()
        return any(resolved.is_relative_to(c.resolve())
                   for c in (self.upload_cache, self.uploads_root) if c)

    def browser_dir(self, kind: str, key: str | None = None) -> Path:
        """A folder for files handed to the browser (exports, ledgers, downloads, served
        copies), always inside the upload cache: erasure searches there, never in the
        system temp folder. `key` None makes a fresh folder, so each download keeps its
        own file; a key (a run id, say) gives a stable folder whose copies are reused."""
        folder = self.upload_cache / _folder_name(kind) / _folder_name(key or uuid.uuid4().hex)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def browser_copy(self, source: Path, kind: str, key: str | None = None) -> Path:
        """A byte-identical copy of a workspace file for the browser (the workspace itself
        is never served); an existing copy is reused unless the source changed since."""
        source = Path(source)
        target = self.browser_dir(kind, key) / source.name
        fresh = target.exists() and target.stat().st_size == source.stat().st_size and (
            target.stat().st_mtime >= source.stat().st_mtime)
        if not fresh:
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return target

    def style_dir(self, style_id: str) -> Path:
        return self.styles_root / style_id

    def images_dir(self, style_id: str) -> Path:
        return self.style_dir(style_id) / "images"

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
