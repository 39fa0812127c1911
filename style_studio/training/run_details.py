"""What a run page shows and hands over: every image behind a run, and the run's files.

A run's manifest lists the images it was trained on (hash, caption, creator, licence,
consent at training time). `run_images` sets each beside what the style holds now, so a
client can be shown every image behind a LoRA, and the artist sees which were erased or
had their consent revoked since. `run_files` and `bundle` are the files a client gets:
both LoRA files, the model card, the provenance report and the manifest, each copied
into the workspace's upload cache (`Workspace.browser_dir`), where erasure reaches them.
`provenance_pack` is the client's proof: report (Markdown + printable HTML), manifest,
ledger CSV, public certificate, C2PA manifests and a training-content summary.
"""

from __future__ import annotations

import html
import json
import shutil
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt

from style_studio.base.files import atomic_zip
from style_studio.base.licences import STATUSES, licence_label, spdx_id
from style_studio.base.workspace import Workspace
from style_studio.consent import ledger
from style_studio.consent.gate import TrainingPlan
from style_studio.credentials.identity import SigningIdentity, export_public_chain

from .export import DIFFUSERS_NAME

if TYPE_CHECKING:
    from style_studio.consent.records import ImageConsent

# The tool file by the names its keys follow (a family's `tool_names`), and how to say it.
# (file label, short name) per names.
TOOL_FILES = {"kohya": ("LoRA (kohya: A1111, ComfyUI, Forge)", "kohya"),
              "comfyui": ("LoRA (ComfyUI's names, for ComfyUI)", "ComfyUI")}
LORA_KEYS = ("diffusers", "kohya")
SIDECAR_SUFFIX = ".c2pa"  # credentials.sign's name for a LoRA's Content Credentials
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
    """A file of a run that the run page offers for download, `label` its button's words."""

    key: str  # diffusers | kohya (| diffusers-c2pa | kohya-c2pa) | card | report | manifest
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
    tools = [p for names in TOOL_FILES for p in sorted(lora.glob(f"*.{names}.safetensors"))
             ] if lora.is_dir() else []
    candidates = [
        ("diffusers", "LoRA (diffusers)", lora / DIFFUSERS_NAME),
        ("kohya", TOOL_FILES[_tool_names(tools[0])][0] if tools else "",
         tools[0] if tools else None),
        ("card", "Model card (README.md)", run_dir / "README.md"),
        ("report", "Provenance report", run_dir / "provenance.md"),
        ("manifest", "Manifest (JSON)", run_dir / "manifest.json"),
    ]
    found = [RunFile(key, label, path) for key, label, path in candidates
             if path is not None and path.is_file()]
    # Each LoRA's Content Credentials, right after it (once the run's LoRAs are signed).
    signed = []
    for item in found:
        signed.append(item)
        sidecar = lora_sidecar_of(item.path)
        if item.key in LORA_KEYS and sidecar.is_file():
            whose = ("diffusers" if item.key == "diffusers"
                     else TOOL_FILES[_tool_names(item.path)][1])
            signed.append(RunFile(f"{item.key}-c2pa", f"Content Credentials of the {whose} "
                                  "LoRA (.c2pa)", sidecar))
    return signed


def _tool_names(tool_file: Path) -> str:
    """Whose names a tool file's keys follow, from its name (`x.comfyui.safetensors`)."""
    return Path(tool_file).suffixes[-2].lstrip(".")


def lora_sidecar_of(lora: Path) -> Path:
    """`x.safetensors` -> `x.c2pa`: where a LoRA's signed manifest sits."""
    return Path(lora).with_suffix(SIDECAR_SUFFIX)


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
    return atomic_zip(target, ((p, f"{name}/{p.relative_to(run_dir).as_posix()}")
                               for p in members))


PACK_KIND = "provenance-packs"
PACK_FILES = {
    "report_md": "provenance-report.md",
    "report_html": "provenance-report.html",
    "manifest": "manifest.json",
    "ledger": "ledger.csv",
    "certificate": "public-certificate.pem",
    "summary": "training-content-summary.md",
}
C2PA_FOLDER = "c2pa"
_PRINT_CSS = ("body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;"
              "color:#111}table{border-collapse:collapse;font-size:13px}"
              "td,th{border:1px solid #999;padding:2px 6px;text-align:left}"
              "code{font-size:12px}@media print{body{margin:0;max-width:none}}")


def report_html(markdown_text: str, title: str) -> str:
    """The provenance report as a printable HTML page (markdown-it-py, tables on; raw
    HTML in the report is escaped, not passed through)."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_PRINT_CSS}</style></head>"
            f"<body>\n{body}</body></html>\n")


def training_content_summary(manifest: dict[str, Any], ledger_rows: int,
                             signer: str = "") -> str:
    """The run's training data in the shape of the EU AI Act template for the public
    summary of training content (general information; list of data sources; data
    processing aspects): voluntary for a personal LoRA, but the form a lawyer knows."""
    style = manifest.get("style", {})
    images = manifest.get("images", [])
    excluded = manifest.get("excluded", [])
    creators = manifest.get("creators", [])
    licences: dict[str, int] = {}
    for key, n in (manifest.get("licences") or {}).items():
        licences[spdx_id(key)] = licences.get(spdx_id(key), 0) + int(n)
    heads = Counter(part.split(":")[0].strip() for ex in excluded
                    for part in str(ex.get("reason", "")).split("; "))
    tdm = sum(1 for ex in excluded if "mining" in str(ex.get("reason", "")).lower())
    erased = manifest.get("erasures") or []
    base = manifest.get("base_model", {})
    lines = [
        f"# Summary of the content used to train the '{style.get('name', '')}' LoRA",
        "",
        "In the shape of the European Commission's template for the public summary of "
        "training content (AI Act, Article 53(1)(d)). A personal style LoRA is not a "
        "general-purpose AI model, so this summary is voluntary.",
        "",
        "## 1. General information",
        "",
        "### 1.1 Provider identification",
        f"- Provider: {signer or 'the artist who trained this LoRA (see the model card)'}",
        "",
        "### 1.2 Model identification",
        f"- Model: LoRA adapter, style '{style.get('name', '')}', training run "
        f"{manifest.get('run_id', '')}, started {manifest.get('created_at', '')}",
        f"- Base model (modified by this adapter): {base.get('ref', '')}"
        + (f" — {base.get('identity')}" if base.get("identity") else ""),
        "",
        "### 1.3 Modality, size and characteristics of the training data",
        "- Modality: images with text captions",
        f"- Training images: {len(images)} (manifest image count "
        f"{manifest.get('image_count', len(images))})",
        f"- Creators: {len(creators)}",
        "- Licences: " + (", ".join(f"{licence_label(k)} [{k}] ({n})"
                                    for k, n in sorted(licences.items())) or "none"),
        f"- Ledger rows (images of this run still in the workspace): {ledger_rows}",
        "",
        "## 2. List of data sources",
        "",
        "### 2.1 Publicly available datasets",
        "- None.",
        "",
        "### 2.2 Private datasets obtained from third parties",
        "- None licensed as a dataset. Images by other creators were used only under the "
        "licence or written permission recorded per image (see ledger.csv).",
        "",
        "### 2.3 Data crawled and scraped from online sources",
        "- None. Every image was added by the artist by hand.",
        "",
        "### 2.4 User data",
        "- None.",
        "",
        "### 2.5 Synthetic data",
        "- None.",
        "",
        "### 2.6 Other sources: the artist's curated set",
        f"- {len(images)} images by {len(creators)} creator(s): "
        + (", ".join(creators) or "none named"),
        "",
        "## 3. Data processing aspects",
        "",
        "### 3.1 Respect of reservation of rights from the text and data mining exception",
        "- Every image passed a consent gate before training: only images with a recorded, "
        "cleared consent and a licence that allows training were used.",
        "- Machine-readable opt-outs found in uploaded files (IPTC `plus:DataMining`, "
        "C2PA/CAWG training-and-data-mining assertions) prefill the consent record as "
        "refused; only the artist's own work or written permission with evidence lifts it.",
        f"- Images left out by the gate for this run: {len(excluded)}"
        + (" (" + ", ".join(f"{n} {head}" for head, n in heads.items()) + ")" if heads else ""),
        f"- Of these, refused by a text-and-data-mining reservation in the file: {tdm}",
        "",
        "### 3.2 Removal of illegal content",
        "- Every image was chosen and reviewed by the artist; none was collected "
        "automatically.",
        "",
        "### 3.3 Other information",
        f"- Images erased after training (the LoRA should be retrained): {len(erased)}",
        "- Obligations: " + ("; ".join(manifest.get("obligations") or []) or "none"),
        "- The manifest (manifest.json) lists every image's sha256; the LoRA files carry "
        "its hash, and their Content Credentials (c2pa/) are signed by the certificate in "
        "public-certificate.pem.",
    ]
    return "\n".join(lines) + "\n"


def provenance_pack(workspace: Workspace, run_id: str, run_dir: Path, name: str, *,
                    style: dict[str, Any], consents: list[ImageConsent], plan: TrainingPlan,
                    identity: SigningIdentity | None) -> Path:
    """The client's provenance pack, one zip in the upload cache (`PACK_FILES`, plus the
    run's `.c2pa` manifests under `c2pa/`). Never holds a private key: the certificate
    file is the public chain only."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    folder = workspace.browser_dir(PACK_KIND, run_id)
    staging = folder / f".{name}.{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        report = run_dir / "provenance.md"
        report_text = report.read_text(encoding="utf-8") if report.is_file() else ""
        (staging / PACK_FILES["report_md"]).write_text(report_text, encoding="utf-8")
        (staging / PACK_FILES["report_html"]).write_text(
            report_html(report_text, f"Provenance of run {run_id}"), encoding="utf-8")
        shutil.copyfile(run_dir / "manifest.json", staging / PACK_FILES["manifest"])
        ledger.export(staging / PACK_FILES["ledger"], style, consents, plan)
        if identity is not None:
            export_public_chain(identity, staging / PACK_FILES["certificate"])
        (staging / PACK_FILES["summary"]).write_text(
            training_content_summary(manifest, len(consents),
                                     identity.author if identity else ""), encoding="utf-8")
        lora = run_dir / "lora"
        sidecars = sorted(lora.glob("*.c2pa")) if lora.is_dir() else []
        target = folder / f"{name}.zip"
        atomic_zip(target, [*((p, f"{name}/{p.name}") for p in sorted(staging.iterdir())),
                            *((p, f"{name}/{C2PA_FOLDER}/{p.name}") for p in sidecars)])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
