"""Provenance inside every playground PNG: its settings as text chunks, plus IPTC XMP.

An output copied out of the workspace, e-mailed or posted still says which prompt, seed,
base model, run, checkpoint and LoRA scale made it, and that it is AI-generated media
(IPTC digital source type `trainedAlgorithmicMedia`). The same chunks are read back for
"use these settings again", so the file itself is the record, not a database row.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, PngImagePlugin

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_bytes

SOFTWARE = "Style Studio"
XMP_KEY = "XML:com.adobe.xmp"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_FINAL = "final"


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


def xmp_packet(settings: OutputSettings) -> str:
    """An XMP packet marking the image as made by a trained model (IPTC 2023 terms)."""
    system = settings.base_model + (
        f" + LoRA {settings.run_id} ({settings.checkpoint_label})" if settings.uses_lora else "")
    attrs = {
        "Iptc4xmpExt:DigitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "Iptc4xmpExt:AISystemUsed": system,
        "Iptc4xmpExt:AIPromptInformation": settings.prompt,
        "xmp:CreatorTool": SOFTWARE,
        "xmp:CreateDate": settings.created_at,
    }
    attr_text = "".join(f"\n    {name}={quoteattr(value)}" for name, value in attrs.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{_RDF_NS}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:Iptc4xmpExt="{IPTC_EXT_NS}"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f"{attr_text}>\n"
        "   <dc:description xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{escape(settings.prompt)}</rdf:li>'
        "</rdf:Alt></dc:description>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )


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
    packet = read_chunks(path).get(XMP_KEY)
    if not packet:
        return {}
    root = ET.fromstring(packet.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    description = root.find(f".//{{{_RDF_NS}}}Description")
    if description is None:
        return {}
    prefixes = {IPTC_EXT_NS: "Iptc4xmpExt", "http://ns.adobe.com/xap/1.0/": "xmp"}
    result = {}
    for name, value in description.attrib.items():
        namespace, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
        result[f"{prefixes.get(namespace, namespace)}:{local}" if namespace else local] = value
    return result
