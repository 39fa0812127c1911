"""Provenance of a training run: the manifest, the LoRA metadata, the model card, a report.

The manifest is written once, when the run starts, and never changed: its sha256 is
the run's identity (`manifest_sha256`), embedded in every LoRA file and every image
the Playground makes. What is only known at the end (energy, final step) goes into the
run record, `outcome.json`, the LoRA metadata, the model card and the report.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from style_studio.base.family import is_toy
from style_studio.base.files import atomic_write_text, sha256_bytes, slug
from style_studio.base.licences import LICENCES, licence_label, spdx_id
from style_studio.base.run_redaction import erased_notice
from style_studio.consent.gate import TrainingPlan
from style_studio.models.families import reference_model
from style_studio.models.families.tool_keys import architecture
from style_studio.models.tiny import parse_tiny_id

from .config import TrainConfig
from .data import training_caption

MANIFEST_FORMAT = "style-studio-manifest/1"
FAMILY_TAGS = {"sd15": ["stable-diffusion"], "sdxl": ["stable-diffusion", "stable-diffusion-xl"],
               "flux1": ["flux"], "flux2_klein": ["flux", "flux2"], "zimage": ["z-image"]}
TOOL_FILE_USE = {"flux1": "kohya/sd-scripts names, for ComfyUI and Forge",
                 "flux2_klein": "kohya/musubi-tuner names, for ComfyUI",
                 "zimage": "ComfyUI's names (diffusion_model.*, with alpha), for ComfyUI"}
PREDICTION = {"sd15": "epsilon", "sdxl": "epsilon", "flux1": "flow", "flux2_klein": "flow",
              "zimage": "flow"}
LIBRARIES = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors",
             "huggingface-hub", "pillow", "numpy")
ARCHITECTURE = {"sd15": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}
KOHYA_BASE_VERSION = {"sd15": "sd_v1", "sdxl": "sdxl_base_v1-0", "flux1": "flux1",
                      "flux2_klein": "flux2", "zimage": "zimage"}
# The licences whose terms carry over to a derived model, strongest first; the card
# takes the first one present, with its Hugging Face Hub id.
CARRIED_OVER = ("CC-BY-NC-SA-4.0", "CC-BY-NC-4.0", "CC-BY-SA-4.0")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(*, run_id: str, style: Any, plan: TrainingPlan, config: TrainConfig,
                   base: dict[str, str], device: str, energy_method: str,
                   created_at: str) -> dict[str, Any]:
    """Everything that decides what the LoRA learned and from whom."""
    images = [{
        "sha256": item.sha256, "image_id": item.image_id, "caption": item.caption,
        "training_caption": training_caption(item.caption, style.trigger),
        "creator": item.creator, "licence": item.licence, "consent_status": item.status,
    } for item in plan.included]
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "created_at": created_at,
        "style": {"id": style.id, "name": style.name, "trigger": style.trigger,
                  "family": style.family},
        "images": images,
        "image_count": len(images),
        "excluded": [{"image_id": ex.image_id, "filename": ex.filename, "reason": ex.reason}
                     for ex in plan.excluded],
        "creators": sorted({i["creator"] for i in images}),
        "licences": dict(Counter(i["licence"] for i in images)),
        "obligations": list(plan.obligations),
        "attributions": list(plan.attributions),
        "config": config.to_dict(),
        "seed": config.seed,
        "base_model": base,
        "device": device,
        "energy_method": energy_method,
        "libraries": library_versions(),
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")


def write_manifest(path: Path, manifest: dict[str, Any]) -> str:
    """Write manifest.json atomically; returns the sha256 of exactly the bytes written."""
    data = manifest_bytes(manifest)
    atomic_write_text(path, data.decode("utf-8"))
    return sha256_bytes(data)


def licence_summary(manifest: dict[str, Any]) -> str:
    """One phrase for `modelspec.license`: the licences of the training images."""
    parts = [f"{licence_label(k)} ({n})" for k, n in sorted(_spdx_counts(manifest).items())]
    return "training images: " + ", ".join(parts) if parts else "no images"


def _spdx_counts(manifest: dict[str, Any]) -> dict[str, int]:
    """The manifest's licence counts by SPDX id (a manifest written before schema 2 holds
    the old keys and cannot be rewritten: its hash is the run's identity)."""
    counts: dict[str, int] = {}
    for key, n in manifest["licences"].items():
        counts[spdx_id(key)] = counts.get(spdx_id(key), 0) + n
    return counts


def spdx_expression(manifest: dict[str, Any]) -> str:
    """The training images' licences as one SPDX expression (`CC-BY-4.0 AND …`)."""
    return " AND ".join(sorted(_spdx_counts(manifest))) or "NONE"


def hf_licence(manifest: dict[str, Any]) -> str:
    """The model card's Hub licence id: a share-alike or non-commercial term carries over,
    and so does CC BY when every image is CC BY; otherwise "other" (terms per image)."""
    keys = set(_spdx_counts(manifest))
    for key in CARRIED_OVER:
        if key in keys:
            return LICENCES[key].hub
    if keys == {"CC-BY-4.0"}:
        return LICENCES["CC-BY-4.0"].hub
    return "other"


def lora_metadata(manifest: dict[str, Any], manifest_sha256: str, fmt: str, *,
                  step: int | None, rank: int, alpha: float,
                  energy: dict[str, Any] | None = None) -> dict[str, Any]:
    """`__metadata__` for a LoRA file; the writer turns non-strings into JSON strings."""
    style, base, family = manifest["style"], manifest["base_model"], manifest["style"]["family"]
    resolution = TrainConfig.from_dict(manifest["config"]).resolution_for(family)
    title = f"{style['name']} (style LoRA)" + (f", step {step}" if step else "")
    meta: dict[str, Any] = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": (ARCHITECTURE[family] if family in ARCHITECTURE
                                   else architecture(family, base.get("reference"))),
        "modelspec.implementation": ("https://github.com/huggingface/diffusers"
                                     if fmt == "diffusers" else "sgm"),
        "modelspec.title": title,
        "modelspec.author": ", ".join(manifest["creators"]) or "unknown",
        "modelspec.description": (f"Style LoRA trained with Style Studio on "
                                  f"{manifest['image_count']} images; manifest sha256 "
                                  f"{manifest_sha256}."),
        "modelspec.date": manifest["created_at"],
        "modelspec.license": licence_summary(manifest),
        "modelspec.trigger_phrase": style["trigger"],
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.prediction_type": PREDICTION[family],
        "modelspec.usage_hint": f"Start prompts with '{style['trigger']}'." if style["trigger"]
        else "",
        "style_studio.run_id": manifest["run_id"],
        "style_studio.manifest_sha256": manifest_sha256,
        "style_studio.image_count": str(manifest["image_count"]),
        "style_studio.image_hashes": [i["sha256"] for i in manifest["images"]],
        "style_studio.creators": manifest["creators"],
        "style_studio.base.licences": manifest["licences"],
        "style_studio.obligations": manifest["obligations"],
        "style_studio.trigger_word": style["trigger"],
        "style_studio.base_model": base["ref"],
        "style_studio.base_model_identity": base["identity"],
        "style_studio.step": str(step) if step else "final",
    }
    if energy:
        meta["style_studio.training.energy"] = energy
    if fmt == "kohya":
        meta.update({"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
                     "ss_network_alpha": f"{alpha:g}", "ss_output_name": style["name"],
                     "ss_base_model_version": KOHYA_BASE_VERSION[family],
                     "ss_sd_model_name": base["ref"], "ss_seed": str(manifest["seed"])})
    return meta


# Where the card states the images' licences; its Hub anchor is its slug (words and dashes
# only, so GitHub's rule gives the same: test_push checks the link against that rule).
DATA_HEADING = "Training data and consent"


def model_card(manifest: dict[str, Any], manifest_sha256: str, *, kohya_name: str,
               samples: list[tuple[str, str]] | None = None,
               outcome: dict[str, Any] | None = None) -> str:
    """README.md with YAML front matter that `huggingface_hub.ModelCard` parses."""
    style, base = manifest["style"], manifest["base_model"]
    licence = hf_licence(manifest)
    reference = reference_model(base.get("reference") or "")
    front: dict[str, Any] = {
        # The Hub links an adapter to its base by id: the hub repo the weights come from
        # when known (a single file's publisher), else the reference as trained.
        "base_model": base.get("reference") or base["ref"],
        "base_model_relation": "adapter",
        "license": licence,
        "library_name": "diffusers",
        "pipeline_tag": "text-to-image",
        "tags": ["text-to-image", *FAMILY_TAGS.get(style["family"], []), "lora", "diffusers",
                 "style", "style-studio", "template:sd-lora"],
        "instance_prompt": style["trigger"] or None,
        "widget": [{"text": prompt, "output": {"url": url}} for prompt, url in samples or []],
    }
    if licence == "other":  # the card's own section: provenance.md is never published
        front["license_name"] = "per-image-licences"
        front["license_link"] = f"README.md#{slug(DATA_HEADING)}"
    if reference and not reference.commercial_use:  # the base's terms bind the LoRA too
        front["license"] = "other"
        front["license_name"] = slug(reference.licence)
        front["license_link"] = f"https://huggingface.co/{reference.hub_id}"
    if manifest.get("erasures"):
        front["tags"].append("contains-erased-data")
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(), "---",
             "", f"# {style['name']} — style LoRA", "",
             f"A LoRA for {base['ref']} ({manifest['style']['family']}) trained with "
             f"Style Studio on {manifest['image_count']} images that their creators cleared "
             "for training.", ""]
    if manifest.get("erasures"):
        lines += ["## ⚠ Contains erased data — retrain", "", erased_notice(manifest), ""]
    if style["trigger"]:
        lines += [f"Use the trigger word **{style['trigger']}** in your prompts.", ""]
    lines += ["## Base model licence", "",
              base_licence_text(base["ref"], base.get("reference")), ""]
    tools = TOOL_FILE_USE.get(style["family"], "kohya format for A1111, ComfyUI and Forge")
    lines += ["## Files", "",
              "- `lora/pytorch_lora_weights.safetensors` — diffusers "
              "(`pipe.load_lora_weights(folder)`)",
              f"- `lora/{kohya_name}` — {tools}", "",
              f"## {DATA_HEADING}", "",
              f"- Manifest sha256: `{manifest_sha256}` (manifest.json)",
              f"- Creators: {', '.join(manifest['creators']) or 'none recorded'}",
              f"- Licences: {licence_summary(manifest)}",
              f"- Licences as SPDX: `{spdx_expression(manifest)}`"]
    lines += [f"- Obligation: {ob}" for ob in manifest["obligations"]]
    lines += ["", "## Training", "", f"- Base model: {base['ref']} ({base['identity']})",
              f"- Seed: {manifest['seed']}; device: {manifest['device']}"]
    if outcome:
        lines += [f"- Steps: {outcome.get('step')} of {outcome.get('total_steps')}",
                  *_processes_line(outcome),
                  f"- Energy: {outcome.get('energy_summary', 'not recorded')}"]
    return "\n".join(lines) + "\n"


def _processes_line(outcome: dict[str, Any]) -> list[str]:
    """Said only for a multi-process launch (`accelerate launch`); one is the default."""
    count = int(outcome.get("processes") or 1)
    return [f"- Processes: {count} (data-parallel; the energy is the main process's)"] \
        if count > 1 else []


def base_licence_text(ref: str, repo: str | None = None) -> str:
    """What the base model's own licence means for this LoRA, in plain words (`repo`: the
    hub model `ref` comes from, when known)."""
    reference = reference_model(repo or ref)
    if reference is None:
        if parse_tiny_id(ref) or is_toy(ref):
            return (f"{ref} is a tiny test model built into Style Studio, not a real model: "
                    "this LoRA is for trying the workflow only.")
        return (f"The licence of {ref} applies to this LoRA and to images made with it; "
                "check it before you share or sell either.")
    text = f"{reference.label} ({reference.hub_id}) is licensed under {reference.licence}."
    if not reference.commercial_use:
        text += (" **Non-commercial:** that licence does not allow commercial use, so this "
                 "LoRA and the images made with it may not be used commercially either.")
    if not reference.verified:
        text += " (Licence as stated by third-party pages; check the model's own card.)"
    return text


def provenance_report(manifest: dict[str, Any], manifest_sha256: str,
                      outcome: dict[str, Any] | None = None) -> str:
    """A page a client can read: which images, whose, under which licence, and why."""
    style = manifest["style"]
    lines = [f"# Provenance of the '{style['name']}' LoRA (run {manifest['run_id']})", "",
             f"Started {manifest['created_at']} on {manifest['device']}. Manifest sha256 "
             f"`{manifest_sha256}`; every LoRA file of this run carries this hash in its "
             "metadata.", ""]
    if manifest.get("erasures"):
        lines += ["## ⚠ Contains erased data — retrain", "", erased_notice(manifest), "",
                  "manifest.json was redacted after the erasure: the hash above is that of the "
                  "manifest as written when the run started.", ""]
    lines += ["## Images trained on", "",
              "| # | sha256 (first 16) | creator | licence | consent | caption |",
              "|---|---|---|---|---|---|"]
    for n, image in enumerate(manifest["images"], 1):
        caption = image["caption"].replace("|", "/")
        lines.append(f"| {n} | `{image['sha256'][:16]}` | {image['creator']} | "
                     f"{spdx_id(image['licence'])} | {image['consent_status']} | {caption} |")
    if manifest["excluded"]:
        lines += ["", "## Left out by the consent gate", ""]
        lines += [f"- {ex['filename'] or ex['image_id']}: {ex['reason']}"
                  for ex in manifest["excluded"]]
    lines += ["", "## Obligations", ""]
    lines += [f"- {ob}" for ob in manifest["obligations"]] or ["- none"]
    lines += ["", "## Base model and software", "",
              f"- {manifest['base_model']['ref']} — {manifest['base_model']['identity']}"]
    lines += [f"- {name} {version}" for name, version in manifest["libraries"].items()]
    if outcome:
        lines += ["", "## Outcome", "", f"- Status: {outcome.get('status')}",
                  f"- Steps: {outcome.get('step')} of {outcome.get('total_steps')}",
                  *_processes_line(outcome),
                  f"- Energy: {outcome.get('energy_summary', 'not recorded')}"]
        lines += [f"- Flag: {flag}" for flag in outcome.get("flags", [])]
    return "\n".join(lines) + "\n"
