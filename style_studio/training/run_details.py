"""What a run page shows and hands over: every image behind a run, and the run's files.

A run's manifest lists the images it was trained on (hash, caption, creator, licence,
consent at training time). `run_images` sets each beside what the style holds now, so a
client can be shown every image behind a LoRA, and the artist sees which were erased or
had their consent revoked since. `run_files` and `bundle` are the files a client gets:
both LoRA files, the model card, the provenance report and the manifest, each copied
into the workspace's upload cache (`Workspace.browser_dir`), where erasure reaches them.
"""

from __future__ import annotations

import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from style_studio.base.licences import STATUSES, licence_label, spdx_id
from style_studio.base.workspace import Workspace

from .export import DIFFUSERS_NAME

KOHYA_GLOB = "*.kohya.safetensors"
BROWSER_KIND = "run-files"
# Compressing safetensors gains little and costs seconds on a large LoRA.
_STORED_SUFFIXES = (".safetensors", ".png")


@dataclass
class RunImage:
    """One training image: as the manifest recorded it, and what became of it since."""

    sha256: str
    image_id: str
    caption: str  # the caption it was trained with ("[erased <date>]" once erased)
    creator: str
    licence: str
    licence_label: str
    consent_at_training: str
    filename: str = ""  # "" once the image is gone from the style
    thumb: Path | None = None  # the style's thumbnail, while the image exists
    consent_now: str = ""  # the consent status today; "" once the image is gone
    consent_date: str = ""  # when that status was recorded
    erased_at: str | None = None

    @property
    def exists(self) -> bool:
        return self.thumb is not None

    @property
    def revoked(self) -> bool:
        return self.consent_now == "revoked"

    @property
    def state(self) -> str:
        """"" while all is as it was at training; else what happened, in words."""
        if self.erased_at:
            return f"erased {self.erased_at}"
        if not self.exists:
            return "no longer in the style"
        if self.revoked:
            return "consent revoked" + (f" {self.consent_date}" if self.consent_date else "")
        if self.consent_now and self.consent_now != self.consent_at_training:
            return f"consent now {STATUSES.get(self.consent_now, self.consent_now).lower()}"
        return ""


@dataclass
class RunFile:
    """A file of a run that the run page offers for download."""

    key: str  # diffusers | kohya | card | report | manifest
    label: str
    path: Path


def run_images(manifest: dict[str, Any], style_dir: Path, images: list[dict[str, Any]],
               consents: dict[str, dict[str, Any]]) -> list[RunImage]:
    """The manifest's images in training order, each with its state now.

    `images` are the style's image records, `consents` its consent records by image id.
    An image is found by id, else by hash (imported again under a new id), unless its
    manifest entry says it was erased: a re-import after an erasure is another image.
    """
    by_id = {doc["id"]: doc for doc in images}
    by_sha = {doc.get("sha256"): doc for doc in images}
    found = []
    for item in manifest.get("images", []):
        erased = item.get("erased_at")
        doc = None if erased else (by_id.get(item.get("image_id", ""))
                                   or by_sha.get(item.get("sha256")))
        consent = consents.get(doc["id"], {}) if doc else {}
        thumb = style_dir / doc["thumb_path"] if doc and doc.get("thumb_path") else None
        licence = spdx_id(item.get("licence", ""))  # a manifest from before SPDX ids
        found.append(RunImage(
            sha256=item.get("sha256", ""), image_id=item.get("image_id", ""),
            caption=item.get("caption", ""), creator=item.get("creator", ""),
            licence=licence, licence_label=licence_label(licence) if licence else "",
            consent_at_training=item.get("consent_status", ""),
            filename=doc.get("filename", "") if doc else "",
            thumb=thumb if thumb and thumb.is_file() else None,
            consent_now=(consent.get("status") or "pending") if doc else "",
            consent_date=str(consent.get("date") or consent.get("updated_at", ""))[:10],
            erased_at=erased))
    return found


def run_files(run_dir: Path) -> list[RunFile]:
    """The run's files that exist now: a LoRA only once the run has finished."""
    lora = run_dir / "lora"
    kohya = sorted(lora.glob(KOHYA_GLOB)) if lora.is_dir() else []
    candidates = [
        ("diffusers", "LoRA (diffusers)", lora / DIFFUSERS_NAME),
        ("kohya", "LoRA (kohya: A1111, ComfyUI, Forge)", kohya[0] if kohya else None),
        ("card", "Model card (README.md)", run_dir / "README.md"),
        ("report", "Provenance report", run_dir / "provenance.md"),
        ("manifest", "Manifest (JSON)", run_dir / "manifest.json"),
    ]
    return [RunFile(key, label, path) for key, label, path in candidates
            if path is not None and path.is_file()]


def files_stamp(run_dir: Path) -> float:
    """When the run's files last changed (0 before there are any): the card and report
    are rewritten after a run ends and after an erasure, so a page offering them redraws
    when this moves."""
    stamps = []
    for item in run_files(run_dir):
        try:
            stamps.append(item.path.stat().st_mtime)
        except OSError:
            continue  # replaced in this very moment; the next look sees the new one
    return max(stamps, default=0.0)


def card_samples(run_dir: Path) -> list[Path]:
    """The samples of the last sampled step: the pictures the model card shows."""
    folder = run_dir / "samples"
    files = sorted(folder.glob("step-*.png")) if folder.is_dir() else []
    if not files:
        return []
    last = files[-1].name.split("-")[1]
    return [p for p in files if p.name.split("-")[1] == last]


def browser_files(workspace: Workspace, run_id: str, files: list[RunFile]) -> list[RunFile]:
    """The same files as byte-identical copies in the upload cache, one folder per run;
    a file replaced at this very moment (an erasure redacting it) is left out this time."""
    copies = []
    for item in files:
        try:
            copies.append(RunFile(item.key, item.label,
                                  workspace.browser_copy(item.path, BROWSER_KIND, run_id)))
        except OSError:
            continue
    return copies


def bundle(workspace: Workspace, run_id: str, run_dir: Path, name: str) -> Path | None:
    """A zip of every run file (and the card's sample pictures), in the upload cache.

    Members keep their place in the run folder, under one top folder, so the model card's
    links work once unpacked. Reused while no file is newer; None when there is nothing.
    """
    members = [f.path for f in run_files(run_dir)]
    if not members:
        return None
    members += card_samples(run_dir)
    target = workspace.browser_dir(BROWSER_KIND, run_id) / f"{name}.zip"
    newest = max(p.stat().st_mtime for p in members)
    if target.is_file() and target.stat().st_mtime >= newest:
        with zipfile.ZipFile(target) as existing:
            if len(existing.namelist()) == len(members):
                return target
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for path in members:
                method = (zipfile.ZIP_STORED if path.suffix in _STORED_SUFFIXES
                          else zipfile.ZIP_DEFLATED)
                archive.write(path, f"{name}/{path.relative_to(run_dir).as_posix()}",
                              compress_type=method)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
