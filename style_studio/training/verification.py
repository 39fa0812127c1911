"""Verify a file against this workspace, and hand a client the proof of a run.

`Verifier` checks what an artist drops (an image, a LoRA, a LoRA with its `.c2pa`) against
what the workspace knows now (`credentials.Credentials.workspace_facts`: its trust anchor,
erased images, revoked consents, the LoRA files of its runs), refuses input that cannot
carry credentials in plain words, and builds a run's provenance pack
(`run_details.provenance_pack`). The signing identity lives in `Workspace.credentials_dir`.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from style_studio.base.errors import InvalidInput, NotFound, StudioError
from style_studio.base.files import sha256_file, slug
from style_studio.base.store import Store
from style_studio.base.styles import Styles
from style_studio.base.units import human_size
from style_studio.base.workspace import Workspace
from style_studio.consent.service import Consent
from style_studio.credentials.identity import SigningIdentity, signers, trust_anchor
from style_studio.credentials.service import Credentials
from style_studio.credentials.sign import SIDECAR_SUFFIX, lora_sidecar
from style_studio.credentials.verify import Verification, WorkspaceFacts, verify_file

from .run_details import provenance_pack
from .service import Training

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".avif", ".gif")
LORA_SUFFIX = ".safetensors"
MAX_IMAGE_BYTES = 200 * 1024 * 1024
MAX_LORA_BYTES = 4 * 1024 * 1024 * 1024
MAX_SIDECAR_BYTES = 16 * 1024 * 1024


class Verifier:
    """Verification of dropped files against the workspace (the facts come from
    `credentials.Credentials`), and the client provenance pack of a run."""

    def __init__(self, store: Store, workspace: Workspace, styles: Styles,
                 training: Training, consent: Consent, credentials: Credentials):
        self.store = store
        self.workspace = workspace
        self.styles = styles
        self.training = training
        self.consent = consent
        self.credentials = credentials

    @property
    def folder(self) -> Path:
        """Where the workspace's signing identity lives (made on first signature)."""
        return self.workspace.credentials_dir

    def facts(self) -> WorkspaceFacts:
        """Trust anchor, erased and revoked images (sha256 -> date), LoRA files by sha256."""
        return self.credentials.workspace_facts()

    # -- verify ----------------------------------------------------------------------------
    def verify(self, paths: list[str] | list[Path] | str | Path) -> Verification:
        """Verify one dropped file (an image, a LoRA, or a LoRA with its `.c2pa`).

        Raises InvalidInput, in words, for anything that cannot carry credentials (a text
        file, an unreadable image, a file too large); a file without credentials is not an
        error: the answer says so.
        """
        files = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
        if not files:
            raise InvalidInput("Drop an image or a LoRA file to verify.")
        for path in files:
            if not path.is_file():
                raise InvalidInput(f"'{path.name}' could not be found; drop it again.")
        loras = [p for p in files if p.suffix.lower() == LORA_SUFFIX]
        sidecars = [p for p in files if p.suffix.lower() == SIDECAR_SUFFIX]
        if loras or sidecars:
            if len(loras) > 1 or len(sidecars) > 1 or len(files) > len(loras) + len(sidecars):
                raise InvalidInput("Verify one file at a time: an image, or a LoRA "
                                   "(.safetensors) with its .c2pa beside it.")
            return self._verify_lora(loras[0] if loras else None,
                                     sidecars[0] if sidecars else None)
        if len(files) > 1:
            raise InvalidInput("Verify one image at a time.")
        return verify_file(_checked_image(files[0]), self.facts())

    def _verify_lora(self, lora: Path | None, sidecar: Path | None) -> Verification:
        if lora is not None:
            _check_size(lora, MAX_LORA_BYTES, "a LoRA")
        if sidecar is not None:
            _check_size(sidecar, MAX_SIDECAR_BYTES, "a credentials file")
        facts = self.facts()
        if lora is not None and sidecar is None and not lora_sidecar(lora).is_file():
            # A LoRA dropped alone arrives without its .c2pa: use the workspace's copy.
            known = facts.loras.get(sha256_file(lora))
            if known is not None:
                result = verify_file(known, facts)
                result.credentials_from = (
                    f"{lora.name} came without its .c2pa; it is byte for byte a LoRA of "
                    f"this workspace, so its credentials were read from the workspace's "
                    f"copy ({lora_sidecar(Path(known)).name}). Anyone else needs the .c2pa "
                    "beside the LoRA to check it.")
                return result
            return verify_file(lora, facts)
        if lora is not None and sidecar is not None:
            pair = self.workspace.browser_dir("verify")
            target = pair / lora.name
            target.symlink_to(lora.resolve())
            lora_sidecar(target).symlink_to(sidecar.resolve())
            return verify_file(target, facts)
        return verify_file(sidecar or lora, facts)  # type: ignore[arg-type]

    def describe(self, result: Verification) -> list[str]:
        """`result.lines()` plus what this workspace holds of the run behind the file."""
        lines = list(result.lines())
        run_id = str(result.run.get("run_id") or "")
        if not run_id:
            return lines
        try:
            run = self.training.get_run(run_id)
        except StudioError:
            lines.append(f"Run {run_id} is not in this workspace.")
            return lines
        try:
            style = self.styles.get(run.style_id).name
        except StudioError:
            style = "a style since deleted"
        lines.append(f"This workspace holds run {run.id}: style {style}, {run.base_model}, "
                     f"started {run.created_at[:16].replace('T', ' ')}, {run.status}.")
        return lines

    # -- the client's pack -----------------------------------------------------------------
    def provenance_pack(self, run_id: str) -> Path:
        """One zip for a client: report (Markdown + HTML), manifest, ledger CSV of the run's
        images, the public certificate, the C2PA manifests and a training-content summary."""
        run = self.training.get_run(run_id)
        manifest_path = run.run_dir / "manifest.json"
        if not manifest_path.is_file():
            raise NotFound("This run has no manifest yet: the pack is ready once it starts.")
        style_doc = self.store.get("styles", run.style_id) or {"id": run.style_id,
                                                               "name": run.style_id}
        in_run = {img.image_id for img in self.training.run_images(run.id)}
        consents = [c for c in self.consent.for_style(run.style_id) if c.image_id in in_run]
        name = f"{slug(str(style_doc.get('name') or 'style'))}-{run.id}-provenance"
        return provenance_pack(
            self.workspace, run.id, run.run_dir, name, style=style_doc, consents=consents,
            plan=self.consent.trainable(run.style_id), identity=self.identity())

    def identity(self) -> SigningIdentity | None:
        """The newest signing certificate with its root, or None before the first signature
        (never made here: only signing makes an identity)."""
        newest = signers(self.folder)
        if not newest:
            return None
        return SigningIdentity(self.folder, trust_anchor(self.folder), newest[-1])


def _check_size(path: Path, limit: int, what: str) -> None:
    size = path.stat().st_size
    if size > limit:
        raise InvalidInput(f"'{path.name}' is {human_size(size)}; {what} to verify may be "
                           f"at most {human_size(limit)}.")


def _checked_image(path: Path) -> Path:
    """An image file Pillow can open, within the size limit; else a plain refusal."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        kind = f"a {suffix} file" if suffix else "a file without an extension"
        raise InvalidInput(f"'{path.name}' is {kind}. Verify reads images (PNG, JPEG, WebP, "
                           "TIFF, AVIF, GIF) and LoRA files (.safetensors, with the "
                           ".c2pa beside it).")
    _check_size(path, MAX_IMAGE_BYTES, "an image")
    try:
        with Image.open(path) as image:
            image.verify()
    except Image.DecompressionBombError as exc:
        raise InvalidInput(f"'{path.name}' has too many pixels to be checked safely.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"'{path.name}' is not a readable image ({_words(exc)}).") from exc
    return path


def _words(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__

