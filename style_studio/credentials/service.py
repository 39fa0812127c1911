"""The workspace's Content Credentials: who signs, each style's training-mining choice, and
what verification is told about the workspace now.

`studio.credentials` is what the Playground, the Training service, the UI and the tests
use. The artist's name for the certificate is a workspace setting (`meta.signing_author`);
until it is set, the name used most in "own work" consent records stands in, else
"Style Studio user". The identity lives in `Workspace.credentials_dir`, which is never
served, zipped or touched by erasure.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from style_studio.base.erasure_journal import ErasureJournal
from style_studio.base.errors import InvalidInput, NotFound
from style_studio.base.files import atomic_write_json, sha256_file
from style_studio.base.licences import OWN_WORK
from style_studio.base.store import Store
from style_studio.base.styles import Styles
from style_studio.base.workspace import Workspace

from .identity import MAX_NAME_CHARS, SigningIdentity, signing_identity, trust_anchor
from .sign import TrainingMining
from .verify import Verification, WorkspaceFacts, verify_file

AUTHOR_KEY = "signing_author"
LORA_HASHES = "lora-hashes.json"  # in a run folder: every sha256 its LoRA files have had
FALLBACK_AUTHOR = "Style Studio user"


class Credentials:
    """The signing identity and the facts verification needs, read from the workspace."""

    def __init__(self, store: Store, workspace: Workspace, styles: Styles):
        self.store = store
        self.workspace = workspace
        self.styles = styles
        self._hashes: dict[Path, tuple[tuple[int, int], str]] = {}

    # -- who signs --------------------------------------------------------------------
    def artist_name(self) -> str:
        """The name the certificate carries: the artist's setting, else a sensible default."""
        return str(self.store.meta_get(AUTHOR_KEY) or "") or self.suggested_name()

    def suggested_name(self) -> str:
        """The creator named most in "own work" consent records, else a neutral name."""
        names = Counter(
            " ".join(str(doc.get("creator") or "").split())
            for doc in self.store.all("consents")
            if doc.get("relationship") == "own" or doc.get("licence") == OWN_WORK)
        names.pop("", None)
        return names.most_common(1)[0][0][:MAX_NAME_CHARS] if names else FALLBACK_AUTHOR

    def set_artist_name(self, name: str) -> str:
        """Store the artist's name for signing; the next signed file uses it."""
        clean = " ".join((name or "").split())
        if not clean:
            raise InvalidInput("Write your name as it should appear on signed files.")
        if len(clean) > MAX_NAME_CHARS:
            raise InvalidInput(f"Your name is {len(clean)} characters; a certificate holds "
                               f"at most {MAX_NAME_CHARS}. Use a shorter form of it.")
        before = self.store.meta_get(AUTHOR_KEY)
        if before != clean:
            self.store.meta_set(AUTHOR_KEY, clean)
            self.store.audit("credentials.author", None, before=before, after=clean)
        return clean

    def identity(self) -> SigningIdentity:
        """The certificate that signs now (made on first use, renewed when the name changes)."""
        return signing_identity(self.workspace.credentials_dir, self.artist_name())

    def trust_anchor(self) -> str:
        """The workspace root (PEM), or "" before anything was signed."""
        try:
            return trust_anchor(self.workspace.credentials_dir)
        except NotFound:
            return ""

    # -- per style ------------------------------------------------------------------
    def training_mining(self, style_id: str) -> TrainingMining:
        """The style's choice; a style that never chose says no to AI training."""
        return TrainingMining.from_doc(self.styles.get(style_id).training_mining)

    def set_training_mining(self, style_id: str, mining: TrainingMining) -> TrainingMining:
        """Check and store the style's choice (every later output and LoRA carries it)."""
        self.styles.update(style_id, training_mining=mining.to_doc())
        return mining

    # -- verification -----------------------------------------------------------------
    def workspace_facts(self) -> WorkspaceFacts:
        """The root to trust, and which training images were erased or revoked since."""
        erased: dict[str, str] = {}
        for entry in ErasureJournal(self.workspace.erasure_journal).entries():
            for digest in entry.hashes:
                erased[digest] = entry.date
        revoked: dict[str, str] = {}
        for doc in self.store.all("consents"):
            if doc.get("status") != "revoked":
                continue
            image = self.store.get("images", str(doc.get("id", ""))) or {}
            if image.get("sha256"):
                revoked[image["sha256"]] = str(doc.get("date") or doc.get("updated_at")
                                               or "")[:10]
        return WorkspaceFacts(trust_anchors_pem=self.trust_anchor(), erased=erased,
                              revoked=revoked, loras=self._loras())

    def _loras(self) -> dict[str, Path]:
        """Every final LoRA of every run by its sha256 (hashed once per file version), so
        an output that names its LoRA by hash is traced to the LoRA's credentials — also
        by the hashes it had before an erasure redacted it (`LORA_HASHES`), so an output
        made before the erasure still finds its training set, erased image marked."""
        found: dict[str, Path] = {}
        for record in sorted(self.workspace.styles_root.glob(f"*/runs/*/{LORA_HASHES}")):
            for digest, name in _read_hashes(record).items():
                if (record.parent / "lora" / name).is_file():
                    found[digest] = record.parent / "lora" / name
        for path in sorted(self.workspace.styles_root.glob("*/runs/*/lora/*.safetensors")):
            try:
                info = path.stat()
            except OSError:
                continue
            stamp = (info.st_mtime_ns, info.st_size)
            known = self._hashes.get(path)
            if known is None or known[0] != stamp:
                known = self._hashes[path] = (stamp, sha256_file(path))
            found[known[1]] = path
        return found

    def verify(self, path: Path) -> Verification:
        """Verify an image or LoRA file against this workspace, in plain words."""
        return verify_file(Path(path), self.workspace_facts())


def _read_hashes(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remember_lora_hash(run_dir: Path, digest: str, name: str) -> None:
    """Note that the run's LoRA file `name` had this sha256 (each signing adds one)."""
    path = Path(run_dir) / LORA_HASHES
    known = _read_hashes(path)
    if known.get(digest) != name:
        atomic_write_json(path, {**known, digest: name})
