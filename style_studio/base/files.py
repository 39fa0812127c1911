"""Durable file writes: temp file, fsync, os.replace.

A crash at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_NOT_A_WORD = re.compile(r"[\W_]+")


def slug(name: str, fallback: str = "style") -> str:
    """The one rule for a file name made from a style's name: lower case, words joined
    by dashes ("Ink washes" -> "ink-washes"), never empty, never a path separator."""
    return _NOT_A_WORD.sub("-", name.lower()).strip("-") or fallback


def fsync_dir(folder: Path) -> None:
    """Persist a rename on filesystems that need the directory synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` so that readers see the old or the new content only.

    `durable=False` skips the fsyncs, for callers that write many files and then make
    them durable at once (`os.sync()`) before recording them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


# Already compressed: a zip stores these as they are (deflating them costs time, saves nothing).
STORED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".safetensors", ".zip"})


def atomic_zip(target: Path, members: Iterable[tuple[Path, str]]) -> Path:
    """Write `target` from (file, name inside the archive) pairs through a temp file and a
    rename, so a failed or interrupted write never leaves half a zip where a whole one
    was expected."""
    target = Path(target)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for path, name in members:
                method = (zipfile.ZIP_STORED if Path(path).suffix.lower() in STORED_SUFFIXES
                          else zipfile.ZIP_DEFLATED)
                archive.write(path, name, compress_type=method)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def ensure_folder(folder: Path, fill: Callable[[Path], None], done: str) -> Path:
    """`folder`, filled once by `fill(tmp)` in a hidden temp folder beside it and renamed
    into place when complete, so a crash or a concurrent caller never leaves a half-made
    folder that looks finished. `done` names the file whose presence means finished."""
    folder = Path(folder)
    if (folder / done).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        fill(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / done).is_file():
                raise  # not a lost race: a real failure
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hash a file in chunks so large files never sit in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def truncate_jsonl(path: Path, step: int) -> None:
    """Keep the rows of a per-step log up to `step`: a resumed run writes the rest again."""
    path = Path(path)
    if path.is_file():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
