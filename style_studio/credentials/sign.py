"""Sign what Style Studio makes: Playground PNGs (embedded) and LoRA files (a `.c2pa` beside).

An output gets its IPTC XMP first, then a C2PA manifest: a `c2pa.created` action with
digital source type `trainedAlgorithmicMedia`, the LoRA and the base model as
ingredients of asset type model (with their hashes), the artist's `cawg.training-mining`
choice and the run behind it. When the LoRA has its own signed manifest, that manifest
travels inside the output as the LoRA ingredient's, so a stranger holding only the PNG
can read the training set (image hashes, creators, licences) and check its signature.

A LoRA gets a detached manifest store, `<name>.c2pa` beside `<name>.safetensors`, bound
to the file's bytes by a `c2pa.hash.data` over the whole file (c2pa-python signs a
format it has no container handler for as plain bytes; docs/research/c2pa.md says why
we do not embed it in the safetensors header).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_bytes, sha256_bytes, sha256_file
from style_studio.base.licences import spdx_id

from . import c2pa_io
from .identity import SigningIdentity
from .xmp import SOFTWARE, TRAINED_ALGORITHMIC_MEDIA, AiMediaXmp, png_with_xmp

ALLOWED, NOT_ALLOWED, CONSTRAINED = "allowed", "notAllowed", "constrained"
USES = (ALLOWED, NOT_ALLOWED, CONSTRAINED)
CAWG_TRAINING_MINING = "cawg.training-mining"
# C2PA 2.2 source type for data (here: LoRA weights) made by a trained algorithm.
TRAINED_ALGORITHMIC_DATA = "http://c2pa.org/digitalsourcetype/trainedAlgorithmicData"
MODEL_TYPE, DATASET_TYPE = "c2pa.types.model", "c2pa.types.dataset"
RUN_LABEL = "org.stylestudio.run"
TRAINING_SET_LABEL = "org.stylestudio.training-set"
PLUS_DMI = "http://ns.useplus.org/ldf/vocab/"
SIDECAR_SUFFIX = ".c2pa"
LORA_RESOURCE = "lora-manifest.c2pa"


@dataclass(frozen=True)
class TrainingMining:
    """The artist's answer, per style, to "may this be mined or used to train AI?".

    Values are the CAWG vocabulary (`allowed`, `notAllowed`, `constrained`); None leaves
    that use unstated. The default says no to AI training, generative or not.
    """

    ai_training: str | None = NOT_ALLOWED
    ai_generative_training: str | None = NOT_ALLOWED
    data_mining: str | None = None
    ai_inference: str | None = None
    constraint_info: str = ""

    def __post_init__(self) -> None:
        for name, value in self.uses().items():
            if value not in USES:
                raise InvalidInput(f"'{value}' is not a training-and-mining choice for "
                                   f"{name.replace('_', ' ')}; choose allowed, notAllowed "
                                   "or constrained.")
        if CONSTRAINED in self.uses().values() and not self.constraint_info.strip():
            raise InvalidInput("Say what the constraint is (for example 'ask me first: "
                               "mail@example.org') when a use is 'constrained'.")

    def uses(self) -> dict[str, str]:
        values = {"ai_training": self.ai_training,
                  "ai_generative_training": self.ai_generative_training,
                  "data_mining": self.data_mining, "ai_inference": self.ai_inference}
        return {k: v for k, v in values.items() if v is not None}

    def assertion(self) -> dict[str, Any]:
        """The `cawg.training-mining` assertion (CAWG Training and Data Mining 1.1)."""
        entries: dict[str, Any] = {}
        for name, use in self.uses().items():
            entry: dict[str, Any] = {"use": use}
            if use == CONSTRAINED:
                entry["constraint_info"] = self.constraint_info.strip()
            entries[f"cawg.{name}"] = entry
        return {"label": CAWG_TRAINING_MINING, "data": {"entries": entries}}

    def plus_data_mining(self) -> str | None:
        """The nearest PLUS `DataMining` term, for the XMP tools that read only IPTC."""
        uses = self.uses()
        if uses.get("data_mining") == NOT_ALLOWED:
            return PLUS_DMI + "DMI-PROHIBITED"
        if uses.get("ai_training") == NOT_ALLOWED:
            return PLUS_DMI + "DMI-PROHIBITED-AIMLTRAINING"
        if uses.get("ai_generative_training") == NOT_ALLOWED:
            return PLUS_DMI + "DMI-PROHIBITED-GENAIMLTRAINING"
        if uses and set(uses.values()) == {ALLOWED}:
            return PLUS_DMI + "DMI-ALLOWED"
        return None

    def to_doc(self) -> dict[str, str]:
        return {**self.uses(), "constraint_info": self.constraint_info}

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> TrainingMining:
        """A style's stored choice; a style that never chose gets the default (no training)."""
        if not doc:
            return cls()
        return cls(**{k: doc.get(k) for k in ("ai_training", "ai_generative_training",
                                              "data_mining", "ai_inference")},
                   constraint_info=str(doc.get("constraint_info") or ""))


@dataclass(frozen=True)
class OutputFacts:
    """Where one Playground image came from. No LoRA (`lora_path` None) = the base alone."""

    prompt: str
    base_model: str
    base_model_identity: str = ""
    lora_path: Path | None = None
    lora_sha256: str = ""
    run_id: str = ""
    checkpoint: str = ""
    lora_scale: float | None = None
    manifest_sha256: str = ""
    style_name: str = ""
    training_mining: TrainingMining = field(default_factory=TrainingMining)
    created_at: str = ""

    @property
    def ai_system(self) -> str:
        """IPTC "AI System Used", worded as the Playground's unsigned outputs word it."""
        if self.lora_path is None:
            return self.base_model
        return f"{self.base_model} + LoRA {self.run_id} ({self.checkpoint or 'final'})"


@dataclass(frozen=True)
class TrainingImage:
    sha256: str
    licence: str = ""
    creator: str = ""


@dataclass(frozen=True)
class LoraFacts:
    """What a LoRA's manifest says: the run, its base model and the images it learned from."""

    run_id: str
    style_name: str
    manifest_sha256: str
    base_model: str
    base_model_identity: str = ""
    images: tuple[TrainingImage, ...] = ()
    obligations: tuple[str, ...] = ()
    created_at: str = ""
    training_mining: TrainingMining = field(default_factory=TrainingMining)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], manifest_sha256: str,
                      training_mining: TrainingMining | None = None) -> LoraFacts:
        """From a run's manifest.json (training/provenance.build_manifest), as it is now."""
        base = manifest.get("base_model") or {}
        return cls(
            run_id=str(manifest.get("run_id", "")),
            style_name=str((manifest.get("style") or {}).get("name", "")),
            manifest_sha256=manifest_sha256, base_model=str(base.get("ref", "")),
            base_model_identity=str(base.get("identity", "")),
            images=tuple(TrainingImage(str(i.get("sha256", "")),
                                       spdx_id(str(i.get("licence", ""))),
                                       str(i.get("creator", "")))
                         for i in manifest.get("images") or []),
            obligations=tuple(str(o) for o in manifest.get("obligations") or []),
            created_at=str(manifest.get("created_at", "")),
            training_mining=training_mining or TrainingMining())

    def training_set(self) -> dict[str, Any]:
        licences: dict[str, int] = {}
        for image in self.images:
            licences[image.licence] = licences.get(image.licence, 0) + 1
        return {
            "run_id": self.run_id, "style": self.style_name,
            "manifest_sha256": self.manifest_sha256, "image_count": len(self.images),
            "images": [{"sha256": i.sha256, "licence": i.licence, "creator": i.creator}
                       for i in self.images],
            "creators": sorted({i.creator for i in self.images if i.creator}),
            "licences": dict(sorted(licences.items())),
            "obligations": list(self.obligations),
        }


@dataclass(frozen=True)
class SignedFile:
    """A signed file: the asset, its manifest store's location and who signed it."""

    path: Path
    manifest_path: Path | None
    signer: str
    sha256: str


def lora_sidecar(lora: Path) -> Path:
    """`x.safetensors` -> `x.c2pa`, the name c2patool looks for beside an asset."""
    return Path(lora).with_suffix(SIDECAR_SUFFIX)


def model_ingredient(title: str, sha256: str = "", identity: str = "",
                     asset_type: str = MODEL_TYPE) -> dict[str, Any]:
    """An ingredient that is a model (or data set): title, asset type and its hash."""
    metadata = {k: v for k, v in (("sha256", sha256), ("identity", identity)) if v}
    ingredient: dict[str, Any] = {"title": title, "format": c2pa_io.OCTET_STREAM,
                                  "relationship": "inputTo",
                                  "data_types": [{"type": asset_type}]}
    if metadata:
        ingredient["metadata"] = metadata
    return ingredient


def _created(source_type: str, description: str) -> dict[str, Any]:
    return {"label": "c2pa.actions.v2", "data": {"actions": [{
        "action": "c2pa.created", "digitalSourceType": source_type,
        "softwareAgent": {"name": SOFTWARE}, "description": description}]}}


def sign_output(png: Path, facts: OutputFacts, identity: SigningIdentity,
                dest: Path | None = None, embed_lora_manifest: bool = True) -> SignedFile:
    """Write the XMP, then embed a signed C2PA manifest; `dest` defaults to `png` itself.

    `embed_lora_manifest` False names the LoRA by its hash only, without its manifest (and
    so without the training set's creators and image hashes): the Playground's choice,
    since an erasure cannot reach inside outputs already handed out; a verifier finds the
    training set through the workspace's copy of the LoRA (`WorkspaceFacts.loras`).
    """
    png, dest = Path(png), Path(dest or png)
    xmp = AiMediaXmp(system=facts.ai_system, prompt=facts.prompt, created_at=facts.created_at,
                     data_mining=facts.training_mining.plus_data_mining())
    source = png_with_xmp(png.read_bytes(), xmp.packet())
    ingredients, resources, lora_sha = [], {}, ""
    if facts.lora_path is not None:
        lora_sha = facts.lora_sha256 or sha256_file(facts.lora_path)
        lora, store = (_lora_ingredient(Path(facts.lora_path), lora_sha, identity)
                       if embed_lora_manifest
                       else (model_ingredient(Path(facts.lora_path).name, sha256=lora_sha), None))
        ingredients.append(lora)
        if store:
            resources[LORA_RESOURCE] = store
    ingredients.append(model_ingredient(facts.base_model, identity=facts.base_model_identity))
    run = {"run_id": facts.run_id, "checkpoint": facts.checkpoint, "style": facts.style_name,
           "lora_sha256": lora_sha,
           "lora_scale": facts.lora_scale, "manifest_sha256": facts.manifest_sha256,
           "base_model": facts.base_model, "base_model_identity": facts.base_model_identity,
           "prompt": facts.prompt, "created_at": facts.created_at}
    manifest = {
        "claim_generator_info": [{"name": SOFTWARE}], "title": dest.name,
        "format": "image/png", "ingredients": ingredients,
        "assertions": [_created(TRAINED_ALGORITHMIC_MEDIA, f"Generated by {facts.ai_system}"),
                       facts.training_mining.assertion(),
                       {"label": RUN_LABEL, "data": {k: v for k, v in run.items()
                                                     if v not in ("", None)}}],
    }
    out = io.BytesIO()
    c2pa_io.sign_stream(manifest, identity, "image/png", io.BytesIO(source), out,
                        resources=resources)
    data = out.getvalue()
    atomic_write_bytes(dest, data)
    return SignedFile(dest, None, identity.author, sha256_bytes(data))


def _lora_ingredient(lora: Path, sha256: str,
                     identity: SigningIdentity) -> tuple[dict[str, Any], bytes | None]:
    """The LoRA as an ingredient; with its own manifest when its sidecar still matches it."""
    ingredient = model_ingredient(lora.name, sha256=sha256)
    sidecar = lora_sidecar(lora)
    if not (sidecar.is_file() and lora.is_file()):
        return ingredient, None
    store = sidecar.read_bytes()
    report = c2pa_io.read_store(lora, c2pa_io.OCTET_STREAM, anchors_pem=identity.root_pem,
                                manifest_data=store)
    results = (report or {}).get("validation_results") or {}
    if not report or (results.get("activeManifest") or {}).get("failure"):
        return ingredient, None  # stale (the LoRA changed since): do not vouch for it
    ingredient.update(active_manifest=report["active_manifest"], validation_results=results,
                      manifest_data={"format": "application/c2pa",
                                     "identifier": LORA_RESOURCE})
    return ingredient, store


def sign_lora(lora: Path, facts: LoraFacts, identity: SigningIdentity) -> SignedFile:
    """Write `<name>.c2pa` beside the LoRA: a manifest bound to its bytes, with the training set.

    Call it again after the LoRA's metadata is rewritten (an erasure redacts it): the old
    manifest no longer matches the bytes and verification says so.
    """
    lora = Path(lora)
    if not lora.is_file():
        raise InvalidInput(f"There is no LoRA file at {lora}; export the run first.")
    dataset = model_ingredient(
        f"{facts.style_name or 'style'} training set ({len(facts.images)} images)",
        sha256=facts.manifest_sha256, asset_type=DATASET_TYPE)
    dataset["format"] = "application/json"
    manifest = {
        "claim_generator_info": [{"name": SOFTWARE}], "title": lora.name,
        "format": c2pa_io.OCTET_STREAM,
        "ingredients": [model_ingredient(facts.base_model, identity=facts.base_model_identity),
                        dataset],
        "assertions": [_created(TRAINED_ALGORITHMIC_DATA,
                                f"Style LoRA trained by Style Studio (run {facts.run_id})"),
                       facts.training_mining.assertion(),
                       {"label": TRAINING_SET_LABEL, "data": facts.training_set()}],
    }
    with open(lora, "rb") as source:
        store = c2pa_io.sign_stream(manifest, identity, c2pa_io.OCTET_STREAM, source,
                                    _Discard(), detached=True)
    sidecar = lora_sidecar(lora)
    atomic_write_bytes(sidecar, store)
    return SignedFile(lora, sidecar, identity.author, sha256_file(lora))


class _Discard(io.RawIOBase):
    """Where a detached signing writes its copy of the asset: nowhere (a LoRA can be large)."""

    def __init__(self) -> None:
        super().__init__()
        self._pos = self._size = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._pos += len(data)
        self._size = max(self._size, self._pos)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos
