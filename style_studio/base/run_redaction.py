"""Redact a training run's files after one of its images was erased.

Files written before an erasure keep the image's hash (the run stays checkable) but lose
its caption and creator: manifest.json, outcome.json and the `__metadata__` of every LoRA
file of the run (final and checkpoints). The model card and the provenance report are
rebuilt from the redacted manifest by the Training service, which knows their layout
(provenance.py shows `erased_notice`). A LoRA's tensors are never touched: only its JSON
header is rewritten. This module stays free of torch: erasure, low in the import graph,
uses it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write_json, fsync_dir, sha256_file
from .licences import ATTRIBUTION, licence_for

MAX_HEADER_BYTES = 100 * 1024 * 1024  # what the safetensors library itself accepts
MetadataUpdate = Callable[[dict[str, str]], dict[str, str] | None]


def erased_label(date: str) -> str:
    """What replaces an erased image's caption and creator in every file written before."""
    return f"[erased {date}]"


def redact_manifest(manifest: dict[str, Any], *, sha256: str, image_id: str,
                    date: str) -> bool:
    """Replace the caption and creator of an erased image with "[erased <date>]".

    Hashes stay (they say *which* image went, not whose or what it showed), so the run
    stays checkable; the creators, attributions and the CC BY credit line are rebuilt
    from what is left, and `erasures` says when. Returns whether anything changed.
    """
    label = erased_label(date)
    changed = False
    for image in manifest.get("images", []):
        if image.get("sha256") != sha256 and image.get("image_id") != image_id:
            continue
        for key in ("caption", "training_caption", "creator"):
            if key in image and image[key] != label and not image.get("erased_at"):
                image[key] = label
                changed = True
        if not image.get("erased_at"):
            image["erased_at"] = date
            changed = True
    for excluded in manifest.get("excluded", []):
        if excluded.get("image_id") == image_id and excluded.get("filename") not in ("", label):
            excluded["filename"] = label
            changed = True
    erasures = manifest.setdefault("erasures", [])
    if changed and not any(e.get("sha256") == sha256 for e in erasures):
        erasures.append({"sha256": sha256, "erased_at": date})
    if not erasures:
        del manifest["erasures"]
    if not changed:
        return False
    images = manifest.get("images", [])
    manifest["creators"] = sorted({i.get("creator", "") for i in images})
    credited = sorted({i.get("creator", "") for i in images
                       if (lic := licence_for(i.get("licence", ""))) and lic.attribution})
    manifest["attributions"] = credited
    manifest["obligations"] = [ATTRIBUTION + ", ".join(credited) if ob.startswith(ATTRIBUTION)
                               else ob for ob in manifest.get("obligations", [])]
    return True


def redact_lora_metadata(meta: dict[str, str],
                         manifest: dict[str, Any]) -> dict[str, str] | None:
    """The `__metadata__` of one of this run's LoRA files after an erasure, or None when
    the file is not one of ours. Names come from the redacted manifest; hashes stay."""
    if "style_studio.manifest_sha256" not in meta:
        return None
    new = dict(meta)
    creators = manifest.get("creators", [])
    if "modelspec.author" in new:
        new["modelspec.author"] = ", ".join(creators) or "unknown"
    new["style_studio.creators"] = json.dumps(creators, ensure_ascii=False)
    if "style_studio.obligations" in new:
        new["style_studio.obligations"] = json.dumps(manifest.get("obligations", []),
                                                     ensure_ascii=False)
    new["style_studio.erased"] = json.dumps(manifest.get("erasures", []))
    new["style_studio.notice"] = erased_notice(manifest, short=True)
    return new


def erased_notice(manifest: dict[str, Any], short: bool = False) -> str:
    """What a card, a report and a LoRA file say about a run that contains erased data."""
    erasures = manifest.get("erasures") or []
    dates = ", ".join(sorted({e["erased_at"] for e in erasures}))
    if short:
        return (f"Contains erased data ({len(erasures)} training image(s) erased on {dates}). "
                "Retrain without them; do not share this LoRA.")
    return (f"{len(erasures)} of the {manifest.get('image_count', '?')} images this LoRA was "
            f"trained on were erased at their creator's request (on {dates}). Their captions "
            "and creators are replaced by \"[erased <date>]\" here, in provenance.md and in "
            "manifest.json; only their hashes stay, so the erasure can be checked. The LoRA "
            "still carries what it learned from them: retrain the style without them and stop "
            "sharing this LoRA.")


@dataclass
class RunRedaction:
    """What redacting one run changed; `old_hashes` find stale copies in the app's cache."""

    run_dir: Path
    changed: list[Path] = field(default_factory=list)
    old_hashes: set[str] = field(default_factory=set)


def rewrite_safetensors_metadata(path: Path, update: MetadataUpdate,
                                 before_write: Callable[[], object] | None = None) -> bool:
    """Replace a .safetensors file's `__metadata__` (temp+fsync+replace), keeping its
    tensor bytes as they are. `update` returns the new metadata, or None to leave it;
    `before_write` runs only when the file will change (to hash the old one, say)."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            return False
        (size,) = struct.unpack("<Q", prefix)
        if size > MAX_HEADER_BYTES:
            return False
        try:
            header = json.loads(handle.read(size))
        except ValueError:
            return False
        meta = header.get("__metadata__") or {}
        new = update(dict(meta))
        if new is None or new == meta:
            return False
        if before_write is not None:
            before_write()
        header["__metadata__"] = new
        data = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        data += b" " * (-len(data) % 8)  # the writers pad the header to 8 bytes
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(struct.pack("<Q", len(data)))
                out.write(data)
                shutil.copyfileobj(handle, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    fsync_dir(path.parent)
    return True


def redact_run(run_dir: Path, *, sha256: str, image_id: str, date: str,
               flags: list[str]) -> RunRedaction:
    """Redact one run folder for one erased image; running it again changes nothing."""
    result = RunRedaction(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        return result
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return result
    if redact_manifest(manifest, sha256=sha256, image_id=image_id, date=date):
        # the same bytes layout as provenance.write_manifest (sorted keys, indent 2)
        _changed(result, manifest_path, lambda: atomic_write_json(manifest_path, manifest))
    if manifest.get("erasures"):
        for path in sorted(run_dir.rglob("*.safetensors")):
            if rewrite_safetensors_metadata(
                    path, lambda m: redact_lora_metadata(m, manifest),
                    lambda p=path: result.old_hashes.add(sha256_file(p))):
                result.changed.append(path)
    outcome_path = run_dir / "outcome.json"
    if outcome_path.is_file():
        try:
            outcome = json.loads(outcome_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            outcome = None
        if isinstance(outcome, dict) and outcome.get("flags") != flags:
            outcome["flags"] = list(flags)
            _changed(result, outcome_path, lambda: atomic_write_json(outcome_path, outcome))
    return result


def _changed(result: RunRedaction, path: Path, write: Callable[[], object]) -> None:
    result.old_hashes.add(sha256_file(path))
    write()
    result.changed.append(path)
