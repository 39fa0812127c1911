"""One Style Studio process per workspace.

Each process keeps its own copy of the store and rewrites `studio.json` whole, so a second
app (or script) on the same folder would silently undo the first one's changes. An
exclusive `flock` on a small file says "in use"; the operating system drops it when the
process ends, however it ends, so a crash never leaves the workspace locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from .errors import WorkspaceBusy

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then advisory only (not taken)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".studio.lock"


class WorkspaceLock:
    """Held from `acquire` to `release` (idempotent); the file names the holder's pid."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        if self._handle is not None or fcntl is None:
            return
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise WorkspaceBusy(
                f"The workspace {self.path.parent} is already open in another Style Studio "
                f"(process {holder}). Close that one first, or start this one with "
                "--workspace and another folder.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
