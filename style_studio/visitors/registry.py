"""One studio per visitor of a public demo, found by an id only the visitor's browser holds.

A visitor's browser keeps a random secret (a cookie, see `ui/visitor_guard.py`); its
SHA-256 names the visitor's folder, so a folder name seen in a file address cannot be
turned back into the secret that opens it. Each visitor has a workspace of their own
(`visitors/<id>/`) whose served copies live in a folder of their own inside Gradio's cache;
the toy model and loaded pipelines are shared, and one line of turns serves the device.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from style_studio.base.limits import LimitReached
from style_studio.base.turns import DeviceTurns
from style_studio.base.workspace import Workspace
from style_studio.playground.pipeline_cache import PipelineCache
from style_studio.studio import SharedParts, Studio, StudioConfig

log = logging.getLogger(__name__)
_ID = re.compile(r"^[0-9a-f]{32}$")
SEEN_FILE = ".last-seen"
PAGE_ID = "page"  # the studio the page is built with before any visitor arrives
TOUCH_EVERY_S = 60.0
UPLOAD_TTL_S = 3600.0


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def visitor_id(secret: str) -> str:
    """The folder name for a visitor's secret; the secret itself is never stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]


class Visitors:
    """Opens, keeps and expires the visitors' studios of one public demo."""

    def __init__(self, root: Path, cache_root: Path, config: StudioConfig,
                 clock: Callable[[], float] = time.time):
        if config.limits is None:
            raise ValueError("Visitors need the demo's limits (StudioConfig.limits).")
        self.root = Path(root).resolve()
        self.cache_root = Path(cache_root).resolve()
        self.config = config
        self.limits = config.limits
        self.clock = clock
        self.models_dir = self.root / "models"
        self.folder = self.root / "visitors"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shared = SharedParts(DeviceTurns(self.limits.queue_capacity),
                                  PipelineCache(self.models_dir))
        self._lock = threading.RLock()
        self._open: dict[str, Studio] = {}
        self._touched: dict[str, float] = {}
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- where things are ---------------------------------------------------------------
    def workspace(self, vid: str) -> Workspace:
        return Workspace(self.folder / vid, models_root=self.models_dir,
                         cache_root=self.served_dir(vid), uploads_root=self.cache_root)

    def served_dir(self, vid: str) -> Path:
        """The only folder whose files this visitor's page may fetch."""
        return self.cache_root / "visitors" / vid

    # -- studios ------------------------------------------------------------------------
    def studio(self, vid: str) -> Studio:
        """The visitor's studio, made on their first visit."""
        if not (_ID.match(vid) or vid == PAGE_ID):
            raise ValueError(f"Not a visitor id: {vid!r}")
        with self._lock:
            studio = self._open.get(vid)
            if studio is None:
                self._room_for(vid)
                studio = Studio(self.workspace(vid), self.config, self.shared)
                self._open[vid] = studio
        self.touch(vid)
        return studio

    def _room_for(self, vid: str) -> None:
        """A new visitor needs a free place: a script making a visitor per request must
        not fill the disk with workspaces."""
        if vid == PAGE_ID or (self.folder / vid).exists():
            return
        held = sum(1 for entry in self.folder.iterdir() if _ID.match(entry.name))
        if held >= self.limits.max_visitors:
            raise LimitReached("The demo holds as many visitors as it can right now; "
                               "try again in an hour, when idle workspaces are cleared.")

    def page_studio(self) -> Studio:
        """An empty studio the page is laid out with (what any new visitor sees)."""
        return self.studio(PAGE_ID)

    def touch(self, vid: str) -> None:
        """Remember the visit (at most once a minute: it is a file write)."""
        now = self.clock()
        if now - self._touched.get(vid, 0.0) < TOUCH_EVERY_S:
            return
        self._touched[vid] = now
        marker = self.folder / vid / SEEN_FILE
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(now), encoding="utf-8")

    def last_seen(self, vid: str) -> float:
        try:
            return float((self.folder / vid / SEEN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0.0

    # -- expiry -------------------------------------------------------------------------
    def sweep(self) -> list[str]:
        """Delete every visitor workspace idle longer than the demo's limit, and uploads
        nobody imported within an hour (Gradio keeps every upload in its common folder)."""
        cutoff = self.clock() - self.limits.idle_expiry_s
        for entry in self.cache_root.iterdir() if self.cache_root.is_dir() else []:
            if entry.name != "visitors" and entry.stat().st_mtime < time.time() - UPLOAD_TTL_S:
                _remove(entry)
        self._close_quiet()
        expired = []
        for entry in sorted(self.folder.iterdir()):
            if entry.is_dir() and _ID.match(entry.name) and self.last_seen(entry.name) < cutoff:
                self.expire(entry.name)
                expired.append(entry.name)
        return expired

    def expire(self, vid: str) -> None:
        """Remove a visitor's workspace completely: every image through the erasure
        mechanism (stored files, thumbnails, caches, served copies), then the folders."""
        with self._lock:
            studio = self._open.pop(vid, None) or Studio(self.workspace(vid), self.config,
                                                         self.shared)
            self._touched.pop(vid, None)
        try:
            ids = [d["id"] for d in studio.store.all("images")]
            if ids:
                studio.consent.erase(ids, "the visitor's demo workspace expired")
            for style in studio.styles.list():
                studio.styles.delete(style.id)
        finally:
            studio.close()
            shutil.rmtree(self.folder / vid, ignore_errors=True)
            shutil.rmtree(self.served_dir(vid), ignore_errors=True)
        log.info("expired visitor workspace %s", vid)

    def _close_quiet(self) -> None:
        """Close the studios of visitors quiet for a while (threads, open database);
        their files stay, and their next request opens the studio again."""
        quiet = self.clock() - self.limits.idle_close_s
        with self._lock:
            closing = [vid for vid in self._open
                       if vid != PAGE_ID and self.last_seen(vid) < quiet
                       and self._open[vid].jobs.current() is None]
            studios = [self._open.pop(vid) for vid in closing]
            for vid in closing:
                self._touched.pop(vid, None)
        for studio in studios:
            studio.close()

    def start_sweeping(self, every_s: float = 600.0) -> None:
        """Sweep now and then every `every_s` seconds, on a daemon thread."""
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.sweep()
                except Exception:  # a failed sweep must not end the demo
                    log.exception("sweeping visitor workspaces failed")
                self._stop.wait(every_s)

        self._sweeper = threading.Thread(target=loop, daemon=True, name="style-studio-sweep")
        self._sweeper.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            studios, self._open = list(self._open.values()), {}
        for studio in studios:
            studio.close()
