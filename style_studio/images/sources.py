"""What an import is made of: files, folders and zip archives, with their sidecar captions.

A plan lists every candidate image (by a name the artist recognises) without decoding
anything. Zip entries are checked against caps (entry count, unpacked size,
compression ratio) and unsafe names (`../x.png`, absolute paths) before a single byte
is written; an accepted entry is unpacked later, one at a time, into a scratch folder
inside the style folder under a name we choose, so no entry name ever becomes a path.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from style_studio.base.errors import InvalidInput

from .checks import MB, IngestLimits

CAPTION_SUFFIX = ".txt"
SYSTEM_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "__macosx"}
COPY_CHUNK = 1 << 20


class Rejection(NamedTuple):
    """A file that was not imported, and why (in words an artist can act on)."""

    filename: str
    reason: str


@dataclass
class SourceItem:
    """One candidate image: a file on disk or an entry of a zip archive."""

    name: str
    path: Path | None = None
    zip_path: Path | None = None
    member: str | None = None
    caption: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name if self.member else Path(self.name).name


@dataclass
class SourcePlan:
    items: list[SourceItem] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    skipped_system_files: int = 0


@dataclass
class _Group:
    """Files that sit together (one folder, one zip folder, or the uploaded files)."""

    images: list[SourceItem] = field(default_factory=list)
    captions: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)


def _is_system(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p.lower() in SYSTEM_NAMES or p.startswith(".") for p in parts)


def _decode_caption(raw: bytes, limits: IngestLimits) -> tuple[str | None, str | None]:
    """(text, problem): sidecars are short UTF-8 text; Windows-1252 is accepted too."""
    if len(raw) > limits.max_caption_bytes:
        return None, (f"caption file too long ({len(raw) // 1024} KB; a caption is a "
                      "sentence or two) — it was not imported")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return " ".join(raw.decode(encoding).split()), None
        except UnicodeDecodeError:
            continue
    return None, "caption file is not readable text — it was not imported"


def is_link_member(info: zipfile.ZipInfo) -> bool:
    """A symbolic link stored in a zip (Unix mode S_IFLNK in the high 16 bits of
    external_attr): its content is a path elsewhere, never an image."""
    return stat.S_ISLNK(info.external_attr >> 16)


def unsafe_member(name: str) -> bool:
    """Absolute paths, drive letters and '..' would write outside the target folder."""
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    return (clean.startswith("/") or (len(clean) > 1 and clean[1] == ":")
            or ".." in parts)


class SourcePlanner:
    """Expands the paths of one import into candidate images and caption texts."""

    def __init__(self, limits: IngestLimits):
        self.limits = limits
        self.plan = SourcePlan()
        self._groups: dict[tuple[str, str], _Group] = {}

    def expand(self, paths: list[Path]) -> SourcePlan:
        for path in paths:
            path = Path(path)
            if path.is_dir():
                self._add_folder(path)
            elif not path.is_file():
                self.plan.rejected.append(Rejection(path.name or str(path),
                                                    "not found (it may have been moved)"))
            elif path.suffix.lower() == ".zip":
                self._add_zip(path, path.name)
            else:
                self._add_file(("upload", ""), path, path.name)
        self._pair_captions()
        if self.plan.skipped_system_files:
            self.plan.notices.append(f"{self.plan.skipped_system_files} hidden or system "
                                     "file(s) (like .DS_Store) were skipped.")
        return self.plan

    def _group(self, key: tuple[str, str]) -> _Group:
        return self._groups.setdefault(key, _Group())

    def _add_file(self, group: tuple[str, str], path: Path, name: str) -> None:
        if path.suffix.lower() == CAPTION_SUFFIX:
            try:
                text, problem = _decode_caption(path.read_bytes()[
                    :self.limits.max_caption_bytes + 1], self.limits)
            except OSError as exc:
                text, problem = None, f"caption file could not be read ({exc.strerror})"
            self._group(group).captions[path.stem.lower()] = (name, text, problem)
        else:
            self._group(group).images.append(SourceItem(name=name, path=path))

    def _add_folder(self, folder: Path) -> None:
        count = 0
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not _is_system(d))
            for filename in sorted(files):
                path = Path(root) / filename
                name = str(path.relative_to(folder.parent))
                if _is_system(filename):
                    self.plan.skipped_system_files += 1
                    continue
                count += 1
                if count > self.limits.max_folder_files:
                    self.plan.notices.append(
                        f"The folder {folder.name} has more than {self.limits.max_folder_files}"
                        " files; only the first ones were imported. Import it in parts.")
                    return
                if path.suffix.lower() == ".zip":
                    self._add_zip(path, name)
                else:
                    self._add_file(("folder", root), path, name)

    def _add_zip(self, path: Path, display: str) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                infos = [i for i in archive.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.plan.rejected.append(Rejection(display, f"not a readable zip archive ({exc})"))
            return
        total = sum(i.file_size for i in infos)
        if len(infos) > self.limits.max_zip_entries:
            self.plan.rejected.append(Rejection(display, (
                f"the zip has {len(infos)} files; at most {self.limits.max_zip_entries} are "
                "accepted in one archive. Split it into smaller zips.")))
            return
        if total > self.limits.max_zip_bytes:
            self.plan.rejected.append(Rejection(display, (
                f"the zip unpacks to {total / MB:,.0f} MB; at most "
                f"{self.limits.max_zip_bytes / MB:,.0f} MB are accepted in one archive. "
                "Split it into smaller zips.")))
            return
        for info in infos:
            self._add_member(path, display, info)

    def _member_problem(self, info: zipfile.ZipInfo) -> str | None:
        limits = self.limits
        ratio = info.file_size / max(1, info.compress_size)
        problems = [
            (unsafe_member(info.filename), "its path points outside the archive (an absolute "
             "path or '..'); it was skipped for safety"),
            (is_link_member(info), "it is a symbolic link (a shortcut to another file), not "
             "an image; links are not followed, for safety. Put the picture itself in the zip"),
            (bool(info.flag_bits & 0x1), "it is password-protected; unpack it yourself first"),
            (info.file_size > limits.max_file_bytes, f"too large when unpacked "
             f"({info.file_size / MB:,.0f} MB; the limit is {limits.max_file_bytes / MB:.0f} MB)"),
            (ratio > limits.max_zip_ratio and info.file_size > MB, f"it compresses "
             f"{ratio:,.0f} to 1, far more than any image does: a possible zip bomb, skipped"),
            (info.filename.lower().endswith(".zip"), "a zip inside a zip is not opened; "
             "unpack the outer zip and import the inner one"),
        ]
        return next((reason for matched, reason in problems if matched), None)

    def _add_member(self, path: Path, display: str, info: zipfile.ZipInfo) -> None:
        name = f"{display}/{info.filename}"
        problem = self._member_problem(info)
        if problem:
            self.plan.rejected.append(Rejection(name, problem))
            return
        if _is_system(info.filename):
            self.plan.skipped_system_files += 1
            return
        member = PurePosixPath(info.filename)
        group = (f"zip:{path}", str(member.parent))
        if member.suffix.lower() == CAPTION_SUFFIX:
            try:
                with zipfile.ZipFile(path) as archive:
                    raw = archive.read(info)
                text, problem = _decode_caption(raw, self.limits)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                text, problem = None, f"damaged zip entry ({exc})"
            self._group(group).captions[member.stem.lower()] = (name, text, problem)
            return
        self._group(group).images.append(
            SourceItem(name=name, zip_path=path, member=info.filename))

    def _pair_captions(self) -> None:
        """A .txt with the same stem as an image (same folder) is that image's caption."""
        for group in self._groups.values():
            stems = set()
            for item in group.images:
                stem = PurePosixPath(item.filename).stem.lower()
                stems.add(stem)
                name, text, problem = group.captions.get(stem, (None, None, None))
                if problem:
                    self.plan.rejected.append(Rejection(name, problem))
                item.caption = text or None
                self.plan.items.append(item)
            for stem, (name, _text, _problem) in group.captions.items():
                if stem not in stems:
                    self.plan.rejected.append(Rejection(name, (
                        "a caption file with no image of the same name in this import "
                        f"(expected e.g. {stem}.jpg or {stem}.png next to it)")))


@contextmanager
def materialised(item: SourceItem, scratch: Path, limits: IngestLimits) -> Iterator[Path]:
    """The item as a file on disk; zip entries are unpacked under a name we choose."""
    if item.path is not None:
        yield item.path
        return
    assert item.zip_path is not None and item.member is not None
    _make_scratch(scratch)
    target = scratch / f"entry{PurePosixPath(item.member).suffix.lower()[:8]}"
    try:
        with zipfile.ZipFile(item.zip_path) as archive, archive.open(item.member) as src, \
                open(target, "wb") as dst:
            written = 0
            while block := src.read(COPY_CHUNK):
                written += len(block)
                if written > limits.max_file_bytes:
                    raise InvalidInput("too large when unpacked")
                dst.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(f"damaged zip entry, it could not be unpacked ({exc})") from exc
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


def _make_scratch(scratch: Path) -> None:
    """Create the scratch folder; retried because a finishing import removes the shared,
    empty `.incoming/` parent and may do so between our two mkdir calls."""
    for _ in range(2):
        try:
            scratch.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    scratch.mkdir(parents=True, exist_ok=True)
