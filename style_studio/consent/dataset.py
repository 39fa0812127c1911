"""A style's training images as a Hugging Face image folder: only what the gate clears.

The folder is what `datasets.load_dataset("imagefolder", data_dir=…)` and the Hub read:
`images/<sha256>.<ext>` (byte copies of the stored, normalised images, so no EXIF or GPS
travels), `metadata.jsonl` (file name, caption, creator, SPDX licence, sha256 per image)
and a dataset card `README.md`. It is built from the training gate's plan, the same
answer the trainer gets, so an image that is pending, refused, revoked or uncaptioned
can never be published this way. Lives in consent/ because it needs nothing above it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_text, atomic_zip, fsync_dir, sha256_file
from style_studio.base.licences import licence_for, licence_label, spdx_id

from .gate import TrainingPlan
from .records import DatasetExport

METADATA = "metadata.jsonl"
IMAGES = "images"
_STORED = {".png", ".jpg", ".jpeg", ".webp", ".gif"}  # already compressed: zip stores them


def hub_licence(licences: set[str]) -> dict[str, str]:
    """The card's licence fields: the Hub's id when every image has one licence the Hub
    knows; otherwise "other", named, with a link to the file that gives each image's."""
    if len(licences) == 1:
        (only,) = licences
        found = licence_for(only)
        if found and found.hub:
            return {"license": found.hub}
        name = only.removeprefix("LicenseRef-").lower() if found else "per-image-licences"
        return {"license": "other", "license_name": name, "license_link": METADATA}
    return {"license": "other", "license_name": "per-image-licences", "license_link": METADATA}


def dataset_card(style: dict[str, Any], rows: list[dict[str, str]],
                 plan: TrainingPlan) -> str:
    """README.md with YAML front matter that `huggingface_hub.DatasetCard` parses."""
    licences = Counter(row["license"] for row in rows)
    front: dict[str, Any] = {
        **hub_licence(set(licences)),
        "pretty_name": f"{style.get('name') or 'Style'} (training images)",
        "task_categories": ["text-to-image"],
        "size_categories": ["n<1K" if len(rows) < 1000 else "1K<n<10K"],
        "tags": ["style-studio", "image-folder", "consent-cleared"],
    }
    creators = sorted({row["creator"] for row in rows if row["creator"]})
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(), "---",
             "", f"# {style.get('name') or 'Style'} — training images", "",
             f"{len(rows)} images exported by Style Studio. Each one was cleared for AI "
             "training by its creator's recorded consent and has an approved caption; "
             f"{len(plan.excluded)} other image(s) of the style were left out by the same "
             "consent gate the trainer uses.", ""]
    if style.get("trigger"):
        lines += [f"Trigger word used in training: **{style['trigger']}**.", ""]
    lines += ["## Files", "",
              f"- `{IMAGES}/` — the images, named by their sha256",
              f"- `{METADATA}` — one line per image: `file_name`, `caption`, `creator`, "
              "`license` (an SPDX identifier; `LicenseRef-…` for terms outside the SPDX "
              "list) and `sha256`", "",
              "## Licences", ""]
    lines += [f"- {licence_label(key)} (`{key}`): {n} image(s)"
              for key, n in sorted(licences.items())]
    lines += ["", f"Creators: {', '.join(creators) or 'none recorded'}.", ""]
    if plan.obligations:
        lines += ["## Obligations", ""] + [f"- {ob}" for ob in plan.obligations] + [""]
    lines += ["## Consent", "",
              "Consent can be withdrawn. If a creator revokes it or asks for erasure, this "
              "export is out of date: export again and replace every copy you shared.", ""]
    return "\n".join(lines)


def _check_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"'{dest}' already holds files. Choose a new or empty folder, so "
                           "no image of an earlier export (one whose consent was revoked "
                           "since, say) ends up in this one.")


def write_dataset(dest: Path, style: dict[str, Any], plan: TrainingPlan) -> DatasetExport:
    """Write the image folder at `dest` (new or empty) and `<dest>.zip` beside it.

    Raises GateRefused when no image is cleared, InvalidInput when `dest` holds files or a
    stored image no longer matches its recorded hash.
    """
    _check_destination(dest)
    plan.require()
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        rows = _write_folder(work, plan)
        atomic_write_text(work / "README.md", dataset_card(style, rows, plan))
        if dest.exists():
            dest.rmdir()  # empty (checked above); a directory cannot replace a full one
        os.replace(work, dest)
        fsync_dir(dest.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    archive = _zip(dest)
    return DatasetExport(folder=dest, archive=archive, image_count=len(rows),
                         left_out=len(plan.excluded))


def _write_folder(work: Path, plan: TrainingPlan) -> list[dict[str, str]]:
    (work / IMAGES).mkdir(parents=True)
    rows = []
    for item in plan.included:
        name = f"{IMAGES}/{item.sha256}{item.path.suffix.lower()}"
        shutil.copyfile(item.path, work / name)
        if sha256_file(work / name) != item.sha256:
            raise InvalidInput(f"The stored copy of image {item.image_id} no longer matches "
                               "its recorded hash, so the dataset would misstate it; remove "
                               "and re-add the image, then export again.")
        rows.append({"file_name": name, "caption": item.caption, "creator": item.creator,
                     "license": spdx_id(item.licence), "sha256": item.sha256})
    atomic_write_text(work / METADATA, "".join(
        json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return rows


def _zip(folder: Path) -> Path:
    """`<folder>.zip`, members under the folder's name, so it unpacks to the same layout."""
    target = folder.with_name(f"{folder.name}.zip")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return atomic_zip(target, ((p, f"{folder.name}/{p.relative_to(folder).as_posix()}")
                               for p in files))
