"""Provenance inside every playground PNG: its settings as text chunks, plus IPTC XMP.

An output copied out of the workspace, e-mailed or posted still says which prompt, seed,
base model, run, checkpoint and LoRA scale made it, and that it is AI-generated media
(IPTC digital source type `trainedAlgorithmicMedia`). The same chunks are read back for
"use these settings again", so the file itself is the record, not a database row.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from PIL import Image, PngImagePlugin

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_bytes
from style_studio.credentials.xmp import SOFTWARE, XMP_KEY, AiMediaXmp, xmp_attributes
from style_studio.credentials.xmp import (  # re-exported: tests and callers name them here
    TRAINED_ALGORITHMIC_MEDIA as TRAINED_ALGORITHMIC_MEDIA,
)
from style_studio.images.near_copy import NearCopy

_FINAL = "final"
# The near-copy guard's finding, one line per training image ("very close to training
# image X (...)"), and those images' ids; absent when nothing was close.
NEAR_COPY_KEY, NEAR_COPY_IDS_KEY = "near_copy", "near_copy_images"


@dataclass
class OutputSettings:
    """Everything needed to know where an output came from and to make it again.

    `checkpoint` is the training step of the LoRA; with a `run_id` and no step it is the
    run's final LoRA. `lora_scale` is None when no LoRA was applied.
    """

    prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    base_model: str
    negative_prompt: str = ""
    base_model_identity: str = ""
    style_id: str = ""
    run_id: str | None = None
    checkpoint: int | None = None
    lora_scale: float | None = None
    lora_sha256: str | None = None
    manifest_sha256: str | None = None
    kind: str = "single"
    created_at: str = ""

    @property
    def uses_lora(self) -> bool:
        return self.run_id is not None and self.lora_scale is not None

    @property
    def checkpoint_label(self) -> str:
        if self.run_id is None:
            return ""
        return _FINAL if self.checkpoint is None else f"step {self.checkpoint}"

    def summary(self) -> str:
        """One caption line for a gallery: what differs between outputs comes first."""
        lora = (f"LoRA {self.run_id} {self.checkpoint_label} @ {self.lora_scale:g}"
                if self.uses_lora else "base model, no LoRA")
        return (f"seed {self.seed} · {lora} · {self.steps} steps · guidance {self.guidance:g}"
                f" · {self.width}×{self.height}")


def text_chunks(settings: OutputSettings) -> dict[str, str]:
    """The PNG text chunks, as strings; empty string = not applicable."""
    chunks = {
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "seed": str(settings.seed),
        "steps": str(settings.steps),
        "guidance": f"{settings.guidance:g}",
        "size": f"{settings.width}x{settings.height}",
        "run_id": settings.run_id or "",
        "checkpoint": settings.checkpoint_label,
        "lora_scale": "" if settings.lora_scale is None else f"{settings.lora_scale:g}",
        "lora_sha256": settings.lora_sha256 or "",
        "manifest_sha256": settings.manifest_sha256 or "",
        "base_model": settings.base_model,
        "base_model_identity": settings.base_model_identity,
        "style_id": settings.style_id,
        "kind": settings.kind,
        "created_at": settings.created_at,
        "software": SOFTWARE,
    }
    chunks["parameters"] = _a1111_parameters(settings)
    return chunks


def _a1111_parameters(settings: OutputSettings) -> str:
    """The "parameters" chunk AUTOMATIC1111-style tools show and parse."""
    lora = (f", Lora: {settings.run_id} {settings.checkpoint_label}, "
            f"Lora scale: {settings.lora_scale:g}" if settings.uses_lora else "")
    return (f"{settings.prompt}\nNegative prompt: {settings.negative_prompt}\n"
            f"Steps: {settings.steps}, CFG scale: {settings.guidance:g}, Seed: {settings.seed}, "
            f"Size: {settings.width}x{settings.height}, Model: {settings.base_model}{lora}")


def ai_system(settings: OutputSettings) -> str:
    """IPTC "AI System Used": the base model, and the LoRA when one was applied."""
    return settings.base_model + (
        f" + LoRA {settings.run_id} ({settings.checkpoint_label})" if settings.uses_lora else "")


def xmp_packet(settings: OutputSettings, data_mining: str | None = None) -> str:
    """An XMP packet marking the image as made by a trained model (IPTC 2025.1 terms)."""
    return AiMediaXmp(system=ai_system(settings), prompt=settings.prompt,
                      created_at=settings.created_at, data_mining=data_mining).packet()


def png_bytes(image: Image.Image, settings: OutputSettings,
              extra: dict[str, str] | None = None) -> bytes:
    """The image encoded as PNG with all provenance chunks (and any `extra` ones)."""
    info = PngImagePlugin.PngInfo()
    for key, value in {**text_chunks(settings), **(extra or {})}.items():
        info.add_text(key, value)  # falls back to UTF-8 iTXt for non-Latin-1 text
    info.add_itxt(XMP_KEY, xmp_packet(settings))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def near_copy_chunks(hits: list[NearCopy]) -> dict[str, str]:
    """The PNG text chunks recording the near-copy guard's finding ({} when none).

    The training image is named by its internal id, not its file name: an erasure
    cannot rewrite outputs, and a file name can be personal (`near_copy_names` puts the
    names back for the artist while the images exist)."""
    if not hits:
        return {}
    return {NEAR_COPY_KEY: "\n".join(replace(h, filename=f"id {h.image_id}").describe()
                                     for h in hits),
            NEAR_COPY_IDS_KEY: " ".join(h.image_id for h in hits)}


def near_copy_lines(chunks: dict[str, str], names: dict[str, str]) -> list[str]:
    """The recorded near-copy lines, each training image named by its file name when
    `names` (image id -> file name) still has it, else "an image erased since"."""
    lines = [line for line in chunks.get(NEAR_COPY_KEY, "").splitlines() if line]
    ids = chunks.get(NEAR_COPY_IDS_KEY, "").split()
    return [line.replace(f"id {image_id}", names.get(image_id, "(an image erased since)"))
            for line, image_id in zip(lines, ids, strict=False)]


def output_filename(settings: OutputSettings) -> str:
    """Sortable by time, readable, and unique even for the same seed twice a second."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    return f"{stamp}-{settings.kind}-s{settings.seed}-{uuid4().hex[:6]}.png"


def save_output(image: Image.Image, settings: OutputSettings, folder: Path,
                extra: dict[str, str] | None = None) -> Path:
    """Write the PNG atomically under `folder`: a crash never leaves half an image."""
    if not settings.created_at:
        settings.created_at = datetime.now(UTC).isoformat(timespec="seconds")
    path = Path(folder) / output_filename(settings)
    atomic_write_bytes(path, png_bytes(image, settings, extra))
    return path


def read_chunks(path: Path) -> dict[str, str]:
    """All text chunks of a PNG (tEXt, zTXt and iTXt)."""
    try:
        with Image.open(path) as image:
            image.load()
            return {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{Path(path).name} cannot be read as a PNG image: {exc}") from exc


def read_settings(path: Path) -> OutputSettings:
    """The settings stamped into a playground PNG, typed again."""
    chunks = read_chunks(path)
    if chunks.get("software") != SOFTWARE or "seed" not in chunks:
        raise InvalidInput(f"{Path(path).name} carries no Style Studio settings "
                           "(it was not made in the Playground, or its metadata was stripped).")
    try:
        return _parse_settings(chunks)
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"{Path(path).name} has damaged settings ({exc}).") from exc


def _parse_settings(chunks: dict[str, str]) -> OutputSettings:
    width, height = (int(v) for v in chunks["size"].lower().split("x"))
    checkpoint = chunks.get("checkpoint", "")
    scale = chunks.get("lora_scale", "")

    def optional(key: str) -> str | None:
        return chunks.get(key) or None

    return OutputSettings(
        prompt=chunks["prompt"], seed=int(chunks["seed"]), steps=int(chunks["steps"]),
        guidance=float(chunks["guidance"]), width=width, height=height,
        base_model=chunks["base_model"], negative_prompt=chunks.get("negative_prompt", ""),
        base_model_identity=chunks.get("base_model_identity", ""),
        style_id=chunks.get("style_id", ""), run_id=optional("run_id"),
        checkpoint=int(checkpoint.split()[-1]) if checkpoint.startswith("step") else None,
        lora_scale=float(scale) if scale else None, lora_sha256=optional("lora_sha256"),
        manifest_sha256=optional("manifest_sha256"), kind=chunks.get("kind", "single"),
        created_at=chunks.get("created_at", ""),
    )


def read_xmp(path: Path) -> dict[str, str]:
    """The attributes of the XMP packet's rdf:Description, as {"prefix:Name": value}."""
    return xmp_attributes(read_chunks(path).get(XMP_KEY))
