"""The database: one TinyDB file behind one lock, written atomically, with a backup.

TinyDB is not thread-safe and two instances on one file lose documents
(STACK-NOTES), so a Studio holds exactly one Store and every call takes its lock.
Each write replaces `studio.json` atomically and keeps the previous good file as
`studio.json.bak`; a damaged file at start-up is set aside, never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import TinyDB, where
from tinydb.storages import Storage

from .errors import NotFound, StoreCorrupt
from .files import fsync_dir
from .schema import MIGRATIONS, SCHEMA_VERSION, Migration

__all__ = ["SCHEMA_VERSION", "Migration", "Store", "known_fields", "new_id", "utc_now"]


def known_fields(cls: type, doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a stored document that dataclass `cls` declares.

    Records written by a newer or older version may carry extra keys; reading them
    must not fail on those.
    """
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in doc.items() if k in names}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return False
    return True


class AtomicJSONStorage(Storage):
    """TinyDB storage: keeps the JSON text in memory, writes temp+fsync+replace.

    `deferred` batches many writes into one (used by `Store.batch`), because TinyDB
    rewrites the whole file on every change.
    """

    def __init__(self, path: Path):
        self.path = path
        self.backup = path.with_name(path.name + ".bak")
        self._text = path.read_text(encoding="utf-8") if path.exists() else ""
        self.deferred = 0
        self._dirty = False

    def read(self) -> dict[str, Any] | None:
        return json.loads(self._text) if self._text.strip() else None

    def write(self, data: dict[str, Any]) -> None:
        self._text = json.dumps(data, ensure_ascii=False)
        if self.deferred:
            self._dirty = True
        else:
            self.flush()

    def _write_temp(self) -> str:
        """The current text in an fsynced temp file beside the store; its path."""
        fd, tmp = tempfile.mkstemp(prefix=".studio.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self._text)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def flush(self) -> None:
        self._dirty = False
        tmp = self._write_temp()
        try:
            if self.path.exists():
                os.replace(self.path, self.backup)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)

    def close(self) -> None:
        if self._dirty:
            self.flush()

    def copy_to_backup(self) -> None:
        """Make the backup equal to the current file (temp+fsync+replace).

        Erasure calls this: after its write the backup would otherwise still be the
        state from before, holding every record the erasure just removed.
        """
        if self._dirty:
            self.flush()
        tmp = self._write_temp()
        try:
            os.replace(tmp, self.backup)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)


def recover(path: Path) -> str | None:
    """Make `path` readable before TinyDB opens it; return a notice if we had to.

    Raises StoreCorrupt when the file is damaged and no readable backup exists.
    """
    backup = path.with_name(path.name + ".bak")
    if path.exists() and _parses(path):
        return None
    if path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        if not _parses(backup):
            raise StoreCorrupt(
                f"The database {path} cannot be read and there is no readable backup "
                f"({backup.name}). Nothing was changed. Move the file aside to start with "
                "an empty studio, or restore it from your own backup."
            )
        os.replace(path, aside)
        shutil.copyfile(backup, path)
        fsync_dir(path.parent)
        return (
            f"The database was damaged; it was restored from its backup ({backup.name}). "
            f"The damaged file was kept as {aside.name}. The most recent change may be lost."
        )
    if _parses(backup) and backup.exists():
        shutil.copyfile(backup, path)
        return "The database file was missing; it was restored from its backup."
    return None


class Store:
    """All records of the studio: styles, images, captions, consents, runs, jobs, audit.

    Documents are plain dicts with a string `id`; every method is thread-safe.
    """

    def __init__(self, path: Path, migrations: dict[int, Migration] | None = None,
                 schema_version: int = SCHEMA_VERSION):
        """Open (or create) the file; one written at an older schema is upgraded with
        `migrations` (by default the studio's own, `schema.MIGRATIONS`)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.notices: list[str] = []
        notice = recover(self.path)
        if notice:
            self.notices.append(notice)
        self._storage: AtomicJSONStorage | None = None
        self._db = TinyDB(storage=self._make_storage)
        self._migrate(MIGRATIONS if migrations is None else migrations, schema_version)

    def _make_storage(self) -> AtomicJSONStorage:
        self._storage = AtomicJSONStorage(self.path)
        return self._storage

    # -- schema -----------------------------------------------------------------
    def _migrate(self, migrations: dict[int, Migration], target: int) -> None:
        version = self.meta_get("schema_version")
        if version is None:
            self.meta_set("schema_version", target)
            return
        if version > target:
            raise StoreCorrupt(
                f"{self.path} was written by a newer Style Studio (schema {version}, "
                f"this one reads {target}). Update Style Studio to open it."
            )
        while version < target:
            step = migrations.get(version)
            if step is None:
                raise StoreCorrupt(f"No migration from schema {version} to {version + 1}.")
            with self.batch():
                step(self)
                version += 1
                self.meta_set("schema_version", version)
            self.notices.append(f"The database was upgraded to schema {version}.")

    # -- transactions -------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the lock and write the file once at the end (many changes, one write)."""
        with self.lock:
            assert self._storage is not None
            self._storage.deferred += 1
            try:
                yield
            finally:
                self._storage.deferred -= 1
                if not self._storage.deferred and self._storage._dirty:
                    self._storage.flush()

    # -- documents ------------------------------------------------------------------
    def insert(self, table: str, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {**doc, "id": doc.get("id") or new_id()}
        with self.lock:
            self._db.table(table).insert(doc)
        return doc

    def get(self, table: str, doc_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._db.table(table).search(where("id") == doc_id)
        return dict(found[0]) if found else None

    def require(self, table: str, doc_id: str, what: str) -> dict[str, Any]:
        doc = self.get(table, doc_id)
        if doc is None:
            raise NotFound(f"{what} '{doc_id}' does not exist (it may have been deleted).")
        return doc

    def find(self, table: str, **fields: Any) -> list[dict[str, Any]]:
        with self.lock:
            rows = self._db.table(table).all()
        return [dict(r) for r in rows if all(r.get(k) == v for k, v in fields.items())]

    def all(self, table: str) -> list[dict[str, Any]]:
        return self.find(table)

    def tables(self) -> list[str]:
        """Names of the tables the file holds (the schema migrations walk them all)."""
        with self.lock:
            return sorted(self._db.tables())

    def update(self, table: str, doc_id: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            if not self._db.table(table).update(fields, where("id") == doc_id):
                raise NotFound(f"Record '{doc_id}' in {table} does not exist.")
            return self.get(table, doc_id)  # type: ignore[return-value]

    def remove(self, table: str, doc_id: str) -> bool:
        with self.lock:
            return bool(self._db.table(table).remove(where("id") == doc_id))

    def remove_where(self, table: str, **fields: Any) -> int:
        with self.lock:
            cond = None
            for key, value in fields.items():
                clause = where(key) == value
                cond = clause if cond is None else cond & clause
            return len(self._db.table(table).remove(cond)) if cond is not None else 0

    # -- meta and audit ----------------------------------------------------------
    def meta_get(self, key: str, default: Any = None) -> Any:
        doc = self.get("meta", key)
        return doc["value"] if doc else default

    def meta_set(self, key: str, value: Any) -> None:
        with self.lock:
            self._db.table("meta").upsert({"id": key, "value": value}, where("id") == key)

    def audit(self, action: str, style_id: str | None = None, **details: Any) -> dict[str, Any]:
        """Append-only record of what happened; never holds image pixels."""
        return self.insert("audit", {"at": utc_now(), "action": action,
                                     "style_id": style_id, "details": details})

    def replace_backup(self) -> None:
        """Rewrite `studio.json.bak` as a copy of the current database (see erasure)."""
        with self.lock:
            assert self._storage is not None
            self._storage.copy_to_backup()

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    def close(self) -> None:
        with self.lock:
            self._db.close()
