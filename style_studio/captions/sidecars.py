"""`.txt` caption sidecars: export a style's captions, import them back.

A sidecar has the stem of the image's original filename (`heron.png` -> `heron.txt`),
the convention kohya, OneTrainer and most dataset tools share. Two images with the
same stem get the first 8 hex digits of their hash appended, and the import accepts
exactly the names the export writes (and the full sha256 as a stem).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from style_studio.base.errors import InvalidInput
from style_studio.base.files import slug
from style_studio.base.store import Store
from style_studio.base.workspace import Workspace

from .edits import CaptionEdits
from .records import CaptionOrigin, CaptionRecords, insert_trigger

MAX_SIDECAR_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+")


@dataclass
class SidecarExport:
    path: Path
    captions: int
    images: int = 0

    @property
    def message(self) -> str:
        extra = f" and {self.images} image(s)" if self.images else ""
        return f"Exported {self.captions} caption(s){extra} to {self.path.name}."


@dataclass
class SidecarImport:
    imported: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)

    @property
    def message(self) -> str:
        text = f"Imported {self.imported} caption(s) as drafts"
        if self.unchanged:
            text += f"; {self.unchanged} already had exactly that caption"
        if self.skipped:
            text += f"; {len(self.skipped)} file(s) skipped (see the list)"
        return text + "."


def sidecar_stems(images: list[dict[str, Any]]) -> dict[str, str]:
    """image id -> sidecar stem, unique without regard to case."""
    def stem(doc: dict[str, Any]) -> str:
        name = Path(str(doc.get("filename") or doc["sha256"]).replace("\\", "/")).stem
        return _UNSAFE.sub("_", name).strip(" .") or doc["sha256"][:16]

    seen: dict[str, int] = {}
    for doc in images:
        seen[stem(doc).lower()] = seen.get(stem(doc).lower(), 0) + 1
    return {doc["id"]: stem(doc) if seen[stem(doc).lower()] == 1
            else f"{stem(doc)}-{doc['sha256'][:8]}" for doc in images}


def _read_sidecars(paths: list[Path]) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """(name, bytes) of every .txt among files and zips, and (name, reason) refusals."""
    found: list[tuple[str, bytes]] = []
    refused: list[tuple[str, str]] = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".zip":
            _read_zip(path, found, refused)
        elif path.suffix.lower() != ".txt":
            refused.append((path.name, "not a .txt sidecar or a .zip of them"))
        elif path.stat().st_size > MAX_SIDECAR_BYTES:
            refused.append((path.name, "too large to be a caption (over 64 KB)"))
        else:
            found.append((path.name, path.read_bytes()))
    return found, refused


def _read_zip(path: Path, found: list[tuple[str, bytes]],
              refused: list[tuple[str, str]]) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = Path(info.filename).name
                if info.is_dir() or name.startswith(".") or "__MACOSX" in info.filename:
                    continue
                if not name.lower().endswith(".txt"):
                    continue  # images and other files in a dataset zip are not ours
                if info.file_size > MAX_SIDECAR_BYTES:
                    refused.append((name, "too large to be a caption (over 64 KB)"))
                else:
                    found.append((name, archive.read(info)))
    except (zipfile.BadZipFile, OSError) as exc:
        refused.append((path.name, f"not a readable zip file ({exc})"))


def _decode(data: bytes) -> str | None:
    try:
        return " ".join(data.decode("utf-8-sig").split())
    except UnicodeDecodeError:
        return None


class CaptionSidecars:
    """Export to a zip of sidecars; import sidecars (files or zips) as drafts."""

    def __init__(self, store: Store, workspace: Workspace, records: CaptionRecords,
                 edits: CaptionEdits):
        self.store = store
        self.workspace = workspace
        self.records = records
        self.edits = edits

    def _images(self, style_id: str) -> list[dict[str, Any]]:
        docs = self.store.find("images", style_id=style_id)
        return sorted(docs, key=lambda d: (d.get("added_at", ""), d.get("filename", "")))

    def export_for_download(self, style_id: str, approved_only: bool = False,
                            include_images: bool = False) -> SidecarExport:
        """The zip the Captions tab offers: made in the app's upload cache, where an erasure
        finds it, never in the system temp folder, where none would."""
        folder = self.workspace.browser_dir("captions")
        try:
            return self.export(style_id, folder, approved_only, include_images)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def export(self, style_id: str, dest_dir: Path, approved_only: bool = False,
               include_images: bool = False) -> SidecarExport:
        """Write `<style>-captions.zip` into `dest_dir` (never a style folder)."""
        style = self.store.require("styles", style_id, "Style")
        images = self._images(style_id)
        stems = sidecar_stems(images)
        captions = self.records.for_style(style_id)
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        target = Path(dest_dir) / f"{slug(style['name'])}-captions.zip"
        report = SidecarExport(target, 0)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for doc in images:
                caption = captions.get(doc["id"])
                if not caption or not caption.text or (approved_only and not caption.approved):
                    continue
                archive.writestr(f"{stems[doc['id']]}.txt", caption.text + "\n")
                report.captions += 1
                stored = self.workspace.style_dir(style_id) / doc["stored_path"]
                if include_images and stored.is_file():
                    archive.write(stored, f"{stems[doc['id']]}{stored.suffix}")
                    report.images += 1
        if not report.captions:
            target.unlink(missing_ok=True)
            which = "approved captions" if approved_only else "captions"
            raise InvalidInput(f"This style has no {which} to export yet.")
        return report

    def import_files(self, style_id: str, paths: list[Path],
                     replace_approved: bool = False) -> SidecarImport:
        """Match sidecars to images by name and store them as drafts, in one write.

        An approved caption is kept unless `replace_approved`; each file that cannot
        be used is listed with its reason and the rest carry on.
        """
        style = self.store.require("styles", style_id, "Style")
        found, refused = _read_sidecars(paths)
        report = SidecarImport(skipped=refused)
        images = self._images(style_id)
        by_stem = {stem.lower(): image_id for image_id, stem in sidecar_stems(images).items()}
        by_stem.update({doc["sha256"].lower(): doc["id"] for doc in images})
        before: dict[str, dict[str, Any] | None] = {}
        after: dict[str, dict[str, Any] | None] = {}
        seen: set[str] = set()
        with self.store.batch():
            for name, data in found:
                image_id = by_stem.get(Path(name).stem.lower())
                reason = self._refusal(image_id, data, seen, replace_approved)
                if reason:
                    report.skipped.append((name, reason))
                    continue
                assert image_id is not None
                seen.add(image_id)
                text = insert_trigger(_decode(data) or "", style.get("trigger", ""),
                                      prefix=False)
                old = self.records.get(image_id)
                if old and old.text == text and old.status == "draft":
                    report.unchanged += 1
                    continue
                new = self.records.set(image_id, text, origin=CaptionOrigin("imported"))
                before[image_id] = asdict(old) if old else None
                after[image_id] = asdict(new)
                report.imported += 1
            if report.imported:
                self.edits.record(style_id, f"Import {report.imported} sidecar caption(s)",
                                  before, after)
        return report

    def _refusal(self, image_id: str | None, data: bytes, seen: set[str],
                 replace_approved: bool) -> str | None:
        if image_id is None:
            return "no image of this style has that name"
        if image_id in seen:
            return "another sidecar already gave this image its caption"
        text = _decode(data)
        if text is None:
            return "not UTF-8 text; save it as UTF-8 and import it again"
        if not text:
            return "the file is empty"
        old = self.records.get(image_id)
        if old and old.approved and not replace_approved:
            return ("the image already has an approved caption (tick 'replace approved "
                    "captions' to overwrite it)")
        return None
