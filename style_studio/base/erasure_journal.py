"""The erasure journal: one line per erased image, outside the database.

The database can be restored from its backup (or from a copy the artist kept), and a
restore must never bring an erased image back. So every erasure is first appended here,
fsynced, and the studio re-applies the journal each time it opens. A line holds what
finding the image again needs and nothing that identifies a person: the image's record
id and style id (random ids), its hashes, and the date; never a file name, caption,
creator or pixel.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .files import fsync_dir

FORMAT = "style-studio-erasure/1"


@dataclass(frozen=True)
class JournalEntry:
    """One erased image: ids, hashes and when."""

    at: str
    image_id: str
    style_id: str
    sha256: str
    source_sha256: str = ""
    thumb_sha256: str = ""

    @property
    def date(self) -> str:
        return self.at[:10]

    @property
    def hashes(self) -> set[str]:
        return {h for h in (self.sha256, self.source_sha256, self.thumb_sha256) if h}


_FIELDS = {f.name for f in fields(JournalEntry)}


class ErasureJournal:
    """Append-only, fsynced JSON lines; unreadable lines are skipped, never rewritten."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, entry: JournalEntry) -> None:
        """Durable before it returns: the erasure proper only starts after this."""
        line = json.dumps({"format": FORMAT, **asdict(entry)}, sort_keys=True) + "\n"
        new = not self.path.exists()
        if not new and not _ends_with_newline(self.path):
            line = "\n" + line  # a crash tore the last line: never glue onto it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.path.parent)

    def entries(self) -> list[JournalEntry]:
        """Every readable entry, oldest first; a torn last line (a crash) is ignored."""
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                data = json.loads(line)
                entry = JournalEntry(**{k: str(v) for k, v in data.items() if k in _FIELDS})
            except (ValueError, TypeError):
                continue
            if entry.image_id and entry.sha256:
                found.append(entry)
        return found


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
