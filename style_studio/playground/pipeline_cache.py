"""Base pipelines kept in memory, with LoRAs switched in and out as named adapters.

Loading an SDXL base takes tens of seconds and gigabytes; a LoRA takes a fraction of a
second. So each base model is loaded once and kept, every (run, checkpoint) LoRA becomes
a peft adapter with its own name on that pipeline, and switching LoRA, checkpoint or
scale is `set_adapters` — never a reload. Adapters unused for a while are deleted (LRU)
so memory stays bounded. `base_loads` and `lora_loads` count real loads, so tests and
benchmarks can prove a switch did not reload anything.

Not thread-safe by itself beyond its lock: the job worker is its only user in the app.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from style_studio.base.errors import InvalidInput
from style_studio.base.files import sha256_file
from style_studio.models.devices import DeviceChoice, pick_device
from style_studio.models.loading import load_pipeline, model_identity
from style_studio.training.checkpoints import DIFFUSERS_NAME

Loader = Callable[..., DiffusionPipeline]


@dataclass(frozen=True)
class LoraSource:
    """A LoRA in diffusers format: a folder holding `pytorch_lora_weights.safetensors`."""

    lora_dir: Path
    label: str = ""

    @property
    def weights_file(self) -> Path:
        return Path(self.lora_dir) / DIFFUSERS_NAME

    def key(self) -> str:
        """Changes when the file is rewritten (a resumed run's new final LoRA)."""
        try:
            stat = self.weights_file.stat()
        except OSError as exc:
            raise InvalidInput(
                f"The LoRA {self.label or self.lora_dir} is missing its weights file "
                f"({self.weights_file}). Was the run folder moved or deleted?") from exc
        return f"{self.weights_file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


@dataclass
class _Adapter:
    name: str
    sha256: str


@dataclass
class _Base:
    pipe: DiffusionPipeline
    identity: str
    adapters: OrderedDict[str, _Adapter] = field(default_factory=OrderedDict)
    lora_enabled: bool = True


@dataclass
class ActivePipeline:
    """A pipeline ready to run with the asked-for LoRA (or none) at the asked-for scale."""

    pipe: DiffusionPipeline
    base_identity: str
    lora_sha256: str | None


class PipelineCache:
    """One pipeline per base model; LoRAs as named adapters, at most `max_adapters` each."""

    def __init__(self, models_dir: Path, device: DeviceChoice | None = None,
                 max_bases: int = 2, max_adapters: int = 4, loader: Loader = load_pipeline):
        self.models_dir = Path(models_dir)
        self.max_bases = max(1, max_bases)
        self.max_adapters = max(1, max_adapters)
        self.base_loads = 0
        self.lora_loads = 0
        self._device = device
        self._loader = loader
        self._bases: OrderedDict[tuple[str, str], _Base] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def device(self) -> DeviceChoice:
        if self._device is None:
            self._device = pick_device()
        return self._device

    def is_loaded(self, ref: str, family: str) -> bool:
        return (ref, family) in self._bases

    def adapter_names(self, ref: str, family: str) -> list[str]:
        """Adapters on a cached base, least recently used first."""
        base = self._bases.get((ref, family))
        return [a.name for a in base.adapters.values()] if base else []

    def activate(self, ref: str, family: str, lora: LoraSource | None = None,
                 scale: float = 1.0, identity: str | None = None) -> ActivePipeline:
        """The cached base for (ref, family) with `lora` at `scale`, or with LoRAs off."""
        with self._lock:
            base = self._base(ref, family, identity)
            if lora is None:
                if base.adapters and base.lora_enabled:
                    base.pipe.disable_lora()  # exact: peft skips the LoRA branch entirely
                    base.lora_enabled = False
                return ActivePipeline(base.pipe, base.identity, None)
            adapter = self._adapter(base, lora)
            if not base.lora_enabled:
                base.pipe.enable_lora()
                base.lora_enabled = True
            base.pipe.set_adapters([adapter.name], [float(scale)])
            return ActivePipeline(base.pipe, base.identity, adapter.sha256)

    def _base(self, ref: str, family: str, identity: str | None) -> _Base:
        key = (ref, family)
        if key in self._bases:
            self._bases.move_to_end(key)
            return self._bases[key]
        while len(self._bases) >= self.max_bases:
            _, old = self._bases.popitem(last=False)
            del old
            self._free_memory()
        pipe = self._loader(ref, family, self.models_dir, self.device)
        self.base_loads += 1
        base = _Base(pipe, identity or model_identity(ref, self.models_dir))
        self._bases[key] = base
        return base

    def _adapter(self, base: _Base, lora: LoraSource) -> _Adapter:
        key = lora.key()
        if key in base.adapters:
            base.adapters.move_to_end(key)
            return base.adapters[key]
        while len(base.adapters) >= self.max_adapters:
            _, old = base.adapters.popitem(last=False)
            base.pipe.delete_adapters(old.name)
        name = "lora_" + hashlib.sha256(key.encode()).hexdigest()[:12]
        try:
            with warnings.catch_warnings():  # several adapters on one model is the point
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                base.pipe.load_lora_weights(str(lora.lora_dir), adapter_name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            with contextlib.suppress(Exception):  # drop any half-injected layers
                base.pipe.delete_adapters(name)
            raise InvalidInput(
                f"Could not load the LoRA {lora.label or lora.lora_dir}: {exc}. It may belong "
                "to another base model, or the file is damaged.") from exc
        self.lora_loads += 1
        adapter = _Adapter(name, sha256_file(lora.weights_file))
        base.adapters[key] = adapter
        return adapter

    def clear(self) -> None:
        """Drop every cached pipeline (frees memory; the next request reloads)."""
        with self._lock:
            self._bases.clear()
            self._free_memory()

    @staticmethod
    def _free_memory() -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
