"""Captioning models through transformers: BLIP, Florence-2, any image-to-text model.

A captioner is named by a hub id (used only if it is already in the local Hugging Face
cache), a local folder, or a tiny random model built in code. Everything loads with
`local_files_only=True`, so a missing model is an immediate `ModelUnavailable` naming
the command that fetches it, never minutes of network retries. The loaded model stays
cached until `unload()`, which training calls to free the device.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from huggingface_hub import try_to_load_from_cache
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BlipForConditionalGeneration,
    BlipProcessor,
    Florence2ForConditionalGeneration,
)

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.models.devices import pick_device

from .tiny_captioners import (
    TINY_BLIP,
    TINY_CAPTIONER_LABELS,
    ensure_tiny_captioner,
    is_tiny_captioner,
)

SourceKind = Literal["tiny", "hub", "folder"]
Backend = Literal["blip", "florence2", "generic"]

DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-base"
KNOWN_CAPTIONERS: dict[str, str] = {
    DEFAULT_CAPTIONER: "BLIP base (Salesforce) — fast, short captions",
    "Salesforce/blip-image-captioning-large": "BLIP large (Salesforce) — better, slower",
    "florence-community/Florence-2-base": "Florence-2 base — short or detailed captions",
    "florence-community/Florence-2-large": "Florence-2 large — best detail, slowest",
}
# Beam search with no repeated trigrams: the usual settings for BLIP-style captions.
GENERATION: dict[str, Any] = {"num_beams": 3, "no_repeat_ngram_size": 3}
MAX_NEW_TOKENS = {False: 40, True: 120}
FLORENCE_TASKS = {False: "<CAPTION>", True: "<DETAILED_CAPTION>"}
GENERIC_PROMPTS = {False: "Describe this image in one sentence.",
                   True: "Describe this image in detail."}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffd]")


@dataclass
class CaptionerSource:
    """A captioning model the artist can pick, and whether it is on this machine."""

    ref: str
    label: str
    kind: SourceKind
    available: bool
    detail: str


def download_command(repo_id: str) -> str:
    """What fetches a captioner: configs, tokenizer files and safetensors weights only."""
    return (f"hf download {repo_id} --include '*.json' --include '*.txt' "
            "--include '*.model' --include '*.safetensors'")


def _hub_config(repo_id: str) -> Path | None:
    """The cached config.json of a hub repo, found without any network access."""
    try:
        cached = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:
        return None
    return Path(cached) if isinstance(cached, str) else None


def _is_path(ref: str) -> bool:
    return ref.startswith(("/", ".", "~")) or ref.count("/") != 1 or not _HUB_ID.match(ref)


def describe_captioner(ref: str, captioners_dir: Path) -> CaptionerSource:
    """What `ref` names and whether it can be loaded now, without loading anything."""
    ref = (ref or "").strip()
    if is_tiny_captioner(ref):
        return CaptionerSource(ref, TINY_CAPTIONER_LABELS[ref], "tiny", True,
                               "Built in code on first use; its captions are random words.")
    folder = _local_folder(ref, captioners_dir)
    if folder is not None:
        ok = (folder / "config.json").is_file()
        detail = f"Local folder {folder}" if ok else f"{folder} has no config.json."
        return CaptionerSource(ref, f"{folder.name} (local folder)", "folder", ok, detail)
    if not ref or _is_path(ref):
        return CaptionerSource(ref, ref or "(none)", "folder", False,
                               f"Not found: no folder or model called '{ref}'.")
    label = KNOWN_CAPTIONERS.get(ref, f"{ref} (Hugging Face)")
    config = _hub_config(ref)
    if config is None or not _has_weights(config.parent):
        return CaptionerSource(ref, label, "hub", False,
                               f"Not downloaded yet. To fetch it, run: {download_command(ref)}")
    return CaptionerSource(ref, label, "hub", True,
                           f"In the local Hugging Face cache (revision {config.parent.name[:12]}).")


def _local_folder(ref: str, captioners_dir: Path) -> Path | None:
    if not ref:
        return None
    candidates = [Path(ref).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(Path(captioners_dir) / ref)
    return next((c.resolve() for c in candidates if c.is_dir()), None)


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def list_captioners(captioners_dir: Path) -> list[CaptionerSource]:
    """Known hub models, local folders under `captioners_dir`, then the tiny one."""
    refs = list(KNOWN_CAPTIONERS)
    if Path(captioners_dir).is_dir():
        refs += [str(p) for p in sorted(Path(captioners_dir).iterdir())
                 if p.is_dir() and not p.name.startswith(".") and not is_tiny_captioner(p.name)
                 and (p / "config.json").is_file()]
    refs.append(TINY_BLIP)
    return [describe_captioner(ref, captioners_dir) for ref in refs]


def folder_revision(folder: Path) -> str:
    """A local folder has no commit: identify it by the hash of its config (and the
    names and sizes of its weight files, so retrained weights get a new revision)."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(f"{path.name}\0{path.stat().st_size}\n".encode())
    return "config-sha256:" + digest.hexdigest()[:16]


def _backend(config_path: Path) -> Backend:
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type", "")
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read {config_path}: {exc}") from exc
    if model_type == "blip":
        return "blip"
    return "florence2" if model_type == "florence2" else "generic"


class Captioner:
    """A loaded captioning model: one image in, one line of text out."""

    def __init__(self, ref: str, revision: str, backend: Backend, model: Any,
                 processor: Any, device: str, dtype: torch.dtype):
        self.ref, self.revision, self.backend = ref, revision, backend
        self.model, self.processor = model, processor
        self.device, self.dtype = device, dtype

    @torch.inference_mode()
    def caption(self, image: Image.Image, detailed: bool = False) -> str:
        """Describe `image`; `detailed` asks Florence-2 and chat models for more (BLIP has
        a single caption mode)."""
        detailed = detailed and self.backend != "blip"
        inputs = self._inputs(image.convert("RGB"), detailed).to(self.device, dtype=self.dtype)
        output = self.model.generate(**inputs, **GENERATION,
                                     max_new_tokens=MAX_NEW_TOKENS[detailed])
        prompt = inputs.get("input_ids")
        if self.backend == "generic" and prompt is not None and \
                not self.model.config.is_encoder_decoder:
            output = output[:, prompt.shape[1]:]  # a decoder-only model echoes its prompt
        return clean_caption(self.processor.batch_decode(output, skip_special_tokens=True)[0])

    def _inputs(self, image: Image.Image, detailed: bool) -> Any:
        if self.backend == "blip":
            return self.processor(images=image, return_tensors="pt")
        if self.backend == "florence2":
            return self.processor(text=FLORENCE_TASKS[detailed], images=image,
                                  return_tensors="pt")
        if getattr(self.processor, "chat_template", None):
            messages = [{"role": "user", "content": [
                {"type": "image", "image": image},
                {"type": "text", "text": GENERIC_PROMPTS[detailed]}]}]
            return self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                return_tensors="pt")
        return self.processor(images=image, return_tensors="pt")


def clean_caption(text: str) -> str:
    """One line of printable text: models sometimes emit control bytes or newlines."""
    return " ".join(_CONTROL.sub(" ", text).split())


def load_captioner(ref: str, captioners_dir: Path, device: str | None = None) -> Captioner:
    """Load `ref` from local files only; the tiny models take exactly the same path."""
    source = describe_captioner(ref, captioners_dir)
    if source.kind == "tiny":
        where: str | Path = ensure_tiny_captioner(ref, captioners_dir)
        config, revision = Path(where) / "config.json", folder_revision(Path(where))
    elif source.kind == "folder":
        if not source.available:
            raise InvalidInput(source.detail)
        where = _local_folder(ref, captioners_dir)  # type: ignore[assignment]
        config, revision = Path(where) / "config.json", folder_revision(Path(where))
    else:
        if not source.available:
            raise ModelUnavailable(
                f"The captioning model {ref} is not on this machine. Fetch it with: "
                f"{download_command(ref)}   Meanwhile the tiny random captioner lets you "
                "try the workflow offline.")
        where, config = ref, _hub_config(ref)  # type: ignore[assignment]
        revision = config.parent.name  # the snapshot folder is named by the commit
    return _load(source.ref, where, _backend(config), revision, device)


def _load(ref: str, where: str | Path, backend: Backend, revision: str,
          device: str | None) -> Captioner:
    choice = pick_device(device)
    classes: dict[Backend, tuple[Any, Any]] = {
        "blip": (BlipForConditionalGeneration, BlipProcessor),
        "florence2": (Florence2ForConditionalGeneration, AutoProcessor),
        "generic": (AutoModelForImageTextToText, AutoProcessor),
    }
    model_class, processor_class = classes[backend]
    try:
        processor = processor_class.from_pretrained(where, local_files_only=True)
        model = model_class.from_pretrained(where, local_files_only=True, dtype=choice.dtype)
    except ValueError as exc:
        raise InvalidInput(
            f"{ref} cannot be used as a captioner: {exc} Use an image-to-text model such "
            "as BLIP or Florence-2 (models that need their own custom code are not run)."
        ) from exc
    except OSError as exc:
        raise ModelUnavailable(
            f"{ref} is incomplete on this machine ({exc}). Fetch it again with: "
            f"{download_command(ref)}") from exc
    model.to(choice.device).eval()
    return Captioner(ref, revision, backend, model, processor, choice.device, choice.dtype)


class CaptionerCache:
    """Keeps one loaded captioner; loading is slow and the batch job reuses it."""

    def __init__(self, captioners_dir: Path):
        self.captioners_dir = Path(captioners_dir)
        self._lock = threading.Lock()
        self._loaded: Captioner | None = None

    def get(self, ref: str) -> Captioner:
        with self._lock:
            if self._loaded is not None and self._loaded.ref == ref.strip():
                return self._loaded
            self._drop()
            self._loaded = load_captioner(ref, self.captioners_dir)
            return self._loaded

    @property
    def loaded_ref(self) -> str | None:
        return self._loaded.ref if self._loaded else None

    def unload(self) -> bool:
        """Free the model and its device memory (training calls this before it starts)."""
        with self._lock:
            return self._drop()

    def _drop(self) -> bool:
        if self._loaded is None:
            return False
        self._loaded = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True
