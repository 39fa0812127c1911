"""Verify any image or LoRA file and say, in plain words, what its Content Credentials prove.

Reads with c2pa-python's Reader, trusting only the roots the caller passes (the
workspace root) and fetching nothing from the network. What the workspace knows now (which
training images were erased or had consent revoked since, which LoRA files it holds) comes
in as plain data, so the same function serves the app, a script and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c2pa import C2paError

from style_studio.base.errors import InvalidInput
from style_studio.base.files import sha256_file
from style_studio.base.licences import licence_label

from . import c2pa_io
from .sign import (
    CAWG_TRAINING_MINING,
    MODEL_TYPE,
    RUN_LABEL,
    SIDECAR_SUFFIX,
    TRAINING_SET_LABEL,
    lora_sidecar,
)
from .signals import WORDS, entries_of

LORA_SUFFIXES = (".safetensors",)
USE_WORDS = {"notAllowed": "not allowed", "allowed": "allowed",
             "constrained": "allowed under a constraint"}
TRUST_CODES = ("signingCredential.untrusted", "signingCredential.ocsp.unknown")
PLAIN_FAILURES = {
    "assertion.dataHash.mismatch": "the file's content changed after it was signed",
    "assertion.hashedURI.mismatch": "a statement inside the credentials was altered",
    "assertion.bmffHash.mismatch": "the file's content changed after it was signed",
    "claimSignature.mismatch": "the signature does not match the credentials",
    "signingCredential.invalid": "the signing certificate is not valid for signing",
    "signingCredential.expired": "the signing certificate had expired when it signed",
    "signingCredential.revoked": "the signing certificate was revoked",
    "signingCredential.untrusted": "the signer does not chain to a root you trust",
    "ingredient.manifest.mismatch": "the LoRA's own credentials inside were altered",
}


@dataclass(frozen=True)
class WorkspaceFacts:
    """What the workspace knows now; every field is plain data the caller gathers.

    `erased` and `revoked` map a training image's sha256 (as listed in run manifests) to
    when it happened; `loras` maps a LoRA file's sha256 to where the workspace keeps it,
    so an output whose LoRA manifest is not inside it can still be traced.
    """

    trust_anchors_pem: str = ""
    erased: Mapping[str, str] = field(default_factory=dict)
    revoked: Mapping[str, str] = field(default_factory=dict)
    loras: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSetSummary:
    run_id: str
    style: str
    image_hashes: tuple[str, ...]
    creators: tuple[str, ...]
    licences: Mapping[str, int]
    obligations: tuple[str, ...] = ()

    @classmethod
    def from_assertion(cls, data: Mapping[str, Any]) -> TrainingSetSummary:
        return cls(run_id=str(data.get("run_id", "")), style=str(data.get("style", "")),
                   image_hashes=tuple(str(i.get("sha256", "")) for i in data.get("images") or []),
                   creators=tuple(str(c) for c in data.get("creators") or []),
                   licences=dict(data.get("licences") or {}),
                   obligations=tuple(str(o) for o in data.get("obligations") or []))

    def line(self) -> str:
        licences = ", ".join(f"{licence_label(key)} ({n})" for key, n in self.licences.items())
        who = ", ".join(self.creators) or "no creator named"
        return (f"{len(self.image_hashes)} images by {len(self.creators)} creator(s) ({who}); "
                f"licences: {licences or 'none listed'}")


@dataclass
class Verification:
    """The answer for one file. `lines()` is what a person reads."""

    path: Path
    kind: str  # "image" or "LoRA"
    has_credentials: bool = False
    intact: bool = False
    trusted: bool = False
    state: str = ""  # c2pa's validation_state: Trusted, Valid or Invalid
    signer: str = ""
    organisation: str = ""  # the signing certificate's O (c2pa calls it "issuer")
    problems: list[str] = field(default_factory=list)
    digital_source_type: str = ""
    training_mining: dict[str, str] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    lora_sha256: str = ""
    lora_credentials: str = ""  # how the LoRA's own manifest checked out, in words
    # Where the credentials were read when not from what was dropped (a LoRA alone).
    credentials_from: str = ""
    training_set: TrainingSetSummary | None = None
    erased: dict[str, str] = field(default_factory=dict)
    revoked: dict[str, str] = field(default_factory=dict)

    def headline(self) -> str:
        if not self.has_credentials:
            if self.problems:
                return "No readable Content Credentials: " + "; ".join(self.problems) + "."
            return "No Content Credentials: nothing in or beside this file proves its origin."
        if not self.intact:
            return "Content Credentials present, but broken: " + "; ".join(self.problems) + "."
        if self.trusted:
            return f"Content Credentials intact and trusted: signed by {self.signer}."
        return (f"Content Credentials intact, signed by {self.signer}, but not by this "
                "workspace's root (the signer is not one you trust).")

    def lines(self) -> list[str]:
        lines = [self.headline()]
        if self.credentials_from:
            lines.append(self.credentials_from)
        if not self.signer:
            return lines
        organisation = (f" ({self.organisation})" if self.organisation
                        and self.organisation != self.signer else "")
        lines.append(f"Signer: {self.signer}{organisation}; "
                     + ("trusted against this workspace's root." if self.trusted
                        else "not trusted here."))
        run = self.run
        if run.get("run_id"):
            lora = f", LoRA sha256 {self.lora_sha256[:12]}…" if self.lora_sha256 else ""
            lines.append(f"Made by training run {run['run_id']}"
                         + (f" ({run['checkpoint']})" if run.get("checkpoint") else "")
                         + lora + (f" on {run['base_model']}" if run.get("base_model") else "")
                         + ".")
        elif self.kind == "image" and self.digital_source_type:
            lines.append("Made by a base model without a LoRA.")
        if self.lora_credentials:
            lines.append(f"The LoRA's own credentials: {self.lora_credentials}.")
        if self.training_mining:
            lines.append("What the signer allows: " + "; ".join(
                f"{WORDS.get(k.split('.', 1)[-1], k)}: {USE_WORDS.get(v, v)}"
                for k, v in sorted(self.training_mining.items())) + ".")
        if self.training_set:
            lines.append("Training set: " + self.training_set.line() + ".")
            lines.append(_since(self.erased, "No training image has been erased since.",
                                "erased"))
            lines.append(_since(self.revoked, "No training image has had consent revoked "
                                "since.", "had consent revoked"))
        return lines


def _since(found: Mapping[str, str], none: str, some: str) -> str:
    if not found:
        return none
    listed = "; ".join(f"{sha[:12]}… ({when})" if when else f"{sha[:12]}…"
                       for sha, when in sorted(found.items()))
    return f"{len(found)} training image(s) {some} since: {listed}."


def verify_file(path: Path, facts: WorkspaceFacts) -> Verification:
    """Verify an image, a LoRA (`.safetensors` with its `.c2pa`) or a LoRA's `.c2pa` itself."""
    path = Path(path)
    if path.suffix.lower() in LORA_SUFFIXES or path.suffix.lower() == SIDECAR_SUFFIX:
        return _verify_lora(path, facts)
    if not path.is_file():
        raise InvalidInput(f"There is no file at {path}.")
    result = Verification(path=path, kind="image")
    try:
        report = c2pa_io.read_store(path, anchors_pem=facts.trust_anchors_pem)
    except C2paError.NotSupported:
        result.problems.append(f"a {path.suffix or 'file without an extension'} file is not "
                               "a kind that can carry Content Credentials")
        return result
    except C2paError as exc:
        result.problems.append(f"the file cannot be read ({_short(exc)})")
        return result
    if report is None:
        return result
    _fill(result, report)
    manifest = _active(report)
    result.run = dict(_assertion(manifest, RUN_LABEL) or {})
    lora = _lora_ingredient(manifest, str(result.run.get("lora_sha256", "")))
    if lora is not None:
        result.lora_sha256 = str((lora.get("metadata") or {}).get("sha256", ""))
        inner = report.get("manifests", {}).get(lora.get("active_manifest") or "")
        if inner:
            failures = _failures(lora.get("validation_results") or {})
            result.lora_credentials = ("signed by " + _signer(inner)[0] if not failures
                                       else "broken: " + "; ".join(failures))
            data = _assertion(inner, TRAINING_SET_LABEL)
            if data:
                result.training_set = TrainingSetSummary.from_assertion(data)
    result.lora_sha256 = result.lora_sha256 or str(result.run.get("lora_sha256", ""))
    if result.training_set is None and result.lora_sha256 in facts.loras:
        known = _verify_lora(Path(facts.loras[result.lora_sha256]), facts)
        result.training_set = known.training_set
        result.lora_credentials = ("not inside the image; the workspace's copy: "
                                   + known.headline().rstrip("."))
    _mark_since(result, facts)
    return result


def _verify_lora(path: Path, facts: WorkspaceFacts) -> Verification:
    lora, sidecar = _lora_pair(path)
    result = Verification(path=lora, kind="LoRA")
    if not lora.is_file():
        result.problems.append(f"the LoRA file {lora.name} is not beside {sidecar.name}, so "
                               "what was signed cannot be compared with it")
        result.has_credentials = sidecar.is_file()
        return result
    result.lora_sha256 = sha256_file(lora)
    if not sidecar.is_file():
        result.problems.append(f"a LoRA carries its credentials in {sidecar.name} beside it; "
                               "there is none")
        return result
    try:
        report = c2pa_io.read_store(lora, c2pa_io.OCTET_STREAM,
                                    anchors_pem=facts.trust_anchors_pem,
                                    manifest_data=sidecar.read_bytes())
    except C2paError as exc:
        result.has_credentials = True
        result.problems.append(f"{sidecar.name} cannot be read ({_short(exc)})")
        return result
    if report is None:
        return result
    _fill(result, report)
    manifest = _active(report)
    data = _assertion(manifest, TRAINING_SET_LABEL)
    if data:
        result.training_set = TrainingSetSummary.from_assertion(data)
        result.run = {"run_id": result.training_set.run_id}
    for ingredient in manifest.get("ingredients") or []:
        if {"type": MODEL_TYPE} in (ingredient.get("data_types") or []):
            result.run["base_model"] = str(ingredient.get("title", ""))
    _mark_since(result, facts)
    return result


def _lora_pair(path: Path) -> tuple[Path, Path]:
    if path.suffix.lower() == SIDECAR_SUFFIX:
        return path.with_suffix(LORA_SUFFIXES[0]), path
    return path, lora_sidecar(path)


def _fill(result: Verification, report: dict[str, Any]) -> None:
    """Presence, integrity, trust, signer and the statements every manifest may carry."""
    manifest = _active(report)
    result.has_credentials = True
    result.state = str(report.get("validation_state", ""))
    failures = _failures(report.get("validation_results") or {}, skip=TRUST_CODES)
    result.problems.extend(failures)
    result.intact = result.state in ("Valid", "Trusted") and not failures
    result.trusted = result.state == "Trusted"
    result.signer, result.organisation = _signer(manifest)
    for action in (_assertion(manifest, "c2pa.actions.v2") or {}).get("actions", []):
        if action.get("action") == "c2pa.created":
            result.digital_source_type = str(action.get("digitalSourceType", ""))
    result.training_mining = {k: v for k, (v, _) in entries_of(
        _assertion(manifest, CAWG_TRAINING_MINING)).items()}


def _mark_since(result: Verification, facts: WorkspaceFacts) -> None:
    if result.training_set is None:
        return
    hashes = set(result.training_set.image_hashes)
    result.erased = {h: facts.erased[h] for h in hashes if h in facts.erased}
    result.revoked = {h: facts.revoked[h] for h in hashes if h in facts.revoked}


def _failures(results: Mapping[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    active = results.get("activeManifest") or {}
    items = list(active.get("failure") or [])
    for delta in results.get("ingredientDeltas") or []:
        items += (delta.get("validationDeltas") or {}).get("failure") or []
    words = [PLAIN_FAILURES.get(i.get("code", ""), i.get("explanation") or i.get("code", ""))
             for i in items if i.get("code") not in skip]
    return list(dict.fromkeys(words))


def _active(report: Mapping[str, Any]) -> dict[str, Any]:
    return (report.get("manifests") or {}).get(report.get("active_manifest") or "") or {}


def _assertion(manifest: Mapping[str, Any], label: str) -> dict[str, Any] | None:
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") == label:
            return assertion.get("data") or {}
    return None


def _lora_ingredient(manifest: Mapping[str, Any], lora_sha256: str) -> dict[str, Any] | None:
    """The model ingredient that is the run's LoRA: its hash, or its own manifest, says so."""
    for ingredient in manifest.get("ingredients") or []:
        types = {t.get("type") for t in ingredient.get("data_types") or []}
        sha = (ingredient.get("metadata") or {}).get("sha256")
        if MODEL_TYPE in types and ((lora_sha256 and sha == lora_sha256)
                                    or ingredient.get("active_manifest")):
            return ingredient
    return None


def _signer(manifest: Mapping[str, Any]) -> tuple[str, str]:
    info = manifest.get("signature_info") or {}
    return str(info.get("common_name", "")), str(info.get("issuer", ""))


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
